#pragma once
// Dock-widget views (routing heatmap, load balance, KV cache, ...) register a factory here; the
// main window creates each view in a QDockWidget, lists it in the Views menu and remembers the
// layout. A view gets the EngineFeed to follow generation. Register before the window is built,
// e.g. from a function that main() calls
// (a static registrar in a static library would be dropped by the linker).
#include <QString>
#include <QWidget>
#include <functional>
#include <vector>

namespace moescope::ui {

class EngineFeed;

struct ViewFactory {
  QString id;           // stable, used for the dock's objectName and `--view NAME`
  QString title;        // menu and dock title
  QString description;  // one sentence: what the view shows
  Qt::DockWidgetArea area = Qt::RightDockWidgetArea;
  bool visible_by_default = false;
  std::function<QWidget*(EngineFeed* feed, QWidget* parent)> create;
};

class ViewRegistry {
public:
  static ViewRegistry& instance();
  void add(ViewFactory factory);  // replaces a factory with the same id
  const std::vector<ViewFactory>& factories() const { return factories_; }
  const ViewFactory* find(const QString& id) const;

private:
  std::vector<ViewFactory> factories_;
};

}  // namespace moescope::ui
