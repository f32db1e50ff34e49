#pragma once
// Registers the dock-widget views (routing, inspector, colouring, load, coactivation, kv,
// performance) with the ViewRegistry. The desktop app calls it before building the main window.
#include <QStringList>

namespace moescope::ui {

void register_views();
// The ids registered above, in menu order (the `--view NAME` values).
QStringList view_ids();

}  // namespace moescope::ui
