#include "ui/views/load_view.h"

#include <QComboBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QTabWidget>
#include <QTableWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <qcustomplot.h>

#include "ui/views/palette.h"

namespace moescope::ui {

namespace {
const char* kHelp =
    "Load = how many times an expert was selected (each token picks top_k experts per MoE layer). "
    "The dashed line is the uniform share, tokens × top_k ÷ experts.\n"
    "Per layer, over the chosen window:\n"
    "  cv — population standard deviation of the load ÷ mean load (0 = perfectly even)\n"
    "  MaxVio — max load ÷ mean load − 1 (how overloaded the busiest expert is)\n"
    "  entropy — −Σ p log p ÷ log(experts), p = load ÷ Σ load (1 = perfectly even)\n"
    "  dead — experts with load 0;  distinct — experts with load > 0\n"
    "All layers: expert 3 of one layer and expert 3 of another are different experts, so their loads "
    "are never added; 'mean' is the mean of the per-layer figures, 'worst' the worst layer's (highest cv, "
    "MaxVio and dead, lowest entropy and distinct); the over-time curves are the means. Windows: this answer (its new prompt tokens and the generated "
    "ones), this conversation (the whole trace on screen), everything since load (every token the model "
    "processed since it was loaded). DeepSeek-V3 keeps MaxVio low with a bias on the router scores "
    "instead of an auxiliary loss.";

QTableWidgetItem* cell(const QString& text) {
  auto* it = new QTableWidgetItem(text);
  it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  it->setFlags(Qt::ItemIsSelectable | Qt::ItemIsEnabled);
  return it;
}
}  // namespace

LoadView::LoadView(TraceModel* model, QWidget* parent)
    : ViewFrame(model, QStringLiteral("load"),
                tr("How evenly tokens spread over the experts: bars above the dashed uniform line are "
                   "overloaded experts, missing bars are experts nobody used."),
                tr(kHelp), parent) {
  window_box_ = new QComboBox(this);
  for (StatsWindow w : {StatsWindow::Answer, StatsWindow::Conversation, StatsWindow::SinceLoad})
    window_box_->addItem(window_label(w), int(w));
  window_box_->setCurrentIndex(int(window_));
  window_box_->setToolTip(tr("Which tokens the statistics count"));
  connect(window_box_, &QComboBox::currentIndexChanged, this, [this](int i) { setWindow(StatsWindow(i)); });
  layer_box_ = new QComboBox(this);
  layer_box_->setToolTip(tr("MoE layer shown in the bars and highlighted over time"));
  connect(layer_box_, &QComboBox::currentIndexChanged, this, [this](int i) {
    if (i >= 0) setLayer(i);
  });
  controls()->insertWidget(0, new QLabel(tr("Window"), this));
  controls()->insertWidget(1, window_box_);
  controls()->insertWidget(2, new QLabel(tr("Layer"), this));
  controls()->insertWidget(3, layer_box_);

  tabs_ = new QTabWidget(this);
  tabs_->setDocumentMode(true);
  body()->addWidget(tabs_, 1);

  // Per expert: bars, the uniform line, red marks under dead experts.
  bars_plot_ = makePlot(this);
  bars_ = new QCPBars(bars_plot_->xAxis, bars_plot_->yAxis);
  bars_->setWidth(0.8);
  bars_->setPen(Qt::NoPen);
  bars_->setBrush(QColor(0x41, 0x7B, 0xB8));
  bars_->setName(tr("load"));
  dead_marks_ = bars_plot_->addGraph();
  dead_marks_->setLineStyle(QCPGraph::lsNone);
  dead_marks_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssCross, QColor(0xD6, 0x27, 0x28), 5));
  dead_marks_->setName(tr("dead expert"));
  uniform_line_ = new QCPItemStraightLine(bars_plot_);
  uniform_line_->setPen(QPen(QColor(0xD6, 0x27, 0x28), 1.5, Qt::DashLine));
  useIntegerTicks(bars_plot_->xAxis);
  bars_plot_->xAxis->setLabel(tr("expert"));
  bars_plot_->yAxis->setLabel(tr("tokens routed"));
  bars_plot_->legend->setVisible(false);
  tabs_->addTab(bars_plot_, tr("Per expert"));

  // Layers × experts: load relative to the uniform share.
  map_plot_ = makePlot(this);
  map_ = new QCPColorMap(map_plot_->xAxis, map_plot_->yAxis);
  map_->setInterpolate(false);
  map_->setTightBoundary(false);
  map_scale_ = new QCPColorScale(map_plot_);
  map_plot_->plotLayout()->addElement(0, 1, map_scale_);
  map_scale_->setLabel(tr("load ÷ uniform"));
  map_scale_->setBarWidth(10);
  map_->setColorScale(map_scale_);
  map_->setGradient(weight_gradient());
  auto* group = new QCPMarginGroup(map_plot_);
  map_plot_->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
  map_scale_->setMarginGroup(QCP::msBottom | QCP::msTop, group);
  useIntegerTicks(map_plot_->xAxis);
  map_plot_->xAxis->setLabel(tr("expert"));
  map_plot_->yAxis->setLabel(tr("layer"));
  map_plot_->yAxis->setRangeReversed(true);
  tabs_->addTab(map_plot_, tr("Layers × experts"));

  // Over time.
  time_plot_ = makePlot(this);
  cv_graph_ = time_plot_->addGraph();
  cv_graph_->setName(tr("cv (mean of the layers)"));
  cv_graph_->setPen(QPen(QColor(0x1f, 0x77, 0xb4), 1.6));
  maxvio_graph_ = time_plot_->addGraph();
  maxvio_graph_->setName(tr("MaxVio (mean of the layers)"));
  maxvio_graph_->setPen(QPen(QColor(0xff, 0x7f, 0x0e), 1.6));
  layer_graph_ = time_plot_->addGraph();
  layer_graph_->setPen(QPen(QColor(0x7f, 0x7f, 0x7f), 1.2, Qt::DashLine));
  time_plot_->xAxis->setLabel(tr("tokens in the window"));
  time_plot_->yAxis->setLabel(tr("imbalance"));
  placeLegendAbove(time_plot_);  // beside the curves, never over them (issue 16)
  tabs_->addTab(time_plot_, tr("Over time"));

  table_ = new QTableWidget(this);
  table_->setColumnCount(7);
  table_->setHorizontalHeaderLabels({tr("layer"), tr("tokens"), tr("cv"), tr("MaxVio"), tr("entropy"), tr("dead"), tr("distinct")});
  table_->verticalHeader()->setVisible(false);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  table_->setSelectionBehavior(QAbstractItemView::SelectRows);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  connect(table_, &QTableWidget::cellClicked, this, [this](int row, int) {
    if (row < layer_box_->count()) layer_box_->setCurrentIndex(row);
  });
  tabs_->addTab(table_, tr("Metrics"));
  connect(tabs_, &QTabWidget::currentChanged, this, [this] { markDirty(); });
}

void LoadView::setWindow(StatsWindow w) {
  window_ = w;
  if (window_box_->currentIndex() != int(w)) window_box_->setCurrentIndex(int(w));
  markDirty();
}

void LoadView::setLayer(int moe_index) {
  layer_ = std::max(0, moe_index);
  if (layer_box_->currentIndex() != layer_ && layer_ < layer_box_->count()) layer_box_->setCurrentIndex(layer_);
  markDirty();
}

void LoadView::setTab(Tab t) { tabs_->setCurrentIndex(int(t)); }

const RoutingStats& LoadView::shownStats() const { return traceModel()->stats(window_); }

QCustomPlot* LoadView::currentPlot() const {
  switch (tabs_->currentIndex()) {
    case LayerMap: return map_plot_;
    case OverTime: return time_plot_;
    default: return bars_plot_;
  }
}

void LoadView::syncLayers() { sync_layer_box(layer_box_, shownStats().moe_layers(), layer_); }

void LoadView::refresh() {
  syncLayers();
  const RoutingStats& s = shownStats();
  const bool empty = s.tokens() == 0 || s.moe_layers().empty();
  if (empty) {
    setStatus(tr("No tokens in %1 yet.").arg(window_label(window_)));
  } else {
    const LayerBalance all = s.mean_over_layers();
    const LayerBalance l = s.layer(layer_);
    setStatus(tr("%1 · %2 tokens · layer %3: cv %4, MaxVio %5, entropy %6, dead %7 · mean of the layers: cv %8, MaxVio %9, entropy %10")
                  .arg(window_label(window_))
                  .arg(s.tokens())
                  .arg(l.layer)
                  .arg(l.cv, 0, 'f', 3)
                  .arg(l.maxvio, 0, 'f', 3)
                  .arg(l.entropy, 0, 'f', 3)
                  .arg(l.dead)
                  .arg(all.cv, 0, 'f', 3)
                  .arg(all.maxvio, 0, 'f', 3)
                  .arg(all.entropy, 0, 'f', 3));
  }
  // Only the visible tab is redrawn; the others catch up when shown.
  switch (tabs_->currentIndex()) {
    case PerExpert: refreshBars(); break;
    case LayerMap: refreshMap(); break;
    case OverTime: refreshTimeline(); break;
    case Metrics: refreshTable(); break;
  }
}

void LoadView::refreshBars() {
  const RoutingStats& s = shownStats();
  const int E = s.n_experts();
  QVector<double> keys, values, dead;
  uniform_ = 0.0;
  if (s.tokens() > 0 && layer_ < int(s.moe_layers().size())) {
    const auto& load = s.load(layer_);
    double sum = 0;
    for (int e = 0; e < E; ++e) {
      keys.push_back(e);
      values.push_back(double(load[size_t(e)]));
      sum += double(load[size_t(e)]);
      if (load[size_t(e)] == 0) dead.push_back(e);
    }
    uniform_ = E > 0 ? sum / E : 0.0;
  }
  bars_->setData(keys, values, true);
  dead_marks_->setData(dead, QVector<double>(dead.size(), 0.0), true);
  uniform_line_->setVisible(uniform_ > 0);
  uniform_line_->point1->setCoords(-1, uniform_);
  uniform_line_->point2->setCoords(E + 1, uniform_);
  const double top = values.isEmpty() ? 1.0 : *std::max_element(values.begin(), values.end());
  bars_plot_->xAxis->setRange(-0.7, std::max(1, E) - 0.3);
  bars_plot_->yAxis->setRange(0, std::max({top, uniform_, 1.0}) * 1.08);
  bars_plot_->xAxis->setLabel(s.moe_layers().empty() ? tr("expert")
                                                     : tr("expert (layer %1)").arg(s.moe_layers()[size_t(std::min<int>(layer_, int(s.moe_layers().size()) - 1))]));
  bars_plot_->replot(QCustomPlot::rpQueuedReplot);
}

void LoadView::refreshMap() {
  const RoutingStats& s = shownStats();
  const int E = s.n_experts(), L = int(s.moe_layers().size());
  map_->data()->setSize(std::max(1, E), std::max(1, L));
  map_->data()->setRange(QCPRange(0, std::max(1, E) - 1), QCPRange(0, std::max(1, L) - 1));
  double top = 1.0;
  for (int m = 0; m < L; ++m) {
    const auto& load = s.load(m);
    double sum = 0;
    for (int64_t v : load) sum += double(v);
    const double mean = E > 0 ? sum / E : 0.0;
    for (int e = 0; e < E; ++e) {
      const double rel = mean > 0 ? double(load[size_t(e)]) / mean : 0.0;
      top = std::max(top, rel);
      map_->data()->setCell(e, m, rel);
    }
  }
  if (L == 0 || E == 0) map_->data()->fill(0);
  map_->setDataRange(QCPRange(0, top));
  map_plot_->xAxis->setRange(-0.5, std::max(1, E) - 0.5);
  map_plot_->yAxis->setRange(-0.5, std::max(1, L) - 0.5);
  auto ticker = QSharedPointer<QCPAxisTickerText>::create();
  const int stride = std::max(1, L / 12);
  for (int m = 0; m < L; m += stride) ticker->addTick(m, QString::number(s.moe_layers()[size_t(m)]));
  map_plot_->yAxis->setTicker(ticker);
  map_plot_->replot(QCustomPlot::rpQueuedReplot);
}

void LoadView::refreshTimeline() {
  const auto& tl = traceModel()->timeline(window_);
  QVector<double> x, cv, mv, lm;
  x.reserve(int(tl.size()));
  for (const auto& p : tl) {
    x.push_back(p.tokens);
    cv.push_back(p.cv);
    mv.push_back(p.maxvio);
    lm.push_back(layer_ < int(p.layer_maxvio.size()) ? p.layer_maxvio[size_t(layer_)] : 0.0);
  }
  cv_graph_->setData(x, cv, true);
  maxvio_graph_->setData(x, mv, true);
  layer_graph_->setData(x, lm, true);
  const auto& layers = shownStats().moe_layers();
  layer_graph_->setName(layers.empty() ? tr("MaxVio (layer)")
                                       : tr("MaxVio (layer %1)").arg(layers[size_t(std::min<int>(layer_, int(layers.size()) - 1))]));
  time_plot_->rescaleAxes();
  time_plot_->yAxis->setRangeLower(0);
  if (x.isEmpty()) time_plot_->xAxis->setRange(0, 1);
  time_plot_->yAxis->setRangeUpper(time_plot_->yAxis->range().upper * 1.08 + 1e-9);
  time_plot_->replot(QCustomPlot::rpQueuedReplot);
}

void LoadView::refreshTable() {
  const RoutingStats& s = shownStats();
  const int L = int(s.moe_layers().size());
  table_->setRowCount(s.tokens() > 0 ? L + 2 : 0);
  if (s.tokens() == 0) return;
  auto put = [&](int row, const LayerBalance& b, const QString& name) {
    table_->setItem(row, 0, cell(name));
    table_->setItem(row, 1, cell(QString::number(b.tokens)));
    table_->setItem(row, 2, cell(QString::number(b.cv, 'f', 3)));
    table_->setItem(row, 3, cell(QString::number(b.maxvio, 'f', 3)));
    table_->setItem(row, 4, cell(QString::number(b.entropy, 'f', 3)));
    table_->setItem(row, 5, cell(QString::number(b.dead)));
    table_->setItem(row, 6, cell(QString::number(b.distinct)));
  };
  for (int m = 0; m < L; ++m) put(m, s.layer(m), QString::number(s.moe_layers()[size_t(m)]));
  // Experts of different layers are unrelated: all-layer rows are statistics of the rows above.
  put(L, s.mean_over_layers(), tr("mean"));
  put(L + 1, s.worst_over_layers(), tr("worst"));
}

QString LoadView::csv() const {
  const RoutingStats& s = shownStats();
  QString out;
  switch (tabs_->currentIndex()) {
    case PerExpert: {
      out = QStringLiteral("layer,expert,load,uniform\n");
      if (s.tokens() == 0 || layer_ >= int(s.moe_layers().size())) break;
      const auto& load = s.load(layer_);
      double sum = 0;
      for (int64_t v : load) sum += double(v);
      for (int e = 0; e < s.n_experts(); ++e)
        out += QStringLiteral("%1,%2,%3,%4\n").arg(s.moe_layers()[size_t(layer_)]).arg(e).arg(load[size_t(e)]).arg(sum / s.n_experts(), 0, 'g', 8);
      break;
    }
    case LayerMap:
      out = QStringLiteral("layer,expert,load\n");
      for (size_t m = 0; m < s.moe_layers().size(); ++m)
        for (int e = 0; e < s.n_experts(); ++e)
          out += QStringLiteral("%1,%2,%3\n").arg(s.moe_layers()[m]).arg(e).arg(s.load(int(m))[size_t(e)]);
      break;
    case OverTime: {
      const auto& layers = s.moe_layers();
      out = QStringLiteral("tokens,cv,maxvio,entropy,maxvio_layer_%1\n").arg(layers.empty() ? -1 : layers[size_t(std::min<int>(layer_, int(layers.size()) - 1))]);
      for (const auto& p : traceModel()->timeline(window_))
        out += QStringLiteral("%1,%2,%3,%4,%5\n").arg(p.tokens).arg(p.cv, 0, 'g', 8).arg(p.maxvio, 0, 'g', 8).arg(p.entropy, 0, 'g', 8)
                   .arg(layer_ < int(p.layer_maxvio.size()) ? p.layer_maxvio[size_t(layer_)] : 0.0, 0, 'g', 8);
      break;
    }
    default:
      out = QString::fromStdString(balance_csv(s));
  }
  return out;
}

}  // namespace moescope::ui
