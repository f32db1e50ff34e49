// The dock-widget views (ui/views/): each builds, shows the expected values for known traces,
// exports PNG/PDF/CSV whose contents are checked, copes with an empty trace and with a
// 256-expert × 61-layer × 4,000-token trace in a stated time, and follows live stream chunks.
#include <QElapsedTimer>
#include <QFile>
#include <QImage>
#include <QLabel>
#include <QTableWidget>
#include <QTemporaryDir>
#include <QtTest>
#include <QTabWidget>
#include <QTextBlock>
#include <QTextDocument>
#include <cmath>
#include <qcustomplot.h>
#include <nlohmann/json.hpp>
#include <random>

#include "moescope/anatomy.h"
#include "moescope/model_spec.h"
#include "moescope/resources.h"
#include "moescope/route_explain.h"
#include "moescope/routing.h"
#include "moescope/routing_stats.h"
#include "moescope/routing_trace.h"
#include "ui/conversation.h"
#include "ui/conversation_store.h"
#include "ui/engine_feed.h"
#include "ui/guide.h"
#include "ui/view_registry.h"
#include "ui/views/coactivation_view.h"
#include "ui/views/expert_colouring.h"
#include "ui/views/inspector_view.h"
#include "ui/views/kv_view.h"
#include "ui/views/load_view.h"
#include "ui/views/palette.h"
#include "ui/views/performance_view.h"
#include "ui/views/register_views.h"
#include "ui/views/routing_map_view.h"
#include "ui/views/trace_model.h"

using namespace moescope;
using namespace moescope::ui;

namespace {

// 6 tokens (3 prompt, 3 generated), 8 experts, top-2, MoE layers 1 and 3.
//   layer 1: t0 {0:.7, 1:.3} t1 {0:.6, 2:.4} t2 {1:.55, 0:.45} t3 {0:.7, 1:.3} t4 {3:.8, 0:.2} t5 {0:.5, 1:.5}
//   layer 3: t0 {2,3} t1 {2,4} t2 {5,2} t3 {2,3} t4 {6,2} t5 {7,2}
// Layer 1 load: e0 6, e1 4, e2 1, e3 1, e4..e7 0 → mean 1.5, MaxVio 3, dead 4.
RoutingTrace small_trace(bool probs) {
  RoutingTrace t("small", 8, 2, {1, 3});
  const int ids[6][4] = {{0, 1, 2, 3}, {0, 2, 2, 4}, {1, 0, 5, 2}, {0, 1, 2, 3}, {3, 0, 6, 2}, {0, 1, 7, 2}};
  const float w[6][4] = {{.7f, .3f, .6f, .4f}, {.6f, .4f, .5f, .5f}, {.55f, .45f, .9f, .1f},
                         {.7f, .3f, .6f, .4f}, {.8f, .2f, .7f, .3f}, {.5f, .5f, .6f, .4f}};
  const char* text[6] = {"Hello", " world", "\n", " The", " expert", "s"};
  for (int i = 0; i < 6; ++i) {
    TraceToken tok{i, 100 + i, text[i], i < 3 ? Phase::Prefill : Phase::Decode};
    std::vector<float> p(16, 0.0f);
    // Scores: chosen experts first, then 3 runners-up with falling scores.
    for (int m = 0; m < 2; ++m) {
      float* pm = p.data() + m * 8;
      for (int e = 0; e < 8; ++e) pm[e] = 0.01f;
      pm[ids[i][m * 2]] = 0.5f;
      pm[ids[i][m * 2 + 1]] = 0.2f;
      int r = 0;
      for (int e = 0; e < 8 && r < 3; ++e)
        if (e != ids[i][m * 2] && e != ids[i][m * 2 + 1]) pm[e] = 0.15f - 0.05f * float(r++);
    }
    int32_t id32[4];
    for (int k = 0; k < 4; ++k) id32[k] = ids[i][k];
    t.append(tok, id32, w[i], 2, probs ? p.data() : nullptr);
  }
  return t;
}

// The trace a remote server (vLLM, SGLang) gives for small_trace(): the same expert ids in the
// same order of choice, no weights (issue 18).
RoutingTrace ids_only_trace() {
  const RoutingTrace full = small_trace(false);
  RoutingTrace t("remote", full.n_experts(), full.top_k(), full.moe_layers());
  for (size_t i = 0; i < full.size(); ++i) {
    std::vector<int32_t> ids;
    for (int m = 0; m < full.n_moe_layers(); ++m)
      for (int s = 0; s < full.top_k(); ++s) ids.push_back(full.expert(i, m, s));
    t.append(full.token(i), ids.data(), nullptr, full.top_k());
  }
  return t;
}

// Skewed random routing of a DeepSeek-R1-sized model: 256 experts, top-8, 61 layers (3 dense + 58
// MoE would be real; all 61 here to be generous).
RoutingTrace big_trace(size_t n_tokens) {
  std::vector<int> layers(61);
  for (int l = 0; l < 61; ++l) layers[size_t(l)] = l;
  RoutingTrace t("big", 256, 8, layers);
  std::mt19937 rng(7);
  std::vector<double> weights(256);
  for (int e = 0; e < 256; ++e) weights[size_t(e)] = 1.0 / (1.0 + e * 0.05);
  std::discrete_distribution<int> pick(weights.begin(), weights.end());
  std::vector<int32_t> ids(61 * 8);
  std::vector<float> w(61 * 8);
  for (size_t i = 0; i < n_tokens; ++i) {
    for (int m = 0; m < 61; ++m) {
      for (int s = 0; s < 8; ++s) {
        int e;
        do e = (pick(rng) + m * 37) % 256;
        while (std::find(ids.begin() + m * 8, ids.begin() + m * 8 + s, e) != ids.begin() + m * 8 + s);
        ids[size_t(m * 8 + s)] = e;
        w[size_t(m * 8 + s)] = 0.3f / float(s + 1);
      }
    }
    t.append({int32_t(i), int32_t(i % 1000), "tok", i < 200 ? Phase::Prefill : Phase::Decode}, ids.data(), w.data(), 8);
  }
  return t;
}

// RFC 4180: quoted fields may hold commas, quotes ("") and newlines.
QList<QStringList> parse_csv(const QString& path) {
  QFile f(path);
  if (!f.open(QIODevice::ReadOnly)) return {};
  const QString text = QString::fromUtf8(f.readAll());
  QList<QStringList> rows;
  QStringList row;
  QString field;
  bool quoted = false;
  for (int i = 0; i < text.size(); ++i) {
    const QChar c = text[i];
    if (quoted) {
      if (c == QLatin1Char('"') && i + 1 < text.size() && text[i + 1] == QLatin1Char('"')) field += c, ++i;
      else if (c == QLatin1Char('"')) quoted = false;
      else field += c;
    } else if (c == QLatin1Char('"')) {
      quoted = true;
    } else if (c == QLatin1Char(',')) {
      row << field;
      field.clear();
    } else if (c == QLatin1Char('\n')) {
      row << field;
      rows << row;
      row.clear();
      field.clear();
    } else {
      field += c;
    }
  }
  if (!field.isEmpty() || !row.isEmpty()) rows << (row << field);
  return rows;
}

ModelInfo info_for(const RoutingTrace& t) {
  ModelInfo i;
  i.name = QString::fromStdString(t.model());
  i.n_experts = t.n_experts();
  i.top_k = t.top_k();
  i.moe_layers = t.moe_layers();
  i.n_layers = t.moe_layers().empty() ? 0 : t.moe_layers().back() + 1;
  i.backend = QStringLiteral("CPU (test)");
  return i;
}

// The ModelInfo of a shipped preset (configuration only: no weights, no directory).
ModelInfo info_for_preset(const std::string& name) {
  ModelInfo i;
  i.spec = std::make_shared<const ModelSpec>(load_model_spec(preset_path(name)));
  i.name = QString::fromStdString(name);
  i.architecture = QString::fromStdString(i.spec->architecture);
  i.n_layers = i.spec->n_layers;
  i.n_experts = i.spec->moe.router.n_experts;
  i.top_k = i.spec->moe.router.top_k;
  i.moe_layers = i.spec->moe_layer_indices();
  i.backend = QStringLiteral("CPU (test)");
  return i;
}

// Tokens [first, last) of `t` as the engine host publishes them: one immutable trace segment.
std::shared_ptr<const RoutingTrace> segment_of(const RoutingTrace& t, size_t first, size_t last) {
  return std::make_shared<const RoutingTrace>(t.slice(first, last));
}

// The trace model of a feed, as the composition root makes it.
TraceModel* traces_of(EngineFeed& feed) {
  auto* m = new TraceModel(&feed);
  m->connectFeed(&feed);
  return m;
}

ViewContext context_of(EngineFeed& feed, TraceModel* traces) {
  ViewContext c;
  c.feed = &feed;
  c.traces = traces;
  return c;
}

// Every registered view, made on `traces` as the app's window makes them, children of `parent`.
std::vector<ViewFrame*> all_views(EngineFeed& feed, TraceModel* traces, QWidget* parent) {
  ViewRegistry registry;
  register_views(registry);
  std::vector<ViewFrame*> views;
  for (const auto& f : registry.factories()) views.push_back(qobject_cast<ViewFrame*>(f.create(context_of(feed, traces), parent)));
  return views;
}

// Exports the view's current plot and data; checks PNG size, PDF header and the CSV header.
void check_exports(ViewFrame* v, const QString& dir, const QString& csv_header) {
  const QString png = dir + QLatin1Char('/') + v->viewId() + QStringLiteral(".png");
  QVERIFY(v->exportPng(png, 640, 400));
  QImage img(png);
  QCOMPARE(img.size(), QSize(640, 400));
  const QString pdf = dir + QLatin1Char('/') + v->viewId() + QStringLiteral(".pdf");
  QVERIFY(v->exportPdf(pdf));
  QFile f(pdf);
  QVERIFY(f.open(QIODevice::ReadOnly));
  QVERIFY(f.read(4) == "%PDF");
  const QString csv = dir + QLatin1Char('/') + v->viewId() + QStringLiteral(".csv");
  QVERIFY(v->exportCsv(csv));
  const auto rows = parse_csv(csv);
  QVERIFY(!rows.isEmpty());
  QCOMPARE(rows[0].join(QLatin1Char(',')), csv_header);
}

}  // namespace

class TestViews : public QObject {
  Q_OBJECT
private slots:
  void initTestCase() { QVERIFY(dir_.isValid()); }

  void registry_has_every_view() {
    ViewRegistry registry;
    register_views(registry);
    const QStringList ids = registry.ids();
    for (const char* id : {"routing", "inspector", "colouring", "load", "coactivation", "kv", "performance"})
      QVERIFY2(ids.contains(QLatin1String(id)), id);
    EngineFeed feed;
    TraceModel* traces = traces_of(feed);
    QWidget parent;
    for (const auto& f : registry.factories()) {
      QWidget* w = f.create(context_of(feed, traces), &parent);
      QVERIFY(w);
      QVERIFY(!f.description.isEmpty());
      auto* v = qobject_cast<ViewFrame*>(w);
      QVERIFY(v);
      // One sentence on top, with a "learn more" tooltip.
      auto* sentence = v->findChild<QLabel*>(QStringLiteral("viewSentence"));
      QVERIFY(sentence && sentence->text().endsWith(QLatin1Char('.')) && !sentence->toolTip().isEmpty());
    }
    // Every view reads the one data model it was handed.
    for (ViewFrame* v : parent.findChildren<ViewFrame*>()) QCOMPARE(v->traceModel(), traces);
  }

  // The guide (issue 16): a page for every view's "learn more", text from the resources, links
  // only to its own pages, figures from the model with its strings escaped.
  void guide_pages_and_links() {
    ViewRegistry registry;
    register_views(registry);
    for (const QString& id : registry.ids()) {
      const QString page = guide_page_for_view(id);
      QVERIFY2(guide_page(page), qPrintable(id));
    }
    const ModelSpec spec = load_model_spec(MOESCOPE_TEST_DATA "/models/chat-tiny");
    for (const GuidePage& p : guide_pages()) {
      QVERIFY2(registry.find(p.view) || p.view == QLatin1String("anatomy"), qPrintable(p.id));
      const QString body = guide_body_html(p.id);
      QVERIFY2(body.size() > 200, qPrintable(p.id));
      for (const char* bad : {"http", "file:", "src=", "<img", "<script", "www."})
        QVERIFY2(!body.contains(QLatin1String(bad), Qt::CaseInsensitive), qPrintable(p.id + QLatin1Char(' ') + bad));
      QTextDocument doc;
      doc.setHtml(guide_page_html(p.id, &spec, QStringLiteral("chat-tiny")));
      QCOMPARE(doc.metaInformation(QTextDocument::DocumentTitle), p.title);
      for (QTextBlock b = doc.begin(); b.isValid(); b = b.next())
        for (auto it = b.begin(); !it.atEnd(); ++it) {
          const QString href = it.fragment().charFormat().anchorHref();
          if (href.isEmpty()) continue;
          const QUrl url(href);
          QVERIFY2(url.scheme() == QLatin1String("guide") && guide_page(url.path()), qPrintable(p.id + QStringLiteral(": ") + href));
        }
    }
    QVERIFY(guide_page_for_view(QStringLiteral("nope")).isEmpty());
    QVERIFY(guide_body_html(QStringLiteral("nope")).isEmpty());
  }

  void guide_figures_follow_the_model() {
    const ModelSpec tiny = load_model_spec(MOESCOPE_TEST_DATA "/models/chat-tiny");
    auto fig = [&](const char* page, const ModelSpec* s, const QString& name = QStringLiteral("m")) {
      QTextDocument doc;
      doc.setHtml(guide_figure_html(QLatin1String(page), s, name));
      return doc.toPlainText();
    };
    for (const GuidePage& p : guide_pages()) {
      QVERIFY2(fig(p.id.toUtf8().constData(), nullptr).contains(QStringLiteral("No model is loaded")), qPrintable(p.id));
      QVERIFY2(fig(p.id.toUtf8().constData(), &tiny, QStringLiteral("chat-tiny")).startsWith(QStringLiteral("chat-tiny")), qPrintable(p.id));
    }
    // chat-tiny: DeepSeek-V3 routing, 16 experts, top-4, 4 groups of 4 keeping 2, 1 shared expert.
    QVERIFY(fig("moe", &tiny).contains(QStringLiteral("16 routed experts per MoE layer, top_k = 4")));
    QVERIFY(fig("moe", &tiny).contains(QStringLiteral("2 of its 3 layers are MoE layers")));
    QVERIFY(fig("router", &tiny).contains(QStringLiteral("scores 16 experts (sigmoid")));
    QVERIFY(fig("router", &tiny).contains(QStringLiteral("multiplied by routed_scaling_factor 2.5, so they sum to 2.5")));
    QVERIFY(fig("scoring", &tiny).contains(QStringLiteral("has a correction bias")));
    QVERIFY(fig("groups", &tiny).contains(QStringLiteral("16 experts in n_group = 4 groups of 4")));
    QVERIFY(fig("groups", &tiny).contains(QStringLiteral("sum of its two best biased scores, the topk_group = 2 best groups are kept, and the top 4 experts are chosen among their 8")));
    QVERIFY(fig("shared", &tiny).contains(QStringLiteral("shared expert width 16")));
    QVERIFY(fig("balance", &tiny).contains(QStringLiteral("25.0 % of the tokens")));
    QVERIFY(fig("specialisation", &tiny).contains(QStringLiteral("(4 − 1) ÷ (16 − 1) = 0.200")));
    QVERIFY(fig("mla", &tiny).contains(QString::fromStdString(kv_figure_text(kv_figure(tiny), "MLA"))));
    QVERIFY(fig("mla", &tiny).contains(QStringLiteral("kv_lora_rank 16 + qk_rope_head_dim 8 = 24 values")));
    // The real models the guide's text names.
    const ModelSpec r1 = load_model_spec(preset_path("deepseek-r1"));
    QVERIFY(fig("groups", &r1).contains(QStringLiteral("256 experts in n_group = 8 groups of 32")));
    QVERIFY(fig("groups", &r1).contains(QStringLiteral("topk_group = 4 best groups are kept, and the top 8 experts are chosen among their 128")));
    QVERIFY(fig("router", &r1).contains(QStringLiteral("so they sum to 2.5")));
    const ModelSpec mixtral = load_model_spec(preset_path("mixtral-8x7b"));
    QVERIFY(fig("router", &mixtral).contains(QStringLiteral("scores 8 experts (softmax over all experts) and sends every token to the top 2; the weights are renormalised to sum to 1.")));
    QVERIFY(fig("scoring", &mixtral).contains(QStringLiteral("no correction bias")));
    QVERIFY(fig("groups", &mixtral).contains(QStringLiteral("chosen among all 8 experts")));
    QVERIFY(fig("shared", &mixtral).contains(QStringLiteral("no shared expert")));
    const ModelSpec qwen3 = load_model_spec(preset_path("qwen3-30b-a3b"));
    QVERIFY(fig("router", &qwen3).contains(QStringLiteral("scores 128 experts (softmax over all experts) and sends every token to the top 8; the weights are renormalised to sum to 1.")));
    // Model text is never HTML, and a name holding "%1" does not shift the numbers.
    const QString hostile = QStringLiteral("<img src=\"x\"><a href=\"https://e.com\">%1 {architecture}</a>");
    for (const GuidePage& p : guide_pages()) {
      const QString html = guide_page_html(p.id, &tiny, hostile);
      QVERIFY2(!html.contains(QStringLiteral("<img")) && !html.contains(QStringLiteral("https://e.com\">")), qPrintable(p.id));
      QTextDocument doc;
      doc.setHtml(html);
      QVERIFY2(doc.toPlainText().contains(hostile), qPrintable(p.id));
    }
    QVERIFY(fig("moe", &tiny, hostile).contains(QStringLiteral("16 routed experts")));
  }

  // "learn more" asks for the guide at the view's page.
  void learn_more_opens_the_guide() {
    TraceModel model;
    LoadView v(&model);
    v.resize(700, 400);
    v.show();
    QVERIFY(QTest::qWaitForWindowExposed(&v));
    QSignalSpy asked(&v, &ViewFrame::learnMoreRequested);
    auto* more = v.findChild<QLabel*>(QStringLiteral("learnMore"));
    QVERIFY(more && !more->toolTip().isEmpty());
    QTest::mouseClick(more, Qt::LeftButton, {}, more->rect().center());
    QCOMPARE(asked.count(), 1);
    QCOMPARE(asked.at(0).at(0).toString(), QStringLiteral("load"));
    QCOMPARE(guide_page(guide_page_for_view(QStringLiteral("load")))->title, QStringLiteral("Load balance and its metrics"));
  }

  void load_view_known_trace() {
    TraceModel model;
    model.replaceTrace(small_trace(false), QStringLiteral("test"));
    LoadView v(&model);
    v.resize(800, 500);
    v.setWindow(StatsWindow::Conversation);
    v.setLayer(0);
    v.refreshNow();
    const RoutingStats& s = v.shownStats();
    QCOMPARE(s.tokens(), int64_t(6));
    QCOMPARE(s.load(0)[0], int64_t(6));
    QCOMPARE(s.load(0)[1], int64_t(4));
    QCOMPARE(v.uniformLoad(), 1.5);
    const LayerBalance b = s.layer(0);
    QCOMPARE(b.maxvio, 3.0);
    QCOMPARE(b.dead, 4);
    QCOMPARE(b.distinct, 4);
    QCOMPARE(v.bars()->data()->size(), 8);
    QCOMPARE(v.bars()->data()->at(1)->value, 4.0);
    // The answer window is the last answer: 3 prompt + 3 generated tokens here (one answer).
    QCOMPARE(model.stats(StatsWindow::Answer).tokens(), int64_t(6));
    check_exports(&v, dir_.path(), QStringLiteral("layer,expert,load,uniform"));
    auto rows = parse_csv(dir_.path() + QStringLiteral("/load.csv"));
    QCOMPARE(rows.size(), 9);
    QCOMPARE(rows[1], (QStringList{"1", "0", "6", "1.5"}));

    // Metrics tab: the table and its CSV are balance_csv's.
    v.setTab(LoadView::Metrics);
    v.refreshNow();
    QCOMPARE(v.metricsTable()->rowCount(), 4);
    QCOMPARE(v.metricsTable()->item(0, 3)->text(), QStringLiteral("3.000"));
    QCOMPARE(v.metricsTable()->item(2, 0)->text(), QStringLiteral("mean"));
    QCOMPARE(v.metricsTable()->item(3, 0)->text(), QStringLiteral("worst"));
    QCOMPARE(v.csv(), QString::fromStdString(balance_csv(s)));

    // Layer map: cell value = load ÷ uniform.
    v.setTab(LoadView::LayerMap);
    v.refreshNow();
    QCOMPARE(v.layerMap()->data()->cell(0, 0), 4.0);  // 6 / 1.5
    QCOMPARE(v.layerMap()->data()->cell(7, 0), 0.0);
    check_exports(&v, dir_.path(), QStringLiteral("layer,expert,load"));

    v.setTab(LoadView::OverTime);
    v.refreshNow();
    QVERIFY(!model.timeline(StatsWindow::Conversation).empty());
    QCOMPARE(model.timeline(StatsWindow::Conversation).back().maxvio, s.mean_over_layers().maxvio);
    check_exports(&v, dir_.path(), QStringLiteral("tokens,cv,maxvio,entropy,maxvio_layer_1"));
  }

  // All-layer figures are statistics of the per-layer ones (never a sum of unrelated experts'
  // counts): the mean row is the mean of the layer rows, the worst row their worst.
  void all_layer_figures_are_over_layers() {
    const RoutingTrace t = small_trace(false);
    RoutingStats s = RoutingStats::for_trace(t);
    s.add_all(t);
    const LayerBalance a = s.layer(0), b = s.layer(1), mean = s.mean_over_layers(), worst = s.worst_over_layers();
    QCOMPARE(mean.cv, (a.cv + b.cv) / 2);
    QCOMPARE(mean.maxvio, (a.maxvio + b.maxvio) / 2);
    QCOMPARE(mean.entropy, (a.entropy + b.entropy) / 2);
    QCOMPARE(worst.cv, std::max(a.cv, b.cv));
    QCOMPARE(worst.entropy, std::min(a.entropy, b.entropy));
    QCOMPARE(worst.dead, std::max(a.dead, b.dead));
    // The pooled figure the view used to show would be lower than either layer's here.
    std::vector<int64_t> pooled(size_t(s.n_experts()), 0);
    for (int m = 0; m < 2; ++m)
      for (int e = 0; e < s.n_experts(); ++e) pooled[size_t(e)] += s.load(m)[size_t(e)];
    QVERIFY(balance_of(pooled, s.tokens(), -1).cv < std::min(a.cv, b.cv));
    const QStringList rows = QString::fromStdString(balance_csv(s)).split('\n', Qt::SkipEmptyParts);
    QCOMPARE(rows.size(), 1 + 2 + 2);
    QVERIFY(rows[3].startsWith(QStringLiteral("mean,6,")));
    QVERIFY(rows[4].startsWith(QStringLiteral("worst,6,")));
  }

  void routing_map_known_cells() {
    TraceModel model;
    model.replaceTrace(small_trace(false), QStringLiteral("test"));
    RoutingMapView v(&model);
    v.resize(800, 500);
    v.refreshNow();
    v.setLayer(0);
    v.refreshNow();
    RoutingMapPlottable* map = v.map();
    QCOMPARE(map->rows(), 8);
    QCOMPARE(map->cellColour(0, 5), empty_cell_colour());  // expert 5 not chosen by token 0
    QVERIFY(map->cellColour(0, 0) != empty_cell_colour());
    // Darker for the larger weight (0.7 vs 0.3).
    QVERIFY(map->cellColour(0, 0).lightness() < map->cellColour(0, 1).lightness());
    QVERIFY(v.cellText(0, 0).contains(QStringLiteral("expert 0: weight 0.700")));
    QVERIFY(v.cellText(0, 5).contains(QStringLiteral("not selected")));
    check_exports(&v, dir_.path(), QStringLiteral("token,pos,text,phase,layer,slot,expert,weight"));
    auto rows = parse_csv(dir_.path() + QStringLiteral("/routing.csv"));
    QCOMPARE(rows.size(), 1 + 6 * 2);  // every visible token × top-2 at the shown layer
    QCOMPARE(rows[5], (QStringList{"2", "2", "\n", "prefill", "1", "0", "1", "0.549805"}));  // a quoted newline

    v.setMode(RoutingMapPlottable::Mode::LayersTopExpert);
    v.refreshNow();
    QCOMPARE(map->rows(), 2);
    QCOMPARE(map->cellColour(4, 0), expert_colour(3, 8));  // token 4, layer 1: top expert 3
    QCOMPARE(map->cellColour(4, 1), expert_colour(6, 8));
    QVERIFY(expert_colour(3, 8) != expert_colour(6, 8));
    // The drawn image holds the same colours.
    QVERIFY(v.exportPng(dir_.path() + QStringLiteral("/routing-layers.png"), 600, 300));
    const QImage& img = map->lastImage();
    QCOMPARE(img.height(), 2);
    QCOMPARE(QColor(img.pixel(4, 0)), expert_colour(3, 8));

    // Clicking is selection: the model tells the inspector.
    QSignalSpy spy(&model, &TraceModel::tokenSelected);
    model.selectToken(4);
    QCOMPARE(spy.count(), 1);
  }

  void inspector_with_and_without_scores() {
    TraceModel model;
    model.replaceTrace(small_trace(true), QStringLiteral("test"));
    InspectorView v(&model);
    v.resize(800, 600);
    model.selectToken(0);
    v.refreshNow();
    QCOMPARE(v.table()->rowCount(), 2);
    QCOMPARE(v.table()->item(0, 1)->text(), QStringLiteral("0 (w 0.700 · s 0.500), 1 (w 0.300 · s 0.200)"));
    // Runners-up: the three next scores (0.15, 0.10, 0.05 → experts 2, 3, 4 for layer 1).
    QVERIFY2(v.table()->item(0, 3)->text().startsWith(QStringLiteral("2 (0.150), 3 (0.100), 4 (0.050)")),
             qPrintable(v.table()->item(0, 3)->text()));
    QCOMPARE(v.table()->item(0, 2)->text(), QStringLiteral("model's router unknown"));  // no model loaded
    const LayerConfidence c = router_confidence(model.trace(), 0, 0);
    QVERIFY(c.recorded);
    QVERIFY(std::abs(c.margin - 0.05) < 2e-3);  // 0.2 − 0.15 (half precision)
    double sum = 0, h = 0;
    for (int e = 0; e < 8; ++e) sum += model.trace().prob(0, 0, e);
    for (int e = 0; e < 8; ++e) {
      const double p = model.trace().prob(0, 0, e) / sum;
      if (p > 0) h -= p * std::log(p);
    }
    QVERIFY(std::abs(c.entropy - h / std::log(8.0)) < 1e-9);
    QVERIFY(v.headerText().contains(QStringLiteral("recorded")));
    check_exports(&v, dir_.path(),
                  QStringLiteral("token,layer,rank,expert,weight,score,selection_score,group,group_kept,selected,entropy,margin"));
    QCOMPARE(parse_csv(dir_.path() + QStringLiteral("/inspector.csv")).size(), 1 + 2 * (2 + 3));

    TraceModel plain;
    plain.replaceTrace(small_trace(false), QStringLiteral("test"));
    InspectorView w(&plain);
    plain.selectToken(2);
    w.refreshNow();
    QCOMPARE(w.table()->item(0, 1)->text(), QStringLiteral("1 (0.550), 0 (0.450)"));
    QCOMPARE(w.table()->item(0, 3)->text(), QStringLiteral("not recorded"));
    QVERIFY(w.headerText().contains(QStringLiteral("not recorded")));

    // A gated shared expert's gate (Qwen2-MoE, recorded by the CPU backend) follows each layer's experts.
    RoutingTrace gated("gated", 4, 2, {0, 1});
    const int32_t ids[] = {1, 0, 2, 3};
    const float wts[] = {0.6f, 0.4f, 0.7f, 0.3f}, gates[] = {0.25f, 0.75f};
    gated.append({0, 5, "x", Phase::Prefill}, ids, wts, 2, nullptr, gates);
    TraceModel gm;
    gm.replaceTrace(gated, QStringLiteral("test"));
    InspectorView g(&gm);
    gm.selectToken(0);
    g.refreshNow();
    QCOMPARE(g.table()->item(0, 1)->text(), QStringLiteral("1 (0.600), 0 (0.400), shared × 0.250"));
    QCOMPARE(g.table()->item(1, 1)->text(), QStringLiteral("2 (0.700), 3 (0.300), shared × 0.750"));
  }

  // Group-limited routing explained (DeepSeek-V3's router on the golden model's config): the group
  // step, raw and biased scores, weights by size, the margin under the model's rule, and a
  // runner-up that outscored every chosen expert marked as being in a dropped group.
  void inspector_explains_group_limited_routing() {
    ModelInfo info;
    info.spec = std::make_shared<const ModelSpec>(load_model_spec(std::string(MOESCOPE_TEST_DATA) + "/models/deepseek-v3"));
    const RouterSpec& r = info.spec->moe.router;
    QCOMPARE(r.n_group, 4);
    QCOMPARE(r.n_experts, 16);
    QCOMPARE(r.top_k, 4);
    info.name = QStringLiteral("deepseek-v3");
    info.n_experts = r.n_experts, info.top_k = r.top_k, info.moe_layers = info.spec->moe_layer_indices();
    const int E = r.n_experts, K = r.top_k, L = int(info.moe_layers.size());
    // Scores (groups of 4): expert 15 scores highest, but group 3's other experts are weak, so its
    // group sum (0.64) loses to groups 1 (0.95 with expert 5's bias) and 0 (0.69).
    const std::vector<float> scores = {0.27f, 0.28f, 0.36f, 0.33f, 0.26f, 0.31f, 0.20f, 0.34f,
                                       0.30f, 0.31f, 0.32f, 0.35f, 0.02f, 0.03f, 0.04f, 0.60f};
    std::vector<float> bias(size_t(E), 0.0f);
    bias[5] = 0.3f;
    info.router_bias = std::make_shared<const std::vector<std::vector<float>>>(size_t(L), bias);
    std::vector<float> logits(static_cast<size_t>(E));
    for (int e = 0; e < E; ++e) logits[size_t(e)] = std::log(scores[size_t(e)] / (1.0f - scores[size_t(e)]));
    RoutingTrace trace(info.name.toStdString(), E, K, info.moe_layers);
    std::vector<int32_t> ids(size_t(K * L));
    std::vector<float> w(size_t(K * L)), probs(size_t(E * L)), scratch(size_t(3 * E + 64));
    for (int m = 0; m < L; ++m)
      route_token(r, logits.data(), bias.data(), RoutingControl{}, info.moe_layers[size_t(m)], ids.data() + m * K,
                  w.data() + m * K, probs.data() + m * E, scratch.data());
    trace.append(TraceToken{0, 7, "x", Phase::Decode}, ids.data(), w.data(), K, probs.data());

    TraceModel model;
    model.setModel(info);
    model.replaceTrace(trace, QStringLiteral("test"));
    InspectorView v(&model);
    v.resize(1000, 600);
    model.selectToken(0);
    v.refreshNow();
    QVERIFY2(v.headerText().contains(QStringLiteral("routed scaling factor 2.5")), qPrintable(v.headerText()));
    const QString groups = v.table()->item(0, 2)->text();
    QVERIFY2(groups.startsWith(QStringLiteral("kept 2 of 4 groups")) && groups.contains(QStringLiteral("best dropped")) &&
                 !groups.contains(QStringLiteral("differs")),
             qPrintable(groups));
    QVERIFY2(v.table()->item(0, 3)->text().startsWith(QStringLiteral("15 (0.600, group dropped)")),
             qPrintable(v.table()->item(0, 3)->text()));
    const QString chosen = v.table()->item(0, 1)->text();
    QVERIFY2(chosen.contains(QStringLiteral("5 (w ")) && chosen.contains(QStringLiteral(" · +b 0.6")), qPrintable(chosen));
    // Sorted by weight: the listed weights do not rise.
    QStringList parts = chosen.split(QStringLiteral("), "));
    QCOMPARE(parts.size(), K);
    double last = 1e9, sum = 0;
    for (const QString& part : parts) {
      const double wt = part.section(QStringLiteral("(w "), 1).section(QLatin1Char(' '), 0, 0).toDouble();
      QVERIFY2(wt <= last + 1e-9, qPrintable(chosen));
      last = wt, sum += wt;
    }
    QVERIFY2(std::abs(sum - 2.5) < 5e-3, qPrintable(chosen));  // renormalised × routed_scaling_factor
    // The margin is of biased scores within the kept groups, as the rule compares them.
    const LayerConfidence c = router_confidence(model.trace(), 0, 0, 3, nullptr, nullptr);
    const rules::RouterRule rule = make_router_rule(r, {}, info.moe_layers[0], true);
    const RouteExplanation x = explain_route(rule, std::vector<float>(probs.begin(), probs.begin() + E).data(), bias.data());
    QCOMPARE(x.chosen, (std::vector<int>{5, 2, 7, 3}));
    QCOMPARE(x.next, 1);  // 0.28 in group 0; expert 15 (0.60) is in the dropped group 3
    QVERIFY(std::abs(x.margin - 0.05f) < 2e-3f);
    QVERIFY(std::abs(v.table()->item(0, 5)->text().toDouble() - x.margin) < 2e-3);
    QVERIFY(std::abs(c.margin - x.margin) > 0.01);  // the raw-score margin is another number

    // With an intervention (expert 15 forced) the recorded choice is not the rule's: say so.
    RoutingTrace forced(info.name.toStdString(), E, K, info.moe_layers);
    RoutingControl force;
    force.forced_expert = 15;
    for (int m = 0; m < L; ++m)
      route_token(r, logits.data(), bias.data(), force, info.moe_layers[size_t(m)], ids.data() + m * K,
                  w.data() + m * K, probs.data() + m * E, scratch.data());
    forced.append(TraceToken{0, 7, "x", Phase::Decode}, ids.data(), w.data(), K, probs.data());
    model.replaceTrace(forced, QStringLiteral("test"));
    model.selectToken(0);
    v.refreshNow();
    QVERIFY2(v.table()->item(0, 2)->text().contains(QStringLiteral("differs from the model's rule")),
             qPrintable(v.table()->item(0, 2)->text()));
  }

  void expert_colouring_html_and_legend() {
    const RoutingTrace t = small_trace(false);
    const QString html = expert_coloured_html(t, 3, 6, 0, true);
    // Tokens 3..5 at layer 1: top experts 0, 3, 0.
    QCOMPARE(html.count(QStringLiteral("background-color:%1").arg(expert_colour(0, 8).name())), 2);
    QCOMPARE(html.count(QStringLiteral("background-color:%1").arg(expert_colour(3, 8).name())), 1);
    QVERIFY(html.contains(QStringLiteral("href=\"token:4\"")));
    QVERIFY(html.contains(QStringLiteral(" expert")));
    const auto counts = top_expert_counts(t, 3, 6, 0);
    QCOMPARE(counts.size(), size_t(2));
    QCOMPARE(counts[0], std::make_pair(0, 2));

    TraceModel model;
    model.replaceTrace(t, QStringLiteral("test"));
    ExpertColouringView v(&model);
    v.resize(700, 500);
    v.refreshNow();
    QCOMPARE(v.shownRange(), std::make_pair(size_t(3), size_t(6)));  // the generated tokens
    QVERIFY(v.previewHtml().contains(QStringLiteral("token:5")));
    QCOMPARE(v.applyToChat(), 0);  // no chat in this window: nothing to colour, no crash
    check_exports(&v, dir_.path(), QStringLiteral("token,text,layer,top_expert,weight"));
    auto rows = parse_csv(dir_.path() + QStringLiteral("/colouring.csv"));
    QCOMPARE(rows.size(), 4);
    QCOMPARE(rows[2], (QStringList{"4", " expert", "1", "3", "0.799805"}));
  }

  void coactivation_known_pairs() {
    TraceModel model;
    model.replaceTrace(small_trace(false), QStringLiteral("test"));
    CoactivationView v(&model);
    v.resize(800, 500);
    v.setLayer(0);
    v.refreshNow();
    const auto& c = v.counts();
    QCOMPARE(c[0 * 8 + 0], int64_t(6));
    QCOMPARE(c[0 * 8 + 1], int64_t(4));
    QCOMPARE(v.matrix()->data()->cell(1, 0), 4.0 / 6.0);  // column j = 1, row i = 0
    QVERIFY(std::isnan(v.matrix()->data()->cell(0, 0)));
    // min tokens 3: only experts 0 (6 tokens) and 1 (4) qualify; P(0|1) = 1 is the strongest pair.
    QVERIFY(!v.pairs().empty());
    QCOMPARE(v.pairs()[0].i, 1);
    QCOMPARE(v.pairs()[0].j, 0);
    QCOMPARE(v.pairs()[0].p, 1.0);
    check_exports(&v, dir_.path(), QStringLiteral("i,j,both,given,p_j_given_i"));
    auto rows = parse_csv(dir_.path() + QStringLiteral("/coactivation.csv"));
    QVERIFY(rows.contains(QStringList{"0", "1", "4", "6", QString::number(4.0 / 6.0, 'g', 8)}));
  }

  void live_chunks_kv_and_speed() {
    EngineFeed feed;
    TraceModel* model = traces_of(feed);
    const RoutingTrace t = small_trace(false);
    emit feed.modelChanged(info_for(t));
    emit feed.generationStarted();
    StreamChunk c1;
    c1.trace = segment_of(t, 0, 3);  // the prompt
    c1.has_kv = true;
    c1.kv.tokens = 812;
    c1.kv.capacity = 8192;
    c1.kv.block_tokens = 16;
    c1.kv.blocks_used = 51;
    c1.kv.blocks_total = 512;
    c1.kv.bytes_per_token_layer = 1152;      // MLA: (512 + 64) values × 2 bytes
    c1.kv.mha_bytes_per_token_layer = 32768;  // 128 heads × (192 + 128)... any larger figure
    c1.kv.n_layers = 4;
    c1.kv.bytes_used = 1152LL * 812 * 4;
    c1.kv.bytes_reserved = 1152LL * 8192 * 4;
    c1.kv.element_type = "BF16";
    emit feed.chunk(c1);
    QTest::qWait(30);
    StreamChunk c2;
    c2.trace = segment_of(t, 3, 5);
    c2.new_tokens = 2;
    c2.total_tokens = 2;
    c2.has_kv = true;
    c2.kv = c1.kv;
    c2.kv.tokens = 814;
    emit feed.chunk(c2);
    QTest::qWait(30);
    StreamChunk c3;
    c3.trace = segment_of(t, 5, 6);
    c3.new_tokens = 1;
    c3.total_tokens = 3;
    c3.tokens_per_second = 42.0;
    c3.has_kv = true;
    c3.kv = c2.kv;
    c3.kv.tokens = 815;
    emit feed.chunk(c3);
    QCOMPARE(model->trace().size(), size_t(6));
    QCOMPARE(model->stats(StatsWindow::Answer).tokens(), int64_t(6));
    RoutingStats direct = RoutingStats::for_trace(t);
    direct.add_all(t);
    QCOMPARE(model->stats(StatsWindow::Conversation).load(0), direct.load(0));
    QCOMPARE(model->stats(StatsWindow::SinceLoad).tokens(), int64_t(6));
    QCOMPARE(model->kvHistory().size(), size_t(3));
    QVERIFY(model->kvHistory().front().prefill);
    QVERIFY(!model->kvHistory().back().prefill);

    GenerationSummary s;
    s.prompt_tokens = 3;
    s.prefill_seconds = 0.5;
    s.generated_tokens = 3;
    s.tokens_per_second = 42.0;
    s.kv = c3.kv;
    s.trace = std::make_shared<const RoutingTrace>(t);
    emit feed.generationFinished(s);
    QVERIFY(!model->generating());
    QCOMPARE(model->prefills().back().tps, 6.0);  // 3 tokens / 0.5 s
    QVERIFY(model->prefills().back().exact);

    KvView kv(model);
    kv.resize(800, 500);
    kv.refreshNow();
    QVERIFY2(kv.fillText().startsWith(QStringLiteral("815 / 8192 tokens (9.9 %)")), qPrintable(kv.fillText()));
    QCOMPARE(kv.fillPermille(), 99);  // the bar: 815 / 8192 in thousandths
    QVERIFY(std::abs(kv.compressionRatio() - 32768.0 / 1152.0) < 1e-9);
    QVERIFY(kv.compressionText().contains(QStringLiteral("28.4× smaller")));
    // One definition: the whole model's bytes per token in the cache's type, per layer beside it.
    QVERIFY2(kv.compressionText().contains(QStringLiteral("4.50 KiB per token in BF16 for all 4 attention layers (1.12 KiB per layer)")),
             qPrintable(kv.compressionText()));
    check_exports(&kv, dir_.path(), QStringLiteral("seconds,tokens,phase"));
    kv.setTab(KvView::Blocks);
    kv.refreshNow();
    QCOMPARE(kv.blocksPerCell(), 1);
    // Block 50 holds tokens 800..815: 15 of 16 used; block 51 is free.
    QCOMPARE(kv.blockMap()->data()->cell(50 % kv.blockColumns(), 50 / kv.blockColumns()), 15.0 / 16.0);
    QCOMPARE(kv.blockMap()->data()->cell(51 % kv.blockColumns(), 51 / kv.blockColumns()), 0.0);
    check_exports(&kv, dir_.path(), QStringLiteral("block,tokens_used,block_tokens"));
    auto rows = parse_csv(dir_.path() + QStringLiteral("/kv.csv"));
    QCOMPARE(rows.size(), 1 + 512);
    QCOMPARE(rows[51], (QStringList{"50", "15", "16"}));
    kv.setTab(KvView::BytesPerLayer);
    check_exports(&kv, dir_.path(), QStringLiteral("layer,tokens,bytes,mha_bytes,cache"));
    // No model spec: the engine's layers with a KV cache, their kind unknown (empty).
    QCOMPARE(parse_csv(dir_.path() + QStringLiteral("/kv.csv"))[1],
             (QStringList{"0", "815", QString::number(1152 * 815), QString::number(32768 * 815), QString()}));

    PerformanceView perf(model);
    perf.resize(800, 500);
    perf.refreshNow();
    QVERIFY2(perf.summaryText().contains(QStringLiteral("prefill 6.0 tokens/s (3 tokens)")), qPrintable(perf.summaryText()));
    check_exports(&perf, dir_.path(), QStringLiteral("seconds,kind,tokens_per_second,average_tokens_per_second,ms_per_token,tokens"));
    rows = parse_csv(dir_.path() + QStringLiteral("/performance.csv"));
    QCOMPARE(rows[1][1], QStringLiteral("prefill"));
    QCOMPARE(rows[1][2], QStringLiteral("6"));
    // The decode rate over the last half second (1 token between chunks 2 and 3), then the
    // finished answer's exact average, carrying the last live rate.
    QCOMPARE(model->speed().size(), size_t(2));
    QVERIFY(model->speed().front().decode_tps > 0);
    QCOMPARE(model->speed().back().decode_tps, model->speed().front().decode_tps);
    QCOMPARE(model->speed().back().average_tps, 42.0);

    // A new answer re-using a shorter prefix: the trace is cut at the route's position.
    emit feed.generationStarted();
    StreamChunk c4;
    c4.trace = segment_of(t, 4, 6);
    c4.new_tokens = 2;
    c4.total_tokens = 2;
    emit feed.chunk(c4);
    QCOMPARE(model->trace().size(), size_t(6));
    QCOMPARE(model->stats(StatsWindow::Conversation).tokens(), int64_t(6));
    QCOMPARE(model->stats(StatsWindow::Answer).tokens(), int64_t(2));
    QCOMPARE(model->stats(StatsWindow::SinceLoad).tokens(), int64_t(8));
  }

  // Router scores carried by live chunks land in the trace (the inspector's runners-up), and a
  // backend's device memory reaches the performance view's own tab, summary and CSV.
  void live_router_scores_and_device_memory() {
    EngineFeed feed;
    TraceModel* model = traces_of(feed);
    const RoutingTrace t = small_trace(false);
    ModelInfo info = info_for(t);
    info.backend = QStringLiteral("CUDA: test device");
    info.device_bytes = int64_t(3) << 29;  // 1.5 GiB after loading
    emit feed.modelChanged(info);
    emit feed.generationStarted();
    StreamChunk c;
    const int E = t.n_experts(), L = t.n_moe_layers(), K = t.top_k();
    {
      RoutingTrace seg(t.model(), E, K, t.moe_layers());
      std::vector<float> probs;
      for (int m = 0; m < L; ++m)
        for (int e = 0; e < E; ++e) probs.push_back(e == 1 ? 0.75f : 0.25f / float(E - 1));
      std::vector<int32_t> ids(size_t(L) * size_t(K));
      std::vector<float> w(ids.size());
      for (size_t i = 0; i < 2; ++i) {
        for (int m = 0; m < L; ++m)
          for (int k = 0; k < K; ++k) {
            ids[size_t(m * K + k)] = t.expert(i, m, k);
            w[size_t(m * K + k)] = t.weight(i, m, k);
          }
        seg.append(t.token(i), ids.data(), w.data(), K, probs.data());
      }
      c.trace = std::make_shared<const RoutingTrace>(std::move(seg));
    }
    c.device_bytes = (int64_t(3) << 29) + (int64_t(1) << 28);  // + 256 MiB
    emit feed.chunk(c);
    QVERIFY(model->trace().has_probs());
    QCOMPARE(model->trace().prob(1, 0, 1), 0.75f);
    QCOMPARE(model->deviceBytes(), (int64_t(3) << 29) + (int64_t(1) << 28));
    QCOMPARE(model->deviceMemory().size(), size_t(2));  // at load, then the chunk's figure

    PerformanceView perf(model);
    perf.resize(800, 500);
    perf.refreshNow();
    QVERIFY2(perf.summaryText().contains(QStringLiteral("device memory in use: 1.75 GiB")), qPrintable(perf.summaryText()));
    perf.setTab(PerformanceView::DeviceMemory);
    perf.refreshNow();
    check_exports(&perf, dir_.path(), QStringLiteral("seconds,device_bytes"));
    const auto rows = parse_csv(dir_.path() + QStringLiteral("/performance.csv"));
    QCOMPARE(rows.size(), 3);
    QCOMPARE(rows[1][1], QString::number(int64_t(3) << 29));
    QCOMPARE(rows[2][1], QString::number((int64_t(3) << 29) + (int64_t(1) << 28)));

    // The CPU backend reports none: the tab stays hidden.
    EngineFeed cpu_feed;
    TraceModel* cpu_model = traces_of(cpu_feed);
    emit cpu_feed.modelChanged(info_for(t));
    PerformanceView cpu_perf(cpu_model);
    cpu_perf.refreshNow();
    QCOMPARE(cpu_model->deviceBytes(), int64_t(-1));
    QVERIFY(!cpu_perf.findChild<QTabWidget*>()->isTabVisible(PerformanceView::DeviceMemory));
  }

  void recorded_trace_file() {
    // Produced by: moescope-cli generate --model tests/data/models/deepseek-v3 --ids ... --probs --trace
    const QString path = QStringLiteral(MOESCOPE_TEST_DATA "/traces/deepseek-v3-probs.json");
    TraceModel model;
    QString error;
    QVERIFY2(model.openTraceFile(path, &error), qPrintable(error));
    const RoutingTrace direct = RoutingTrace::load(path.toStdString());
    QCOMPARE(model.trace().size(), direct.size());
    QVERIFY(model.trace().has_probs());
    RoutingStats s = RoutingStats::for_trace(direct);
    s.add_all(direct);
    LoadView load(&model);
    load.setTab(LoadView::Metrics);
    load.refreshNow();
    QCOMPARE(load.csv(), QString::fromStdString(balance_csv(s)));
    InspectorView insp(&model);
    model.selectToken(int(direct.size()) - 1);
    insp.refreshNow();
    QCOMPARE(insp.table()->rowCount(), direct.n_moe_layers());
    QVERIFY(insp.table()->item(0, 2)->text() != QStringLiteral("not recorded"));
    // A bad file is an error message, not a crash, and leaves the trace alone.
    QVERIFY(!model.openTraceFile(QStringLiteral(MOESCOPE_TEST_DATA "/traces/does-not-exist.json"), &error));
    QVERIFY(!error.isEmpty());
    QCOMPARE(model.trace().size(), direct.size());
  }

  void empty_trace_everywhere() {
    EngineFeed feed;
    TraceModel* traces = traces_of(feed);
    QWidget parent;
    const std::vector<ViewFrame*> views = all_views(feed, traces, &parent);
    emit feed.traceReplaced(std::make_shared<const RoutingTrace>());
    emit feed.traceReplaced(nullptr);
    for (ViewFrame* v : views) {
      v->resize(600, 400);
      v->refreshNow();
      const QString png = dir_.path() + QStringLiteral("/empty-%1.png").arg(v->viewId());
      QVERIFY2(v->exportPng(png, 300, 200), qPrintable(v->viewId()));
      QCOMPARE(QImage(png).size(), QSize(300, 200));
      QVERIFY(v->exportCsv(dir_.path() + QStringLiteral("/empty.csv")));
      QVERIFY(!parse_csv(dir_.path() + QStringLiteral("/empty.csv")).isEmpty());  // at least the header
    }
  }

  // A dense model (Qwen2/Llama, the R1 distills) has no MoE layer: its trace holds tokens without
  // routes (n_experts = top_k = 0). Statistics, the JSON round trip and every view must cope:
  // no division by zero, no crash, exports with at least their header.
  void dense_model_trace_everywhere() {
    RoutingTrace t("dense", 0, 0, {});
    for (int i = 0; i < 5; ++i) t.append(TraceToken{i, 10 + i, "tok", i < 3 ? Phase::Prefill : Phase::Decode}, nullptr, nullptr, 0);
    QCOMPARE(t.size(), size_t(5));
    const RoutingTrace back = RoutingTrace::from_json(t.to_json());
    QCOMPARE(back.size(), size_t(5));
    QCOMPARE(back.n_moe_layers(), 0);
    RoutingStats stats = RoutingStats::for_trace(back);
    stats.add_all(back);
    const LayerBalance all = stats.mean_over_layers();
    QVERIFY(std::isfinite(all.cv) && std::isfinite(all.maxvio) && std::isfinite(all.entropy));
    QCOMPARE(QString::fromStdString(balance_csv(stats)).count(QLatin1Char('\n')), 3);  // header + "mean" + "worst"

    EngineFeed feed;
    TraceModel* traces = traces_of(feed);
    QWidget parent;
    const std::vector<ViewFrame*> views = all_views(feed, traces, &parent);
    ModelInfo info = info_for(back);
    info.n_layers = 3;
    emit feed.modelChanged(info);
    emit feed.generationStarted();
    StreamChunk chunk;  // live tokens of a dense model: a segment without experts
    chunk.trace = segment_of(back, 0, back.size());
    emit feed.chunk(chunk);
    QCOMPARE(traces->trace().size(), back.size());
    emit feed.traceReplaced(std::make_shared<const RoutingTrace>(back));
    traces->selectToken(4);
    for (ViewFrame* v : views) {
      v->resize(600, 400);
      v->refreshNow();
      const QString png = dir_.path() + QStringLiteral("/dense-%1.png").arg(v->viewId());
      QVERIFY2(v->exportPng(png, 300, 200), qPrintable(v->viewId()));
      QCOMPARE(QImage(png).size(), QSize(300, 200));
      QVERIFY(v->exportCsv(dir_.path() + QStringLiteral("/dense.csv")));
      QVERIFY(!parse_csv(dir_.path() + QStringLiteral("/dense.csv")).isEmpty());
    }
  }

  // Issue 18: a trace with expert ids only (a remote server's) and no ModelSpec, in every
  // registered view: nothing crashes, nothing shows or exports a weight (no 0.000 in its place),
  // the routing map colours by choice rank, the inspector says the weights are unknown, and the
  // id-only statistics (load, co-activation) are those of the same routing with weights.
  void weights_unknown_trace_everywhere() {
    const RoutingTrace ids = ids_only_trace();
    QVERIFY(!ids.has_weights());
    QCOMPARE(ids.weight(0, 0, 0), 0.0f);
    const RoutingTrace back = RoutingTrace::from_json(ids.to_json());
    QVERIFY(!back.has_weights());
    QCOMPARE(back.expert(2, 0, 0), 1);

    // Every view's CSV for a trace, by view id; the views stay alive in `parent`.
    auto show = [this](const RoutingTrace& trace, QWidget* parent, EngineFeed& feed, std::vector<ViewFrame*>* out) {
      TraceModel* traces = traces_of(feed);
      const std::vector<ViewFrame*> views = all_views(feed, traces, parent);
      ModelInfo info = info_for(trace);  // no spec and no directory: a remote model
      emit feed.modelChanged(info);
      emit feed.traceReplaced(std::make_shared<const RoutingTrace>(trace));
      traces->selectToken(2);
      QMap<QString, QString> csv;
      for (ViewFrame* v : views) {
        v->resize(700, 500);
        v->refreshNow();
        const QString base = dir_.path() + QStringLiteral("/ids-%1-%2").arg(QString::fromStdString(trace.model()), v->viewId());
        [&] { QVERIFY2(v->exportPng(base + QStringLiteral(".png"), 400, 300), qPrintable(v->viewId())); }();
        [&] { QVERIFY(v->exportCsv(base + QStringLiteral(".csv"))); }();
        csv[v->viewId()] = v->csv();
      }
      *out = views;
      return std::make_pair(traces, csv);
    };
    QWidget parent_ids, parent_full;
    EngineFeed feed_ids, feed_full;
    std::vector<ViewFrame*> views, full_views;
    const auto [traces, csv] = show(ids, &parent_ids, feed_ids, &views);
    const auto [full_traces, full_csv] = show(small_trace(false), &parent_full, feed_full, &full_views);
    QVERIFY(traces->spec() == nullptr);
    QVERIFY(!traces->trace().has_weights());
    QVERIFY(full_traces->trace().has_weights());

    // No export has a number in a weight column: every "weight" field is empty.
    int weight_columns = 0;
    for (ViewFrame* v : views) {
      const QString path = dir_.path() + QStringLiteral("/ids-remote-%1.csv").arg(v->viewId());
      const auto rows = parse_csv(path);
      QVERIFY2(!rows.isEmpty(), qPrintable(v->viewId()));
      const int col = int(rows[0].indexOf(QStringLiteral("weight")));
      if (col < 0) continue;
      ++weight_columns;
      QVERIFY2(rows.size() > 1, qPrintable(v->viewId()));
      for (int r = 1; r < rows.size(); ++r)
        QVERIFY2(col < rows[r].size() && rows[r][col].isEmpty(), qPrintable(v->viewId() + QStringLiteral(": ") + rows[r].join(',')));
    }
    QCOMPARE(weight_columns, 3);  // routing map, inspector, expert colours

    for (ViewFrame* v : views) {
      if (auto* map = qobject_cast<RoutingMapView*>(v)) {
        map->setLayer(0);
        map->refreshNow();
        RoutingMapPlottable* p = map->map();
        QVERIFY(p->byRank());
        // Token 2, layer 1: expert 1 first, expert 0 second → expert 1 darker; not chosen: empty.
        QVERIFY(p->cellColour(2, 1).lightness() < p->cellColour(2, 0).lightness());
        QCOMPARE(p->cellColour(2, 5), empty_cell_colour());
        // Every first choice has the same colour (no weight to tell them apart).
        QCOMPARE(p->cellColour(0, 0), p->cellColour(2, 1));
        const QString tip = map->cellText(2, 0);
        QVERIFY2(tip.contains(QStringLiteral("choice 2 of 2, weight unknown")), qPrintable(tip));
        QVERIFY2(!tip.contains(QStringLiteral("0.000")), qPrintable(tip));
        if (const QString shots = qEnvironmentVariable("MOESCOPE_SHOTS"); !shots.isEmpty()) {
          QVERIFY(map->exportPng(shots + QStringLiteral("/ids-only-routing.png"), 640, 400));
          for (ViewFrame* w : views)
            if (qobject_cast<InspectorView*>(w)) QVERIFY(w->grab().save(shots + QStringLiteral("/ids-only-inspector.png")));
        }
        map->setMode(RoutingMapPlottable::Mode::LayersTopExpert);
        map->refreshNow();
        QCOMPARE(p->cellColour(4, 0), expert_colour(3, 8));  // the top expert needs no weight
        QVERIFY(map->exportPng(dir_.path() + QStringLiteral("/ids-routing-layers.png"), 400, 300));
      } else if (auto* insp = qobject_cast<InspectorView*>(v)) {
        QVERIFY2(insp->headerText().contains(QStringLiteral("weights unknown")), qPrintable(insp->headerText()));
        QVERIFY(insp->headerText().contains(QStringLiteral("expert ids only")));
        QVERIFY(insp->headerText().contains(QStringLiteral("router scores not sent")));
        QCOMPARE(insp->table()->rowCount(), 2);
        QCOMPARE(insp->table()->item(0, 1)->text(), QStringLiteral("1, 0"));  // the order of choice
        QVERIFY(insp->table()->horizontalHeaderItem(1)->text().contains(QStringLiteral("weights unknown")));
        for (int r = 0; r < insp->table()->rowCount(); ++r)
          for (int c = 0; c < insp->table()->columnCount(); ++c)
            QVERIFY2(!insp->table()->item(r, c)->text().contains(QStringLiteral("0.000")), qPrintable(insp->table()->item(r, c)->text()));
        QCOMPARE(insp->table()->item(0, 5)->text(), QStringLiteral("not sent"));  // no bogus margin
        QCOMPARE(insp->table()->item(0, 3)->text(), QStringLiteral("not sent"));  // nor runners-up
      } else if (auto* col = qobject_cast<ExpertColouringView*>(v)) {
        QVERIFY(col->previewHtml().contains(QStringLiteral("weight unknown")));
        QVERIFY(!col->previewHtml().contains(QStringLiteral("weight 0.000")));
      }
    }
    // Load balance and co-activation count ids only: the same as with the weights.
    for (const QString id : {QStringLiteral("load"), QStringLiteral("coactivation")}) {
      QVERIFY(csv.contains(id));
      QCOMPARE(csv[id], full_csv[id]);
    }

    // Live from a server: ids-only segments streamed in as the host publishes them.
    EngineFeed live;
    TraceModel* live_traces = traces_of(live);
    QWidget live_parent;
    const std::vector<ViewFrame*> live_views = all_views(live, live_traces, &live_parent);
    emit live.modelChanged(info_for(ids));
    emit live.generationStarted();
    for (size_t i = 0; i < ids.size(); i += 2) {
      StreamChunk c;
      c.trace = segment_of(ids, i, std::min(ids.size(), i + 2));
      c.new_tokens = i >= 3 ? 2 : 0;
      c.total_tokens = int(i);
      emit live.chunk(c);
      for (ViewFrame* v : live_views) {
        v->resize(600, 400);
        v->refreshNow();
      }
    }
    QCOMPARE(live_traces->trace().size(), ids.size());
    QVERIFY(!live_traces->trace().has_weights());
    for (ViewFrame* v : live_views)
      if (auto* insp = qobject_cast<InspectorView*>(v)) QVERIFY(insp->headerText().contains(QStringLiteral("weights unknown")));
  }

  // Issue 17: what each layer keeps and how the router routes, per architecture, from the
  // shipped presets: gpt-oss (sliding window every other layer, attention sinks, softmax after
  // top-k), Qwen3.5-MoE (Gated DeltaNet linear attention in 3 of 4 layers, a gated shared
  // expert), Mixtral (softmax renormalised over the chosen), DeepSeek-R1 (MLA latent,
  // group-limited routing with a correction bias).
  void views_per_architecture() {
    struct Case {
      std::string preset;
      QStringList kv_has, router_has;
    };
    const std::vector<Case> cases = {
        {"gpt-oss-20b",
         {"What the 24 layers keep: 12 × sliding window of 128 tokens, 12 × full attention", "attention sinks"},
         {"top-4 of the 32 raw logits, then a softmax over the chosen (softmax after top-k)",
          "the router's linear layer has a bias"}},
        {"qwen3.5-35b-a3b",
         {"30 × recurrent state (linear attention), 10 × full attention",
          "linear attention (Gated DeltaNet) in 30 of 40 layers (75 %)"},
         {"renormalised over the chosen", "this trace has no gate values"}},
        {"mixtral-8x7b",
         {"What the 32 layers keep: 32 × full attention"},
         {"softmax over all 8 experts, top-2, renormalised over the chosen (the same as a softmax over the chosen "
          "experts' logits)"}},
        {"deepseek-r1",
         {"What the 61 layers keep: 61 × MLA latent (512 + 64 values per token)"},
         {"group-limited: keeps the best 4 of 8 groups (a group scores the sum of its two best)",
          "a correction bias is added to the scores for the choice only", "weights × 2.5"}},
    };
    for (const Case& c : cases) {
      const ModelInfo info = info_for_preset(c.preset);
      const ModelSpec& spec = *info.spec;
      EngineFeed feed;
      TraceModel* traces = traces_of(feed);
      QWidget parent;
      const std::vector<ViewFrame*> views = all_views(feed, traces, &parent);
      emit feed.modelChanged(info);
      // One token routed to experts 0..k-1 at every MoE layer, ids only (as a server sends them).
      RoutingTrace t(c.preset, info.n_experts, info.top_k, info.moe_layers);
      std::vector<int32_t> ids;
      for (size_t m = 0; m < info.moe_layers.size(); ++m)
        for (int s = 0; s < info.top_k; ++s) ids.push_back(s);
      t.append(TraceToken{0, 1, "Hi", Phase::Prefill}, ids.data(), nullptr, info.top_k);
      emit feed.traceReplaced(std::make_shared<const RoutingTrace>(t));
      traces->selectToken(0);
      QVERIFY(traces->spec());
      for (ViewFrame* v : views) {
        v->resize(800, 500);
        v->refreshNow();
        if (auto* kv = qobject_cast<KvView*>(v)) {
          const QString text = kv->layerKindsText();
          for (const QString& want : c.kv_has) QVERIFY2(text.contains(want), qPrintable(QString::fromStdString(c.preset) + ": " + text));
          kv->setTab(KvView::BytesPerLayer);
          check_exports(kv, dir_.path(), QStringLiteral("layer,tokens,bytes,mha_bytes,cache"));
          const auto rows = parse_csv(dir_.path() + QStringLiteral("/kv.csv"));
          QCOMPARE(rows.size(), 1 + spec.n_layers);  // every layer, its kind from the spec
          for (int l = 0; l < spec.n_layers; ++l) {
            QCOMPARE(rows[l + 1][4], layer_cache_kind(spec, l));
            QVERIFY(rows[l + 1][2].isEmpty());  // no engine figures: no bytes claimed
          }
        } else if (auto* insp = qobject_cast<InspectorView*>(v)) {
          const QString header = insp->headerText();
          for (const QString& want : c.router_has)
            QVERIFY2(header.contains(want.toHtmlEscaped()), qPrintable(QString::fromStdString(c.preset) + ": " + header));
          QVERIFY(header.contains(QStringLiteral("weights unknown")));
        } else if (auto* map = qobject_cast<RoutingMapView*>(v)) {
          QVERIFY2(map->cellText(0, 0).contains(QStringLiteral("\nrouter: ") + router_rule_text(spec.moe.router)), qPrintable(map->cellText(0, 0)));
        }
      }
    }
    // Live figures on Qwen3.5: the 10 attention layers hold K/V per token, the 30 linear-attention
    // layers their fixed state, each shown on its own layer.
    const ModelInfo info = info_for_preset("qwen3.5-35b-a3b");
    const ModelSpec& spec = *info.spec;
    TraceModel model;
    model.setModel(info);
    StreamChunk chunk;
    chunk.has_kv = true;
    chunk.kv.tokens = 100;
    chunk.kv.capacity = 4096;
    chunk.kv.block_tokens = 16;
    chunk.kv.blocks_used = 7;
    chunk.kv.blocks_total = 256;
    chunk.kv.bytes_per_token_layer = 2048;
    chunk.kv.mha_bytes_per_token_layer = 2048;
    chunk.kv.n_layers = spec.n_attention_layers();
    chunk.kv.state_layers = spec.n_linear_layers();
    chunk.kv.state_bytes = int64_t(spec.n_linear_layers()) * spec.linear.state_values() * 4;
    chunk.kv.bytes_used = 2048LL * 100 * chunk.kv.n_layers;
    chunk.kv.element_type = "BF16";
    model.addChunk(chunk);
    KvView kv(&model);
    kv.resize(800, 500);
    kv.setTab(KvView::BytesPerLayer);
    kv.refreshNow();
    const auto rows = kv.layerRows();
    QCOMPARE(int(rows.size()), spec.n_layers);
    for (const KvView::LayerRow& r : rows) {
      QCOMPARE(r.state, spec.is_linear(r.layer));
      QCOMPARE(r.bytes, r.state ? double(spec.linear.state_values()) * 4.0 : 2048.0 * 100);
    }
    if (const QString shots = qEnvironmentVariable("MOESCOPE_SHOTS"); !shots.isEmpty())
      QVERIFY(kv.grab().save(shots + QStringLiteral("/kv-qwen35-bytes-per-layer.png")));
    QVERIFY(kv.exportCsv(dir_.path() + QStringLiteral("/kv-qwen35.csv")));
    const auto csv = parse_csv(dir_.path() + QStringLiteral("/kv-qwen35.csv"));
    const int linear = spec.is_linear(0) ? 0 : 1;  // a linear-attention layer
    QVERIFY(spec.is_linear(linear));
    QCOMPARE(csv[linear + 1][3], QString());  // a state has no multi-head equivalent
    QCOMPARE(csv[linear + 1][4], QStringLiteral("recurrent state (linear attention)"));
  }

  // Issue 16: the legends of the KV and performance plots sit beside the data, never over it:
  // the legend's rect holds none of the data points' pixel positions and leaves the axis rect free.
  void legends_clear_of_the_plotted_points() {
    EngineFeed feed;
    TraceModel* model = traces_of(feed);
    const RoutingTrace t = small_trace(false);
    emit feed.modelChanged(info_for(t));
    emit feed.generationStarted();
    KvStats kv;
    kv.capacity = 8192;
    kv.block_tokens = 16;
    kv.blocks_total = 512;
    kv.bytes_per_token_layer = 1152;
    kv.mha_bytes_per_token_layer = 32768;
    kv.n_layers = 4;
    kv.element_type = "BF16";
    for (int i = 0; i < 6; ++i) {
      StreamChunk c;
      c.trace = segment_of(t, size_t(i), size_t(i + 1));
      c.new_tokens = i < 3 ? 0 : 1;
      c.total_tokens = std::max(0, i - 2);
      c.tokens_per_second = 10.0 + i;
      c.has_kv = true;
      c.kv = kv;
      c.kv.tokens = 800 + i;
      c.kv.bytes_used = 1152LL * c.kv.tokens * 4;
      emit feed.chunk(c);
      QTest::qWait(15);
    }
    GenerationSummary s;
    s.prompt_tokens = 3;
    s.prefill_seconds = 0.5;
    s.generated_tokens = 3;
    s.tokens_per_second = 12.0;
    s.kv = kv;
    s.trace = std::make_shared<const RoutingTrace>(t);
    emit feed.generationFinished(s);

    auto check = [](QCustomPlot* plot, const char* what) {
      plot->replot(QCustomPlot::rpImmediateRefresh);
      QVERIFY2(plot->legend->visible(), what);
      const QRect legend = plot->legend->outerRect();
      QVERIFY2(!legend.intersects(plot->axisRect()->rect()), what);
      int points = 0;
      for (int i = 0; i < plot->plottableCount(); ++i) {
        QCPAbstractPlottable* p = plot->plottable(i);
        if (!p->visible()) continue;
        auto* data = p->interface1D();
        if (!data) continue;
        for (int k = 0; k < data->dataCount(); ++k) {
          const QPointF px(p->keyAxis()->coordToPixel(data->dataMainKey(k)), p->valueAxis()->coordToPixel(data->dataMainValue(k)));
          QVERIFY2(!legend.contains(px.toPoint()), what);
          ++points;
        }
      }
      QVERIFY2(points > 0, what);
    };
    KvView kvv(model);
    kvv.resize(700, 450);
    kvv.show();
    kvv.refreshNow();
    check(kvv.currentPlot(), "KV growth");
    kvv.setTab(KvView::BytesPerLayer);
    kvv.refreshNow();
    check(kvv.currentPlot(), "KV bytes per layer");
    PerformanceView perf(model);
    perf.resize(700, 450);
    perf.show();
    perf.refreshNow();
    check(perf.currentPlot(), "performance tokens/s");
    // A narrow dock: one legend item a row, still above the data, and no wider than the plot.
    perf.resize(260, 450);
    perf.refreshNow();
    check(perf.currentPlot(), "performance tokens/s, 260 px wide");
    QVERIFY(perf.currentPlot()->legend->outerRect().right() <= perf.currentPlot()->width());
    LoadView load(model);
    load.resize(700, 450);
    load.show();
    load.setTab(LoadView::OverTime);
    load.refreshNow();
    check(load.currentPlot(), "load balance over time");
  }

  void big_trace_in_time() {
    QElapsedTimer timer;
    timer.start();
    const RoutingTrace big = big_trace(4000);
    const qint64 build_ms = timer.restart();
    EngineFeed feed;
    TraceModel* model = traces_of(feed);
    QWidget parent;
    const std::vector<ViewFrame*> views = all_views(feed, model, &parent);
    for (ViewFrame* v : views) v->resize(1000, 700);
    emit feed.traceReplaced(std::make_shared<const RoutingTrace>(big));
    const qint64 replace_ms = timer.restart();
    QCOMPARE(model->trace().size(), size_t(4000));
    model->selectToken(3999);
    QStringList times;
    qint64 total = 0;
    for (ViewFrame* v : views) {
      timer.restart();
      v->refreshNow();
      QVERIFY(v->exportPng(dir_.path() + QStringLiteral("/big-%1.png").arg(v->viewId()), 1000, 600));
      const qint64 ms = timer.elapsed();
      total += ms;
      times << QStringLiteral("%1 %2 ms").arg(v->viewId()).arg(ms);
    }
    // The routing map with all 4,000 tokens in view, in both modes, and panned.
    auto* map = qobject_cast<RoutingMapView*>(views[0]);
    QVERIFY(map);
    timer.restart();
    map->showTokens(0, 4000);
    for (int i = 0; i < 5; ++i) {
      map->setMode(i % 2 ? RoutingMapPlottable::Mode::LayersTopExpert : RoutingMapPlottable::Mode::ExpertsOfLayer);
      map->refreshNow();
      map->currentPlot()->replot(QCustomPlot::rpImmediateRefresh);
    }
    const qint64 map_ms = timer.elapsed();
    qInfo("256 experts × 61 layers × 4000 tokens: build %lld ms, replace (stats for 3 windows + timelines) %lld ms, "
          "each view refresh + PNG: %s (total %lld ms), 5 full-range routing-map redraws %lld ms",
          build_ms, replace_ms, qPrintable(times.join(QStringLiteral(", "))), total, map_ms);
    QVERIFY2(replace_ms < 10000, "replacing the trace took over 10 s");
    QVERIFY2(total < 20000, "refreshing every view took over 20 s");
    QVERIFY2(map_ms < 10000, "five full-range routing-map redraws took over 10 s");
  }

  // The live path is incremental: a 4,000-token conversation arriving as 100 segments of 40
  // tokens costs the views' data model the same work per segment from the first to the last
  // (the tokens it appends, nothing re-read), and the finished answer's trace, the same tokens,
  // replaces nothing. The statistics equal those of the whole trace taken at once.
  void incremental_views_over_a_long_conversation() {
    const RoutingTrace whole = big_trace(4000);
    EngineFeed feed;
    TraceModel* model = traces_of(feed);
    emit feed.modelChanged(info_for(whole));
    emit feed.generationStarted();
    std::vector<quint64> work;
    std::vector<qint64> nanos;
    QElapsedTimer timer;
    for (size_t first = 0; first < whole.size(); first += 40) {
      StreamChunk c;
      c.trace = segment_of(whole, first, first + 40);
      c.new_tokens = 40;
      const quint64 before = model->tokensProcessed();
      timer.start();
      emit feed.chunk(c);
      nanos.push_back(timer.nsecsElapsed());
      work.push_back(model->tokensProcessed() - before);
    }
    QCOMPARE(work.size(), size_t(100));
    for (quint64 w : work) QCOMPARE(w, quint64(40));  // flat: the new tokens only
    // Time per segment stays flat too (median of the last ten within 4× of the first ten's, +1 ms).
    auto median = [](std::vector<qint64> v) {
      std::sort(v.begin(), v.end());
      return v[v.size() / 2];
    };
    const qint64 head = median({nanos.begin(), nanos.begin() + 10}), tail = median({nanos.end() - 10, nanos.end()});
    qInfo("segment of 40 tokens: median %.2f ms at the start, %.2f ms at the end", head * 1e-6, tail * 1e-6);
    QVERIFY2(tail < 4 * head + 1000000, qPrintable(QStringLiteral("%1 ns then %2 ns").arg(head).arg(tail)));
    QVERIFY(model->trace() == whole);
    RoutingStats direct = RoutingStats::for_trace(whole);
    direct.add_all(whole);
    for (int m = 0; m < whole.n_moe_layers(); m += 10)
      QCOMPARE(model->stats(StatsWindow::Conversation).load(m), direct.load(m));
    GenerationSummary s;
    s.generated_tokens = 3800;
    s.trace = std::make_shared<const RoutingTrace>(whole);
    const quint64 before = model->tokensProcessed();
    emit feed.generationFinished(s);
    QCOMPARE(model->tokensProcessed(), before);  // nothing rebuilt
  }

  // A conversation's trace saved and reopened is the same trace bit for bit (ids, half-precision
  // weights and router scores), with the same statistics.
  void saved_trace_reopens_identical() {
    QTemporaryDir dir;
    ConversationStore store(dir.path());
    for (const RoutingTrace& t : {big_trace(500), small_trace(true)}) {
      Conversation c = Conversation::create();
      c.messages.push_back({QStringLiteral("user"), QStringLiteral("Hello"), 0, 0.0, {}});
      c.trace = std::make_shared<const RoutingTrace>(t);
      QVERIFY(store.save(c).isEmpty());
      const auto loaded = store.load_all();
      QVERIFY(loaded.problems.isEmpty());
      const Conversation* back = nullptr;
      for (const auto& x : loaded.conversations)
        if (x.id == c.id) back = &x;
      QVERIFY(back && back->trace);
      QVERIFY(*back->trace == t);
      TraceModel a, b;
      a.replaceTrace(t, QStringLiteral("before"));
      b.replaceTrace(*back->trace, QStringLiteral("after"));
      for (int m = 0; m < t.n_moe_layers(); ++m)
        QCOMPARE(a.stats(StatsWindow::Conversation).load(m), b.stats(StatsWindow::Conversation).load(m));
      QCOMPARE(a.stats(StatsWindow::Conversation).mean_over_layers().cv, b.stats(StatsWindow::Conversation).mean_over_layers().cv);
    }
  }

private:
  QTemporaryDir dir_;
};

QTEST_MAIN(TestViews)
#include "test_views.moc"
