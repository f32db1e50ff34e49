#pragma once
// The shipped configuration-only presets (resources/presets/*.json), found like moescope-cli
// finds them: the installed share dir beside the binary first, then the source tree.
#include <QString>
#include <QStringList>

namespace moescope::ui {

QStringList preset_names();                  // deepseek-r1, deepseek-v2-lite, ...
QString preset_path(const QString& name);    // empty when not installed

}  // namespace moescope::ui
