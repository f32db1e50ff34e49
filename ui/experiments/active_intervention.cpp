#include "active_intervention.h"

#include <QStringList>

namespace moescope::ui {

void ActiveIntervention::set(const RoutingControl& control) {
  control_ = control;
  emit changed(control_);
}

void ActiveIntervention::setLastPrompt(const QString& p) {
  if (p.trimmed().isEmpty()) return;
  last_prompt_ = p;
  emit lastPromptChanged(p);
}

QString ActiveIntervention::describe(const RoutingControl& c) {
  QStringList parts;
  int disabled = 0;
  for (const auto& layer : c.disabled)
    for (uint8_t d : layer) disabled += d ? 1 : 0;
  if (disabled) parts << QObject::tr("%n expert slot(s) disabled", nullptr, disabled);
  if (c.forced_expert >= 0)
    parts << (c.forced_layer >= 0 ? QObject::tr("expert %1 forced in layer %2").arg(c.forced_expert).arg(c.forced_layer)
                                   : QObject::tr("expert %1 forced").arg(c.forced_expert));
  if (c.top_k > 0) parts << QObject::tr("top-k %1").arg(c.top_k);
  if (c.ignore_bias) parts << QObject::tr("correction bias ignored");
  return parts.join(QStringLiteral(", "));
}

}  // namespace moescope::ui
