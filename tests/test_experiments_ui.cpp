// Routing experiments in the desktop app (ui/experiments): the anatomy view on the shipped
// presets, an intervention set in the panel reaching the chat's generation through the real main
// window and engine host, compare with/without end to end, corpus analysis with progress, CSV
// export and cancel, and the chat and the experiments sharing one loaded model, on the bundled
// teaching model. Offscreen; waits with QTRY_*.
#include <QApplication>
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QProgressBar>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <nlohmann/json.hpp>

#include <QScrollArea>
#include <qcustomplot.h>

#include "main_window.h"
#include "moescope/anatomy.h"
#include "moescope/model_spec.h"
#include "moescope/model_weights.h"
#include "moescope/weight_footprint.h"
#include "moescope/resources.h"
#include "ui/guide.h"
#include "ui/experiments/active_intervention.h"
#include "ui/experiments/anatomy_view.h"
#include "ui/experiments/corpus_view.h"
#include "ui/engine_feed.h"
#include "ui/engine_host.h"
#include "ui/experiments/register_experiments.h"
#include "ui/experiments/routing_panel.h"
#include "ui/view_registry.h"
#include "ui/views/trace_model.h"

using namespace moescope::ui;

namespace {

constexpr int kTimeout = 120000;
const QString kModel = QStringLiteral(MOESCOPE_SOURCE_DIR "/resources/models/moescope-tiny");

void write_file(const QString& path, const QString& text) {
  QFile f(path);
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write(text.toUtf8());
}

// A host with the teaching model loaded on the CPU, as the app's window makes it.
struct LoadedHost {
  EngineFeed feed;
  EngineHost host{&feed};
  LoadedHost() {
    QSignalSpy loaded(&host, &EngineHost::modelLoaded);
    host.loadModel(kModel, QStringLiteral("cpu"));
    [&] { QTRY_VERIFY_WITH_TIMEOUT(loaded.count() > 0, kTimeout); }();
  }
};

}  // namespace

class TestExperimentsUi : public QObject {
  Q_OBJECT

private slots:
  void anatomy_presets();
  void anatomy_loaded_file_row();
  void anatomy_per_architecture();
  void anatomy_docked_without_overlap();
  void experiments_learn_more();
  void intervention_reaches_generation();
  void compare_with_without();
  void corpus_analysis();
  void corpus_cancel();
  void one_load_for_chat_and_experiments();
};

// A shown window on the chat test model (CPU, its files in `dir`) once the model is ready; null
// when it did not get ready in time.
static std::unique_ptr<moescope::desktop::MainWindow> ready_window(const QTemporaryDir& dir, const ViewRegistry& views) {
  moescope::desktop::AppOptions o;
  o.model_dir = kModel;
  o.backend = QStringLiteral("cpu");
  o.data_dir = dir.path();
  o.settings_file = dir.filePath(QStringLiteral("settings.ini"));
  auto w = std::make_unique<moescope::desktop::MainWindow>(o, views);
  QSignalSpy ready(w.get(), &moescope::desktop::MainWindow::modelReady);
  w->show();
  if (!QTest::qWaitFor([&] { return ready.count() > 0; }, kTimeout)) return nullptr;
  return w;
}

// The loaded model's own weights come first in the memory table (its file's quantisation), from
// the footprint the engine reports; a preset shows only the formats.
void TestExperimentsUi::anatomy_loaded_file_row() {
  auto model = moescope::load_model(kModel.toStdString());
  auto fp = std::make_shared<const moescope::WeightFootprint>(moescope::weight_footprint(model->spec, model->weights));
  QVERIFY(fp->total_bytes > 0 && fp->bytes_by_type.count("F32"));
  AnatomyView view(nullptr);
  view.setLoadedModel(kModel, fp);
  QTableWidget* m = view.memoryTable();
  QCOMPARE(m->rowCount(), int(moescope::weight_formats().size()) + 1);
  QCOMPARE(m->item(0, 0)->text(), QStringLiteral("This file (32.00 bits)"));  // an F32 checkpoint
  QCOMPARE(m->item(0, 1)->text(), QString::fromStdString(moescope::format_bytes_iec(double(fp->total_bytes))));
  QVERIFY(m->item(0, 1)->toolTip().contains(QStringLiteral("F32 100 %")));
  QVERIFY(view.showPreset(QStringLiteral("deepseek-r1")));
  QCOMPARE(m->rowCount(), int(moescope::weight_formats().size()));
  QVERIFY(m->item(0, 0)->text().startsWith(QStringLiteral("BF16")));
}

void TestExperimentsUi::anatomy_presets() {
  AnatomyView view(nullptr);
  QVERIFY(view.showPreset(QStringLiteral("deepseek-r1")));
  QTableWidget* t = view.paramsTable();
  const int total_row = t->rowCount() - 1;
  QCOMPARE(t->item(total_row, 0)->text(), QStringLiteral("Total"));
  QCOMPARE(t->item(total_row, 1)->text(), QStringLiteral("671.0B"));
  QVERIFY(view.summaryText().contains(QStringLiteral("MLA")));
  // The same KV figure and default context as `moescope-cli inspect` (moescope/anatomy.h).
  QVERIFY2(view.summaryText().contains(QStringLiteral("68.6 KiB per token in BF16 for all 61 attention layers")),
           qPrintable(view.summaryText()));
  QCOMPARE(view.contextTokens(), 163840);  // DeepSeek-R1's max_position_embeddings
  // The memory calculator: every weight format, DeepSeek-R1's 671B at Q4_K_M and IQ1_S among them
  // (671.0e9 × 4.85 / 8 bytes = 379 GiB; × 1.5625 / 8 = 122 GiB).
  QCOMPARE(view.memoryTable()->rowCount(), int(moescope::weight_formats().size()));
  QStringList formats;
  for (int r = 0; r < view.memoryTable()->rowCount(); ++r) formats << view.memoryTable()->item(r, 0)->text();
  QVERIFY2(formats.contains(QStringLiteral("Q4_K_M (4.85 bits)")) && formats.contains(QStringLiteral("IQ1_S (1.563 bits)")) &&
               formats.contains(QStringLiteral("BF16 (16 bits)")),
           qPrintable(formats.join(QStringLiteral(", "))));
  const int q4 = int(formats.indexOf(QStringLiteral("Q4_K_M (4.85 bits)")));
  QCOMPARE(view.memoryTable()->item(q4, 1)->text(), QStringLiteral("379 GiB"));
  view.setContext(4096);
  const QString kv_4k = view.memoryTable()->item(0, 2)->text(), total_4k = view.memoryTable()->item(0, 3)->text();
  view.setContext(131072);
  QVERIFY(view.memoryTable()->item(0, 2)->text() != kv_4k);
  QVERIFY(view.memoryTable()->item(0, 3)->text() != total_4k);
  if (const QString shots = qEnvironmentVariable("MOESCOPE_SHOTS"); !shots.isEmpty()) {
    view.resize(960, 600);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QVERIFY(view.grab().save(QDir(shots).filePath(QStringLiteral("anatomy-r1.png"))));
  }
  for (const char* p : {"deepseek-v2-lite", "qwen3-30b-a3b", "olmoe-1b-7b", "mixtral-8x7b", "gpt-oss-20b", "gpt-oss-120b",
                        "glm-4.5-air", "glm-4.7-flash"})
    QVERIFY2(view.showPreset(QString::fromLatin1(p)), p);
  // A bare config.json, and the CSV export.
  QVERIFY(view.openConfig(kModel + QStringLiteral("/config.json")));
  QTemporaryDir dir;
  QVERIFY(view.exportCsv(dir.filePath(QStringLiteral("anatomy.csv"))));
  QFile csv(dir.filePath(QStringLiteral("anatomy.csv")));
  QVERIFY(csv.open(QIODevice::ReadOnly));
  QVERIFY(csv.readAll().startsWith("component,total_params,active_params"));
}

// Issue 17: the anatomy says what each architecture's layers keep and how its router routes:
// gpt-oss' sliding windows and attention sinks, Qwen3.5-MoE's share of linear-attention layers
// (and their parameters in a row of their own), DeepSeek-R1's MLA latent and group-limited router.
void TestExperimentsUi::anatomy_per_architecture() {
  AnatomyView view(nullptr);
  QVERIFY(view.showPreset(QStringLiteral("gpt-oss-20b")));
  QString text = view.summaryText();
  QVERIFY2(text.contains(QStringLiteral("12 × sliding window of 128 tokens, 12 × full attention")), qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("attention sinks")), qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("softmax after top-k")), qPrintable(text));
  QVERIFY(!text.contains(QStringLiteral("linear attention (Gated DeltaNet)")));

  QVERIFY(view.showPreset(QStringLiteral("qwen3.5-35b-a3b")));
  text = view.summaryText();
  QVERIFY2(text.contains(QStringLiteral("linear attention (Gated DeltaNet) in 30 of 40 layers (75 %)")), qPrintable(text));
  QVERIFY(!text.contains(QStringLiteral("attention sinks")));
  const moescope::ModelSpec spec = moescope::load_model_spec(moescope::preset_path("qwen3.5-35b-a3b"));
  const moescope::ParamCounts c = moescope::count_params(spec);
  QTableWidget* t = view.paramsTable();
  int linear_row = -1;
  qint64 sum = 0;
  for (int r = 0; r + 1 < t->rowCount(); ++r) {
    if (t->item(r, 0)->text() == QStringLiteral("Linear attention")) linear_row = r;
    sum += t->item(r, 1)->data(Qt::UserRole).toLongLong();
  }
  QVERIFY(linear_row >= 0);
  QCOMPARE(t->item(linear_row, 1)->data(Qt::UserRole).toLongLong(), qint64(c.linear_attention));
  QCOMPARE(sum, qint64(c.total));  // the components add up to the total again

  QVERIFY(view.showPreset(QStringLiteral("deepseek-r1")));
  text = view.summaryText();
  QVERIFY2(text.contains(QStringLiteral("61 × MLA latent (512 + 64 values per token)")), qPrintable(text));
  QVERIFY2(text.contains(QStringLiteral("group-limited: keeps the best 4 of 8 groups")), qPrintable(text));
  for (int r = 0; r < view.paramsTable()->rowCount(); ++r)
    QVERIFY(view.paramsTable()->item(r, 0)->text() != QStringLiteral("Linear attention"));
}

// Issue 16: docked at a small size, the anatomy's parts never overlap: the summary is not clipped,
// the parameter table shows its total row above the context row, the memory table comes after it,
// and the plot's legend covers neither the bars nor their labels. A dock smaller than that scrolls.
void TestExperimentsUi::anatomy_docked_without_overlap() {
  for (const QSize size : {QSize(420, 520), QSize(900, 640)}) {
    AnatomyView view(nullptr);
    view.resize(size);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QVERIFY(view.showPreset(QStringLiteral("qwen3.5-35b-a3b")));  // the longest table (ten rows)
    QApplication::processEvents();
    QWidget* content = view.content();
    auto rect_of = [content](QWidget* w) { return QRect(w->mapTo(content, QPoint(0, 0)), w->size()); };
    QLabel* summary = view.summaryLabel();
    QTableWidget* params = view.paramsTable();
    QTableWidget* memory = view.memoryTable();
    auto* context_label = view.findChild<QLabel*>(QStringLiteral("anatomy-context-label"));
    QVERIFY(context_label);
    const std::vector<std::pair<const char*, QRect>> parts = {
        {"summary", rect_of(summary)},       {"params", rect_of(params)},
        {"plot", rect_of(view.plot())},       {"context", rect_of(view.contextBox())},
        {"context label", rect_of(context_label)}, {"memory", rect_of(memory)}};
    for (size_t i = 0; i < parts.size(); ++i)
      for (size_t j = i + 1; j < parts.size(); ++j)
        QVERIFY2(!parts[i].second.intersects(parts[j].second),
                 qPrintable(QStringLiteral("%1 x %2: %3 overlaps %4").arg(size.width()).arg(size.height()).arg(parts[i].first, parts[j].first)));
    // Nothing sticks out at the right: the content is as wide as the view (no sideways scrolling),
    // the learn-more link included.
    QVERIFY2(content->width() <= view.width(), qPrintable(QStringLiteral("content %1 wide in a %2 wide view").arg(content->width()).arg(view.width())));
    auto* more = view.findChild<QLabel*>(QStringLiteral("learnMore"));
    QVERIFY(more);
    QVERIFY(QRect(QPoint(0, 0), view.size()).contains(QRect(more->mapTo(&view, QPoint(0, 0)), more->size())));
    // The summary has the height its wrapped text needs.
    QVERIFY2(summary->height() >= summary->heightForWidth(summary->width()),
             qPrintable(QStringLiteral("%1 < %2").arg(summary->height()).arg(summary->heightForWidth(summary->width()))));
    // The total row lies inside the table's viewport, above the context row.
    const QRect total = params->visualItemRect(params->item(params->rowCount() - 1, 0));
    QVERIFY2(params->viewport()->rect().contains(total),
             qPrintable(QStringLiteral("total row %1,%2 %3x%4 outside the viewport %5x%6 (table %7 high, minimum %8, rows %9)")
                            .arg(total.x()).arg(total.y()).arg(total.width()).arg(total.height())
                            .arg(params->viewport()->width()).arg(params->viewport()->height())
                            .arg(params->height()).arg(params->minimumHeight()).arg(params->rowCount())));
    QVERIFY(QRect(params->viewport()->mapTo(content, total.topLeft()), total.size()).bottom() < rect_of(view.contextBox()).top());
    // The legend is outside the axis rect, its tick labels (the components) included.
    QCustomPlot* plot = view.plot();
    plot->replot(QCustomPlot::rpImmediateRefresh);
    QVERIFY(plot->legend->visible());
    QVERIFY(!plot->legend->outerRect().intersects(plot->axisRect()->outerRect()));
    if (const QString shots = qEnvironmentVariable("MOESCOPE_SHOTS"); !shots.isEmpty())
      QVERIFY(view.grab().save(QDir(shots).filePath(QStringLiteral("anatomy-docked-%1x%2.png").arg(size.width()).arg(size.height()))));
    // Smaller than its parts need: the view scrolls.
    if (size.width() < 500) {
      auto* scroll = view.findChild<QScrollArea*>(QStringLiteral("anatomy-scroll"));
      QVERIFY(scroll);
      QVERIFY(content->height() >= content->minimumSizeHint().height());
    }
  }
}

// Issue 16: the experiments' docks (anatomy, routing experiments, corpus analysis) have a "learn
// more" link like every view's, opening the guide at their page.
void TestExperimentsUi::experiments_learn_more() {
  QTemporaryDir dir;
  ViewRegistry views;
  register_experiments(views);
  const auto window = ready_window(dir, views);
  QVERIFY(window);
  moescope::desktop::MainWindow& w = *window;
  for (const QString id : {QStringLiteral("anatomy"), QStringLiteral("experiments"), QStringLiteral("corpus")}) {
    const QString page = guide_page_for_view(id);
    QVERIFY2(!page.isEmpty() && guide_page(page), qPrintable(id));
    auto* more = w.viewWidget(id)->findChild<QLabel*>(QStringLiteral("learnMore"));
    QVERIFY2(more, qPrintable(id));
    QVERIFY(w.showView(id));
    QTRY_VERIFY(more->isVisible());
    if (w.guide()) {
      w.guide()->showPage(page == QStringLiteral("moe") ? QStringLiteral("mla") : QStringLiteral("moe"));
      w.guide()->hide();
    }
    QTest::mouseClick(more, Qt::LeftButton, {}, more->rect().center());
    QTRY_VERIFY(w.guide() && w.guide()->isVisible());
    QCOMPARE(w.guide()->currentPage(), page);
  }
}

void TestExperimentsUi::intervention_reaches_generation() {
  QTemporaryDir dir;
  ViewRegistry views;
  register_experiments(views);
  const auto window = ready_window(dir, views);
  QVERIFY(window);
  moescope::desktop::MainWindow& w = *window;
  auto* panel = qobject_cast<RoutingPanel*>(w.viewWidget(QStringLiteral("experiments")));
  QVERIFY(panel);
  const moescope::ModelSpec spec = moescope::load_model_spec(kModel.toStdString());
  const int n = spec.moe.router.n_experts;
  QVERIFY(n >= 4);
  std::vector<int> off;
  for (int e = 0; e < n / 2; ++e) off.push_back(e);
  panel->disableExperts(-1, off);
  QVERIFY(w.intervention()->active());
  auto* indicator = w.findChild<QLabel*>(QStringLiteral("intervention-status"));
  QVERIFY(indicator && !indicator->isHidden());

  QSignalSpy done(w.engine(), &EngineHost::generationFinished);
  w.send(QStringLiteral("Hello"));
  QTRY_VERIFY_WITH_TIMEOUT(done.count() > 0, kTimeout);
  const auto summary = done.at(0).at(0).value<GenerationSummary>();
  QVERIFY(summary.trace);
  const moescope::RoutingTrace& trace = *summary.trace;
  int routes = 0;
  for (size_t t = 0; t < trace.size(); ++t)
    for (int m = 0; m < trace.n_moe_layers(); ++m)
      for (int slot = 0; slot < trace.top_k(); ++slot)
        if (const int e = trace.expert(t, m, slot); e >= 0) {
          ++routes;
          QVERIFY2(e >= n / 2, "a disabled expert was selected");
        }
  QVERIFY(routes > 0);
  // The views' trace grew from the same segments: the same routing, token for token.
  QCOMPARE(w.traces()->trace().size(), trace.size());
  QVERIFY(w.traces()->trace() == trace);

  panel->reset();  // one click: nothing active any more
  QVERIFY(!w.intervention()->active());
  QVERIFY(indicator->isHidden());
}

void TestExperimentsUi::compare_with_without() {
  LoadedHost h;
  ActiveIntervention intervention;
  RoutingPanel panel(&h.feed, &h.host, &intervention);
  const moescope::ModelSpec spec = moescope::load_model_spec(kModel.toStdString());
  panel.setModel(kModel, spec.moe_layer_indices(), spec.moe.router.n_experts, spec.moe.router.top_k,
                 spec.moe.router.correction_bias, spec.moe.shared != moescope::SharedExperts::None);
  // Disable the top half of the experts everywhere: at least the top expert of the first token.
  std::vector<int> off;
  for (int e = 0; e < spec.moe.router.n_experts / 2; ++e) off.push_back(e);
  panel.disableExperts(-1, off);
  panel.setPrompt(QStringLiteral("What do the experts do?"));
  QSignalSpy finished(&panel, &RoutingPanel::compareFinished);
  panel.startCompare();
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() > 0, kTimeout);
  const CompareOutcome& o = panel.lastOutcome();
  QVERIFY2(o.error.isEmpty(), qPrintable(o.error));
  QVERIFY(!o.original_text.isEmpty());
  QVERIFY(o.route_divergence_pos >= 0);
  QVERIFY(o.route_divergence_layer >= 0);
  QVERIFY(!o.changes.empty());
  auto* status = panel.findChild<QLabel*>(QStringLiteral("compare-status"));
  QVERIFY(status->text().contains(QStringLiteral("first diverged")));
  QCOMPARE(panel.findChild<QTableWidget*>(QStringLiteral("compare-tokens"))->rowCount(), int(o.changes.size()));
  // MOESCOPE_SHOTS=DIR: the result as docs/screenshots/compare.png shows it.
  if (const QString shots = qEnvironmentVariable("MOESCOPE_SHOTS"); !shots.isEmpty()) {
    panel.resize(960, 760);
    panel.show();
    QVERIFY(QTest::qWaitForWindowExposed(&panel));
    QVERIFY(panel.grab().save(QDir(shots).filePath(QStringLiteral("compare.png"))));
  }
  // Every routed expert of one layer off: the panel says that only the shared expert runs there.
  std::vector<int> all;
  for (int e = 0; e < spec.moe.router.n_experts; ++e) all.push_back(e);
  const int layer = spec.moe_layer_indices().front();
  panel.disableExperts(layer, all);
  auto* indicator = panel.findChild<QLabel*>(QStringLiteral("intervention-indicator"));
  QVERIFY2(indicator->text().contains(QStringLiteral("Every routed expert of layer %1 is disabled: only the shared expert runs there").arg(layer)),
           qPrintable(indicator->text()));
  panel.reset();
}

void TestExperimentsUi::corpus_analysis() {
  QTemporaryDir corpus, out;
  write_file(corpus.filePath(QStringLiteral("code.txt")), QStringLiteral("int main() { return 0; }\n").repeated(20));
  write_file(corpus.filePath(QStringLiteral("prose.txt")),
             QStringLiteral("The experts of a mixture share the work of every token. ").repeated(20));
  LoadedHost h;
  CorpusView view(&h.feed, &h.host);
  // Before the first run the view says what to do, and every panel has a label.
  QVERIFY(view.findChild<QLabel*>(QStringLiteral("corpus-status"))->text().startsWith(QStringLiteral("Choose a text file")));
  for (auto* t : view.findChildren<QTableWidget*>()) QVERIFY(t->columnCount() > 0 && t->horizontalHeaderItem(0));
  view.setModelDir(kModel);
  view.setCorpus(corpus.path());
  QSignalSpy finished(&view, &CorpusView::finished);
  view.start();
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() > 0, kTimeout);
  QVERIFY2(view.outcome().error.isEmpty(), qPrintable(view.outcome().error));
  QCOMPARE(view.progress()->value(), 100);
  QCOMPARE(int(view.outcome().analysis->domains.size()), 2);
  QVERIFY(view.exportCsv(out.path()));
  if (const QString shots = qEnvironmentVariable("MOESCOPE_SHOTS"); !shots.isEmpty()) {
    view.resize(960, 640);
    view.show();
    QVERIFY(QTest::qWaitForWindowExposed(&view));
    QVERIFY(view.grab().save(QDir(shots).filePath(QStringLiteral("corpus.png"))));
  }
  for (const char* f : {"load.csv", "divergence.csv", "specialisation.csv"})
    QVERIFY2(QFile::exists(out.filePath(QString::fromLatin1(f))), f);
}

void TestExperimentsUi::corpus_cancel() {
  QTemporaryDir corpus;
  write_file(corpus.filePath(QStringLiteral("long.txt")),
             QStringLiteral("A long text that takes a while to analyse, window after window. ").repeated(2000));
  LoadedHost h;
  CorpusView view(&h.feed, &h.host);
  view.setModelDir(kModel);
  view.setCorpus(corpus.filePath(QStringLiteral("long.txt")));
  QSignalSpy finished(&view, &CorpusView::finished);
  view.start();
  view.cancel();
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() > 0, kTimeout);
  QVERIFY(view.outcome().cancelled);
  QVERIFY(!view.outcome().analysis);
}

// The chat, a comparison and a corpus analysis all run on the one model the host loaded: one
// checkpoint read, two sessions (the chat's and the experiments', on the same weights), and the
// chat's cache untouched by the experiments (its next answer re-uses the whole conversation).
void TestExperimentsUi::one_load_for_chat_and_experiments() {
  LoadedHost h;
  QCOMPARE(h.host.modelLoads(), 1);
  QCOMPARE(h.host.sessions(), 1);
  QSignalSpy done(&h.host, &EngineHost::generationFinished);
  SamplingSettings greedy;
  greedy.temperature = 0.0;
  greedy.max_tokens = 6;
  nlohmann::ordered_json messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", "Hello"}}});
  QVERIFY(h.host.generate(messages, greedy, 1));
  QTRY_VERIFY_WITH_TIMEOUT(done.count() == 1, kTimeout);
  const auto first = done.at(0).at(0).value<GenerationSummary>();

  QSignalSpy compared(&h.host, &EngineHost::compared);
  CompareRequest c;
  c.prompt = QStringLiteral("What is 23+58?");
  c.control.top_k = 1;
  c.max_tokens = 4;
  h.host.compare(c);
  QTRY_VERIFY_WITH_TIMEOUT(compared.count() == 1, kTimeout);
  QVERIFY2(compared.at(0).at(0).value<CompareOutcome>().error.isEmpty(),
           qPrintable(compared.at(0).at(0).value<CompareOutcome>().error));

  QTemporaryDir corpus;
  write_file(corpus.filePath(QStringLiteral("a.txt")), QStringLiteral("Experts share the work. ").repeated(10));
  QSignalSpy analysed(&h.host, &EngineHost::analysed);
  AnalysisRequest a;
  a.corpus = corpus.path();
  h.host.analyze(a);
  QTRY_VERIFY_WITH_TIMEOUT(analysed.count() == 1, kTimeout);
  QVERIFY(analysed.at(0).at(0).value<AnalysisOutcome>().error.isEmpty());

  QCOMPARE(h.host.modelLoads(), 1);
  QCOMPARE(h.host.sessions(), 2);
  // The chat's session kept its cache: the follow-up re-uses the first answer's whole prompt.
  messages.push_back({{"role", "assistant"}, {"content", first.text.toStdString()}});
  messages.push_back({{"role", "user"}, {"content", "And then?"}});
  QVERIFY(h.host.generate(messages, greedy, 1));
  QTRY_VERIFY_WITH_TIMEOUT(done.count() == 2, kTimeout);
  const auto second = done.at(1).at(0).value<GenerationSummary>();
  QVERIFY2(second.reused_tokens >= first.prompt_tokens,
           qPrintable(QStringLiteral("%1 reused of a first prompt of %2").arg(second.reused_tokens).arg(first.prompt_tokens)));
}

QTEST_MAIN(TestExperimentsUi)
#include "test_experiments_ui.moc"
