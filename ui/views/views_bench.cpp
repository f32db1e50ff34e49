// moescope-views-bench: what the views cost generation. Runs answers through the app's own engine
// host (its worker thread, stream buffer and ~30 chunks a second published on the EngineFeed, the
// trace model the views share), alternating rounds with every view open in a shown window and
// with none, and prints decode tokens/s for both. With --screenshots DIR it also saves each view's
// widget after the last answer.
//
//   moescope-views-bench --model tests/data/models/chat-tiny [--tokens 1500] [--rounds 3]
//                        [--threads N] [--screenshots DIR]
//   moescope-views-bench --shape resources/presets/olmoe-1b-7b.json [--layers 1] [--tokens 200]
//   moescope-views-bench --server http://127.0.0.1:8080 [--api-key KEY] [--tokens 400]
//
// --server runs the answers on an OpenAI-compatible server through the app's remote backend
// (moescope-cli serve, vLLM, SGLang: started with routing returned), so the figures say what the
// views cost a streamed answer; it also prints the server's own decode rate where the server
// logs it beside (moescope-cli serve prints it per answer on stderr).
//
// --shape takes a published config.json and builds random BF16 weights of that shape (no
// tokenizer: a fixed random prompt, tokens shown as "<id>"). Its answers last seconds, as a real
// model's do, so the views redraw live many times in each; the tiny test models answer 2,000
// tokens in a fraction of a second, before the first live redraw is due.
#include <QApplication>
#include <QDir>
#include <QDockWidget>
#include <QFileInfo>
#include <QEventLoop>
#include <QMainWindow>
#include <QMetaObject>
#include <QPixmap>
#include <QThread>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <thread>
#include <ctime>

#include <qcustomplot.h>

#include "moescope/chat.h"
#include "moescope/model_weights.h"
#include "moescope/session.h"
#include "moescope/tokenizer.h"
#include "ui/engine_feed.h"
#include "ui/engine_host.h"
#include "ui/view_registry.h"
#include "ui/views/register_views.h"
#include "ui/views/trace_model.h"
#include "ui/views/view_frame.h"

using namespace moescope;
using namespace moescope::ui;
using Clock = std::chrono::steady_clock;

// CPU time of the calling thread (the UI thread: what the views and the feed cost it).
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return double(ts.tv_sec) + double(ts.tv_nsec) * 1e-9;
}

namespace {

struct Options {
  QString model = QStringLiteral("tests/data/models/chat-tiny");
  int tokens = 1500;
  int rounds = 3;
  int threads = 0;
  QString screenshots;
  QString shape;    // config.json of a synthetic model
  QString server;   // base URL of an OpenAI-compatible server (remote backend)
  QString api_key;
  int layers = 1;   // its layers (--shape only)
};

}  // namespace

int main(int argc, char** argv) {
  if (qEnvironmentVariableIsEmpty("QT_QPA_PLATFORM")) qputenv("QT_QPA_PLATFORM", "offscreen");
  QApplication app(argc, argv);
  Options o;
  const QStringList a = app.arguments();
  for (int i = 1; i + 1 < a.size(); i += 2) {
    if (a[i] == QLatin1String("--model")) o.model = a[i + 1];
    else if (a[i] == QLatin1String("--tokens")) o.tokens = a[i + 1].toInt();
    else if (a[i] == QLatin1String("--rounds")) o.rounds = a[i + 1].toInt();
    else if (a[i] == QLatin1String("--threads")) o.threads = a[i + 1].toInt();
    else if (a[i] == QLatin1String("--screenshots")) o.screenshots = a[i + 1];
    else if (a[i] == QLatin1String("--shape")) o.shape = a[i + 1];
    else if (a[i] == QLatin1String("--layers")) o.layers = a[i + 1].toInt();
    else if (a[i] == QLatin1String("--server")) o.server = a[i + 1];
    else if (a[i] == QLatin1String("--api-key")) o.api_key = a[i + 1];
    else {
      std::fprintf(stderr, "moescope-views-bench: unknown option %s\n", qPrintable(a[i]));
      return 2;
    }
  }

  // The app's engine host, on the CPU backend.
  EngineFeed feed;
  EngineHost host(&feed);
  std::optional<ChatFormat> chat;  // the prompt's template (the host renders answers' text itself)
  const bool synthetic = !o.shape.isEmpty();
  const bool remote = !o.server.isEmpty();
  if (remote) {
    RemoteServer server;
    server.url = o.server;
    server.api_key = o.api_key;
    host.connectServer(server);
  } else if (!synthetic) {
    chat.emplace(ChatFormat::from_dir(o.model.toStdString()));
    host.loadModel(o.model, QStringLiteral("cpu"), o.threads);
  } else {
    auto model = make_synthetic_model(load_model_spec(o.shape.toStdString()), o.layers, 1, /*host_storage=*/true);
    o.model = QFileInfo(o.shape).completeBaseName() + QStringLiteral(" shape");
    host.loadModel(std::move(model), o.model, QStringLiteral("cpu"), o.threads, 64 + o.tokens + 1);
  }
  {
    QEventLoop wait;
    QString error;
    QObject::connect(&host, &EngineHost::modelLoaded, &wait, &QEventLoop::quit);
    QObject::connect(&host, &EngineHost::modelLoadFailed, &wait, [&](const QString&, const QString& m) {
      error = m;
      wait.quit();
    });
    wait.exec();
    if (!error.isEmpty()) {
      std::fprintf(stderr, "moescope-views-bench: %s\n", qPrintable(error));
      return 1;
    }
  }
  ViewRegistry registry;
  register_views(registry);

  std::vector<int32_t> prompt;
  const nlohmann::ordered_json story =
      nlohmann::ordered_json::array({{{"role", "user"}, {"content", "Tell me a long story about experts who route tokens."}}});
  if (remote) {
    // The server applies its template to `story`.
  } else if (chat) {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    messages.push_back({{"role", "user"}, {"content", "Tell me a long story about experts who route tokens."}});
    prompt = chat->render(messages, true).ids;
  } else {
    std::mt19937 rng(7);
    for (int i = 0; i < 64; ++i) prompt.push_back(int32_t(rng() % uint32_t(host.model().spec->vocab_size)));
  }

  // One answer through the host; the UI thread sleeps in its event loop as in the app (a
  // processEvents polling loop would keep one of the cores busy and take it from the engine).
  struct Measure {
    double decode_tokens = 0, decode_seconds = 0, ui_cpu = 0, wall = 0;
  };
  auto answer = [&](uint64_t seed) {
    const double cpu0 = thread_cpu_seconds();
    const auto wall0 = Clock::now();
    GenerationRequest r;
    if (remote) r.messages_json = story.dump();
    else r.prompt_ids = prompt;
    r.sampling.max_tokens = o.tokens;
    r.sampling.temperature = 0.8;
    r.sampling.top_p = 1.0;
    // A random model's next-token distribution is flat: without a top-k the sampler would sort
    // most of the vocabulary on one thread every token, leaving the other core free for the UI.
    r.sampling.top_k = chat ? 0 : 50;
    r.seed = seed;
    r.stop_at_eos = false;
    QEventLoop loop;
    GenerationSummary summary;
    const auto done = QObject::connect(&host, &EngineHost::generationFinished, &loop, [&](const GenerationSummary& s) {
      summary = s;
      loop.quit();
    });
    const auto failed = QObject::connect(&host, &EngineHost::generationFailed, &loop, [&](const QString& m) {
      std::fprintf(stderr, "moescope-views-bench: the answer failed: %s\n", qPrintable(m));
      loop.quit();
    });
    if (host.generate(std::move(r))) loop.exec();
    QObject::disconnect(done);
    QObject::disconnect(failed);
    app.processEvents();
    Measure m;
    m.decode_tokens = std::max(0, summary.generated_tokens - 1);
    m.decode_seconds = summary.tokens_per_second > 0 ? m.decode_tokens / summary.tokens_per_second : 0.0;
    m.ui_cpu = thread_cpu_seconds() - cpu0;
    m.wall = std::chrono::duration<double>(Clock::now() - wall0).count();
    return m;
  };
  // Lets the UI settle (first layouts and paints) outside the measured answers.
  auto settle = [&] {
    const auto until = Clock::now() + std::chrono::milliseconds(300);
    while (Clock::now() < until) app.processEvents(QEventLoop::AllEvents, 20);
  };

  // Every registered view in docks of one shown window, as in the app with all views open.
  QMainWindow* window = nullptr;
  TraceModel* traces = nullptr;
  double replot_ms = 0;
  int replots = 0;
  std::vector<ViewFrame*> views;
  auto open_views = [&] {
    window = new QMainWindow;
    window->resize(1600, 1000);
    window->setCentralWidget(new QWidget);
    traces = new TraceModel(window);  // the views' data model, as the app's window makes it
    traces->connectFeed(&feed);
    traces->setModel(host.model());
    ViewContext context;
    context.feed = &feed;
    context.traces = traces;
    context.host = &host;
    for (const ViewFactory& f : registry.factories()) {
      auto* dock = new QDockWidget(f.title, window);
      dock->setObjectName(f.id);
      QWidget* w = f.create(context, dock);
      dock->setWidget(w);
      window->addDockWidget(Qt::RightDockWidgetArea, dock);
      if (auto* v = qobject_cast<ViewFrame*>(w)) views.push_back(v);
    }
    for (QCustomPlot* plot : window->findChildren<QCustomPlot*>())
      QObject::connect(plot, &QCustomPlot::afterReplot, plot, [plot, &replot_ms, &replots] {
        replot_ms += plot->replotTime();
        ++replots;
      });
    window->show();
    settle();
  };
  // No views at all: the windows, the views and their shared data model are deleted.
  auto close_views = [&] {
    delete window;  // its views and their trace model with it
    window = nullptr;
    traces = nullptr;
    views.clear();
    settle();
  };

  // Rounds in the order none, all, all, none so slow drifts of the machine's load cancel out.
  Measure none_total, all_total;
  std::vector<double> ratios, control;  // control: the two no-view answers of a round (the noise floor)
  auto add = [](Measure& a, const Measure& b) {
    a.decode_tokens += b.decode_tokens;
    a.decode_seconds += b.decode_seconds;
    a.ui_cpu += b.ui_cpu;
    a.wall += b.wall;
  };
  answer(1);  // warm-up (page in weights, fill caches)
  for (int r = 0; r < o.rounds; ++r) {
    Measure n1 = answer(100 + r);
    open_views();
    Measure a1 = answer(200 + r);
    Measure a2 = answer(300 + r);
    int redraws = 0;
    QStringList per_view;
    for (auto* v : views) {
      redraws += v->refreshCount();
      per_view << QStringLiteral("%1 %2×/%3 ms").arg(v->viewId()).arg(v->refreshCount()).arg(1000 * v->refreshSeconds(), 0, 'f', 0);
    }
    std::printf("  refresh() per view: %s; %d replots, %.0f ms\n", qPrintable(per_view.join(QStringLiteral(", "))), replots, replot_ms);
    replots = 0;
    replot_ms = 0;
    close_views();
    Measure n2 = answer(400 + r);
    Measure rn, ra;
    add(rn, n1), add(rn, n2), add(ra, a1), add(ra, a2);
    add(none_total, rn), add(all_total, ra);
    const double tn = rn.decode_tokens / rn.decode_seconds, ta = ra.decode_tokens / ra.decode_seconds;
    ratios.push_back(ta / tn);
    control.push_back(std::abs((n2.decode_tokens / n2.decode_seconds) / (n1.decode_tokens / n1.decode_seconds) - 1.0));
    std::printf("round %d: decode %.1f tokens/s without views, %.1f with all %d views open (%+.1f %%; %d redraws; "
                "UI thread CPU %.0f ms vs %.0f ms)\n",
                r + 1, tn, ta, int(registry.factories().size()), 100.0 * (ta / tn - 1.0), redraws,
                1000 * ra.ui_cpu, 1000 * rn.ui_cpu);
    std::fflush(stdout);
  }
  if (o.rounds > 0) {
  std::sort(ratios.begin(), ratios.end());
  const double tn = none_total.decode_tokens / none_total.decode_seconds;
  const double ta = all_total.decode_tokens / all_total.decode_seconds;
  std::printf("all rounds: decode %.1f tokens/s without views, %.1f with all views (%+.2f %%); median of the rounds' "
              "ratios %+.2f %%\n",
              tn, ta, 100.0 * (ta / tn - 1.0), 100.0 * (ratios[ratios.size() / 2] - 1.0));
  std::sort(control.begin(), control.end());
  std::printf("noise floor: the two no-view answers of a round differ by %.1f %% (median)\n", 100.0 * control[control.size() / 2]);
  std::printf("UI thread busy: %.2f %% of the wall time without views, %.2f %% with all views\n",
              100.0 * none_total.ui_cpu / none_total.wall, 100.0 * all_total.ui_cpu / all_total.wall);
  }

  if (!o.screenshots.isEmpty()) {
    QDir().mkpath(o.screenshots);
    open_views();
    answer(7);
    settle();
    for (auto* v : views) {
      auto* dock = qobject_cast<QDockWidget*>(v->parentWidget());
      if (dock) dock->setFloating(true), dock->resize(960, 600);
      app.processEvents();
      v->refreshNow();
      app.processEvents();
      const QString path = o.screenshots + QStringLiteral("/view-%1.png").arg(v->viewId());
      v->grab().save(path);
      std::printf("saved %s\n", qPrintable(path));
    }
    close_views();
  }
  return 0;
}
