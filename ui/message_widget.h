#pragma once
// One turn of the chat: who wrote it, its Markdown text, a collapsible "thinking" section for
// reasoning models, and per-message actions (copy, edit for the user's, regenerate for the last
// answer).
#include <QFrame>

#include "ui/conversation.h"

class QLabel;
class QToolButton;

namespace moescope::ui {

class MarkdownBrowser;

class MessageWidget : public QFrame {
  Q_OBJECT
public:
  MessageWidget(int index, const Message& message, QWidget* parent = nullptr);
  int index() const { return index_; }
  bool isUser() const { return user_; }
  // Replaces the text (a streaming answer grows through this); `streaming` shows a cursor mark.
  void setContent(const QString& raw, bool streaming);
  void setStats(const QString& line);
  void setCanRegenerate(bool on);
  void setActionsEnabled(bool on);
  const QString& rawContent() const { return raw_; }
  QString answerText() const;  // what the body shows (thinking removed)
  bool thinkingExpanded() const;
  bool hasThinking() const;

signals:
  void editRequested(int index);
  void regenerateRequested();
  void copied(const QString& text);  // what a copy button put on the clipboard

private:
  void setThinkingExpanded(bool on);
  int index_;
  bool user_;
  QString raw_;
  bool thinking_touched_ = false;  // the user toggled the section: stop auto-collapsing
  bool thinking_was_done_ = false;
  QToolButton* thinking_toggle_;
  MarkdownBrowser* thinking_;
  MarkdownBrowser* body_;
  QLabel* stats_;
  QToolButton* copy_;
  QToolButton* copy_code_ = nullptr;  // answers only
  QToolButton* edit_ = nullptr;
  QToolButton* regenerate_ = nullptr;
};

}  // namespace moescope::ui
