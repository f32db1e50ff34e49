#include "presets.h"

#include "moescope/resources.h"

namespace moescope::ui {

QStringList preset_names() {
  QStringList names;
  for (const std::string& n : moescope::preset_names()) names << QString::fromStdString(n);
  return names;
}

QString preset_path(const QString& name) {
  return QString::fromStdString(moescope::preset_path(name.toStdString()).string());
}

}  // namespace moescope::ui
