#pragma once
// Plugs the routing experiments into the desktop app: register_experiments() adds the anatomy,
// routing-experiments and corpus-analysis views to a ViewRegistry (before the window is built);
// attach_experiments() adds "Inspect config.json…" to the window's File menu, a status bar
// indicator with a one-click reset while an intervention is active, and remembers the last chat
// prompt (the comparison's default). Everything it touches is handed over in ExperimentsWiring.
#include <QString>
#include <functional>

class QMainWindow;
class QMenu;
class QWidget;

namespace moescope::ui {

class ActiveIntervention;
class ChatPanel;
class ViewRegistry;

void register_experiments(ViewRegistry& registry);

struct ExperimentsWiring {
  QMainWindow* window = nullptr;
  QMenu* file_menu = nullptr;
  ChatPanel* chat = nullptr;
  ActiveIntervention* intervention = nullptr;
  // The widget of view `id` (null when the window has none), and showing its dock.
  std::function<QWidget*(const QString& id)> view;
  std::function<bool(const QString& id)> show_view;
  // Opens the window's guide at a page id (ui/guide.h); "learn more" in the experiments' docks.
  std::function<void(const QString& page)> open_guide;
};
void attach_experiments(const ExperimentsWiring& wiring);

}  // namespace moescope::ui
