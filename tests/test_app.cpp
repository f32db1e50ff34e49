// The desktop app, driven through its real main window, engine worker thread and conversation
// store on the chat-tiny model (tests/data/models/chat-tiny). Offscreen; waits with QTRY_*.
#include <QAbstractButton>
#include <QAbstractScrollArea>
#include <QAbstractSpinBox>
#include <QAction>
#include <QApplication>
#include <QCheckBox>
#include <QComboBox>
#include <QDir>
#include <QDirIterator>
#include <QDockWidget>
#include <QFile>
#include <QFileDialog>
#include <QLabel>
#include <QListWidget>
#include <QMenu>
#include <QPlainTextEdit>
#include <QPushButton>
#include <QSignalSpy>
#include <QSslServer>
#include <QSslSocket>
#include <QStandardPaths>
#include <QTabBar>
#include <QTextBlock>
#include <QTextBrowser>
#include <QTextDocument>
#include <QTemporaryDir>
#include <QTest>
#include <QTimer>
#include <filesystem>
#include <memory>
#include <qcustomplot.h>
#include <tuple>

#include <spdlog/spdlog.h>

#include "app_settings.h"
#include "dump_panel.h"
#include "logging.h"
#include "main_window.h"
#include "moescope/routing_trace.h"
#include "ui/chat_panel.h"
#include "ui/conversation.h"
#include "ui/conversation_list.h"
#include "ui/engine_feed.h"
#include "ui/engine_host.h"
#include "ui/experiments/register_experiments.h"
#include "ui/generation_defaults.h"
#include "ui/guide.h"
#include "ui/message_widget.h"
#include "ui/notice_bar.h"
#include "ui/thinking.h"
#include "ui/view_registry.h"
#include "remote_test_util.h"
#include "ui/views/expert_colouring.h"
#include "ui/views/register_views.h"
#include "ui/views/trace_model.h"

using moescope::desktop::AppOptions;
using moescope::desktop::MainWindow;
using moescope::ui::GenerationSummary;
using moescope::ui::SamplingSettings;

namespace {

constexpr int kTimeout = 60000;
const QString kModel = QStringLiteral(MOESCOPE_TEST_DATA "/models/chat-tiny");

SamplingSettings sampling(double temperature, quint64 seed, int max_tokens) {
  SamplingSettings s;
  s.temperature = temperature;
  s.top_p = 1.0;
  s.top_k = 0;
  s.seed = seed;
  s.random_seed = false;
  s.max_tokens = max_tokens;
  return s;
}

// Visible controls of `root` that an ancestor cuts off (outside scroll areas) or that are squeezed
// below their minimum size hint, as "class 'text' (reason)".
QStringList clipped_controls(QWidget* root) {
  QStringList out;
  const auto widgets = root->findChildren<QWidget*>();
  for (QWidget* wd : widgets) {
    if (!wd->isVisibleTo(root) || !wd->isVisible()) continue;
    const bool control = qobject_cast<QAbstractButton*>(wd) || qobject_cast<QComboBox*>(wd) ||
                         qobject_cast<QAbstractSpinBox*>(wd) || (qobject_cast<QLabel*>(wd) && !qobject_cast<QLabel*>(wd)->text().isEmpty());
    if (!control || wd->width() <= 0) continue;
    // Qt's own dock title buttons are sized by the style; an elided label keeps its text in the tooltip.
    if (QByteArray(wd->metaObject()->className()) == "QDockWidgetTitleButton") continue;
    bool behind = false;  // in a dock that is a tab in the background
    for (QWidget* a = wd->parentWidget(); a && !behind; a = a->parentWidget())
      behind = qobject_cast<QDockWidget*>(a) && a->visibleRegion().isEmpty();
    if (behind) continue;
    if (auto* l = qobject_cast<QLabel*>(wd); l && l->text().endsWith(QChar(0x2026)) && !l->toolTip().isEmpty()) continue;
    bool in_scroll = false;  // scrolled content may lie outside its viewport: that is what scrolling is
    for (QWidget* a = wd->parentWidget(); a && !in_scroll; a = a->parentWidget())
      in_scroll = qobject_cast<QAbstractScrollArea*>(a) != nullptr;
    for (QWidget* a = wd->parentWidget(); a && a != root->parentWidget(); a = a->parentWidget()) {
      if (qobject_cast<QTabBar*>(wd->parentWidget())) in_scroll = true;  // a tab bar scrolls its tabs
      const QRect in_a = QRect(wd->mapTo(a, QPoint(0, 0)), wd->size());
      const QRect shown = in_a.intersected(a->rect());
      if (shown.width() < in_a.width() - 1 || shown.height() < in_a.height() - 1) {
        if (!in_scroll) {
          const QString text = qobject_cast<QAbstractButton*>(wd)  ? qobject_cast<QAbstractButton*>(wd)->text()
                               : qobject_cast<QLabel*>(wd)          ? qobject_cast<QLabel*>(wd)->text().left(40)
                                                                    : wd->objectName();
          out << QStringLiteral("%1 '%2' cut by %3 %4").arg(wd->metaObject()->className(), text, a->metaObject()->className(),
                                                            a->objectName());
        }
        break;
      }
    }
    if (in_scroll) continue;
    const QSize min = wd->minimumSizeHint();
    const auto* label = qobject_cast<QLabel*>(wd);
    const bool wraps = label && label->wordWrap();
    if (!wraps && min.isValid() && (wd->width() < min.width() - 1 || wd->height() < min.height() - 1)) {
      const QString text = qobject_cast<QAbstractButton*>(wd) ? qobject_cast<QAbstractButton*>(wd)->text()
                           : label                            ? label->text().left(40)
                                                              : wd->objectName();
      out << QStringLiteral("%1 '%2' squeezed to %3×%4 (needs %5×%6)").arg(wd->metaObject()->className(), text).arg(wd->width())
                 .arg(wd->height()).arg(min.width()).arg(min.height());
    }
    if (wraps && label->heightForWidth(label->width()) > label->height() + 1)
      out << QStringLiteral("QLabel '%1' wrapped text cut (%2 px of %3)").arg(label->text().left(40)).arg(label->height())
                 .arg(label->heightForWidth(label->width()));
  }
  return out;
}

}  // namespace

class TestApp : public QObject {
  Q_OBJECT

private:
  QTemporaryDir* dir_ = nullptr;
  moescope::ui::ViewRegistry views_;  // what the windows of this test build (some tests add a view)

  std::unique_ptr<MainWindow> open(const QString& model = kModel, bool expect_ready = true) {
    AppOptions o;
    o.model_dir = model;
    o.backend = QStringLiteral("cpu");
    o.data_dir = dir_->path();
    o.settings_file = dir_->filePath(QStringLiteral("settings.ini"));
    auto w = std::make_unique<MainWindow>(o, views_);
    QSignalSpy ready(w.get(), &MainWindow::modelReady);
    QSignalSpy failed(w.get(), &MainWindow::modelFailed);
    w->show();
    if (!QTest::qWaitFor([&] { return ready.count() + failed.count() > 0; }, kTimeout)) return w;
    if (expect_ready && ready.isEmpty()) spdlog::warn("model failed: {}", failed.at(0).at(0).toString().toStdString());
    return w;
  }

  // A window's options that load no model at start (this test's folders).
  AppOptions withoutModel() const {
    AppOptions o;
    o.load_model = false;
    o.data_dir = dir_->path();
    o.settings_file = dir_->filePath(QStringLiteral("settings.ini"));
    return o;
  }

  // Sends and waits for the answer; returns its summary.
  static GenerationSummary ask(MainWindow& w, const QString& text, int edit = -1) {
    QSignalSpy done(w.engine(), &moescope::ui::EngineHost::generationFinished);
    w.send(text, edit);
    if (!QTest::qWaitFor([&] { return done.count() > 0; }, kTimeout)) return {};
    return done.at(0).at(0).value<GenerationSummary>();
  }
  static GenerationSummary regenerate(MainWindow& w) {
    QSignalSpy done(w.engine(), &moescope::ui::EngineHost::generationFinished);
    w.regenerate();
    if (!QTest::qWaitFor([&] { return done.count() > 0; }, kTimeout)) return {};
    return done.at(0).at(0).value<GenerationSummary>();
  }

private slots:
  void initTestCase() {
    QStandardPaths::setTestModeEnabled(true);
    QVERIFY2(QFile::exists(kModel + QStringLiteral("/tokenizer.json")), "run tests/tools/gen_chat_test_model.py");
  }
  void init() {
    dir_ = new QTemporaryDir;
    QVERIFY(dir_->isValid());
  }
  void cleanup() {
    views_ = {};  // each test starts from a bare window unless it registers views itself
    delete dir_;
    dir_ = nullptr;
  }

  void loadsModelAndShowsStatus() {
    auto w = open();
    QVERIFY(w->engine()->hasModel());
    const QString status = w->statusText();
    QVERIFY2(status.contains(QStringLiteral("chat-tiny")), qPrintable(status));
    QVERIFY2(status.contains(QStringLiteral("CPU")), qPrintable(status));
    QVERIFY2(status.contains(QStringLiteral("Context 0 / 2048")), qPrintable(status));
    QVERIFY(w->chat()->sendButton()->isEnabled());
    // Defaults come from the checkpoint's generation_config.json.
    QCOMPARE(w->modelDefaults().temperature, 0.7);
    QCOMPARE(w->modelDefaults().top_k, 40);
    QCOMPARE(w->modelDefaults().max_tokens, 200);
    QCOMPARE(w->current()->sampling.max_tokens, 200);
    QVERIFY(!w->chat()->notices()->has_notice(QStringLiteral("fallback")));
  }

  void promptStreamsIntoView() {
    auto w = open();
    w->setConversationSettings({}, sampling(0.8, 7, 1500));
    QSignalSpy chunks(w->engine(), &moescope::ui::EngineHost::streamed);
    QSignalSpy routes(w->feed(), &moescope::ui::EngineFeed::chunk);
    QSignalSpy done(w.get(), &MainWindow::answerFinished);
    QElapsedTimer timer;
    timer.start();
    w->chat()->input()->setPlainText(QStringLiteral("Tell me a story"));
    QTest::mouseClick(w->chat()->sendButton(), Qt::LeftButton);
    // Text appears in the view while the answer is still being written.
    QTRY_VERIFY_WITH_TIMEOUT(chunks.count() > 0, kTimeout);
    QVERIFY(w->engine()->isGenerating() || done.count() > 0);
    QVERIFY(w->chat()->lastAnswer() != nullptr);
    QTRY_VERIFY_WITH_TIMEOUT(done.count() == 1, kTimeout);
    const qint64 ms = timer.elapsed();
    // Coalesced: at most one flush per timer tick (+ the final one), however fast the engine.
    QVERIFY2(chunks.count() <= ms / moescope::ui::EngineHost::kFlushIntervalMs + 3,
             qPrintable(QStringLiteral("%1 chunks in %2 ms").arg(chunks.count()).arg(ms)));
    QString streamed;
    int routed = 0;
    for (const auto& args : chunks) streamed += args.at(0).value<moescope::ui::StreamChunk>().text;
    for (const auto& args : routes)
      if (const auto& seg = args.at(0).value<moescope::ui::StreamChunk>().trace) routed += int(seg->size());
    const auto& msgs = w->current()->messages;
    QCOMPARE(int(msgs.size()), 2);
    QCOMPARE(msgs[1].role, QStringLiteral("assistant"));
    QVERIFY(!msgs[1].content.isEmpty());
    QCOMPARE(streamed, msgs[1].content);
    QCOMPARE(w->chat()->lastAnswer()->rawContent(), msgs[1].content);
    // Prefill and decode tokens' routes crossed as trace segments (the last sampled token is not fed).
    QVERIFY2(routed >= msgs[1].tokens, qPrintable(QString::number(routed)));
    QVERIFY(w->statusText().contains(QStringLiteral("tokens/s")));
  }

  void stopEndsTheAnswer() {
    auto w = open();
    w->setConversationSettings({}, sampling(0.8, 3, 1900));
    QSignalSpy chunks(w->engine(), &moescope::ui::EngineHost::streamed);
    QSignalSpy finished(w->engine(), &moescope::ui::EngineHost::generationFinished);
    w->send(QStringLiteral("Talk for a long time"));
    QTRY_VERIFY_WITH_TIMEOUT(chunks.count() > 0 || finished.count() > 0, kTimeout);
    QVERIFY2(finished.isEmpty(), "the answer ended before it could be stopped");
    QVERIFY(w->chat()->stopButton()->isEnabled());
    QTest::mouseClick(w->chat()->stopButton(), Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(finished.count() == 1, kTimeout);
    const auto s = finished.at(0).at(0).value<GenerationSummary>();
    QVERIFY(s.cancelled);
    QVERIFY2(s.generated_tokens < 1900, qPrintable(QString::number(s.generated_tokens)));
    QCOMPARE(w->current()->messages.back().stop_reason, QStringLiteral("cancelled"));
    QVERIFY(!w->engine()->isGenerating());
    QVERIFY(w->chat()->sendButton()->isEnabled());
    QVERIFY(!w->chat()->stopButton()->isEnabled());
  }

  void regenerateReplacesTheAnswer() {
    auto w = open();
    w->setConversationSettings({}, sampling(1.0, 1, 40));
    ask(*w, QStringLiteral("Hello"));
    QCOMPARE(int(w->current()->messages.size()), 2);
    const QString first = w->current()->messages[1].content;
    w->setConversationSettings({}, sampling(1.0, 2, 40));
    const auto s = regenerate(*w);
    QCOMPARE(int(w->current()->messages.size()), 2);
    QVERIFY(w->current()->messages[1].content != first);
    QCOMPARE(w->current()->messages[1].content, s.text);
    QVERIFY2(s.reused_tokens > 0, "regenerate reuses the cached prompt");
    // The regenerate button is offered on the last answer only.
    auto* last = w->chat()->lastAnswer();
    QVERIFY(last->findChild<QWidget*>(QStringLiteral("regenerateButton"))->isVisibleTo(last));
  }

  void editAndResendTruncates() {
    auto w = open();
    w->setConversationSettings({}, sampling(0.0, 0, 20));
    ask(*w, QStringLiteral("First question"));
    ask(*w, QStringLiteral("Second question"));
    QCOMPARE(int(w->current()->messages.size()), 4);
    // Edit through the message's Edit button: the input takes the text, send replaces from there.
    auto* first = w->chat()->messageWidgets().at(2);
    QVERIFY(first->isUser());
    QTest::mouseClick(first->findChild<QWidget*>(QStringLiteral("editButton")), Qt::LeftButton);
    QCOMPARE(w->chat()->editingIndex(), 2);
    QCOMPARE(w->chat()->input()->toPlainText(), QStringLiteral("Second question"));
    w->chat()->input()->setPlainText(QStringLiteral("Second question, edited"));
    QSignalSpy done(w->engine(), &moescope::ui::EngineHost::generationFinished);
    QTest::mouseClick(w->chat()->sendButton(), Qt::LeftButton);
    QTRY_VERIFY_WITH_TIMEOUT(done.count() == 1, kTimeout);
    const auto s = done.at(0).at(0).value<GenerationSummary>();
    const auto& msgs = w->current()->messages;
    QCOMPARE(int(msgs.size()), 4);
    QCOMPARE(msgs[0].content, QStringLiteral("First question"));
    QCOMPARE(msgs[2].content, QStringLiteral("Second question, edited"));
    QCOMPARE(msgs[3].role, QStringLiteral("assistant"));
    QVERIFY2(s.reused_tokens > 0, "the KV cache prefix is reused");
    // Editing the very first message keeps nothing after it.
    ask(*w, QStringLiteral("Replaced"), 0);
    QCOMPARE(int(w->current()->messages.size()), 2);
    QCOMPARE(w->current()->messages[0].content, QStringLiteral("Replaced"));
    // The title came from the first message, so it follows the edit; a title the user gave stays.
    QCOMPARE(w->current()->title, QStringLiteral("Replaced"));
    w->renameConversation(w->current()->id, QStringLiteral("Mine"));
    ask(*w, QStringLiteral("Replaced again"), 0);
    QCOMPARE(w->current()->title, QStringLiteral("Mine"));
  }

  // The bundled teaching model's empty chat offers prompts it was trained on; one click asks one.
  // Other models show none.
  void bundledModelOffersExamplePrompts() {
    {
      auto w = open();
      for (auto* b : w->chat()->findChildren<QPushButton*>(QStringLiteral("examplePrompt"))) QVERIFY(!b->isVisibleTo(w.get()));
    }
    auto w = open(QStringLiteral(MOESCOPE_SOURCE_DIR "/resources/models/moescope-tiny"));
    QVERIFY(w->engine()->hasModel());
    const auto buttons = w->chat()->findChildren<QPushButton*>(QStringLiteral("examplePrompt"));
    QVERIFY(buttons.size() >= 5);
    QVERIFY(buttons.front()->isVisibleTo(w.get()));
    QCOMPARE(buttons.front()->text(), QStringLiteral("What is 23+58?"));
    w->setConversationSettings({}, sampling(0.0, 0, 8));  // greedy: the answer is known
    QSignalSpy done(w.get(), &MainWindow::answerFinished);
    buttons.front()->click();
    QTRY_VERIFY_WITH_TIMEOUT(done.count() == 1, kTimeout);
    QCOMPARE(w->current()->messages.front().content, QStringLiteral("What is 23+58?"));
    QCOMPARE(w->current()->messages.back().content.trimmed(), QStringLiteral("81"));
  }

  // The expert colouring colours the window's own chat, handed to it by the window (no search).
  void expertColouringColoursTheChat() {
    moescope::ui::register_views(views_);
    auto w = open();
    w->setConversationSettings({}, sampling(0.0, 0, 6));
    ask(*w, QStringLiteral("Colour me"));
    auto* view = qobject_cast<moescope::ui::ExpertColouringView*>(w->viewWidget(QStringLiteral("colouring")));
    QVERIFY(view);
    view->setChatColouring(true);
    QVERIFY(view->applyToChat() > 0);
  }

  // After a restart the views show the restored conversation at once (no click needed), and its
  // trace is the one saved.
  void restoredConversationReachesTheViews() {
    {
      auto w = open();
      w->setConversationSettings({}, sampling(0.0, 0, 8));
      ask(*w, QStringLiteral("Remember my routing"));
      QVERIFY(w->traces()->trace().size() > 0);
      w->close();
    }
    auto w = open();
    QVERIFY(w->engine()->hasModel());
    QVERIFY(w->current() && w->current()->trace);
    QVERIFY(w->traces()->trace().size() > 0);
    QVERIFY(w->traces()->trace() == *w->current()->trace);
    QCOMPARE(w->traces()->stats(moescope::ui::StatsWindow::Conversation).tokens(), int64_t(w->current()->trace->size()));
  }

  // Conversation files with sampling numbers out of range (a negative temperature) or not finite
  // (1e999, which the JSON parser itself refuses) are set aside with the reason; the rest open.
  void nonFiniteSettingsInAConversationFile() {
    QDir().mkpath(dir_->filePath(QStringLiteral("conversations")));
    for (const char* name : {"cold", "hot"}) {
      QFile bad(dir_->filePath(QStringLiteral("conversations/%1.json").arg(QLatin1String(name))));
      QVERIFY(bad.open(QIODevice::WriteOnly));
      bad.write(QStringLiteral("{\"version\": 1, \"id\": \"%1\", \"title\": \"T\", \"sampling\": {\"temperature\": %2}, "
                               "\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}")
                    .arg(QLatin1String(name), QLatin1String(name == std::string("cold") ? "-3" : "1e999"))
                    .toUtf8());
    }
    auto w = open();
    QVERIFY(w->chat()->notices()->has_notice(QStringLiteral("corrupt")));
    const QString text = w->chat()->notices()->notice_text(QStringLiteral("corrupt"));
    QVERIFY2(text.contains(QStringLiteral("cold.json")) && text.contains(QStringLiteral("'temperature' must be a finite number")),
             qPrintable(text));
    QVERIFY2(text.contains(QStringLiteral("hot.json")), qPrintable(text));
    for (const auto& c : w->conversations()) QVERIFY(c.id != QStringLiteral("hot") && c.id != QStringLiteral("cold"));
  }

  void samplingSettingsChangeTheOutput() {
    auto w = open();
    w->setConversationSettings({}, sampling(0.0, 1, 30));
    const QString greedy1 = ask(*w, QStringLiteral("Same prompt")).text;
    w->setConversationSettings({}, sampling(0.0, 99, 30));
    const QString greedy2 = regenerate(*w).text;
    QCOMPARE(greedy1, greedy2);  // temperature 0 is deterministic whatever the seed
    w->setConversationSettings({}, sampling(1.2, 5, 30));
    const QString a = regenerate(*w).text;
    const QString a2 = regenerate(*w).text;
    QCOMPARE(a, a2);  // same seed, same answer
    w->setConversationSettings({}, sampling(1.2, 6, 30));
    const QString b = regenerate(*w).text;
    QVERIFY(a != b);
    QVERIFY(a != greedy1);
    auto s = sampling(0.0, 1, 5);
    w->setConversationSettings(QStringLiteral("You are terse."), s);
    QVERIFY(regenerate(*w).generated_tokens <= 5);
    QCOMPARE(w->current()->system_prompt, QStringLiteral("You are terse."));
  }

  void persistenceRoundTrip() {
    QString id;
    QString answer;
    {
      auto w = open();
      w->setConversationSettings(QStringLiteral("Be kind."), sampling(0.0, 0, 12));
      answer = ask(*w, QStringLiteral("Remember me")).text;
      id = w->current()->id;
      w->renameConversation(id, QStringLiteral("Kept"));
      w->newConversation();
      ask(*w, QStringLiteral("Another one"));
      w->close();
    }
    QVERIFY(QFile::exists(dir_->filePath(QStringLiteral("conversations/") + id + QStringLiteral(".json"))));
    auto w = open();
    QCOMPARE(int(w->conversations().size()), 2);
    QCOMPARE(w->conversationList()->list()->count(), 2);
    w->selectConversation(id);
    const auto* c = w->current();
    QCOMPARE(c->title, QStringLiteral("Kept"));
    QCOMPARE(c->system_prompt, QStringLiteral("Be kind."));
    QCOMPARE(c->sampling.max_tokens, 12);
    QCOMPARE(int(c->messages.size()), 2);
    QCOMPARE(c->messages[1].content, answer);
    QVERIFY(c->model_dir.endsWith(QStringLiteral("chat-tiny")));
    QVERIFY(c->trace);
    const moescope::RoutingTrace& trace = *c->trace;
    QVERIFY(trace.size() > 0);
    QVERIFY(w->traces()->trace() == trace);  // the views show the reopened conversation's trace
    QCOMPARE(trace.n_experts(), 16);
    QCOMPARE(trace.top_k(), 4);
    QCOMPARE(int(w->chat()->messageWidgets().size()), 2);
    // Search filters the list; delete removes the file.
    w->conversationList()->setFilter(QStringLiteral("Another"));
    QCOMPARE(w->conversationList()->visibleCount(), 1);
    w->conversationList()->setFilter({});
    w->deleteConversation(id);
    QCOMPARE(int(w->conversations().size()), 1);
    QVERIFY(!QFile::exists(dir_->filePath(QStringLiteral("conversations/") + id + QStringLiteral(".json"))));
  }

  void corruptConversationIsSetAside() {
    {
      auto w = open();
      ask(*w, QStringLiteral("A good conversation"));
    }
    {
      QFile bad(dir_->filePath(QStringLiteral("conversations/broken.json")));
      QVERIFY(bad.open(QIODevice::WriteOnly));
      bad.write("{\"version\": 1, \"id\": \"x\", \"messages\": [ {\"role\": ");
    }
    auto w = open();
    QVERIFY(w->chat()->notices()->has_notice(QStringLiteral("corrupt")));
    QVERIFY(w->chat()->notices()->notice_text(QStringLiteral("corrupt")).contains(QStringLiteral("broken.json")));
    QCOMPARE(int(w->conversations().size()), 1);
    QCOMPARE(w->current()->messages[0].content, QStringLiteral("A good conversation"));
    const QStringList aside = QDir(dir_->filePath(QStringLiteral("conversations"))).entryList({QStringLiteral("broken.json.corrupt-*")});
    QCOMPARE(aside.size(), 1);
    QVERIFY(!QFile::exists(dir_->filePath(QStringLiteral("conversations/broken.json"))));
  }

  void brokenCheckpointShowsErrorAndAppStaysUsable() {
    const QString broken = dir_->filePath(QStringLiteral("broken-model"));
    QDir().mkpath(broken);
    {
      QFile f(broken + QStringLiteral("/config.json"));
      QVERIFY(f.open(QIODevice::WriteOnly));
      f.write("{\"architectures\": [\"NotAMoeForCausalLM\"], \"vocab_size\": 10}");
    }
    AppOptions o;
    o.model_dir = broken;
    o.data_dir = dir_->path();
    o.settings_file = dir_->filePath(QStringLiteral("settings.ini"));
    moescope::desktop::setup_logging(dir_->path());
    MainWindow w(o, views_);
    QSignalSpy failed(&w, &MainWindow::modelFailed);
    QSignalSpy ready(&w, &MainWindow::modelReady);
    w.show();
    QTRY_VERIFY_WITH_TIMEOUT(failed.count() == 1, kTimeout);
    QVERIFY(w.chat()->notices()->has_notice(QStringLiteral("load")));
    const QString text = w.chat()->notices()->notice_text(QStringLiteral("load"));
    QVERIFY2(text.contains(QStringLiteral("NotAMoeForCausalLM")), qPrintable(text));
    QVERIFY(!w.chat()->sendButton()->isEnabled());
    // ...and in the log file.
    QFile log(dir_->filePath(QStringLiteral("logs/moescope.log")));
    QVERIFY(log.open(QIODevice::ReadOnly));
    QVERIFY(log.readAll().contains("NotAMoeForCausalLM"));
    // The app keeps running: open a good model and chat.
    w.openModel(kModel);
    QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 1, kTimeout);
    QVERIFY(w.chat()->sendButton()->isEnabled());
    QVERIFY(!ask(w, QStringLiteral("Still here?")).text.isEmpty());
    // A missing directory is reported the same way; the loaded model stays.
    w.openModel(dir_->filePath(QStringLiteral("does-not-exist")));
    QTRY_VERIFY_WITH_TIMEOUT(failed.count() == 2, kTimeout);
    QVERIFY(w.chat()->notices()->notice_text(QStringLiteral("load")).contains(QStringLiteral("does not exist")));
    QVERIFY(w.chat()->sendButton()->isEnabled());
    QCOMPARE(int(w.current()->messages.size()), 2);
  }

  // --weights q8_0's counterpart in the app: the status bar and the recent-models list show the
  // folder name and what the weights are, and a recent model reopens as it was loaded.
  void quantisedOnLoadShowsInStatusAndRecent() {
    auto w = open();
    QVERIFY(w->engine()->hasModel());
    QVERIFY2(w->statusText().contains(QStringLiteral("chat-tiny · F32")), qPrintable(w->statusText()));
    QSignalSpy ready(w.get(), &MainWindow::modelReady);
    w->openModel(kModel, moescope::WeightsMode::Q8_0);
    QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 1, kTimeout);
    QCOMPARE(w->engine()->model().weights_mode, moescope::WeightsMode::Q8_0);
    QVERIFY2(w->statusText().contains(QStringLiteral("chat-tiny · Q8_0 (quantised on load)")), qPrintable(w->statusText()));
    QMenu* recent = nullptr;
    for (QMenu* m : w->findChildren<QMenu*>())
      if (m->title() == QStringLiteral("Recent models")) recent = m;
    QVERIFY(recent && !recent->actions().isEmpty());
    QCOMPARE(recent->actions().front()->text(), QStringLiteral("chat-tiny · Q8_0 (quantised on load)"));
    QCOMPARE(recent->actions().front()->toolTip(), kModel);
    recent->actions().front()->trigger();  // reopened as last loaded
    QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 2, kTimeout);
    QCOMPARE(w->engine()->model().weights_mode, moescope::WeightsMode::Q8_0);
    w->openModel(kModel, moescope::WeightsMode::AsStored);
    QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 3, kTimeout);
    QVERIFY2(w->statusText().contains(QStringLiteral("chat-tiny · F32")), qPrintable(w->statusText()));
    QCOMPARE(recent->actions().front()->text(), QStringLiteral("chat-tiny · F32"));
    // File ▸ Open model… offers the choice under its file list.
    QAction* open_action = nullptr;
    for (QAction* a : w->findChildren<QAction*>())
      if (a->text() == QStringLiteral("&Open model…")) open_action = a;
    QVERIFY(open_action);
    bool offered = false;
    QTimer::singleShot(0, w.get(), [&] {
      auto* dialog = qobject_cast<QFileDialog*>(QApplication::activeModalWidget());
      if (!dialog) return;
      auto* box = dialog->findChild<QCheckBox*>(QStringLiteral("quantiseOnLoad"));
      offered = box && box->text().contains(QStringLiteral("Q8_0")) && !box->isChecked();
      if (box) box->setChecked(true);
      dialog->selectFile(kModel + QStringLiteral("/config.json"));
      static_cast<QDialog*>(dialog)->accept();  // QFileDialog::accept, public through QDialog
    });
    open_action->trigger();
    QVERIFY(offered);
    QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 4, kTimeout);
    QCOMPARE(w->engine()->model().weights_mode, moescope::WeightsMode::Q8_0);
  }

  void fallbackTemplateIsAnnounced() {
    // chat-tiny without its chat_template: the plain fallback format is used and said so.
    const QString copy = dir_->filePath(QStringLiteral("no-template"));
    QDir().mkpath(copy);
    for (const QString& f : QDir(kModel).entryList(QDir::Files)) QVERIFY(QFile::copy(kModel + QLatin1Char('/') + f, copy + QLatin1Char('/') + f));
    QFile cfg(copy + QStringLiteral("/tokenizer_config.json"));
    QVERIFY(cfg.open(QIODevice::ReadOnly));
    auto j = nlohmann::json::parse(cfg.readAll().toStdString());
    cfg.close();
    j.erase("chat_template");
    QVERIFY(cfg.open(QIODevice::WriteOnly | QIODevice::Truncate));
    cfg.write(QByteArray::fromStdString(j.dump()));
    cfg.close();
    auto w = open(copy);
    QVERIFY(w->engine()->hasModel());
    QVERIFY(w->chat()->notices()->has_notice(QStringLiteral("fallback")));
    QVERIFY(w->chat()->notices()->notice_text(QStringLiteral("fallback")).contains(QStringLiteral("fallback"), Qt::CaseInsensitive) ||
            w->chat()->notices()->notice_text(QStringLiteral("fallback")).contains(QStringLiteral("plain")));
    w->setConversationSettings({}, sampling(0.0, 0, 5));
    QVERIFY(ask(*w, QStringLiteral("Hi")).used_fallback);
  }

  void cancellingALoadKeepsTheWindowUsable() {
    auto w = open();
    QSignalSpy cancelled(w->engine(), &moescope::ui::EngineHost::loadCancelled);
    w->openModel(kModel);
    QVERIFY(w->engine()->isLoading());
    QVERIFY(!w->chat()->sendButton()->isEnabled());  // nothing is sent while a model loads
    w->engine()->cancelLoad();
    QCOMPARE(cancelled.count(), 1);
    QVERIFY(!w->engine()->isLoading());
    QVERIFY(w->chat()->sendButton()->isEnabled());  // the previous model stays
    w->setConversationSettings({}, sampling(0.0, 0, 5));
    QVERIFY(!ask(*w, QStringLiteral("Still fine")).text.isEmpty());
  }

  void contextOverflowOffersChoices() {
    auto w = open();
    w->setConversationSettings({}, sampling(0.0, 0, 8));
    ask(*w, QStringLiteral("Short question"));
    QString huge;
    for (int i = 0; i < 3000; ++i) huge += QStringLiteral("zq%1 ").arg(i % 97);
    QSignalSpy failed(w.get(), &MainWindow::answerFailed);
    w->send(huge);
    QTRY_VERIFY_WITH_TIMEOUT(failed.count() == 1, kTimeout);
    QVERIFY(w->chat()->notices()->has_notice(QStringLiteral("context")));
    QVERIFY(w->chat()->notices()->notice_text(QStringLiteral("context")).contains(QStringLiteral("context")));
    auto* box = w->chat()->notices()->findChild<QPushButton*>(QStringLiteral("action-New chat"));
    QVERIFY(box);
    QCOMPARE(int(w->current()->messages.size()), 3);  // the conversation is kept
    QTest::mouseClick(box, Qt::LeftButton);
    QCOMPARE(int(w->current()->messages.size()), 0);
    QCOMPARE(w->chat()->input()->toPlainText(), huge);
    QCOMPARE(int(w->conversations().size()), 2);
  }

  // The router's full scores travel with the live routes when the setting asks for them
  // (Automatic: chat-tiny is small enough), and not at all with "Never".
  void routerScoresFollowTheSetting() {
    auto w = open();
    w->setConversationSettings({}, sampling(0.0, 0, 4));
    auto has_scores = [&](const QString& prompt) {
      QSignalSpy routes(w->feed(), &moescope::ui::EngineFeed::chunk);
      const GenerationSummary s = ask(*w, prompt);
      int with = 0, without = 0;
      // Tokens whose segment carries scores (a trace that once had them pads later tokens with
      // zeros: those count as without).
      for (const auto& args : routes)
        if (const auto& seg = args.at(0).value<moescope::ui::StreamChunk>().trace)
          for (size_t i = 0; i < seg->size(); ++i) {
            float sum = 0;
            for (int e = 0; e < seg->n_experts(); ++e) sum += seg->prob(i, 0, e);
            (sum > 0 ? with : without)++;
          }
      // The answer's last token in the session's trace: scores recorded (they sum to > 0) or not.
      if (!s.trace) return std::make_tuple(with, without, false);
      const moescope::RoutingTrace& trace = *s.trace;
      float sum = 0;
      for (int e = 0; e < trace.n_experts() && trace.size() > 0; ++e) sum += trace.prob(trace.size() - 1, 0, e);
      return std::make_tuple(with, without, sum > 0);
    };
    auto [with, without, traced] = has_scores(QStringLiteral("Hello"));
    QVERIFY2(with > 0 && without == 0, qPrintable(QStringLiteral("%1 with, %2 without").arg(with).arg(without)));
    QVERIFY(traced);
    auto* never = w->findChild<QAction*>(QStringLiteral("routerScores2"));
    QVERIFY(never);
    never->trigger();
    QCOMPARE(int(w->engine()->routerScores()), 2);
    w->newConversation();
    std::tie(with, without, traced) = has_scores(QStringLiteral("Hello again"));
    QVERIFY2(with == 0 && without > 0, qPrintable(QStringLiteral("%1 with, %2 without").arg(with).arg(without)));
    QVERIFY(!traced);
    // Remembered in the settings for the next start.
    w.reset();
    auto again = open();
    QCOMPARE(int(again->engine()->routerScores()), 2);
  }

  void exportAndViews() {
    auto w = open();
    w->setConversationSettings({}, sampling(0.0, 0, 6));
    ask(*w, QStringLiteral("Export me"));
    // Copy one message: the button puts its text on the clipboard.
    auto* answer = w->chat()->lastAnswer();
    QSignalSpy copied(answer, &moescope::ui::MessageWidget::copied);
    QTest::mouseClick(answer->findChild<QWidget*>(QStringLiteral("copyButton")), Qt::LeftButton);
    QCOMPARE(copied.count(), 1);
    QCOMPARE(copied.at(0).at(0).toString(), w->current()->messages[1].content);
    const QString md = w->exportMarkdown();
    QVERIFY(md.contains(QStringLiteral("## You")));
    QVERIFY(md.contains(QStringLiteral("Export me")));
    const auto j = nlohmann::json::parse(w->exportJson().toStdString());
    QCOMPARE(j["messages"].size(), size_t(2));
    // A view registered with the registry gets a dock and a Views menu entry.
    moescope::ui::ViewFactory f;
    f.id = QStringLiteral("test-view");
    f.title = QStringLiteral("Test view");
    f.create = [](const moescope::ui::ViewContext&, QWidget* parent) { return new QLabel(QStringLiteral("hi"), parent); };
    QVERIFY(w->addView(f));
    QVERIFY(w->showView(QStringLiteral("test-view")));
    QVERIFY(!w->showView(QStringLiteral("nope")));
    bool listed = false;
    for (QAction* a : w->viewsMenu()->actions()) listed |= a->text() == QStringLiteral("Test view");
    QVERIFY(listed);
  }

  // The guide (issue 16): Help ▸ Guide opens it, every view's "learn more" opens it at the view's
  // page, the figures are the loaded model's, and each page's button shows its view.
  void guideExplainsTheLoadedModel() {
    moescope::ui::register_views(views_);
    moescope::ui::register_experiments(views_);
    auto w = open();
    QVERIFY(w->engine()->hasModel());
    QAction* action = w->findChild<QAction*>(QStringLiteral("guideAction"));
    QVERIFY(action);
    QVERIFY(!w->guide() || !w->guide()->isVisible());
    action->trigger();
    moescope::ui::GuideWindow* guide = w->guide();
    QVERIFY(guide && guide->isVisible());
    QCOMPARE(guide->currentPage(), moescope::ui::guide_pages().front().id);
    // Each view's "learn more" opens its page.
    for (const QString& id : w->viewIds()) {
      const QString page = moescope::ui::guide_page_for_view(id);
      auto* more = w->viewWidget(id)->findChild<QLabel*>(QStringLiteral("learnMore"));
      if (!more) continue;  // the experiments' views have none
      QVERIFY(w->showView(id));
      QTRY_VERIFY(more->isVisible());
      guide->showPage(QStringLiteral("moe") == page ? QStringLiteral("mla") : QStringLiteral("moe"));
      guide->hide();
      QTest::mouseClick(more, Qt::LeftButton, {}, more->rect().center());
      QTRY_VERIFY(guide->isVisible());
      QCOMPARE(guide->currentPage(), page);
      QCOMPARE(guide->currentTitle(), moescope::ui::guide_page(page)->title);
      QCOMPARE(guide->browser()->documentTitle(), moescope::ui::guide_page(page)->title);
    }
    QCOMPARE(w->viewWidget(QStringLiteral("load"))->findChild<QLabel*>(QStringLiteral("learnMore")) != nullptr, true);
    // Every page: chat-tiny's own numbers, only links to guide pages, and a button that shows its view.
    for (const moescope::ui::GuidePage& p : moescope::ui::guide_pages()) {
      QVERIFY(guide->showPage(p.id));
      const QString text = guide->browser()->toPlainText();
      QVERIFY2(text.contains(QStringLiteral("In the loaded model")) && text.contains(QStringLiteral("chat-tiny")), qPrintable(p.id));
      if (p.id == QLatin1String("mla"))
        QVERIFY2(text.contains(QStringLiteral("kv_lora_rank 16 + qk_rope_head_dim 8")), qPrintable(text));
      else
        QVERIFY2(text.contains(QStringLiteral("16")) && text.contains(QStringLiteral("4")), qPrintable(p.id + text));
      QTextDocument* doc = guide->browser()->document();
      for (QTextBlock b = doc->begin(); b.isValid(); b = b.next())
        for (auto it = b.begin(); !it.atEnd(); ++it) {
          const QString href = it.fragment().charFormat().anchorHref();
          QVERIFY2(href.isEmpty() || href.startsWith(QStringLiteral("guide:")), qPrintable(href));
        }
      if (QDockWidget* d = w->viewDock(p.view)) d->hide();
      QVERIFY2(guide->openViewButton()->isEnabled(), qPrintable(p.id));
      QTest::mouseClick(guide->openViewButton(), Qt::LeftButton);
      QTRY_VERIFY2(w->viewDock(p.view)->isVisible(), qPrintable(p.view));
    }
    // MOESCOPE_SHOTS=DIR: a picture of a page, to look at.
    if (const QString shots = qEnvironmentVariable("MOESCOPE_SHOTS"); !shots.isEmpty()) {
      guide->showPage(QStringLiteral("groups"));
      QTest::qWait(50);  // the button's new width is laid out
      QVERIFY(guide->grab().save(QDir(shots).filePath(QStringLiteral("guide.png"))));
    }
    // A link to another page follows it; any other link is ignored.
    guide->showPage(QStringLiteral("router"));
    emit guide->browser()->anchorClicked(QUrl(QStringLiteral("guide:scoring")));
    QCOMPARE(guide->currentPage(), QStringLiteral("scoring"));
    emit guide->browser()->anchorClicked(QUrl(QStringLiteral("https://example.com/")));
    emit guide->browser()->anchorClicked(QUrl::fromLocalFile(kModel + QStringLiteral("/config.json")));
    QCOMPARE(guide->currentPage(), QStringLiteral("scoring"));
    QVERIFY(guide->browser()->source().isEmpty());
  }

  // Before a model is loaded the guide says so; a window without views has nothing to open.
  void guideWithoutAModel() {
    const AppOptions o = withoutModel();
    MainWindow w(o, views_);
    w.show();
    w.openGuide(QStringLiteral("balance"));
    QVERIFY(w.guide() && w.guide()->isVisible());
    QCOMPARE(w.guide()->currentTitle(), QStringLiteral("Load balance and its metrics"));
    QVERIFY(w.guide()->browser()->toPlainText().contains(QStringLiteral("No model is loaded")));
    QVERIFY(!w.guide()->openViewButton()->isEnabled());
    QVERIFY(!w.guide()->showPage(QStringLiteral("nope")));
    QCOMPARE(w.guide()->currentPage(), QStringLiteral("balance"));
    // Loading a model puts its numbers in.
    QSignalSpy ready(&w, &MainWindow::modelReady);
    w.openModel(kModel);
    QTRY_VERIFY_WITH_TIMEOUT(ready.count() > 0, kTimeout);
    QVERIFY(w.guide()->browser()->toPlainText().contains(QStringLiteral("25.0 % of the tokens")));
  }

  // Layouts that fit (issue 16): at 1024×700 and 1920×1080, with the default docks and with every
  // dock open, no visible control is cut off by an ancestor (outside scroll areas, whose job that
  // is) or squeezed below its minimum size hint, the message buttons show, and the routing map has
  // at least 10 px for each of its rows. MOESCOPE_SHOTS=DIR saves a screenshot of each case.
  void layoutsFit() {
    moescope::ui::register_views(views_);
    const QString shots = qEnvironmentVariable("MOESCOPE_SHOTS");
    for (const QSize size : {QSize(1024, 700), QSize(1920, 1080)}) {
      for (const bool every_dock : {false, true}) {
        QTemporaryDir fresh;  // default layout: no saved window state
        AppOptions o;
        o.model_dir = kModel;
        o.backend = QStringLiteral("cpu");
        o.data_dir = fresh.path();
        o.settings_file = fresh.filePath(QStringLiteral("settings.ini"));
        MainWindow w(o, views_);
        QSignalSpy ready(&w, &MainWindow::modelReady);
        w.resize(size);
        w.show();
        QVERIFY(QTest::qWaitForWindowExposed(&w));
        QTRY_VERIFY_WITH_TIMEOUT(ready.count() > 0, kTimeout);
        if (every_dock)
          for (const QString& id : w.viewIds()) w.showView(id);
        w.setConversationSettings({}, sampling(0.0, 1, 24));
        QSignalSpy done(w.engine(), &moescope::ui::EngineHost::generationFinished);
        w.chat()->input()->setPlainText(QStringLiteral("Hello there"));
        QTest::mouseClick(w.chat()->sendButton(), Qt::LeftButton);
        QTRY_VERIFY_WITH_TIMEOUT(done.count() == 1, kTimeout);
        QTest::qWait(400);  // the views' refresh timers
        const QString where = QStringLiteral("%1×%2%3").arg(size.width()).arg(size.height()).arg(every_dock ? " every dock" : "");
        // The window really is that size: no minimum width or height of its parts pushes it out.
        QStringList mins;
        for (const QString& id : w.viewIds())
          if (QDockWidget* d = w.viewDock(id); d && d->isVisible())
            mins << QStringLiteral("%1 %2×%3").arg(id).arg(d->minimumSizeHint().width()).arg(d->minimumSizeHint().height());
        QVERIFY2(w.size() == size, qPrintable(where + QStringLiteral(": the window is %1×%2 (minimum %3×%4; docks: %5)").arg(w.width())
                                               .arg(w.height()).arg(w.minimumSizeHint().width()).arg(w.minimumSizeHint().height()).arg(mins.join(", "))));
        if (!shots.isEmpty())
          QVERIFY(w.grab().save(QDir(shots).filePath(QStringLiteral("layout-%1x%2%3.png").arg(size.width()).arg(size.height())
                                                          .arg(every_dock ? "-every-dock" : ""))));
        const QStringList problems = clipped_controls(&w);
        QVERIFY2(problems.isEmpty(), qPrintable(where + ": " + problems.mid(0, 12).join(QStringLiteral("; "))));
        QWidget* map = w.viewWidget(QStringLiteral("routing"));
        QVERIFY(map && map->isVisible());
        auto* plot = map->findChild<QCustomPlot*>(QStringLiteral("routingPlot"));
        QVERIFY(plot);
        const double row_px = plot->axisRect()->height() / plot->yAxis->range().size();
        QVERIFY2(row_px >= 9.9 && plot->yAxis->range().size() >= 8,
                 qPrintable(where + QStringLiteral(": routing map rows %1 px high, %2 rows shown").arg(row_px).arg(plot->yAxis->range().size())));
        w.close();
      }
    }
  }

  void dockLayoutIsRemembered() {
    moescope::ui::ViewFactory f;
    f.id = QStringLiteral("remembered-view");
    f.title = QStringLiteral("Remembered view");
    f.area = Qt::BottomDockWidgetArea;
    f.create = [](const moescope::ui::ViewContext&, QWidget* parent) { return new QLabel(QStringLiteral("view"), parent); };
    views_.add(f);
    {
      auto w = open();
      auto* dock = w->viewDock(QStringLiteral("remembered-view"));
      QVERIFY(dock);
      QVERIFY(!dock->isVisible());  // hidden by default
      QVERIFY(w->showView(f.id));
      w->addDockWidget(Qt::LeftDockWidgetArea, dock);
      QVERIFY(dock->isVisible());
      w->close();
    }
    auto w = open();
    auto* dock = w->viewDock(QStringLiteral("remembered-view"));
    QVERIFY(dock);
    QVERIFY(dock->isVisible());
    QCOMPARE(w->dockWidgetArea(dock), Qt::LeftDockWidgetArea);
  }

  void thinkingSections() {
    using moescope::ui::split_thinking;
    auto s = split_thinking(QStringLiteral("<think>\nweighing options"));
    QVERIFY(s.has_thinking && !s.thinking_done);
    QCOMPARE(s.thinking, QStringLiteral("weighing options"));
    QVERIFY(s.answer.isEmpty());
    s = split_thinking(QStringLiteral("<think>plan</think>\n\nThe answer."));
    QVERIFY(s.thinking_done);
    QCOMPARE(s.thinking, QStringLiteral("plan"));
    QCOMPARE(s.answer, QStringLiteral("The answer."));
    s = split_thinking(QStringLiteral("R1 opened it in the prompt</think>Done"));
    QVERIFY(s.has_thinking);
    QCOMPARE(s.answer, QStringLiteral("Done"));
    s = split_thinking(QStringLiteral("Plain answer"));
    QVERIFY(!s.has_thinking);
    // The widget shows the section while thinking and collapses it when the answer starts.
    moescope::ui::Message m;
    m.role = QStringLiteral("assistant");
    moescope::ui::MessageWidget mw(1, m);
    mw.show();
    mw.setContent(QStringLiteral("<think>hmm"), true);
    QVERIFY(mw.hasThinking());
    QVERIFY(mw.thinkingExpanded());
    mw.setContent(QStringLiteral("<think>hmm</think>Yes"), true);
    QVERIFY(!mw.thinkingExpanded());
    QCOMPARE(mw.answerText(), QStringLiteral("Yes"));
  }

  // gpt-oss writes harmony messages: the analysis channel is the reasoning, final the answer.
  void harmonyChannels() {
    using moescope::ui::split_thinking;
    const QString analysis = QStringLiteral("<|channel|>analysis<|message|>The user asks 2+2. ");
    auto s = split_thinking(analysis);
    QVERIFY(s.has_thinking && !s.thinking_done);
    QCOMPARE(s.thinking, QStringLiteral("The user asks 2+2."));
    QVERIFY(s.answer.isEmpty());
    // The header still arriving shows nothing yet.
    s = split_thinking(QStringLiteral("<|channel|>"));
    QVERIFY(s.has_thinking && !s.thinking_done && s.thinking.isEmpty() && s.answer.isEmpty());
    const QString done = analysis + QStringLiteral("That is 4.<|end|><|start|>assistant<|channel|>final<|message|>");
    s = split_thinking(done);
    QVERIFY(s.has_thinking && s.thinking_done);
    QCOMPARE(s.thinking, QStringLiteral("The user asks 2+2. That is 4."));
    QVERIFY(s.answer.isEmpty());
    s = split_thinking(done + QStringLiteral("**4**, of course.<|return|>"));
    QCOMPARE(s.answer, QStringLiteral("**4**, of course."));
    QCOMPARE(s.thinking, QStringLiteral("The user asks 2+2. That is 4."));
    // A final message alone has no reasoning part.
    s = split_thinking(QStringLiteral("<|channel|>final<|message|>Just this.<|return|>"));
    QVERIFY(!s.has_thinking && s.thinking_done);
    QCOMPARE(s.answer, QStringLiteral("Just this."));
    // Commentary and a tool call are reasoning too, shown with their header.
    s = split_thinking(QStringLiteral("<|channel|>analysis<|message|>Need the weather.<|end|>"
                                      "<|start|>assistant to=functions.get_weather<|channel|>commentary json<|message|>"
                                      "{\"city\": \"Zürich\"}<|call|>"));
    QVERIFY(s.has_thinking && !s.thinking_done);
    QCOMPARE(s.thinking, QStringLiteral("Need the weather.\n\n[to=functions.get_weather commentary json] {\"city\": \"Zürich\"}"));
    // Text that merely mentions the marker later on is a plain answer.
    s = split_thinking(QStringLiteral("Harmony uses <|channel|> markers."));
    QVERIFY(!s.has_thinking);
    QCOMPARE(s.answer, QStringLiteral("Harmony uses <|channel|> markers."));

    // The bubble: open while the analysis streams, collapsed once the final answer starts.
    moescope::ui::Message m;
    m.role = QStringLiteral("assistant");
    moescope::ui::MessageWidget mw(1, m);
    mw.show();
    mw.setContent(analysis, true);
    QVERIFY(mw.hasThinking());
    QVERIFY(mw.thinkingExpanded());
    mw.setContent(done + QStringLiteral("4."), true);
    QVERIFY(!mw.thinkingExpanded());
    mw.setContent(done + QStringLiteral("4.<|return|>"), false);
    QCOMPARE(mw.answerText(), QStringLiteral("4."));

    // The next prompt gets the final answer only (the template refuses channel markers in content).
    moescope::ui::Conversation c;
    c.messages.push_back({QStringLiteral("user"), QStringLiteral("2+2?")});
    moescope::ui::Message a;
    a.role = QStringLiteral("assistant");
    a.content = done + QStringLiteral("4.<|return|>");
    c.messages.push_back(a);
    a.content = QStringLiteral("<|channel|>final<|message|>Only final.<|return|>");
    c.messages.push_back(a);
    const auto msgs = c.template_messages();
    QCOMPARE(msgs.size(), size_t(3));
    QCOMPARE(msgs[1]["content"].get<std::string>(), std::string("4."));
    QCOMPARE(msgs[2]["content"].get<std::string>(), std::string("Only final."));
  }

  // The remote backend in the window: connected to moescope-cli serve, a chat whose routing
  // reaches the views; the API key in no conversation file and in the settings only when asked;
  // a server without routing and a stream cut mid-answer each say so in the chat's notices, and
  // the partial answer stays in the conversation.
  void chatsWithAServer() {
    moescope::test::Serve serve;
    const AppOptions o = withoutModel();
    MainWindow w(o, views_);
    w.show();
    QSignalSpy ready(&w, &MainWindow::modelReady);
    moescope::ui::RemoteServer server;
    server.url = serve.url();
    server.api_key = moescope::test::kKey;
    w.connectToServer(server);
    QTRY_VERIFY_WITH_TIMEOUT(ready.count() == 1, kTimeout);
    QVERIFY(w.engine()->isRemote());
    QVERIFY2(w.statusText().contains(QStringLiteral("server http://127.0.0.1")), qPrintable(w.statusText()));
    const GenerationSummary s = ask(w, QStringLiteral("What is 23+58?"));
    QVERIFY(!s.text.isEmpty());
    QCOMPARE(w.current()->messages.back().content, s.text);
    QVERIFY(w.current()->trace && w.current()->trace->has_weights());
    QCOMPARE(w.traces()->trace().size(), w.current()->trace->size());
    QVERIFY(!w.chat()->notices()->has_notice(QStringLiteral("routing")));
    // Regenerate and edit as for a local model: the last answer replaced, the edited turn re-asked.
    const GenerationSummary again = regenerate(w);
    QCOMPARE(int(w.current()->messages.size()), 2);
    QCOMPARE(w.current()->messages.back().content, again.text);
    const GenerationSummary edited = ask(w, QStringLiteral("What is 791-126?"), 0);
    QCOMPARE(int(w.current()->messages.size()), 2);
    QCOMPARE(w.current()->messages.front().content, QStringLiteral("What is 791-126?"));
    QCOMPARE(w.current()->messages.back().content, edited.text);
    QCOMPARE(w.traces()->trace().size(), w.current()->trace->size());
    QDirIterator files(dir_->path(), QDir::Files, QDirIterator::Subdirectories);
    while (files.hasNext()) {
      QFile f(files.next());
      QVERIFY(f.open(QIODevice::ReadOnly));
      QVERIFY2(!f.readAll().contains(moescope::test::kKey), qPrintable(f.fileName()));
    }
    moescope::desktop::AppSettings settings(o.settings_file);
    settings.saveServer(server.url, {}, {}, 5000, /*remember_key=*/false, server.api_key);
    QCOMPARE(settings.serverKey(), QString());
    settings.saveServer(server.url, {}, {}, 5000, /*remember_key=*/true, server.api_key);
    QCOMPARE(settings.serverKey(), QString::fromLatin1(moescope::test::kKey));
    settings.saveServer(server.url, {}, {}, 5000, /*remember_key=*/false, server.api_key);
    QFile ini(o.settings_file);
    QVERIFY(ini.open(QIODevice::ReadOnly));
    QVERIFY(!ini.readAll().contains(moescope::test::kKey));  // forgotten again

    // A server started without the routing flag: the answer stays, a notice names the flag.
    moescope::test::Scripted bare;
    bare.answer = moescope::test::Scripted::sse_response(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
    server.url = bare.url();
    QSignalSpy ready2(&w, &MainWindow::modelReady);
    w.connectToServer(server);
    QTRY_VERIFY_WITH_TIMEOUT(ready2.count() == 1, kTimeout);
    w.newConversation();
    ask(w, QStringLiteral("hi"));
    QCOMPARE(w.current()->messages.back().content, QStringLiteral("Hello"));
    QVERIFY(w.chat()->notices()->has_notice(QStringLiteral("routing")));
    QVERIFY2(w.chat()->notices()->notice_text(QStringLiteral("routing")).contains(QStringLiteral("--enable-return-routed-experts")),
             qPrintable(w.chat()->notices()->notice_text(QStringLiteral("routing"))));

    // Cut mid-answer: what arrived is kept, the error says the stream ended early.
    const QByteArray full = moescope::test::Scripted::sse_response(QByteArray::fromStdString(
        moescope::test::read_file(std::filesystem::path(MOESCOPE_TEST_DATA) / "remote/vllm_chat_stream.txt")));
    bare.answer = full;
    bare.cut = full.indexOf("\"ere\"") + 20;
    ask(w, QStringLiteral("again"));
    QCOMPARE(w.current()->messages.back().content, QStringLiteral("Hi th"));
    QCOMPARE(w.current()->messages.back().stop_reason, QStringLiteral("error"));
    QVERIFY(w.chat()->notices()->has_notice(QStringLiteral("generate")));
    QVERIFY(w.chat()->notices()->notice_text(QStringLiteral("generate")).contains(QStringLiteral("ended early")));
    QVERIFY(w.chat()->sendButton()->isEnabled());

    // HTTPS goes through Qt's TLS: a server whose certificate is not trusted is one clear line.
    QSslServer tls;
    if (!QSslSocket::supportsSsl() || !moescope::test::self_signed(tls, dir_->path())) QSKIP("no TLS backend or openssl here");
    server.url = QStringLiteral("https://127.0.0.1:%1").arg(tls.serverPort());
    QSignalSpy failed(&w, &MainWindow::modelFailed);
    w.connectToServer(server);
    QTRY_VERIFY_WITH_TIMEOUT(failed.count() == 1, kTimeout);
    QVERIFY2(failed.front().at(0).toString().contains(QStringLiteral("TLS handshake")), qPrintable(failed.front().at(0).toString()));
  }

  // File ▸ Open routing dump: a JSON-lines dump of server responses and a .npy array with token
  // ids beside, shown in the views a sequence at a time; statistics over the whole dump on a
  // thread; a broken file is one message and the window stays usable.
  void opensRoutingDumps() {
    auto w = open();
    const QString data = QStringLiteral(MOESCOPE_TEST_DATA) + QStringLiteral("/remote/");
    QVERIFY(w->openRoutingDump(data + QStringLiteral("dump_vllm.jsonl")));
    moescope::desktop::DumpPanel* panel = w->dumpPanel();
    QVERIFY(panel && panel->dump());
    QCOMPARE(QString::fromStdString(panel->dump()->format()), QStringLiteral("jsonl"));
    const moescope::RoutingTrace first = panel->dump()->sequence(0);
    QVERIFY(first.size() > 0);
    QCOMPARE(w->traces()->trace(), first);  // the views show sequence 1
    QVERIFY(w->traces()->source().contains(QStringLiteral("dump_vllm.jsonl")));
    if (panel->dump()->sequences() > 1) {
      panel->showSequence(1);
      QCOMPARE(w->traces()->trace(), panel->dump()->sequence(1));
    }
    QSignalSpy stats(panel, &moescope::desktop::DumpPanel::statsReady);
    panel->computeStats();
    QTRY_VERIFY_WITH_TIMEOUT(stats.count() == 1, kTimeout);
    QVERIFY(stats.front().at(0).toBool());
    QVERIFY2(panel->statsText().contains(QStringLiteral("tokens")), qPrintable(panel->statsText()));
    QVERIFY(panel->statsText().contains(QStringLiteral("Mean over the layers")));

    QVERIFY(w->openRoutingDump(data + QStringLiteral("dump_routing.npy"), {}, data + QStringLiteral("dump_token_ids.npy")));
    QCOMPARE(QString::fromStdString(panel->dump()->format()), QStringLiteral("npy"));
    QCOMPARE(w->traces()->trace(), panel->dump()->sequence(0));

    QVERIFY(!w->openRoutingDump(data + QStringLiteral("bad_dump_truncated.npy")));
    QVERIFY(w->chat()->notices()->has_notice(QStringLiteral("dump")));
    QVERIFY2(w->chat()->notices()->notice_text(QStringLiteral("dump")).contains(QStringLiteral("truncated")),
             qPrintable(w->chat()->notices()->notice_text(QStringLiteral("dump"))));
    // The chat still answers beside the dump.
    QVERIFY(!ask(*w, QStringLiteral("Hello")).text.isEmpty());
  }

  void generationDefaults() {
    auto s = moescope::ui::sampling_defaults(QStringLiteral(R"({"do_sample": false, "temperature": 0.6, "top_p": 0.9, "max_new_tokens": 77})"));
    QCOMPARE(s.temperature, 0.0);
    QCOMPARE(s.top_p, 0.9);
    QCOMPARE(s.max_tokens, 77);
    s = moescope::ui::sampling_defaults(QStringLiteral("not json"));
    QCOMPARE(s, SamplingSettings{});
  }
};

QTEST_MAIN(TestApp)
#include "test_app.moc"
