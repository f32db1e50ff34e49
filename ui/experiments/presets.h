#pragma once
// The shipped configuration-only presets (resources/presets/*.json) as Qt strings: the engine's
// one list and lookup (moescope/resources.h), which moescope-cli uses too.
#include <QString>
#include <QStringList>

namespace moescope::ui {

QStringList preset_names();                  // deepseek-r1, deepseek-v2-lite, ...
QString preset_path(const QString& name);    // empty when not installed

}  // namespace moescope::ui
