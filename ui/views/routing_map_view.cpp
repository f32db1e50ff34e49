#include "ui/views/routing_map_view.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHelpEvent>
#include <QLabel>
#include <QMouseEvent>
#include <QToolTip>
#include <QVBoxLayout>
#include <algorithm>
#include <map>

#include "ui/guide.h"
#include "ui/views/expert_colouring.h"
#include "ui/views/palette.h"
#include "ui/views/trace_model.h"

namespace moescope::ui {

namespace {
constexpr double kInitialTokens = 400;  // tokens shown when a trace appears (the newest ones)
constexpr int kTextTicks = 40;          // at most this many tokens visible: label ticks with their text
const char* kHelp =
    "Each column is one token (prompt and answer), in order. In 'experts of a layer' each row is one "
    "expert of the chosen MoE layer; a coloured cell means the router sent the token to that expert, "
    "darker = larger weight (the multiplier applied to the expert's output). Every column has top_k "
    "coloured cells. In 'layers, top expert' each row is a MoE layer and the colour names the expert "
    "with the highest score there (the same expert has the same colour in every view), so horizontal "
    "stripes mean consecutive tokens share an expert. Drag to pan, mouse wheel to zoom (over an axis: "
    "zoom only that axis), click a token to open it in the token inspector.\n\n"
    "Weights unknown: a trace from a remote server (vLLM, SGLang) carries only the chosen experts' ids, "
    "in the order of choice. Its cells are then coloured by choice rank (first choice darkest) and the "
    "tooltips and the CSV leave the weight out.";
constexpr int kMinRowPx = 10;  // a row of the map is never drawn lower than this
}  // namespace

RoutingMapView::RoutingMapView(TraceModel* model, QWidget* parent)
    : ViewFrame(model, QStringLiteral("routing"),
                tr("Which experts the router picked for every token: columns are tokens, rows are experts "
                   "(or layers); hover a cell for details, click to inspect the token."),
                tr(kHelp), parent) {
  mode_box_ = new QComboBox(this);
  mode_box_->addItem(tr("experts of a layer (weight)"));
  mode_box_->addItem(tr("layers (top expert)"));
  connect(mode_box_, &QComboBox::currentIndexChanged, this,
          [this](int i) { setMode(i == 1 ? RoutingMapPlottable::Mode::LayersTopExpert : RoutingMapPlottable::Mode::ExpertsOfLayer); });
  layer_box_ = new QComboBox(this);
  connect(layer_box_, &QComboBox::currentIndexChanged, this, [this](int i) {
    if (i >= 0) setLayer(i);
  });
  follow_ = new QCheckBox(tr("Follow"), this);
  follow_->setChecked(true);
  follow_->setToolTip(tr("Keep the newest tokens in view while the model writes"));
  controls()->insertWidget(0, mode_box_);
  controls()->insertWidget(1, layer_box_);
  controls()->insertWidget(2, follow_);

  plot_ = makePlot(this);
  plot_->setObjectName(QStringLiteral("routingPlot"));
  map_ = new RoutingMapPlottable(plot_->xAxis, plot_->yAxis);
  map_->setTrace(traceModel()->tracePtr());
  plot_->yAxis->setRangeReversed(true);
  plot_->xAxis->setLabel(tr("token"));
  plot_->yAxis->setLabel(tr("expert"));
  plot_->xAxis->grid()->setVisible(false);
  plot_->yAxis->grid()->setVisible(false);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  // Room for 8 readable rows at least; more rows (16-256 experts) scroll (drag) and zoom (wheel).
  plot_->setMinimumHeight(kMinRowPx * 8 + 110);  // + the axes and the token labels
  plot_->axisRect()->setRangeZoomFactor(0.85);
  scale_ = new QCPColorScale(plot_);
  scale_->setGradient(weight_gradient());
  scale_->setLabel(tr("weight"));
  scale_->setBarWidth(10);
  plot_->plotLayout()->addElement(0, 1, scale_);
  auto* group = new QCPMarginGroup(plot_);
  plot_->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
  scale_->setMarginGroup(QCP::msBottom | QCP::msTop, group);
  selection_ = new QCPItemRect(plot_);
  selection_->setPen(QPen(QColor(0xD6, 0x27, 0x28), 2));
  selection_->setBrush(Qt::NoBrush);
  selection_->setVisible(false);
  plot_->setMouseTracking(true);
  plot_->installEventFilter(this);
  connect(plot_->xAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this] {
    clampRanges();
    updateTicks();
  });
  connect(plot_->yAxis, qOverload<const QCPRange&>(&QCPAxis::rangeChanged), this, [this] { clampRanges(); });
  // After each layout pass (the plot was resized): never squeeze rows below the readable height,
  // and follow the size while the user has not zoomed.
  connect(plot_, &QCustomPlot::afterLayout, this, [this] {
    const double before = plot_->yAxis->range().size();
    fitRows(false);
    if (plot_->yAxis->range().size() != before) plot_->replot(QCustomPlot::rpQueuedReplot);
  });
  connect(plot_, &QCustomPlot::mouseRelease, this, [this](QMouseEvent* e) {
    // A click (not the end of a drag) selects the token under the cursor.
    if (e->button() != Qt::LeftButton) return;
    const double k = plot_->xAxis->pixelToCoord(e->position().x());
    const long t = std::lround(k);
    if (t >= 0 && size_t(t) < traceModel()->trace().size() && plot_->axisRect()->rect().contains(e->position().toPoint()))
      traceModel()->selectToken(int(t));
  });
  body()->addWidget(plot_, 1);
  legend_ = new ExpertLegend(this);
  legend_->setVisible(false);
  body()->addWidget(legend_);

  connect(traceModel(), &TraceModel::reset, this, &RoutingMapView::onReset);
  connect(traceModel(), &TraceModel::tokenSelected, this, [this] { markDirty(); });
}

void RoutingMapView::onReset() {
  fresh_ = true;
  weight_scanned_ = 0;
  weight_top_ = 0;
  markDirty();
}

void RoutingMapView::setMode(RoutingMapPlottable::Mode mode) {
  const int idx = mode == RoutingMapPlottable::Mode::LayersTopExpert ? 1 : 0;
  if (mode_box_->currentIndex() != idx) mode_box_->setCurrentIndex(idx);
  map_->setMode(mode, layer_box_->currentIndex());
  layer_box_->setEnabled(mode == RoutingMapPlottable::Mode::ExpertsOfLayer);
  plot_->yAxis->setLabel(mode == RoutingMapPlottable::Mode::ExpertsOfLayer ? tr("expert") : tr("layer"));
  scale_->setVisible(mode == RoutingMapPlottable::Mode::ExpertsOfLayer);
  legend_->setVisible(mode == RoutingMapPlottable::Mode::LayersTopExpert);
  fitRows(true);
  markDirty();
}

// Shows as many rows as fit at kMinRowPx each; the rest is a drag away. On a resize (`force` =
// false) a zoom the user chose stays unless its rows would get too low.
void RoutingMapView::fitRows(bool force) {
  const int rows = std::max(1, map_->rows());
  // The axis rect as the last layout pass sized it (before the first one, an estimate).
  const int height = plot_->axisRect()->height() > 0 ? plot_->axisRect()->height() : plot_->height() - 110;
  const double fit = std::min<double>(rows, std::max(4, height / kMinRowPx));
  const QCPRange y = plot_->yAxis->range();
  if (!force && y.size() != fitted_span_ && y.size() <= fit) return;
  if (!force && std::abs(y.size() - fit) < 1e-9) return;
  const double lo = std::clamp(y.lower, -0.5, rows - 0.5 - fit);
  fitted_span_ = fit;
  plot_->yAxis->setRange(lo, lo + fit);
}

void RoutingMapView::setLayer(int moe_index) {
  if (layer_box_->currentIndex() != moe_index && moe_index < layer_box_->count()) layer_box_->setCurrentIndex(moe_index);
  map_->setMode(map_->mode(), moe_index);
  updateWeightTop(true);
  markDirty();
}

void RoutingMapView::showTokens(double first, double last) {
  follow_->setChecked(false);
  plot_->xAxis->setRange(first - 0.5, last - 0.5);
  fresh_ = false;
  markDirty();
}

void RoutingMapView::syncLayers() {
  int m = map_->layer();
  if (sync_layer_box(layer_box_, traceModel()->trace().moe_layers(), m)) map_->setMode(map_->mode(), m);
}

// The darkest colour stands for the largest weight seen at the shown layer (scanned incrementally).
void RoutingMapView::updateWeightTop(bool from_start) {
  const RoutingTrace& rt = traceModel()->trace();
  if (from_start) {
    weight_scanned_ = 0;
    weight_top_ = 0;
  }
  const int m = map_->layer();
  if (m < rt.n_moe_layers() && rt.has_weights())
    for (size_t t = weight_scanned_; t < rt.size(); ++t)
      for (int s = 0; s < rt.top_k(); ++s)
        if (rt.expert(t, m, s) >= 0) weight_top_ = std::max(weight_top_, double(rt.weight(t, m, s)));
  weight_scanned_ = rt.size();
  map_->setWeightRange(weight_top_ > 0 ? weight_top_ : 1.0);
  updateScale();
}

// The colour scale names what the darkness stands for: the weight, or (weights unknown) the rank
// of the choice, with the ranks as its ticks.
void RoutingMapView::updateScale() {
  const RoutingTrace& rt = traceModel()->trace();
  const bool by_rank = !rt.has_weights();
  const int k = std::max(1, rt.top_k());
  if (by_rank) {
    if (scale_ticks_k_ != k) {
      auto ticker = QSharedPointer<QCPAxisTickerText>::create();
      const int stride = std::max(1, k / 4);
      for (int slot = 0; slot < k; slot += stride)
        ticker->addTick(RoutingMapPlottable::rankLevel(slot, k) / 255.0, tr("choice %1").arg(slot + 1));
      if ((k - 1) % stride != 0) ticker->addTick(RoutingMapPlottable::rankLevel(k - 1, k) / 255.0, tr("choice %1").arg(k));
      scale_->axis()->setTicker(ticker);
      scale_ticks_k_ = k;
    }
    scale_->setLabel(tr("choice rank (weights unknown)"));
    scale_->setDataRange(QCPRange(0, 1));
  } else {
    if (scale_ticks_k_ != 0) {
      scale_->axis()->setTicker(QSharedPointer<QCPAxisTicker>::create());
      scale_ticks_k_ = 0;
    }
    scale_->setLabel(tr("weight"));
    scale_->setDataRange(QCPRange(0, weight_top_ > 0 ? weight_top_ : 1.0));
  }
  const QString mode_text = by_rank ? tr("experts of a layer (choice rank)") : tr("experts of a layer (weight)");
  if (mode_box_->itemText(0) != mode_text) mode_box_->setItemText(0, mode_text);
}

void RoutingMapView::clampRanges() {
  if (clamping_) return;
  clamping_ = true;
  const double n = std::max<double>(1, double(traceModel()->trace().size()));
  QCPRange x = plot_->xAxis->range();
  const double span = std::clamp(x.size(), 4.0, std::max(4.0, n));
  double lo = std::clamp(x.lower, -0.5, std::max(-0.5, n - 0.5 - span));
  if (x.size() != span || x.lower != lo) plot_->xAxis->setRange(lo, lo + span);
  const double rows = std::max(1, map_->rows());
  QCPRange y = plot_->yAxis->range();
  const double yspan = std::clamp(y.size(), std::min(4.0, rows), rows);
  double ylo = std::clamp(y.lower, -0.5, rows - 0.5 - yspan);
  if (y.size() != yspan || y.lower != ylo) plot_->yAxis->setRange(ylo, ylo + yspan);
  clamping_ = false;
}

// Zoomed in far enough, the token axis shows the tokens' text.
void RoutingMapView::updateTicks() {
  const RoutingTrace& rt = traceModel()->trace();
  const QCPRange r = plot_->xAxis->range();
  if (r.size() <= kTextTicks && rt.size() > 0) {
    auto ticker = QSharedPointer<QCPAxisTickerText>::create();
    const long a = std::max(0L, long(std::ceil(r.lower))), b = std::min(long(rt.size()) - 1, long(std::floor(r.upper)));
    for (long t = a; t <= b; ++t) {
      QString s = visible_token_text(rt.token(size_t(t)).text);
      if (s.size() > 12) s = s.left(11) + QChar(0x2026);
      ticker->addTick(double(t), s);
    }
    plot_->xAxis->setTicker(ticker);
    plot_->xAxis->setTickLabelRotation(-60);
  } else if (!plot_->xAxis->ticker().dynamicCast<QCPAxisTickerFixed>()) {
    auto ticker = QSharedPointer<QCPAxisTickerFixed>::create();
    ticker->setTickStep(1);
    ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    plot_->xAxis->setTicker(ticker);
    plot_->xAxis->setTickLabelRotation(0);
  }
  // Layer rows are labelled with the model's layer numbers.
  if (map_->mode() == RoutingMapPlottable::Mode::LayersTopExpert) {
    auto ticker = QSharedPointer<QCPAxisTickerText>::create();
    const int L = rt.n_moe_layers(), stride = std::max(1, L / 12);
    for (int m = 0; m < L; m += stride) ticker->addTick(m, QString::number(rt.moe_layers()[size_t(m)]));
    plot_->yAxis->setTicker(ticker);
  } else if (!plot_->yAxis->ticker().dynamicCast<QCPAxisTickerFixed>()) {
    auto ticker = QSharedPointer<QCPAxisTickerFixed>::create();
    ticker->setTickStep(1);
    ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
    plot_->yAxis->setTicker(ticker);
  }
}

void RoutingMapView::refresh() {
  TraceModel* m = traceModel();
  const RoutingTrace& rt = m->trace();
  syncLayers();
  map_->setTrace(m->tracePtr());
  if (weight_scanned_ > rt.size()) weight_scanned_ = 0, weight_top_ = 0;
  updateWeightTop(false);
  const double n = double(rt.size());
  if (fresh_ && rt.size() > 0) {
    fresh_ = false;
    plot_->xAxis->setRange(std::max(-0.5, n - kInitialTokens - 0.5), n - 0.5);
    plot_->yAxis->setRange(-0.5, 0.5);
    fitRows(true);
  } else if (follow_->isChecked() && rt.size() > last_size_) {
    // Following: a short trace is shown whole; a longer one slides with the span kept.
    const QCPRange r = plot_->xAxis->range();
    if (r.lower <= -0.5 + 1e-9 && n <= kInitialTokens)
      plot_->xAxis->setRange(-0.5, n - 0.5);
    else
      plot_->xAxis->setRange(std::max(-0.5, n - 0.5 - r.size()), std::max(n - 0.5, r.size() - 0.5));
  }
  last_size_ = rt.size();
  clampRanges();
  updateTicks();

  const int sel = m->selectedToken();
  selection_->setVisible(sel >= 0 && size_t(sel) < rt.size());
  if (selection_->visible()) {
    selection_->topLeft->setCoords(sel - 0.5, -0.5);
    selection_->bottomRight->setCoords(sel + 0.5, map_->rows() - 0.5);
  }
  if (map_->mode() == RoutingMapPlottable::Mode::LayersTopExpert) {
    // Legend: the most frequent top experts among the visible tokens.
    const QCPRange r = plot_->xAxis->range();
    const size_t a = size_t(std::clamp(std::ceil(r.lower), 0.0, n)), b = size_t(std::clamp(std::floor(r.upper) + 1, 0.0, n));
    std::map<int, int> counts;
    for (size_t t = a; t < b; ++t)
      for (int l = 0; l < rt.n_moe_layers(); ++l) ++counts[rt.expert(t, l, 0)];
    counts.erase(-1);
    legend_->setCounts(std::vector<std::pair<int, int>>(counts.begin(), counts.end()), rt.n_experts(),
                       tr("Top experts in view (cells):"));
  }
  if (rt.size() == 0)
    setStatus(rt.n_moe_layers() == 0 ? tr("No routing yet: load a MoE model and send a message, or open a trace.") : tr("No tokens yet."));
  else
    setStatus(tr("%1 tokens · %2 experts · top-%3 · %4 MoE layers · source: %5")
                  .arg(rt.size())
                  .arg(rt.n_experts())
                  .arg(rt.top_k())
                  .arg(rt.n_moe_layers())
                  .arg(m->source()));
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

QString RoutingMapView::cellText(size_t t, int row) const {
  const RoutingTrace& rt = traceModel()->trace();
  if (t >= rt.size() || row < 0 || row >= map_->rows()) return {};
  const TraceToken& tok = rt.token(t);
  const bool by_layer = map_->mode() == RoutingMapPlottable::Mode::ExpertsOfLayer;
  const int m = by_layer ? map_->layer() : row;
  if (m >= rt.n_moe_layers()) return {};
  QString s = tr("token %1 “%2” (%3, id %4)\nlayer %5")
                  .arg(t)
                  .arg(visible_token_text(tok.text))
                  .arg(tok.phase == Phase::Prefill ? tr("prompt") : tr("generated"))
                  .arg(tok.id)
                  .arg(rt.moe_layers()[size_t(m)]);
  if (by_layer) {
    int slot = -1;
    for (int k = 0; k < rt.top_k(); ++k)
      if (rt.expert(t, m, k) == row) slot = k;
    if (slot < 0)
      s += tr(", expert %1: not selected").arg(row);
    else if (rt.has_weights())
      s += tr(", expert %1: weight %2 (choice %3 of %4)").arg(row).arg(rt.weight(t, m, slot), 0, 'f', 3).arg(slot + 1).arg(rt.top_k());
    else
      s += tr(", expert %1: choice %2 of %3, weight unknown").arg(row).arg(slot + 1).arg(rt.top_k());
  } else {
    s += tr(", top expert %1").arg(rt.expert(t, m, 0));
  }
  if (const ModelSpec* spec = traceModel()->spec(); spec && spec->moe.router.n_experts == rt.n_experts())
    s += tr("\nrouter: %1").arg(router_rule_text(spec->moe.router));
  if (!rt.has_weights()) {
    s += tr("\nexperts in order of choice (weight unknown: the server sends expert ids only):");
    for (int k = 0; k < rt.top_k(); ++k)
      if (const int e = rt.expert(t, m, k); e >= 0) s += QStringLiteral(" %1").arg(e);
    return s;
  }
  s += tr("\nexperts (weight):");
  for (int k = 0; k < rt.top_k(); ++k) {
    const int e = rt.expert(t, m, k);
    if (e >= 0) s += QStringLiteral(" %1 (%2)").arg(e).arg(rt.weight(t, m, k), 0, 'f', 3);
  }
  return s;
}

bool RoutingMapView::eventFilter(QObject* o, QEvent* e) {
  if (o == plot_ && e->type() == QEvent::ToolTip) {
    auto* he = static_cast<QHelpEvent*>(e);
    if (!plot_->axisRect()->rect().contains(he->pos())) return false;
    const long t = std::lround(plot_->xAxis->pixelToCoord(he->pos().x()));
    const long r = std::lround(plot_->yAxis->pixelToCoord(he->pos().y()));
    const QString text = t >= 0 ? cellText(size_t(t), int(r)) : QString();
    if (text.isEmpty())
      QToolTip::hideText();
    else
      QToolTip::showText(he->globalPos(), text, plot_);
    return true;
  }
  return ViewFrame::eventFilter(o, e);
}

QString RoutingMapView::csv() const {
  // The data behind the map: one row per (token, layer, choice) of the visible tokens; the weight
  // is left empty when the trace has none (a remote server's), never written as 0.
  const RoutingTrace& rt = traceModel()->trace();
  QString out = QStringLiteral("token,pos,text,phase,layer,slot,expert,weight\n");
  const QCPRange r = plot_->xAxis->range();
  const size_t a = size_t(std::clamp(std::ceil(r.lower), 0.0, double(rt.size())));
  const size_t b = size_t(std::clamp(std::floor(r.upper) + 1, 0.0, double(rt.size())));
  const bool by_layer = map_->mode() == RoutingMapPlottable::Mode::ExpertsOfLayer;
  for (size_t t = a; t < b; ++t) {
    const TraceToken& tok = rt.token(t);
    const QString head = QStringLiteral("%1,%2,%3,%4,").arg(t).arg(tok.pos).arg(csv_field(QString::fromStdString(tok.text)))
                             .arg(tok.phase == Phase::Prefill ? QStringLiteral("prefill") : QStringLiteral("decode"));
    for (int m = 0; m < rt.n_moe_layers(); ++m) {
      if (by_layer && m != map_->layer()) continue;
      for (int k = 0; k < rt.top_k(); ++k) {
        const int e = rt.expert(t, m, k);
        if (e < 0) continue;
        const QString w = rt.has_weights() ? QString::number(rt.weight(t, m, k), 'g', 6) : QString();
        out += head + QStringLiteral("%1,%2,%3,%4\n").arg(rt.moe_layers()[size_t(m)]).arg(k).arg(e).arg(w);
      }
    }
  }
  return out;
}

}  // namespace moescope::ui
