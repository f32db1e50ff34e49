#include "register_experiments.h"

#include <QDockWidget>
#include <QFileDialog>
#include <QLabel>
#include <QMenuBar>
#include <QPushButton>
#include <QStatusBar>

#include "active_intervention.h"
#include "anatomy_view.h"
#include "corpus_view.h"
#include "routing_panel.h"
#include "ui/chat_panel.h"
#include "ui/view_registry.h"

namespace moescope::ui {

void register_experiments() {
  ViewRegistry& r = ViewRegistry::instance();
  r.add({QStringLiteral("anatomy"), QObject::tr("Model anatomy"),
         QObject::tr("Parameters total vs active per component, KV bytes per token and the memory a model needs."),
         Qt::RightDockWidgetArea, false,
         [](EngineFeed* feed, QWidget* parent) { return new AnatomyView(feed, parent); }});
  r.add({QStringLiteral("experiments"), QObject::tr("Routing experiments"),
         QObject::tr("Disable or force experts, change top-k, and compare answers with and without."),
         Qt::RightDockWidgetArea, false,
         [](EngineFeed* feed, QWidget* parent) { return new RoutingPanel(feed, ExperimentsRunner::shared(), parent); }});
  r.add({QStringLiteral("corpus"), QObject::tr("Corpus analysis"),
         QObject::tr("Expert load per domain and layer, JS divergence between domains, top tokens per expert."),
         Qt::BottomDockWidgetArea, false,
         [](EngineFeed* feed, QWidget* parent) { return new CorpusView(feed, ExperimentsRunner::shared(), parent); }});
}

void attach_experiments(QMainWindow& window, std::function<void(const RoutingControl&)> apply) {
  qRegisterMetaType<RoutingControl>();
  ActiveIntervention& ai = ActiveIntervention::instance();
  QObject::connect(&ai, &ActiveIntervention::changed, &window, [apply](const RoutingControl& c) { apply(c); });
  apply(ai.control());

  if (auto* chat = window.findChild<ChatPanel*>())
    QObject::connect(chat, &ChatPanel::sendRequested, &ai, [&ai](const QString& text, int) { ai.setLastPrompt(text); });

  // Status bar: visible while an intervention is active, with a one-click reset.
  auto* label = new QLabel(&window);
  label->setObjectName(QStringLiteral("intervention-status"));
  label->setStyleSheet(QStringLiteral("QLabel { background: #fff3cd; color: #5c4400; padding: 1px 6px; }"));
  auto* reset = new QPushButton(QObject::tr("Reset routing"), &window);
  reset->setFlat(true);
  window.statusBar()->addPermanentWidget(label);
  window.statusBar()->addPermanentWidget(reset);
  auto refresh = [label, reset](const RoutingControl& c) {
    label->setVisible(!c.empty());
    reset->setVisible(!c.empty());
    label->setText(QObject::tr("Intervention: %1").arg(ActiveIntervention::describe(c)));
  };
  refresh(ai.control());
  QObject::connect(&ai, &ActiveIntervention::changed, label, refresh);
  // The panel's reset also clears its widgets; without the panel, reset the control itself.
  QObject::connect(reset, &QPushButton::clicked, &window, [&window, &ai] {
    if (auto* panel = window.findChild<RoutingPanel*>()) panel->reset();
    else ai.reset();
  });

  // File menu: inspect a bare config.json in the anatomy view.
  QMenu* file = nullptr;
  for (QAction* a : window.menuBar()->actions())
    if (a->menu() && a->menu()->title().remove(QLatin1Char('&')) == QObject::tr("File")) file = a->menu();
  if (!file) file = window.menuBar()->addMenu(QObject::tr("&File"));
  QAction* inspect = new QAction(QObject::tr("Inspect config.json…"), file);
  file->insertAction(file->actions().value(file->actions().size() > 1 ? 1 : 0), inspect);
  QObject::connect(inspect, &QAction::triggered, &window, [&window] {
    auto* dock = window.findChild<QDockWidget*>(QStringLiteral("view-anatomy"));
    auto* view = window.findChild<AnatomyView*>();
    if (!dock || !view) return;
    const QString path = QFileDialog::getOpenFileName(&window, QObject::tr("Inspect config.json"), QString(),
                                                      QObject::tr("Model configuration (config.json *.json)"));
    if (path.isEmpty()) return;
    dock->show();
    dock->raise();
    view->openConfig(path);
  });
}

}  // namespace moescope::ui
