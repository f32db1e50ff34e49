#pragma once
// The routing intervention that applies to the chat's next answers, one per main window (the
// composition root owns it and hands it to the routing-experiments panel, which edits it). The
// window copies it into each answer's request (EngineHost::generate), so an intervention
// travels with the request it applies to.
#include <QObject>
#include <QString>

#include "moescope/routing.h"

namespace moescope::ui {

class ActiveIntervention : public QObject {
  Q_OBJECT
public:
  using QObject::QObject;

  const RoutingControl& control() const { return control_; }
  bool active() const { return !control_.empty(); }
  void set(const RoutingControl& control);
  void reset() { set({}); }
  // One line for the status bar: what the intervention does, empty when none.
  static QString describe(const RoutingControl& control);

  // The last prompt the user sent in the chat (the comparison's default prompt).
  QString lastPrompt() const { return last_prompt_; }
  void setLastPrompt(const QString& p);

signals:
  void changed(const moescope::RoutingControl& control);
  void lastPromptChanged(const QString& prompt);

private:
  RoutingControl control_;
  QString last_prompt_;
};

}  // namespace moescope::ui

Q_DECLARE_METATYPE(moescope::RoutingControl)
