#pragma once
// The conversations on the left: search, the list (most recent first), new / rename / delete.
#include <QWidget>
#include <vector>

#include "ui/conversation.h"

class QLineEdit;
class QListWidget;
class QPushButton;

namespace moescope::ui {

class ConversationList : public QWidget {
  Q_OBJECT
public:
  explicit ConversationList(QWidget* parent = nullptr);
  void setConversations(const std::vector<Conversation>& conversations, const QString& current_id);
  void setFilter(const QString& text);
  QString currentId() const;
  int visibleCount() const;
  QListWidget* list() const { return list_; }

signals:
  void currentChanged(const QString& id);
  void newRequested();
  void renameRequested(const QString& id);
  void deleteRequested(const QString& id);

private:
  void applyFilter();
  QLineEdit* search_;
  QListWidget* list_;
  QPushButton* new_;
  QPushButton* rename_;
  QPushButton* delete_;
  std::vector<Conversation> items_;  // copies for the search
  bool updating_ = false;
};

}  // namespace moescope::ui
