#pragma once
// Dock-widget views (routing heatmap, load balance, KV cache, ...) as factories: the composition
// root (the desktop app's main(), a test, the views bench) fills one ViewRegistry with
// register_views() and register_experiments() and hands it to the main window, which creates each
// view in a QDockWidget, lists it in the Views menu and remembers the layout. Each view is made
// with the ViewContext: the objects it needs, handed over explicitly (no lookups, no singletons).
#include <QString>
#include <QWidget>
#include <functional>
#include <vector>

namespace moescope::ui {

class EngineFeed;
class EngineHost;
class TraceModel;
class ActiveIntervention;
class ChatPanel;

struct ViewContext {
  EngineFeed* feed = nullptr;                  // model changes and generation, as they happen
  TraceModel* traces = nullptr;                // the trace on screen and its statistics (ui/views)
  EngineHost* host = nullptr;                  // runs experiments on the loaded model
  ActiveIntervention* intervention = nullptr;  // the routing intervention for the next answers
  ChatPanel* chat = nullptr;                   // the chat (the expert colouring colours its answers)
};

struct ViewFactory {
  QString id;           // stable, used for the dock's objectName and `--view NAME`
  QString title;        // menu and dock title
  QString description;  // one sentence: what the view shows
  Qt::DockWidgetArea area = Qt::RightDockWidgetArea;
  bool visible_by_default = false;
  std::function<QWidget*(const ViewContext& context, QWidget* parent)> create;
};

class ViewRegistry {
public:
  void add(ViewFactory factory);  // replaces a factory with the same id
  const std::vector<ViewFactory>& factories() const { return factories_; }
  const ViewFactory* find(const QString& id) const;
  QStringList ids() const;  // in menu order (the `--view NAME` values)

private:
  std::vector<ViewFactory> factories_;
};

}  // namespace moescope::ui
