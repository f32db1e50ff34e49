#include "ui/views/coactivation_view.h"

#include <QComboBox>
#include <QHeaderView>
#include <QLabel>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <qcustomplot.h>

#include "moescope/routing_stats.h"
#include "ui/views/palette.h"

namespace moescope::ui {

namespace {
constexpr size_t kPairsListed = 20;
const char* kHelp =
    "Every token picks top_k experts at each MoE layer. Row i, column j shows P(j | i): of the tokens "
    "that chose expert i, the share that also chose expert j (the diagonal, always 1, is left blank). "
    "The matrix is not symmetric: a popular expert j can follow a rare i often without the reverse. "
    "Bright cells far above (top_k − 1) ÷ (experts − 1) (what choices at random would give) are experts that "
    "work as a team. Pairs are listed only for experts chosen by at least the 'min' number of tokens, so a "
    "single token does not make a 100 % pair.";

QTableWidgetItem* cell(const QString& text) {
  auto* it = new QTableWidgetItem(text);
  it->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
  it->setFlags(Qt::ItemIsSelectable | Qt::ItemIsEnabled);
  return it;
}
}  // namespace

std::vector<ExpertPair> strongest_pairs(const std::vector<int64_t>& c, int n, int64_t min_count, size_t max_pairs) {
  std::vector<ExpertPair> all;
  for (int i = 0; i < n; ++i) {
    const int64_t given = c[size_t(i) * size_t(n) + size_t(i)];
    if (given < std::max<int64_t>(1, min_count)) continue;
    for (int j = 0; j < n; ++j) {
      const int64_t both = c[size_t(i) * size_t(n) + size_t(j)];
      if (i == j || both == 0) continue;
      all.push_back({i, j, both, given, double(both) / double(given)});
    }
  }
  std::sort(all.begin(), all.end(), [](const ExpertPair& a, const ExpertPair& b) {
    if (a.p != b.p) return a.p > b.p;
    if (a.both != b.both) return a.both > b.both;
    return a.i != b.i ? a.i < b.i : a.j < b.j;
  });
  if (all.size() > max_pairs) all.resize(max_pairs);
  return all;
}

CoactivationView::CoactivationView(TraceModel* model, QWidget* parent)
    : ViewFrame(model, QStringLiteral("coactivation"),
                tr("Which experts work together: row i, column j is how often a token that chose expert i "
                   "also chose expert j at this layer; bright cells are frequent partners."),
                tr(kHelp), parent) {
  layer_box_ = new QComboBox(this);
  connect(layer_box_, &QComboBox::currentIndexChanged, this, [this](int i) {
    if (i >= 0) setLayer(i);
  });
  window_box_ = new QComboBox(this);
  for (StatsWindow w : {StatsWindow::Answer, StatsWindow::Conversation}) window_box_->addItem(window_label(w), int(w));
  window_box_->setCurrentIndex(1);
  connect(window_box_, &QComboBox::currentIndexChanged, this, [this](int i) { setWindow(StatsWindow(i)); });
  min_count_ = new QSpinBox(this);
  min_count_->setRange(1, 99999);
  min_count_->setValue(3);
  min_count_->setPrefix(tr("min "));
  min_count_->setToolTip(tr("List pairs only for experts chosen by at least this many tokens"));
  connect(min_count_, &QSpinBox::valueChanged, this, [this] { markDirty(); });
  controls()->insertWidget(0, layer_box_);
  controls()->insertWidget(1, window_box_);
  controls()->insertWidget(2, min_count_);

  auto* split = new QSplitter(Qt::Horizontal, this);
  plot_ = makePlot(split);
  map_ = new QCPColorMap(plot_->xAxis, plot_->yAxis);
  map_->setInterpolate(false);
  scale_ = new QCPColorScale(plot_);
  scale_->setLabel(tr("P(j | i)"));
  scale_->setBarWidth(10);
  plot_->plotLayout()->addElement(0, 1, scale_);
  map_->setColorScale(scale_);  // the map takes the scale's gradient: set it after linking
  QCPColorGradient g = weight_gradient();
  g.setNanHandling(QCPColorGradient::nhTransparent);
  scale_->setGradient(g);
  auto* group = new QCPMarginGroup(plot_);
  plot_->axisRect()->setMarginGroup(QCP::msBottom | QCP::msTop, group);
  scale_->setMarginGroup(QCP::msBottom | QCP::msTop, group);
  plot_->xAxis->setLabel(tr("expert j (also chosen)"));
  plot_->yAxis->setLabel(tr("expert i (chosen)"));
  useIntegerTicks(plot_->xAxis);
  useIntegerTicks(plot_->yAxis);
  plot_->yAxis->setRangeReversed(true);
  plot_->xAxis->grid()->setVisible(false);
  plot_->yAxis->grid()->setVisible(false);
  plot_->setInteractions(QCP::iRangeDrag | QCP::iRangeZoom);
  split->addWidget(plot_);
  table_ = new QTableWidget(split);
  table_->setColumnCount(5);
  table_->setHorizontalHeaderLabels({tr("i"), tr("j"), tr("P(j|i)"), tr("n(i,j)"), tr("n(i)")});
  table_->setMaximumWidth(400);
  table_->setMinimumWidth(120);  // narrow docks: the table scrolls
  table_->horizontalHeaderItem(3)->setToolTip(tr("tokens that chose both"));
  table_->horizontalHeaderItem(4)->setToolTip(tr("tokens that chose i"));
  table_->verticalHeader()->setVisible(false);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::Interactive);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  split->addWidget(table_);
  split->setStretchFactor(0, 1);
  split->setStretchFactor(1, 0);
  split->setSizes({600, 300});
  body()->addWidget(split, 1);
}

void CoactivationView::setLayer(int moe_index) {
  layer_ = std::max(0, moe_index);
  if (layer_box_->currentIndex() != layer_ && layer_ < layer_box_->count()) layer_box_->setCurrentIndex(layer_);
  markDirty();
}

void CoactivationView::setWindow(StatsWindow w) {
  window_ = w == StatsWindow::Answer ? w : StatsWindow::Conversation;
  if (window_box_->currentIndex() != int(window_)) window_box_->setCurrentIndex(int(window_));
  markDirty();
}

void CoactivationView::syncLayers() { sync_layer_box(layer_box_, traceModel()->trace().moe_layers(), layer_); }

void CoactivationView::refresh() {
  syncLayers();
  const RoutingTrace& rt = traceModel()->trace();
  const auto [first, last] = traceModel()->range(window_);
  n_ = rt.n_experts();
  const bool ok = layer_ < rt.n_moe_layers() && n_ > 0;
  counts_ = ok ? coactivation(rt, layer_, first, last) : std::vector<int64_t>();
  const int n = std::max(1, n_);
  map_->data()->setSize(n, n);
  map_->data()->setRange(QCPRange(0, n - 1), QCPRange(0, n - 1));
  double top = 0;
  for (int i = 0; i < n; ++i)
    for (int j = 0; j < n; ++j) {
      double v = 0;
      if (ok) {
        const int64_t given = counts_[size_t(i) * size_t(n_) + size_t(i)];
        v = i == j ? std::nan("") : given > 0 ? double(counts_[size_t(i) * size_t(n_) + size_t(j)]) / double(given) : 0.0;
        if (i != j) top = std::max(top, v);
      }
      map_->data()->setCell(j, i, v);
    }
  map_->setDataRange(QCPRange(0, top > 0 ? top : 1.0));
  plot_->xAxis->setRange(-0.5, n - 0.5);
  plot_->yAxis->setRange(-0.5, n - 0.5);

  pairs_ = ok ? strongest_pairs(counts_, n_, min_count_->value(), kPairsListed) : std::vector<ExpertPair>();
  // Items are reused and only changed texts are set: rebuilding the table costs more than the matrix.
  const int rows_before = table_->rowCount();
  table_->setRowCount(int(pairs_.size()));
  for (size_t r = 0; r < pairs_.size(); ++r) {
    const ExpertPair& p = pairs_[r];
    const QString texts[5] = {QString::number(p.i), QString::number(p.j), QString::number(p.p, 'f', 3),
                              QString::number(p.both), QString::number(p.given)};
    for (int c = 0; c < 5; ++c) {
      QTableWidgetItem* it = table_->item(int(r), c);
      if (!it)
        table_->setItem(int(r), c, cell(texts[c]));
      else if (it->text() != texts[c])
        it->setText(texts[c]);
    }
  }
  if (rows_before != table_->rowCount() || !traceModel()->generating()) table_->resizeColumnsToContents();
  const double independent = n_ > 1 ? double(std::max(0, rt.top_k() - 1)) / double(n_ - 1) : 0.0;
  setStatus(ok ? tr("Layer %1 · %2 · %3 tokens · independent choices would give P(j | i) ≈ %4")
                     .arg(rt.moe_layers()[size_t(layer_)])
                     .arg(window_label(window_))
                     .arg(last - first)
                     .arg(independent, 0, 'f', 3)
               : tr("No routing yet."));
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

QString CoactivationView::csv() const {
  QString out = QStringLiteral("i,j,both,given,p_j_given_i\n");
  if (counts_.empty()) return out;
  for (int i = 0; i < n_; ++i) {
    const int64_t given = counts_[size_t(i) * size_t(n_) + size_t(i)];
    for (int j = 0; j < n_; ++j) {
      const int64_t both = counts_[size_t(i) * size_t(n_) + size_t(j)];
      if (i == j || both == 0) continue;
      out += QStringLiteral("%1,%2,%3,%4,%5\n").arg(i).arg(j).arg(both).arg(given).arg(double(both) / double(given), 0, 'g', 8);
    }
  }
  return out;
}

}  // namespace moescope::ui
