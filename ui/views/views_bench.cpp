// moescope-views-bench: what the views cost generation. Runs answers on a worker thread through the
// path the desktop app uses (engine observer → chunks coalesced to ~30 a second → queued to the
// EngineFeed on the UI thread), alternating rounds with every view open in a shown window and with
// none, and prints decode tokens/s for both. With --screenshots DIR it also saves each view's
// widget after the last answer.
//
//   moescope-views-bench --model tests/data/models/chat-tiny [--tokens 1500] [--rounds 3]
//                        [--threads N] [--screenshots DIR]
//   moescope-views-bench --shape resources/presets/olmoe-1b-7b.json [--layers 1] [--tokens 200]
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
#include "ui/view_registry.h"
#include "ui/views/register_views.h"
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

// The worker side: turns engine callbacks into coalesced StreamChunks, posted to the feed.
class FeedObserver : public GenerationObserver {
public:
  FeedObserver(EngineFeed* feed, Session* session) : feed_(feed), session_(session) {}
  void on_token(int32_t, double) override {
    ++pending_.new_tokens;
    ++total_;
    flush_if_due();
  }
  void on_trace(const RoutingTrace& trace, size_t first) override {
    const int L = trace.n_moe_layers(), K = trace.top_k();
    for (size_t i = first; i < trace.size(); ++i) {
      TokenRoute r;
      const TraceToken& t = trace.token(i);
      r.pos = t.pos;
      r.id = t.id;
      r.text = QString::fromStdString(t.text);
      r.prefill = t.phase == Phase::Prefill;
      r.n_moe_layers = L;
      r.top_k = K;
      r.experts.resize(size_t(L) * size_t(K));
      r.weights.resize(size_t(L) * size_t(K));
      for (int m = 0; m < L; ++m)
        for (int s = 0; s < K; ++s) {
          r.experts[size_t(m * K + s)] = int16_t(trace.expert(i, m, s));
          r.weights[size_t(m * K + s)] = trace.weight(i, m, s);
        }
      pending_.routes.push_back(std::move(r));
    }
    flush_if_due();
  }
  void start() {
    total_ = 0;
    start_ = last_ = Clock::now();
    pending_ = {};
  }
  void flush() {
    if (pending_.routes.empty() && pending_.new_tokens == 0) return;
    pending_.total_tokens = total_;
    const double s = std::chrono::duration<double>(Clock::now() - start_).count();
    pending_.tokens_per_second = s > 0 ? total_ / s : 0.0;
    pending_.has_kv = true;
    pending_.kv = session_->backend().kv_stats();
    StreamChunk c = std::move(pending_);
    pending_ = {};
    QMetaObject::invokeMethod(feed_, [feed = feed_, c = std::move(c)] { emit feed->chunk(c); }, Qt::QueuedConnection);
    last_ = Clock::now();
  }

private:
  void flush_if_due() {
    if (Clock::now() - last_ >= std::chrono::milliseconds(33)) flush();
  }
  EngineFeed* feed_;
  Session* session_;
  StreamChunk pending_;
  int total_ = 0;
  Clock::time_point start_, last_;
};

struct Options {
  QString model = QStringLiteral("tests/data/models/chat-tiny");
  int tokens = 1500;
  int rounds = 3;
  int threads = 0;
  QString screenshots;
  QString shape;    // config.json of a synthetic model
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
    else {
      std::fprintf(stderr, "moescope-views-bench: unknown option %s\n", qPrintable(a[i]));
      return 2;
    }
  }

  std::shared_ptr<const Model> model;
  std::optional<ChatFormat> chat;
  if (o.shape.isEmpty()) {
    model = load_model(o.model.toStdString());
    chat.emplace(ChatFormat::from_dir(o.model.toStdString()));
  } else {
    model = make_synthetic_model(load_model_spec(o.shape.toStdString()), o.layers, 1, /*host_storage=*/true);
    o.model = QFileInfo(o.shape).completeBaseName() + QStringLiteral(" shape");
  }
  BackendOptions bo;
  bo.kind = "cpu";
  bo.threads = o.threads;
  if (!chat) bo.context = 64 + o.tokens + 1;
  Session session(model, make_backend(model, bo));
  if (chat) {
    const Tokenizer* tok = &chat->tokenizer();
    session.token_text = [tok](int32_t id) { return tok->decode(std::span<const int32_t>(&id, 1)); };
  } else {
    session.token_text = [](int32_t id) { return "<" + std::to_string(id) + ">"; };
  }

  EngineFeed feed;
  register_views();
  ModelInfo info;
  info.dir = o.shape.isEmpty() ? o.model : o.shape;  // load_model_spec takes a directory or a config file
  info.name = o.shape.isEmpty() ? QDir(o.model).dirName() : o.model;
  info.architecture = QString::fromStdString(model->spec.architecture);
  info.backend = QString::fromStdString(session.backend().name());
  info.context_length = session.backend().context_length();
  info.n_layers = model->spec.n_layers;
  info.n_experts = model->spec.moe.router.n_experts;
  info.top_k = model->spec.moe.router.top_k;
  info.moe_layers = model->spec.moe_layer_indices();
  emit feed.modelChanged(info);

  std::vector<int32_t> prompt;
  if (chat) {
    nlohmann::ordered_json messages = nlohmann::ordered_json::array();
    messages.push_back({{"role", "user"}, {"content", "Tell me a long story about experts who route tokens."}});
    prompt = chat->render(messages, true).ids;
  } else {
    std::mt19937 rng(7);
    for (int i = 0; i < 64; ++i) prompt.push_back(int32_t(rng() % uint32_t(model->spec.vocab_size)));
  }

  // One answer on a worker thread; the UI thread keeps processing chunks meanwhile.
  struct Measure {
    double decode_tokens = 0, decode_seconds = 0, ui_cpu = 0, wall = 0;
  };
  auto answer = [&](uint64_t seed) {
    const double cpu0 = thread_cpu_seconds();
    const auto wall0 = Clock::now();
    session.reset();
    GenerateParams p;
    p.max_tokens = o.tokens;
    p.stop_at_eos = false;
    p.sampling.temperature = 0.8f;
    p.sampling.seed = seed;
    // A random model's next-token distribution is flat: without a top-k the sampler would sort
    // most of the vocabulary on one thread every token, leaving the other core free for the UI.
    if (!chat) p.sampling.top_k = 50;
    emit feed.generationStarted();
    FeedObserver obs(&feed, &session);
    obs.start();
    // The UI thread sleeps in its event loop as in the app (a processEvents polling loop would
    // keep one of the cores busy and take it from the engine).
    QEventLoop loop;
    GenerateResult r;
    std::thread worker([&] {
      r = session.generate(prompt, p, &obs);
      obs.flush();
      QMetaObject::invokeMethod(&loop, &QEventLoop::quit, Qt::QueuedConnection);
    });
    loop.exec();
    worker.join();
    app.processEvents();
    GenerationSummary s;
    s.prompt_tokens = r.prompt_tokens;
    s.reused_tokens = r.reused_tokens;
    s.generated_tokens = int(r.generated.size());
    s.prefill_seconds = r.prefill_seconds;
    s.tokens_per_second = r.decode_steps ? r.decode_steps / r.decode_seconds : 0.0;
    s.kv = session.backend().kv_stats();
    s.trace_json = QString::fromStdString(session.trace().to_json().dump());
    emit feed.generationFinished(s);
    app.processEvents();
    Measure m;
    m.decode_tokens = r.decode_steps;
    m.decode_seconds = r.decode_seconds;
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
  double replot_ms = 0;
  int replots = 0;
  std::vector<ViewFrame*> views;
  auto open_views = [&] {
    window = new QMainWindow;
    window->resize(1600, 1000);
    window->setCentralWidget(new QWidget);
    for (const ViewFactory& f : ViewRegistry::instance().factories()) {
      auto* dock = new QDockWidget(f.title, window);
      dock->setObjectName(f.id);
      QWidget* w = f.create(&feed, dock);
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
    emit feed.modelChanged(info);  // the views' data model is new: tell it the model
    settle();
  };
  // No views at all: the windows, the views and their shared data model are deleted.
  auto close_views = [&] {
    delete window;
    window = nullptr;
    views.clear();
    qDeleteAll(feed.findChildren<QObject*>(QString(), Qt::FindDirectChildrenOnly));
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
                r + 1, tn, ta, int(ViewRegistry::instance().factories().size()), 100.0 * (ta / tn - 1.0), redraws,
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
