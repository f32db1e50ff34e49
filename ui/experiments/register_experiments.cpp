#include "register_experiments.h"

#include <QAction>
#include <QFileDialog>
#include <QLabel>
#include <QMainWindow>
#include <QMenu>
#include <QPushButton>
#include <QStatusBar>
#include <spdlog/spdlog.h>

#include "active_intervention.h"
#include "anatomy_view.h"
#include "corpus_view.h"
#include "routing_panel.h"
#include "ui/chat_panel.h"
#include "ui/guide.h"
#include "ui/view_registry.h"

namespace moescope::ui {

void register_experiments(ViewRegistry& r) {
  r.add({QStringLiteral("anatomy"), QObject::tr("Model anatomy"),
         QObject::tr("Parameters total vs active per component, KV bytes per token and the memory a model needs."),
         Qt::RightDockWidgetArea, false,
         [](const ViewContext& c, QWidget* parent) { return new AnatomyView(c.feed, parent); }});
  r.add({QStringLiteral("experiments"), QObject::tr("Routing experiments"),
         QObject::tr("Disable or force experts, change top-k, and compare answers with and without."),
         Qt::RightDockWidgetArea, false, [](const ViewContext& c, QWidget* parent) -> QWidget* {
           if (!c.host || !c.intervention) return new QLabel(QObject::tr("No engine: experiments unavailable."), parent);
           return new RoutingPanel(c.feed, c.host, c.intervention, parent);
         }});
  r.add({QStringLiteral("corpus"), QObject::tr("Corpus analysis"),
         QObject::tr("Expert load per domain and layer, JS divergence between domains, top tokens per expert."),
         Qt::BottomDockWidgetArea, false, [](const ViewContext& c, QWidget* parent) -> QWidget* {
           if (!c.host) return new QLabel(QObject::tr("No engine: corpus analysis unavailable."), parent);
           return new CorpusView(c.feed, c.host, parent);
         }});
}

void attach_experiments(const ExperimentsWiring& w) {
  qRegisterMetaType<RoutingControl>();
  ActiveIntervention* ai = w.intervention;
  QMainWindow* window = w.window;
  if (w.chat)
    QObject::connect(w.chat, &ChatPanel::sendRequested, ai, [ai](const QString& text, int) { ai->setLastPrompt(text); });

  // Status bar: visible while an intervention is active, with a one-click reset.
  auto* label = new QLabel(window);
  label->setObjectName(QStringLiteral("intervention-status"));
  label->setStyleSheet(QStringLiteral("QLabel { background: #fff3cd; color: #5c4400; padding: 1px 6px; }"));
  auto* reset = new QPushButton(QObject::tr("Reset routing"), window);
  reset->setFlat(true);
  window->statusBar()->addPermanentWidget(label);
  window->statusBar()->addPermanentWidget(reset);
  auto refresh = [label, reset](const RoutingControl& c) {
    label->setVisible(!c.empty());
    reset->setVisible(!c.empty());
    label->setText(QObject::tr("Intervention: %1").arg(ActiveIntervention::describe(c)));
  };
  refresh(ai->control());
  QObject::connect(ai, &ActiveIntervention::changed, label, refresh);
  // The panel's reset also clears its widgets; without the panel, reset the control itself.
  const auto view = w.view;
  QObject::connect(reset, &QPushButton::clicked, window, [view, ai] {
    if (auto* panel = qobject_cast<RoutingPanel*>(view ? view(QStringLiteral("experiments")) : nullptr))
      panel->reset();
    else
      ai->reset();
  });

  // "learn more" in the experiments' docks: the window's guide at the dock's page.
  auto open_guide = [guide = w.open_guide](const QString& view_id) {
    if (guide) guide(guide_page_for_view(view_id));
    else spdlog::warn("learn more ({}): this window has no guide", view_id.toStdString());
  };
  if (view) {
    if (auto* v = qobject_cast<AnatomyView*>(view(QStringLiteral("anatomy"))))
      QObject::connect(v, &AnatomyView::learnMoreRequested, window, open_guide);
    if (auto* v = qobject_cast<RoutingPanel*>(view(QStringLiteral("experiments"))))
      QObject::connect(v, &RoutingPanel::learnMoreRequested, window, open_guide);
    if (auto* v = qobject_cast<CorpusView*>(view(QStringLiteral("corpus"))))
      QObject::connect(v, &CorpusView::learnMoreRequested, window, open_guide);
  }

  // File menu: inspect a bare config.json in the anatomy view.
  if (!w.file_menu) return;
  QMenu* file = w.file_menu;
  QAction* inspect = new QAction(QObject::tr("Inspect config.json…"), file);
  file->insertAction(file->actions().value(file->actions().size() > 1 ? 1 : 0), inspect);
  const auto show_view = w.show_view;
  QObject::connect(inspect, &QAction::triggered, window, [window, view, show_view] {
    auto* anatomy = qobject_cast<AnatomyView*>(view ? view(QStringLiteral("anatomy")) : nullptr);
    if (!anatomy) return;
    const QString path = QFileDialog::getOpenFileName(window, QObject::tr("Inspect config.json"), QString(),
                                                      QObject::tr("Model configuration (config.json *.json)"));
    if (path.isEmpty()) return;
    if (show_view) show_view(QStringLiteral("anatomy"));
    anatomy->openConfig(path);
  });
}

}  // namespace moescope::ui
