#pragma once
// Plugs the routing experiments into the desktop app: register_experiments() adds the anatomy,
// routing-experiments and corpus-analysis views to the ViewRegistry (call before the window is
// built); attach_experiments() adds "Inspect config.json…" to the window's File menu, a status
// bar indicator with a one-click reset while an intervention is active, remembers the last chat
// prompt, and forwards every intervention to `apply` (the engine controller).
#include <QMainWindow>
#include <functional>

#include "moescope/routing.h"

namespace moescope::ui {

void register_experiments();
void attach_experiments(QMainWindow& window, std::function<void(const RoutingControl&)> apply);

}  // namespace moescope::ui
