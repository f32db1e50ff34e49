#pragma once
// Adds the dock-widget views (routing, inspector, colouring, load, coactivation, kv, performance)
// to a ViewRegistry. The desktop app's composition root calls it before building the main window.
namespace moescope::ui {

class ViewRegistry;
void register_views(ViewRegistry& registry);

}  // namespace moescope::ui
