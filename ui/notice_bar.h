#pragma once
// A stack of dismissable notices above the chat (errors, the fallback chat format, context
// overflow, conversation files set aside), each with an id and optional action buttons.
#include <QList>
#include <QMap>
#include <QString>
#include <QWidget>
#include <functional>

class QVBoxLayout;

namespace moescope::ui {

class NoticeBar : public QWidget {
  Q_OBJECT
public:
  enum class Level { Info, Warning, Error };
  struct Action {
    QString label;
    std::function<void()> run;  // the notice closes after its action ran
  };
  explicit NoticeBar(QWidget* parent = nullptr);
  // Shows (or replaces) the notice `id`.
  void show_notice(const QString& id, Level level, const QString& text, const QList<Action>& actions = {});
  void remove_notice(const QString& id);
  bool has_notice(const QString& id) const { return notices_.contains(id); }
  QString notice_text(const QString& id) const;
  QStringList ids() const { return notices_.keys(); }

private:
  QVBoxLayout* layout_;
  QMap<QString, QWidget*> notices_;
};

}  // namespace moescope::ui
