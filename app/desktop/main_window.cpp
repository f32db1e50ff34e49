#include "main_window.h"

#include <QAction>
#include <QCheckBox>
#include <QGridLayout>
#include <QActionGroup>
#include <QApplication>
#include <QClipboard>
#include <QCloseEvent>
#include <QDir>
#include <QDockWidget>
#include <QFileDialog>
#include <QFileInfo>
#include <QInputDialog>
#include <QLabel>
#include <QMenuBar>
#include <QMessageBox>
#include <QTimer>
#include <QUrl>
#include <QPlainTextEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QRandomGenerator>
#include <QRegularExpression>
#include <QSaveFile>
#include <QSplitter>
#include <QStatusBar>
#include <spdlog/spdlog.h>

#include "app_settings.h"
#include "dump_panel.h"
#include "moescope/routing_trace.h"
#include "ui/chat_panel.h"
#include "ui/conversation_list.h"
#include "ui/engine_feed.h"
#include "ui/generation_defaults.h"
#include "ui/guide.h"
#include "ui/message_widget.h"
#include "ui/notice_bar.h"
#include "ui/server_dialog.h"
#include "ui/settings_dialog.h"
#include "ui/engine_host.h"
#include "ui/experiments/active_intervention.h"
#include "ui/experiments/register_experiments.h"
#include "ui/view_registry.h"
#include "ui/views/trace_model.h"
#include "ui/views/view_frame.h"

namespace moescope::desktop {

using ui::NoticeBar;

MainWindow::MainWindow(const AppOptions& options, const ui::ViewRegistry& views, QWidget* parent)
    : QMainWindow(parent), options_(options) {
  data_dir_ = options.data_dir.isEmpty() ? ui::default_data_dir() : options.data_dir;
  settings_ = std::make_unique<AppSettings>(options.settings_file);
  store_ = std::make_unique<ui::ConversationStore>(QDir(data_dir_).filePath(QStringLiteral("conversations")));
  setWindowTitle(QStringLiteral("moescope"));
  setObjectName(QStringLiteral("mainWindow"));
  setDockOptions(QMainWindow::AnimatedDocks | QMainWindow::AllowTabbedDocks | QMainWindow::AllowNestedDocks);

  // The composition root: one engine host (the only owner of the loaded model), the feed it
  // publishes on, the trace model every view reads and the intervention the next answers carry;
  // each part is handed to what needs it (docs/architecture.md).
  feed_ = new ui::EngineFeed(this);
  engine_ = new ui::EngineHost(feed_, this);
  engine_->setRouterScores(ui::RouterScores(settings_->routerScores()));
  traces_ = new ui::TraceModel(this);
  traces_->connectFeed(feed_);
  intervention_ = new ui::ActiveIntervention(this);

  splitter_ = new QSplitter(Qt::Horizontal, this);
  splitter_->setObjectName(QStringLiteral("mainSplitter"));
  list_ = new ui::ConversationList(splitter_);
  list_->setMinimumWidth(170);
  chat_ = new ui::ChatPanel(splitter_);
  chat_->setMinimumWidth(400);  // docked views take the rest, never squeeze the chat below readable
  splitter_->addWidget(list_);
  splitter_->addWidget(chat_);
  splitter_->setStretchFactor(0, 0);
  splitter_->setStretchFactor(1, 1);
  splitter_->setSizes({260, 1020});
  splitter_->setStyleSheet(QStringLiteral("QSplitter::handle { background:#E1E4E8; width:1px; }"));
  list_->setStyleSheet(list_->styleSheet() + QStringLiteral(" ConversationList { background:#F6F8FA; }"));
  list_->setAutoFillBackground(true);
  QPalette pal = list_->palette();
  pal.setColor(QPalette::Window, QColor(0xF6, 0xF8, 0xFA));
  list_->setPalette(pal);
  setCentralWidget(splitter_);
  // The right dock area runs the whole height (the bottom one stops beside it), so docks on the
  // right and below never stack their minimum heights.
  setCorner(Qt::BottomRightCorner, Qt::RightDockWidgetArea);

  buildMenus();
  buildStatusBar();

  connect(list_, &ui::ConversationList::currentChanged, this, &MainWindow::selectConversation);
  connect(list_, &ui::ConversationList::newRequested, this, &MainWindow::newConversation);
  connect(list_, &ui::ConversationList::renameRequested, this, [this](const QString& id) {
    ui::Conversation* c = find(id);
    if (!c) return;
    bool ok = false;
    const QString title = QInputDialog::getText(this, tr("Rename conversation"), tr("Title:"), QLineEdit::Normal, c->title, &ok);
    if (ok && !title.trimmed().isEmpty()) renameConversation(id, title.trimmed());
  });
  connect(list_, &ui::ConversationList::deleteRequested, this, [this](const QString& id) {
    ui::Conversation* c = find(id);
    if (!c) return;
    if (QMessageBox::question(this, tr("Delete conversation"), tr("Delete “%1”? This cannot be undone.").arg(c->title)) ==
        QMessageBox::Yes)
      deleteConversation(id);
  });
  connect(chat_, &ui::ChatPanel::sendRequested, this, [this](const QString& text, int edit) { send(text, edit); });
  connect(chat_, &ui::ChatPanel::stopRequested, this, &MainWindow::stop);
  connect(chat_, &ui::ChatPanel::regenerateRequested, this, &MainWindow::regenerate);
  connect(chat_, &ui::ChatPanel::settingsRequested, this, &MainWindow::editSettings);

  connect(engine_, &ui::EngineHost::loadProgress, this, [this](const QString& stage, int percent) {
    load_label_->setText(stage);
    load_bar_->setValue(percent);
    load_bar_->setVisible(true);
    load_label_->setVisible(true);
    load_cancel_->setVisible(true);
  });
  auto hide_progress = [this] {
    load_bar_->setVisible(false);
    load_label_->setVisible(false);
    load_cancel_->setVisible(false);
  };
  connect(engine_, &ui::EngineHost::modelLoaded, this, [this, hide_progress](const ui::ModelInfo& info) {
    hide_progress();
    onLoaded(info);
  });
  connect(engine_, &ui::EngineHost::modelLoadFailed, this, [this, hide_progress](const QString& dir, const QString& message) {
    hide_progress();
    showError(QStringLiteral("load"), tr("Could not load the model in %1").arg(dir), message,
              {{tr("Open another model…"), [this] { openModelDialog(); }}});
    restoreReadyState();
    emit modelFailed(message);
  });
  connect(engine_, &ui::EngineHost::loadCancelled, this, [this, hide_progress] {
    hide_progress();
    chat_->notices()->show_notice(QStringLiteral("load"), NoticeBar::Level::Info, tr("Loading the model was cancelled."));
    restoreReadyState();
  });
  connect(engine_, &ui::EngineHost::streamed, this, &MainWindow::onChunk);
  connect(engine_, &ui::EngineHost::generationFinished, this, &MainWindow::onFinished);
  connect(engine_, &ui::EngineHost::generationFailed, this, &MainWindow::onFailed);
  connect(engine_, &ui::EngineHost::contextOverflow, this, &MainWindow::onContextOverflow);

  for (const ui::ViewFactory& f : views.factories()) addView(f);
  ui::ExperimentsWiring wiring;
  wiring.window = this;
  wiring.file_menu = file_menu_;
  wiring.chat = chat_;
  wiring.intervention = intervention_;
  wiring.view = [this](const QString& id) { return viewWidget(id); };
  wiring.show_view = [this](const QString& id) { return showView(id); };
  wiring.open_guide = [this](const QString& page) { openGuide(page); };
  ui::attach_experiments(wiring);

  resize(1280, 800);
  if (!settings_->windowGeometry().isEmpty()) restoreGeometry(settings_->windowGeometry());
  if (!settings_->windowState().isEmpty()) {
    restoreState(settings_->windowState());
    for (const auto& [id, v] : views_) v.dock->setProperty("moescope-placed", true);  // the saved layout places them
  } else {
    // First start: the views shown by default share the bottom area as tabs with the routing map,
    // the main view, in front; it gets 48 % of the height (the chat the rest) once the window has
    // its real size. The chat keeps the whole width beside the conversation list.
    if (QDockWidget* map = viewDock(QStringLiteral("routing"))) {
      for (const QString& id : view_order_)
        if (QDockWidget* d = viewDock(id); d && d != map && d->isVisibleTo(this) && dockWidgetArea(d) == dockWidgetArea(map))
          tabifyDockWidget(map, d);
      map->raise();
    }
    QTimer::singleShot(0, this, [this] {
      if (QDockWidget* map = viewDock(QStringLiteral("routing")); map && map->isVisible())
        resizeDocks({map}, {std::max(map->minimumSizeHint().height(), int(height() * 0.48))}, Qt::Vertical);
    });
  }
  if (!settings_->splitterState().isEmpty()) splitter_->restoreState(settings_->splitterState());

  restoreConversations();
  chat_->setModelReady(false, tr("No model loaded"));

  if (options_.load_model) {
    QString dir = options_.model_dir;
    if (dir.isEmpty()) dir = settings_->lastModel();
    if (dir.isEmpty() || !QFileInfo::exists(dir)) dir = bundled_model_dir();
    if (dir.isEmpty()) {
      chat_->setModelReady(false, tr("No model loaded — use File ▸ Open model…"));
      QMetaObject::invokeMethod(this, [this] { emit modelFailed(tr("no model found")); }, Qt::QueuedConnection);
    } else if (!options_.weights.isEmpty()) {
      openModel(dir, options_.weights == QLatin1String("q8_0") ? WeightsMode::Q8_0 : WeightsMode::AsStored);
    } else {
      openModel(dir);
    }
  }
}

MainWindow::~MainWindow() = default;

// ---- menus and status bar ------------------------------------------------------------------

void MainWindow::buildMenus() {
  QMenu* file = file_menu_ = menuBar()->addMenu(tr("&File"));
  file->addAction(tr("&Open model…"), QKeySequence::Open, this, &MainWindow::openModelDialog);
  recent_menu_ = file->addMenu(tr("Recent models"));
  rebuildRecentMenu();
  QAction* dump = file->addAction(tr("Open routing &dump…"), this, &MainWindow::openRoutingDumpDialog);
  dump->setObjectName(QStringLiteral("openDumpAction"));
  dump->setStatusTip(tr("Routed experts recorded from vLLM / SGLang (JSON lines) or saved as numpy / safetensors arrays"));
  file->addSeparator();
  file->addAction(tr("Export conversation as &Markdown…"), this, [this] { exportTo(true); });
  file->addAction(tr("Export conversation as &JSON…"), this, [this] { exportTo(false); });
  file->addSeparator();
  file->addAction(tr("&Backend…"), this, &MainWindow::chooseBackend);
  QAction* server = file->addAction(tr("Connect to a &server…"), this, &MainWindow::openServerDialog);
  server->setObjectName(QStringLiteral("connectServerAction"));
  server->setStatusTip(tr("Chat with a model served by vLLM, SGLang or moescope-cli serve, and watch its routing"));
  file->addSeparator();
  file->addAction(tr("&Quit"), QKeySequence::Quit, this, &QWidget::close);

  QMenu* chat = menuBar()->addMenu(tr("&Chat"));
  chat->addAction(tr("&New chat"), QKeySequence::New, this, &MainWindow::newConversation);
  chat->addAction(tr("&Regenerate answer"), QKeySequence(Qt::CTRL | Qt::Key_R), this, &MainWindow::regenerate);
  chat->addAction(tr("&Stop"), QKeySequence(Qt::Key_Escape), this, &MainWindow::stop);
  chat->addSeparator();
  chat->addAction(tr("&Copy conversation"), QKeySequence(Qt::CTRL | Qt::SHIFT | Qt::Key_C), this,
                  [this] { QApplication::clipboard()->setText(exportMarkdown()); });
  chat->addAction(tr("Chat &settings…"), this, &MainWindow::editSettings);

  // The router's full scores (every expert's) feed the token inspector's runners-up; they cost
  // memory per token, so by default only small models record them.
  QMenu* scores = chat->addMenu(tr("Record full router &scores"));
  scores->setObjectName(QStringLiteral("routerScoresMenu"));
  scores->setToolTipsVisible(true);
  auto* group = new QActionGroup(scores);
  const int current = settings_->routerScores();
  const QString names[] = {tr("Automatic (models with at most %1 router scores per token)").arg(ui::kAutomaticRouterScores),
                           tr("Always"), tr("Never")};
  for (int mode = 0; mode < 3; ++mode) {
    QAction* a = scores->addAction(names[mode]);
    a->setObjectName(QStringLiteral("routerScores%1").arg(mode));
    a->setCheckable(true);
    a->setChecked(mode == current);
    a->setToolTip(tr("Every expert's router score for every token and MoE layer, shown as runners-up in the token "
                     "inspector; costs 2 bytes × MoE layers × experts per token (DeepSeek-R1: 29 KB)."));
    group->addAction(a);
    connect(a, &QAction::triggered, this, [this, mode] {
      settings_->setRouterScores(mode);
      engine_->setRouterScores(ui::RouterScores(mode));
    });
  }

  views_menu_ = menuBar()->addMenu(tr("&Views"));
  views_menu_->setObjectName(QStringLiteral("viewsMenu"));
  no_views_ = views_menu_->addAction(tr("(no views installed yet)"));
  no_views_->setObjectName(QStringLiteral("noViews"));
  no_views_->setEnabled(false);

  QMenu* help = menuBar()->addMenu(tr("&Help"));
  QAction* guide = help->addAction(tr("&Guide"), QKeySequence::HelpContents, this, [this] { openGuide(); });
  guide->setObjectName(QStringLiteral("guideAction"));
  guide->setStatusTip(tr("Short pages on MoE routing, load balance and MLA, with the loaded model's numbers"));
  help->addAction(tr("&About moescope"), this, [this] {
    QMessageBox::about(this, tr("About moescope"),
                       tr("<b>moescope %1</b><p>Chat with a Mixture-of-Experts model while watching its experts work.</p>"
                          "<p>Conversations and logs: %2</p>")
                           .arg(QStringLiteral(MOESCOPE_VERSION), data_dir_.toHtmlEscaped()));
  });
}

void MainWindow::buildStatusBar() {
  auto* bar = statusBar();
  bar->setStyleSheet(QStringLiteral("QStatusBar { border-top:1px solid #E1E4E8; } QStatusBar::item { border:none; }"
                                    "QStatusBar QLabel { padding:0 8px; color:#444D56; }"));
  load_label_ = new QLabel(this);
  load_bar_ = new QProgressBar(this);
  load_bar_->setRange(0, 100);
  load_bar_->setFixedWidth(160);
  load_bar_->setTextVisible(false);
  load_cancel_ = new QPushButton(tr("Cancel"), this);
  load_cancel_->setObjectName(QStringLiteral("cancelLoadButton"));
  connect(load_cancel_, &QPushButton::clicked, engine_, &ui::EngineHost::cancelLoad);
  for (QWidget* w : {static_cast<QWidget*>(load_label_), static_cast<QWidget*>(load_bar_), static_cast<QWidget*>(load_cancel_)}) {
    bar->addWidget(w);
    w->setVisible(false);
  }
  model_label_ = new QLabel(tr("No model"), this);
  backend_label_ = new QLabel(this);
  speed_label_ = new QLabel(this);
  context_label_ = new QLabel(this);
  model_label_->setObjectName(QStringLiteral("modelLabel"));
  backend_label_->setObjectName(QStringLiteral("backendLabel"));
  speed_label_->setObjectName(QStringLiteral("speedLabel"));
  context_label_->setObjectName(QStringLiteral("contextLabel"));
  bar->addPermanentWidget(model_label_);
  bar->addPermanentWidget(backend_label_);
  bar->addPermanentWidget(speed_label_);
  bar->addPermanentWidget(context_label_);
}

QString MainWindow::statusText() const {
  QStringList parts;
  for (QLabel* l : {model_label_, backend_label_, speed_label_, context_label_})
    if (!l->text().isEmpty()) parts << l->text();
  return parts.join(QStringLiteral(" | "));
}

void MainWindow::updateContextLabel(int64_t used, int64_t capacity) {
  if (capacity <= 0) {
    context_label_->clear();
    return;
  }
  context_label_->setText(tr("Context %1 / %2 tokens (%3%)").arg(used).arg(capacity).arg(double(used) * 100.0 / double(capacity), 0, 'f', 1));
}

void MainWindow::rebuildRecentMenu() {
  recent_menu_->clear();
  const QStringList recent = settings_->recentModels();
  // "name · quantisation", the path in the tooltip; reopened as it was loaded.
  for (const QString& dir : recent) {
    const QString label = settings_->recentLabel(dir), name = QFileInfo(dir).fileName();
    QAction* a = recent_menu_->addAction(label.isEmpty() ? name : tr("%1 · %2").arg(name, label), this,
                                         [this, dir] { openModel(dir); });
    a->setToolTip(dir);
    a->setStatusTip(dir);
    a->setData(dir);
  }
  recent_menu_->setToolTipsVisible(true);
  recent_menu_->setEnabled(!recent.isEmpty());
}

// ---- views -----------------------------------------------------------------------------------

QDockWidget* MainWindow::addView(const ui::ViewFactory& factory) {
  auto* dock = new QDockWidget(factory.title, this);
  dock->setObjectName(QStringLiteral("view-") + factory.id);  // saveState/restoreState key
  dock->setToolTip(factory.description);
  ui::ViewContext context;
  context.feed = feed_;
  context.traces = traces_;
  context.host = engine_;
  context.intervention = intervention_;
  context.chat = chat_;
  QWidget* widget = factory.create ? factory.create(context, dock) : new QWidget(dock);
  dock->setWidget(widget);
  if (auto* frame = qobject_cast<ui::ViewFrame*>(widget))
    connect(frame, &ui::ViewFrame::learnMoreRequested, this,
            [this](const QString& id) { openGuide(ui::guide_page_for_view(id)); });
  addDockWidget(factory.area, dock);
  dock->setVisible(factory.visible_by_default);
  if (!views_.count(factory.id)) view_order_ << factory.id;
  views_[factory.id] = {dock, widget};
  if (no_views_) {
    views_menu_->removeAction(no_views_);
    no_views_->deleteLater();
    no_views_ = nullptr;
  }
  // The menu's check follows the dock; checking it opens the view as showView() does (placed as a
  // tab the first time, raised), unchecking closes it.
  auto* toggle = new QAction(factory.title, dock);
  toggle->setCheckable(true);
  toggle->setChecked(factory.visible_by_default);
  toggle->setStatusTip(factory.description);
  dock->setProperty("moescope-placed", factory.visible_by_default);  // the default layout places those
  connect(dock, &QDockWidget::visibilityChanged, toggle, [toggle, dock] { toggle->setChecked(!dock->isHidden()); });
  const QString id = factory.id;
  connect(toggle, &QAction::triggered, this, [this, id, dock](bool on) {
    if (on) showView(id);
    else dock->hide();
  });
  views_menu_->addAction(toggle);
  return dock;
}

QWidget* MainWindow::viewWidget(const QString& id) const {
  const auto it = views_.find(id);
  return it == views_.end() ? nullptr : it->second.widget;
}

QDockWidget* MainWindow::viewDock(const QString& id) const {
  const auto it = views_.find(id);
  return it == views_.end() ? nullptr : it->second.dock;
}

QStringList MainWindow::viewIds() const { return view_order_; }

bool MainWindow::showView(const QString& id) {
  const auto it = views_.find(id);
  if (it == views_.end()) return false;
  QDockWidget* dock = it->second.dock;
  placeFirstTime(dock);
  dock->show();
  dock->raise();
  return true;
}

void MainWindow::openGuide(const QString& page) {
  if (!guide_) {
    guide_ = new ui::GuideWindow(this);
    if (engine_->hasModel()) guide_->setModel(engine_->model().spec, engine_->model().name);
  }
  // The views there are now (one may have been added since the guide was made).
  QMap<QString, QString> titles;
  for (const QString& id : view_order_) titles.insert(id, viewDock(id)->windowTitle());
  guide_->setViews(titles, [this](const QString& id) { return showView(id); });
  if (!page.isEmpty()) guide_->showPage(page);
  spdlog::debug("guide opened at {}", guide_->currentPage().toStdString());
  guide_->show();
  guide_->raise();
  guide_->activateWindow();
}

// A view opened for the first time (not placed by the user or a saved layout) joins a visible view
// of its area as a tab instead of splitting the area again: with every view open the window still
// fits 1024×700.
void MainWindow::placeFirstTime(QDockWidget* dock) {
  if (dock->property("moescope-placed").toBool() || dock->isVisible() || dock->isFloating()) return;
  dock->setProperty("moescope-placed", true);
  for (const QString& id : view_order_) {
    QDockWidget* other = viewDock(id);
    if (other && other != dock && other->isVisible() && !other->isFloating() && dockWidgetArea(other) == dockWidgetArea(dock)) {
      tabifyDockWidget(other, dock);
      return;
    }
  }
}

// ---- conversations ---------------------------------------------------------------------------

void MainWindow::restoreConversations() {
  auto result = store_->load_all();
  conversations_ = std::move(result.conversations);
  spdlog::info("{} conversations restored from {}", conversations_.size(), store_->dir().toStdString());
  if (!result.problems.isEmpty())
    chat_->notices()->show_notice(QStringLiteral("corrupt"), NoticeBar::Level::Warning, result.problems.join(QStringLiteral("\n")));
  if (conversations_.empty()) conversations_.push_back(ui::Conversation::create());
  current_id_ = conversations_.front().id;
  refreshList();
  showCurrent();
}

ui::Conversation* MainWindow::find(const QString& id) {
  for (auto& c : conversations_)
    if (c.id == id) return &c;
  return nullptr;
}

const ui::Conversation* MainWindow::current() const {
  for (const auto& c : conversations_)
    if (c.id == current_id_) return &c;
  return nullptr;
}

void MainWindow::refreshList() { list_->setConversations(conversations_, current_id_); }

void MainWindow::showCurrent(bool replace_trace) {
  const ui::Conversation* c = current();
  if (!c) return;
  chat_->setConversation(*c);
  if (c->id == answering_id_ && engine_->isGenerating()) chat_->setStreamingAnswer(streaming_text_);
  chat_->setGenerating(engine_->isGenerating());
  // The views take the conversation's own trace (read once when it was loaded); after an answer
  // they already hold it, grown segment by segment.
  if (replace_trace) emit feed_->traceReplaced(c->trace);
  setWindowTitle(QStringLiteral("%1 — moescope").arg(c->title));
}

void MainWindow::save(ui::Conversation& c) {
  c.updated = QDateTime::currentDateTimeUtc();
  const QString err = store_->save(c);
  if (!err.isEmpty()) {
    spdlog::error("saving conversation {} failed: {}", c.id.toStdString(), err.toStdString());
    showError(QStringLiteral("save"), tr("Could not save the conversation"), err);
  }
}

void MainWindow::newConversation() {
  // Reuse an untouched empty conversation instead of stacking them up.
  ui::Conversation* cur = find(current_id_);
  if (cur && cur->messages.empty() && cur->title == QLatin1String("New chat")) {
    chat_->input()->setFocus();
    return;
  }
  ui::Conversation c = ui::Conversation::create();
  c.sampling = defaults_;
  current_id_ = c.id;
  conversations_.insert(conversations_.begin(), std::move(c));
  refreshList();
  showCurrent();
  chat_->input()->setFocus();
}

void MainWindow::selectConversation(const QString& id) {
  if (id == current_id_ || !find(id)) return;
  current_id_ = id;
  chat_->setEditing(-1, {});
  refreshList();
  showCurrent();
}

void MainWindow::renameConversation(const QString& id, const QString& title) {
  ui::Conversation* c = find(id);
  if (!c) return;
  c->title = title;
  save(*c);
  refreshList();
  if (id == current_id_) setWindowTitle(QStringLiteral("%1 — moescope").arg(title));
}

void MainWindow::deleteConversation(const QString& id) {
  if (id == answering_id_ && engine_->isGenerating()) stop();
  store_->remove(id);
  std::erase_if(conversations_, [&](const ui::Conversation& c) { return c.id == id; });
  if (conversations_.empty()) {
    ui::Conversation c = ui::Conversation::create();
    c.sampling = defaults_;
    conversations_.push_back(std::move(c));
  }
  if (id == current_id_) current_id_ = conversations_.front().id;
  refreshList();
  showCurrent();
}

void MainWindow::setConversationSettings(const QString& system_prompt, const ui::SamplingSettings& sampling) {
  ui::Conversation* c = find(current_id_);
  if (!c) return;
  c->system_prompt = system_prompt;
  c->sampling = sampling;
  if (!c->messages.empty()) save(*c);
}

void MainWindow::editSettings() {
  const ui::Conversation* c = current();
  if (!c) return;
  ui::ConversationSettingsDialog dialog(c->system_prompt, c->sampling, defaults_, this);
  if (dialog.exec() == QDialog::Accepted) setConversationSettings(dialog.systemPrompt(), dialog.sampling());
}

// ---- chatting ---------------------------------------------------------------------------------

void MainWindow::send(const QString& text, int edit_index) {
  if (engine_->isGenerating() || !engine_->hasModel() || text.trimmed().isEmpty()) return;
  ui::Conversation* c = find(current_id_);
  if (!c) {
    newConversation();
    c = find(current_id_);
  }
  auto title_of = [](const QString& message) {
    QString title = message.simplified();
    if (title.size() > 48) title = title.left(47) + QStringLiteral("…");
    return title;
  };
  // A title taken from the first message follows an edit of that message (a title the user
  // chose stays).
  const bool title_from_first = c->title == QLatin1String("New chat") ||
                                (!c->messages.empty() && c->title == title_of(c->messages.front().content));
  if (edit_index >= 0 && edit_index < int(c->messages.size())) c->messages.resize(size_t(edit_index));
  ui::Message m;
  m.role = QStringLiteral("user");
  m.content = text;
  c->messages.push_back(std::move(m));
  if (title_from_first && c->messages.size() == 1) c->title = title_of(text);
  else if (c->title == QLatin1String("New chat")) c->title = title_of(text);
  save(*c);
  startAnswer(*c);
}

void MainWindow::regenerate() {
  if (engine_->isGenerating() || !engine_->hasModel()) return;
  ui::Conversation* c = find(current_id_);
  if (!c || c->messages.empty()) return;
  if (c->messages.back().role == QLatin1String("assistant")) c->messages.pop_back();
  if (c->messages.empty()) return;
  save(*c);
  startAnswer(*c);
}

void MainWindow::startAnswer(ui::Conversation& c) {
  c.model_dir = engine_->model().dir;
  c.model_name = engine_->model().name;
  answering_id_ = c.id;
  streaming_text_.clear();
  answer_seed_ = c.sampling.random_seed ? QRandomGenerator::global()->generate64() : c.sampling.seed;
  chat_->notices()->remove_notice(QStringLiteral("generate"));
  chat_->notices()->remove_notice(QStringLiteral("context"));
  // The list order follows the last activity.
  const QString id = c.id;  // `c` moves in the partition below
  std::stable_partition(conversations_.begin(), conversations_.end(), [&](const ui::Conversation& x) { return x.id == id; });
  ui::Conversation& moved = *find(answering_id_);
  refreshList();
  if (!engine_->generate(moved.template_messages(), moved.sampling, answer_seed_, intervention_->control())) return;
  chat_->setConversation(moved);
  chat_->setGenerating(true);
  chat_->setStreamingAnswer(QString());
  speed_label_->setText(tr("Reading the prompt…"));
}

void MainWindow::stop() { engine_->stop(); }

void MainWindow::onChunk(const ui::StreamChunk& chunk) {
  streaming_text_ += chunk.text;
  if (answering_id_ == current_id_) chat_->setStreamingAnswer(streaming_text_);
  if (chunk.total_tokens > 0) speed_label_->setText(tr("%1 tokens/s").arg(chunk.tokens_per_second, 0, 'f', 1));
  if (chunk.has_kv) updateContextLabel(chunk.kv.tokens, chunk.kv.capacity);
}

void MainWindow::onFinished(const ui::GenerationSummary& summary) {
  ui::Conversation* c = find(answering_id_);
  if (c) {
    ui::Message m;
    m.role = QStringLiteral("assistant");
    m.content = summary.text;
    m.tokens = summary.generated_tokens;
    m.tokens_per_second = summary.tokens_per_second;
    m.stop_reason = summary.stop_reason;
    c->messages.push_back(std::move(m));
    c->trace = summary.trace;
    save(*c);
  }
  chat_->setGenerating(false);
  if (c && c->id == current_id_) showCurrent(/*replace_trace=*/false);
  speed_label_->setText(tr("%1 tokens/s").arg(summary.tokens_per_second, 0, 'f', 1) +
                        (engine_->isRemote() && summary.prefill_seconds > 0
                             ? tr(" · first token after %1 s").arg(summary.prefill_seconds, 0, 'f', 2)
                             : QString()));
  updateContextLabel(summary.kv.tokens, summary.kv.capacity);
  if (summary.used_fallback) showFallbackNotice(summary.fallback_reason);
  if (!summary.notice.isEmpty()) {
    spdlog::warn("{}", summary.notice.toStdString());
    chat_->notices()->show_notice(QStringLiteral("routing"), NoticeBar::Level::Warning, summary.notice.toHtmlEscaped());
  } else {
    chat_->notices()->remove_notice(QStringLiteral("routing"));
  }
  if (!summary.error.isEmpty())
    showError(QStringLiteral("generate"), tr("The answer ended early (what arrived is kept)"), summary.error);
  if (summary.context_full)
    onContextOverflow(int(summary.kv.tokens), int(summary.kv.capacity), -2);
  answering_id_.clear();
  emit answerFinished();
}

void MainWindow::onFailed(const QString& message) {
  chat_->setGenerating(false);
  answering_id_.clear();
  showCurrent();
  speed_label_->clear();
  showError(QStringLiteral("generate"), tr("The answer failed"), message);
  emit answerFailed(message);
}

void MainWindow::onContextOverflow(int prompt_tokens, int context, int drop) {
  chat_->setGenerating(false);
  const QString id = answering_id_.isEmpty() ? current_id_ : answering_id_;
  answering_id_.clear();
  showCurrent();
  QString text;
  if (drop == -2)
    text = tr("The answer stopped because the context is full (%1 tokens). Start a new chat, or drop the oldest turns to continue.").arg(context);
  else
    text = tr("This conversation (%1 tokens) no longer fits the model's context of %2 tokens.").arg(prompt_tokens).arg(context);
  QList<NoticeBar::Action> actions;
  actions.append({tr("New chat"), [this, id] {
                    // Carry the unanswered question over to the new chat.
                    ui::Conversation* c = find(id);
                    QString pending;
                    if (c && !c->messages.empty() && c->messages.back().role == QLatin1String("user")) {
                      pending = c->messages.back().content;
                      c->messages.pop_back();
                      save(*c);
                    }
                    newConversation();
                    chat_->input()->setPlainText(pending);
                  }});
  if (drop != -1)
    actions.append({tr("Drop oldest turns"), [this, drop] { dropOldestMessages(drop > 0 ? drop : 2); }});
  chat_->notices()->show_notice(QStringLiteral("context"), NoticeBar::Level::Warning, text, actions);
  emit answerFailed(text);
}

void MainWindow::dropOldestMessages(int n) {
  ui::Conversation* c = find(current_id_);
  if (!c || n <= 0) return;
  n = std::min(n, int(c->messages.size()) - 1);
  if (n <= 0) return;
  c->messages.erase(c->messages.begin(), c->messages.begin() + n);
  c->trace.reset();
  save(*c);
  if (c->messages.back().role == QLatin1String("user"))
    startAnswer(*c);
  else
    showCurrent();
}

// ---- model -----------------------------------------------------------------------------------

void MainWindow::openModel(const QString& dir, std::optional<WeightsMode> weights) {
  if (engine_->isGenerating()) {
    showError(QStringLiteral("load"), tr("Stop the answer first"), tr("A model cannot be changed while it answers."));
    return;
  }
  chat_->notices()->remove_notice(QStringLiteral("load"));
  chat_->notices()->remove_notice(QStringLiteral("fallback"));
  const QString backend = !options_.backend.isEmpty() ? options_.backend : settings_->backend();
  const WeightsMode mode = weights ? *weights
                                   : settings_->recentWeights(dir) == QLatin1String("q8_0") ? WeightsMode::Q8_0
                                                                                           : WeightsMode::AsStored;
  spdlog::info("opening model {} (weights {})", dir.toStdString(), weights_mode_name(mode));
  chat_->setLoading(QFileInfo(dir).fileName());
  engine_->loadModel(dir, backend, settings_->threads(), mode);
}

// After a failed or cancelled load: the model the engine still holds, if any, stays usable.
void MainWindow::restoreReadyState() {
  if (!engine_->hasModel()) {
    chat_->setModelReady(false, tr("No model loaded — use File ▸ Open model…"));
    return;
  }
  const ui::ModelInfo& info = engine_->model();
  chat_->setModelReady(true, tr("%1 · %2 · context %3 tokens").arg(info.name, info.backend).arg(info.context_length));
}

void MainWindow::onLoaded(const ui::ModelInfo& info) {
  defaults_ = ui::sampling_defaults(info.generation_config_json);
  // Conversations that never ran keep pace with the model's defaults.
  for (auto& c : conversations_)
    if (c.messages.empty()) c.sampling = defaults_;
  // The file or folder name and what its weights are ("BF16", "Q4_K_M", "Q8_0 (quantised on load)").
  const QString shown = info.dir.isEmpty() ? info.name : QFileInfo(info.dir).fileName();
  model_label_->setText(info.weights.isEmpty() ? tr("Model: %1").arg(shown) : tr("Model: %1 · %2").arg(shown, info.weights));
  model_label_->setToolTip(tr("%1\n%2, %3 layers, %4 experts, top-%5").arg(info.server.isEmpty() ? info.dir : info.server, info.architecture).arg(info.n_layers).arg(info.n_experts).arg(info.top_k) +
                           (info.shape_source.isEmpty() ? QString() : tr("\nlayers and experts from %1").arg(info.shape_source)));
  backend_label_->setText(info.backend);
  speed_label_->clear();
  updateContextLabel(0, info.context_length);
  if (guide_) guide_->setModel(info.spec, info.name);
  if (!info.dir.isEmpty()) {
    settings_->addRecentModel(info.dir, info.weights, QString::fromLatin1(weights_mode_name(info.weights_mode)));
    rebuildRecentMenu();
  }
  restoreReadyState();
  if (info.template_fallback) showFallbackNotice(info.template_problem);
  // The bundled teaching model knows a few narrow topics: the empty chat offers prompts it was
  // trained on, and says what it is.
  const bool bundled = !info.dir.isEmpty() && QFileInfo(info.dir).canonicalFilePath() ==
                                                  QFileInfo(bundled_model_dir()).canonicalFilePath();
  if (bundled)
    chat_->setExamples(tr("moescope-tiny is a 1.8M-parameter teaching model with DeepSeek-V3's architecture. It "
                          "knows two- and three-digit sums and differences, a few MoE concepts, tiny Python "
                          "functions, English words in French and string puzzles — nothing else. Try:"),
                       {QStringLiteral("What is 23+58?"), QStringLiteral("What is 791-126?"),
                        QStringLiteral("What is an expert?"),
                        QStringLiteral("Write a Python function f that returns the sum of a and b."),
                        QStringLiteral("Comment dit-on « cat » en français ?"), QStringLiteral("Reverse the word 'apple'.")});
  else
    chat_->setExamples({}, {});
  emit modelReady();
}

void MainWindow::showFallbackNotice(const QString& reason) {
  chat_->notices()->show_notice(
      QStringLiteral("fallback"), NoticeBar::Level::Warning,
      tr("This model's chat template is not used (%1). moescope writes the conversation in a plain "
         "“role: text” format instead, so answers may be worse than with the model's own format.")
          .arg(reason.isEmpty() ? tr("unknown reason") : reason));
}

void MainWindow::showError(const QString& id, const QString& title, const QString& message,
                           const QList<ui::NoticeBar::Action>& actions) {
  spdlog::error("{}: {}", title.toStdString(), message.toStdString());
  chat_->notices()->show_notice(id, NoticeBar::Level::Error,
                                QStringLiteral("<b>%1</b><br>%2").arg(title.toHtmlEscaped(), message.toHtmlEscaped()), actions);
}

void MainWindow::openModelDialog() {
  const QString start = engine_->hasModel() ? QFileInfo(engine_->model().dir).path() : QString();
  // One dialog for both kinds: a checkpoint directory is opened by choosing its config.json, a GGUF
  // model by choosing the file (.gguf, the first part of a split set, or an Ollama blob).
  // Qt's own dialog (not the platform's), which takes the Q8_0 check box under its file list.
  QFileDialog dialog(this, tr("Open a model: a checkpoint's config.json or a GGUF file"), start,
                     tr("Models (config.json *.gguf);;GGUF files (*.gguf);;Hugging Face checkpoints (config.json);;All files (*)"));
  dialog.setOption(QFileDialog::DontUseNativeDialog);
  dialog.setFileMode(QFileDialog::ExistingFile);
  auto* q8 = new QCheckBox(tr("Quantise the weights to Q8_0 on load (uses about half the memory of BF16)"), &dialog);
  q8->setObjectName(QStringLiteral("quantiseOnLoad"));
  q8->setToolTip(tr("F32, BF16 and F16 projections and experts become Q8_0 in memory as the model loads; the file "
                    "is not changed. A GGUF file that is already quantised stays as it is."));
  q8->setChecked(settings_->quantiseOnLoad());
  if (auto* grid = qobject_cast<QGridLayout*>(dialog.layout())) grid->addWidget(q8, grid->rowCount(), 0, 1, grid->columnCount());
  else dialog.layout()->addWidget(q8);
  if (dialog.exec() != QDialog::Accepted || dialog.selectedFiles().isEmpty()) return;
  settings_->setQuantiseOnLoad(q8->isChecked());
  const QString file = dialog.selectedFiles().front();
  const QFileInfo fi(file);
  openModel(fi.fileName() == QStringLiteral("config.json") ? fi.absolutePath() : file,
            q8->isChecked() ? WeightsMode::Q8_0 : WeightsMode::AsStored);
}

void MainWindow::connectToServer(const ui::RemoteServer& server) {
  if (engine_->isGenerating()) {
    showError(QStringLiteral("load"), tr("Stop the answer first"), tr("A model cannot be changed while it answers."));
    return;
  }
  chat_->notices()->remove_notice(QStringLiteral("load"));
  chat_->notices()->remove_notice(QStringLiteral("fallback"));
  chat_->notices()->remove_notice(QStringLiteral("routing"));
  spdlog::info("connecting to the server {}", QUrl(server.url).toString(QUrl::RemoveUserInfo).toStdString());  // never the key
  chat_->setLoading(server.model.isEmpty() ? server.url : server.model);
  engine_->connectServer(server);
}

void MainWindow::openServerDialog() {
  ui::RemoteServer initial;
  initial.url = settings_->serverUrl();
  initial.model = settings_->serverModel();
  initial.config = settings_->serverConfig();
  initial.timeout_ms = settings_->serverTimeoutMs();
  initial.api_key = !server_key_.isEmpty() ? server_key_ : settings_->serverKey();
  ui::ServerDialog dialog(engine_, initial, settings_->rememberServerKey(), settings_->fileName(), this);
  if (dialog.exec() != QDialog::Accepted) return;
  const ui::RemoteServer s = dialog.server();
  server_key_ = s.api_key;  // for this session in any case
  settings_->saveServer(s.url, s.model, s.config, s.timeout_ms, dialog.rememberKey(), s.api_key);
  connectToServer(s);
}

bool MainWindow::openRoutingDump(const QString& path, const QString& config, const QString& token_ids) {
  if (!dump_panel_) {
    dump_dock_ = new QDockWidget(tr("Routing dump"), this);
    dump_dock_->setObjectName(QStringLiteral("dock-routing-dump"));
    dump_panel_ = new DumpPanel(traces_, dump_dock_);
    dump_dock_->setWidget(dump_panel_);
    addDockWidget(Qt::RightDockWidgetArea, dump_dock_);
  }
  dump_dock_->show();
  dump_dock_->raise();
  QString error;
  const bool ok = dump_panel_->openDump(path, config, token_ids, &error);
  if (!ok) showError(QStringLiteral("dump"), tr("Could not open the routing dump %1").arg(QFileInfo(path).fileName()), error);
  else chat_->notices()->remove_notice(QStringLiteral("dump"));
  return ok;
}

void MainWindow::openRoutingDumpDialog() {
  const QString path = QFileDialog::getOpenFileName(
      this, tr("Open a routing dump"), QString(),
      tr("Routing dumps (*.jsonl *.npy *.safetensors *.json);;JSON lines of server responses (*.jsonl);;"
         "numpy arrays (*.npy);;safetensors (*.safetensors);;Routing traces (*.json);;All files (*)"));
  if (path.isEmpty()) return;
  // Token ids beside a .npy dump: <name>.token_ids.npy, <name>_token_ids.npy or token_ids.npy.
  QString ids;
  const QFileInfo fi(path);
  if (fi.suffix() == QLatin1String("npy"))
    for (const QString& name : {fi.completeBaseName() + QStringLiteral(".token_ids.npy"), fi.completeBaseName() + QStringLiteral("_token_ids.npy"),
                                QStringLiteral("token_ids.npy")})
      if (const QString p = fi.dir().filePath(name); p != path && QFileInfo::exists(p)) {
        ids = p;
        break;
      }
  // The loaded model's config when the dump is of it; else as the file says.
  QString config;
  if (engine_->hasModel() && !engine_->model().dir.isEmpty()) config = engine_->model().dir;
  if (!openRoutingDump(path, config, ids) && !config.isEmpty()) openRoutingDump(path, {}, ids);
}

void MainWindow::chooseBackend() {
  const QStringList kinds = {QStringLiteral("auto"), QStringLiteral("cpu"), QStringLiteral("cuda")};
  bool ok = false;
  const QString kind = QInputDialog::getItem(this, tr("Backend"),
                                             tr("Where the model runs (auto: CUDA when a GPU is usable). Applies when a model is opened.\n"
                                                "A model on a server: File ▸ Connect to a server…"),
                                             kinds, int(std::max<qsizetype>(0, kinds.indexOf(settings_->backend()))), false, &ok);
  if (!ok) return;
  settings_->setBackend(kind);
  options_.backend.clear();
  if (engine_->hasModel() && !engine_->isRemote()) openModel(engine_->model().dir, engine_->model().weights_mode);
}

// ---- export ----------------------------------------------------------------------------------

QString MainWindow::exportMarkdown() const {
  const ui::Conversation* c = current();
  return c ? c->to_markdown() : QString();
}

QString MainWindow::exportJson() const {
  const ui::Conversation* c = current();
  return c ? QString::fromStdString(c->to_json().dump(2)) : QString();
}

void MainWindow::exportTo(bool markdown) {
  const ui::Conversation* c = current();
  if (!c) return;
  QString name = c->title;
  name.replace(QRegularExpression(QStringLiteral("[^A-Za-z0-9 _-]")), QStringLiteral("_"));
  const QString path = QFileDialog::getSaveFileName(this, tr("Export conversation"), name + (markdown ? QStringLiteral(".md") : QStringLiteral(".json")),
                                                    markdown ? tr("Markdown (*.md)") : tr("JSON (*.json)"));
  if (path.isEmpty()) return;
  QSaveFile f(path);
  const QByteArray bytes = (markdown ? exportMarkdown() : exportJson()).toUtf8();
  if (!f.open(QIODevice::WriteOnly) || f.write(bytes) != bytes.size() || !f.commit())
    showError(QStringLiteral("export"), tr("Could not export to %1").arg(path), f.errorString());
}

// ---- shutdown --------------------------------------------------------------------------------

void MainWindow::saveWindowState() { settings_->saveWindow(saveGeometry(), saveState(), splitter_->saveState()); }

void MainWindow::closeEvent(QCloseEvent* e) {
  engine_->stop();
  saveWindowState();
  QMainWindow::closeEvent(e);
}

}  // namespace moescope::desktop
