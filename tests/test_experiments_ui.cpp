// Routing experiments in the desktop app (ui/experiments): the anatomy view on the shipped
// presets, an intervention set in the panel reaching the chat's generation through the real main
// window and engine worker, compare with/without end to end, and corpus analysis with progress,
// CSV export and cancel, on the bundled teaching model. Offscreen; waits with QTRY_*.
#include <QDir>
#include <QFile>
#include <QLabel>
#include <QProgressBar>
#include <QSignalSpy>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QTest>
#include <nlohmann/json.hpp>

#include "engine_controller.h"
#include "main_window.h"
#include "moescope/model_spec.h"
#include "ui/experiments/active_intervention.h"
#include "ui/experiments/anatomy_view.h"
#include "ui/experiments/corpus_view.h"
#include "ui/experiments/experiments_runner.h"
#include "ui/experiments/register_experiments.h"
#include "ui/experiments/routing_panel.h"

using namespace moescope::ui;

namespace {

constexpr int kTimeout = 120000;
const QString kModel = QStringLiteral(MOESCOPE_SOURCE_DIR "/resources/models/moescope-tiny");

void write_file(const QString& path, const QString& text) {
  QFile f(path);
  QVERIFY(f.open(QIODevice::WriteOnly));
  f.write(text.toUtf8());
}

}  // namespace

class TestExperimentsUi : public QObject {
  Q_OBJECT

private slots:
  void anatomy_presets();
  void intervention_reaches_generation();
  void compare_with_without();
  void corpus_analysis();
  void corpus_cancel();
};

void TestExperimentsUi::anatomy_presets() {
  AnatomyView view(nullptr);
  QVERIFY(view.showPreset(QStringLiteral("deepseek-r1")));
  QTableWidget* t = view.paramsTable();
  const int total_row = t->rowCount() - 1;
  QCOMPARE(t->item(total_row, 0)->text(), QStringLiteral("Total"));
  QCOMPARE(t->item(total_row, 1)->text(), QStringLiteral("671.0B"));
  QVERIFY(view.summaryText().contains(QStringLiteral("MLA")));
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
  for (const char* p : {"deepseek-v2-lite", "qwen3-30b-a3b", "olmoe-1b-7b", "mixtral-8x7b", "gpt-oss-20b", "gpt-oss-120b"})
    QVERIFY2(view.showPreset(QString::fromLatin1(p)), p);
  // A bare config.json, and the CSV export.
  QVERIFY(view.openConfig(kModel + QStringLiteral("/config.json")));
  QTemporaryDir dir;
  QVERIFY(view.exportCsv(dir.filePath(QStringLiteral("anatomy.csv"))));
  QFile csv(dir.filePath(QStringLiteral("anatomy.csv")));
  QVERIFY(csv.open(QIODevice::ReadOnly));
  QVERIFY(csv.readAll().startsWith("component,total_params,active_params"));
}

void TestExperimentsUi::intervention_reaches_generation() {
  QTemporaryDir dir;
  register_experiments();
  moescope::desktop::AppOptions o;
  o.model_dir = kModel;
  o.backend = QStringLiteral("cpu");
  o.data_dir = dir.path();
  o.settings_file = dir.filePath(QStringLiteral("settings.ini"));
  moescope::desktop::MainWindow w(o);
  attach_experiments(w, [&w](const moescope::RoutingControl& c) { w.engine()->setRoutingControl(c); });
  QSignalSpy ready(&w, &moescope::desktop::MainWindow::modelReady);
  w.show();
  QTRY_VERIFY_WITH_TIMEOUT(ready.count() > 0, kTimeout);
  auto* panel = w.findChild<RoutingPanel*>();
  QVERIFY(panel);
  const moescope::ModelSpec spec = moescope::load_model_spec(kModel.toStdString());
  const int n = spec.moe.router.n_experts;
  QVERIFY(n >= 4);
  std::vector<int> off;
  for (int e = 0; e < n / 2; ++e) off.push_back(e);
  panel->disableExperts(-1, off);
  QVERIFY(ActiveIntervention::instance().active());
  QVERIFY(!w.engine()->routingControl().empty());
  auto* indicator = w.findChild<QLabel*>(QStringLiteral("intervention-status"));
  QVERIFY(indicator && !indicator->isHidden());

  QSignalSpy done(w.engine(), &moescope::desktop::EngineController::generationFinished);
  w.send(QStringLiteral("Hello"));
  QTRY_VERIFY_WITH_TIMEOUT(done.count() > 0, kTimeout);
  const auto summary = done.at(0).at(0).value<GenerationSummary>();
  const auto trace = nlohmann::json::parse(summary.trace_json.toStdString());
  int routes = 0;
  for (const auto& t : trace["tokens"])
    for (const auto& r : t["routes"])
      for (int e : r["experts"]) {
        ++routes;
        QVERIFY2(e >= n / 2, "a disabled expert was selected");
      }
  QVERIFY(routes > 0);

  panel->reset();  // one click: nothing active any more
  QVERIFY(!ActiveIntervention::instance().active());
  QVERIFY(w.engine()->routingControl().empty());
  QVERIFY(indicator->isHidden());
}

void TestExperimentsUi::compare_with_without() {
  ExperimentsRunner runner;
  RoutingPanel panel(nullptr, &runner);
  const moescope::ModelSpec spec = moescope::load_model_spec(kModel.toStdString());
  panel.setModel(kModel, spec.moe_layer_indices(), spec.moe.router.n_experts, spec.moe.router.top_k,
                 spec.moe.router.correction_bias);
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
  panel.reset();
}

void TestExperimentsUi::corpus_analysis() {
  QTemporaryDir corpus, out;
  write_file(corpus.filePath(QStringLiteral("code.txt")), QStringLiteral("int main() { return 0; }\n").repeated(20));
  write_file(corpus.filePath(QStringLiteral("prose.txt")),
             QStringLiteral("The experts of a mixture share the work of every token. ").repeated(20));
  ExperimentsRunner runner;
  CorpusView view(nullptr, &runner);
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
  ExperimentsRunner runner;
  CorpusView view(nullptr, &runner);
  view.setModelDir(kModel);
  view.setCorpus(corpus.filePath(QStringLiteral("long.txt")));
  QSignalSpy finished(&view, &CorpusView::finished);
  view.start();
  view.cancel();
  QTRY_VERIFY_WITH_TIMEOUT(finished.count() > 0, kTimeout);
  QVERIFY(view.outcome().cancelled);
  QVERIFY(!view.outcome().analysis);
}

QTEST_MAIN(TestExperimentsUi)
#include "test_experiments_ui.moc"
