// The app half of tools/soak.sh (--app): the real main window (offscreen), with every registered
// view docked and shown, chatting without pause for a given time: conversations started,
// answered in one to three turns, autosaved, re-opened (the views reload their saved traces) and
// deleted; the model closed and loaded again every 25 conversations. Its resident memory is
// what the script watches.
//
//   moescope-soak-app --model DIR --seconds N --data-dir DIR
//
// Prints one status line a minute and a final summary in the format of moescope-soak:
//   soak: done rounds=R answers=A tokens=T rss_start_kb=S rss_end_kb=E rss_max_kb=M
#include <QApplication>
#include <QDir>
#include <QDockWidget>
#include <QTimer>
#include <chrono>
#include <cstdio>
#include <string>

#include "soak_common.h"

#include "main_window.h"
#include "ui/view_registry.h"
#include "ui/experiments/register_experiments.h"
#include "ui/views/register_views.h"

using namespace moescope;
using moescope::soak::kQuestions;
using moescope::soak::rss_kb;
using Clock = std::chrono::steady_clock;

namespace {


struct Soak {
  desktop::MainWindow* window = nullptr;
  QString model;
  double seconds = 60;
  Clock::time_point t0 = Clock::now(), last_report = Clock::now();
  long rounds = 0, answers = 0, tokens = 0, turn = 0, rss_start = -1, rss_max = 0;
  bool failed = false;

  double elapsed() const { return std::chrono::duration<double>(Clock::now() - t0).count(); }

  void ask() {
    window->send(QString::fromUtf8(kQuestions[(rounds + turn) % soak::kQuestionCount]));
  }

  void finish() {
    std::printf("soak: done rounds=%ld answers=%ld tokens=%ld rss_start_kb=%ld rss_end_kb=%ld rss_max_kb=%ld\n", rounds,
                answers, tokens, rss_start, rss_kb(), rss_max);
    std::fflush(stdout);
    QApplication::exit(failed ? 1 : 0);
  }

  // After every answer: another turn, or the next conversation.
  void answered() {
    ++answers;
    if (const ui::Conversation* c = window->current(); c && !c->messages.empty()) tokens += c->messages.back().tokens;
    const long rss = rss_kb();
    if (rss_start < 0) rss_start = rss;  // after the first answer: model mapped, views built
    rss_max = std::max(rss_max, rss);
    if (Clock::now() - last_report > std::chrono::seconds(60)) {
      last_report = Clock::now();
      std::printf("soak: t=%.0fs rounds=%ld answers=%ld tokens=%ld rss_kb=%ld conversations=%zu\n", elapsed(), rounds,
                  answers, tokens, rss, window->conversations().size());
      std::fflush(stdout);
    }
    if (elapsed() >= seconds) return finish();
    if (++turn < 1 + rounds % 3) return ask();
    turn = 0;
    ++rounds;
    // Re-open an earlier conversation now and then (its saved trace goes to the views), and
    // keep the folder small: the five newest stay.
    const auto& all = window->conversations();
    if (rounds % 4 == 0 && all.size() > 1) window->selectConversation(all.back().id);
    if (rounds % 10 == 0)
      while (window->conversations().size() > 5) window->deleteConversation(window->conversations().back().id);
    if (rounds % 25 == 0) return window->openModel(model);  // close and load again; asks when ready
    window->newConversation();
    ask();
  }
};

}  // namespace

int main(int argc, char** argv) {
  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  QApplication app(argc, argv);
  Soak soak;
  QString data_dir;
  const QStringList a = app.arguments();
  for (int i = 1; i + 1 < a.size(); i += 2) {
    if (a[i] == QLatin1String("--model")) soak.model = a[i + 1];
    else if (a[i] == QLatin1String("--seconds")) soak.seconds = a[i + 1].toDouble();
    else if (a[i] == QLatin1String("--data-dir")) data_dir = a[i + 1];
  }
  if (soak.model.isEmpty() || data_dir.isEmpty()) {
    std::fprintf(stderr, "usage: moescope-soak-app --model DIR --seconds N --data-dir DIR\n");
    return 2;
  }
  ui::ViewRegistry registry;
  ui::register_views(registry);
  ui::register_experiments(registry);
  desktop::AppOptions o;
  o.model_dir = soak.model;
  o.backend = QStringLiteral("cpu");
  o.data_dir = data_dir;
  o.settings_file = QDir(data_dir).filePath(QStringLiteral("settings.ini"));
  desktop::MainWindow window(o, registry);
  soak.window = &window;
  window.resize(1600, 1000);
  window.show();
  int views = 0;
  for (const ui::ViewFactory& f : registry.factories()) views += window.showView(f.id);
  std::printf("soak: app with %d views shown, model %s\n", views, qPrintable(soak.model));
  std::fflush(stdout);

  QObject::connect(&window, &desktop::MainWindow::modelReady, &window, [&] {
    window.newConversation();
    soak.ask();
  });
  QObject::connect(&window, &desktop::MainWindow::modelFailed, &window, [&](const QString& m) {
    std::fprintf(stderr, "soak: FAILED: model: %s\n", qPrintable(m));
    soak.failed = true;
    soak.finish();
  });
  QObject::connect(&window, &desktop::MainWindow::answerFailed, &window, [&](const QString& m) {
    std::fprintf(stderr, "soak: FAILED: answer: %s\n", qPrintable(m));
    soak.failed = true;
    soak.finish();
  });
  // The next step runs from the event loop, after the window has handled the answer itself.
  QObject::connect(&window, &desktop::MainWindow::answerFinished, &window,
                   [&] { QTimer::singleShot(0, &window, [&] { soak.answered(); }); });
  // A stuck engine or window fails the run instead of hanging it.
  QTimer watchdog;
  long last_answers = -1;
  QObject::connect(&watchdog, &QTimer::timeout, &window, [&] {
    if (soak.answers == last_answers) {
      std::fprintf(stderr, "soak: FAILED: no answer for 120 s\n");
      soak.failed = true;
      soak.finish();
    }
    last_answers = soak.answers;
  });
  watchdog.start(120000);
  return app.exec();
}
