#include "ui/views/kv_view.h"

#include <QLabel>
#include <QPainter>
#include <QStyleOptionProgressBar>
#include <QTabWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <qcustomplot.h>

#include "moescope/anatomy.h"
#include "ui/guide.h"
#include "ui/views/palette.h"
#include "ui/views/trace_model.h"

namespace moescope::ui {

namespace {
constexpr int kMaxCells = 4096;  // block grid cells drawn; more blocks are grouped per cell
const char* kHelp =
    "The KV cache keeps, for every token already processed and every layer, what attention needs to "
    "look back at (keys and values). It is allocated in fixed-size blocks ('pages') of tokens; a block "
    "is used as soon as one token lands in it. Fill = tokens in the cache ÷ the context length it was "
    "sized for. Prefill (reading your prompt) adds many tokens at once — the steep steps in 'Growth'; "
    "decode adds one token per generated token. Multi-head Latent Attention (DeepSeek-V2/V3/R1) caches "
    "one compressed latent vector (kv_lora_rank) plus a small RoPE key per token and layer instead of "
    "full keys and values for every head; the ratio shows how much memory that saves against plain "
    "multi-head attention with the same heads. Figures come from the engine while it runs; a saved "
    "conversation or a trace file has none.\n\n"
    "What each layer keeps depends on the architecture (the line under the figures, and the colours of "
    "'Bytes per layer'): full attention looks back at every token; a sliding window (gpt-oss: every "
    "other layer, 128 tokens) looks back only at the last N tokens; MLA keeps the compressed latent; "
    "a linear-attention layer (Qwen3.5's Gated DeltaNet) keeps no per-token cache at all but a "
    "fixed-size recurrent state that it updates with every token.";
}  // namespace

// The fill bar, drawn like the style's progress bar. QProgressBar::setValue repaints at once
// (a synchronous flush of the window's backing store, ~5 ms on every refresh while the model
// writes); this one only schedules a paint, which Qt merges with the other views' paints.
class KvFillBar : public QWidget {
public:
  explicit KvFillBar(QWidget* parent) : QWidget(parent) {
    setSizePolicy(QSizePolicy::Expanding, QSizePolicy::Fixed);
    setFixedHeight(12);
  }
  int value() const { return permille_; }
  void setValue(int permille) {
    if (permille == permille_) return;
    permille_ = permille;
    update();
  }

protected:
  void paintEvent(QPaintEvent*) override {
    QStyleOptionProgressBar o;
    o.initFrom(this);
    o.minimum = 0;
    o.maximum = 1000;
    o.progress = permille_;
    o.textVisible = false;
    o.state |= QStyle::State_Horizontal;  // QStyleOptionProgressBar has no orientation field in Qt 6
    QPainter p(this);
    style()->drawControl(QStyle::CE_ProgressBar, &o, &p, this);
  }

private:
  int permille_ = 0;
};

KvView::KvView(TraceModel* model, QWidget* parent)
    : ViewFrame(model, QStringLiteral("kv"),
                tr("How full the attention cache is and how it grew: steep steps are prompts read at once "
                   "(prefill), gentle slopes are tokens generated one by one (decode)."),
                tr(kHelp), parent) {
  fill_ = new KvFillBar(this);
  fill_->setObjectName(QStringLiteral("kvFillBar"));
  fill_label_ = new QLabel(this);
  fill_label_->setObjectName(QStringLiteral("kvFill"));
  // Not word-wrapped: this text changes with every refresh, and a wrapped label re-lays out the dock.
  fill_label_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Preferred);
  mla_label_ = new QLabel(this);
  mla_label_->setObjectName(QStringLiteral("kvCompression"));
  mla_label_->setWordWrap(true);
  body()->addWidget(fill_label_);
  body()->addWidget(fill_);
  body()->addWidget(mla_label_);
  layers_label_ = new QLabel(this);
  layers_label_->setObjectName(QStringLiteral("kvLayers"));
  layers_label_->setWordWrap(true);
  layers_label_->setVisible(false);
  body()->addWidget(layers_label_);
  tabs_ = new QTabWidget(this);
  tabs_->setDocumentMode(true);
  body()->addWidget(tabs_, 1);

  growth_plot_ = makePlot(this);
  growth_line_ = growth_plot_->addGraph();
  growth_line_->setPen(QPen(QColor(0xB0, 0xB6, 0xBD), 1.2));
  growth_line_->removeFromLegend();
  prefill_graph_ = growth_plot_->addGraph();
  prefill_graph_->setName(tr("prefill"));
  prefill_graph_->setLineStyle(QCPGraph::lsNone);
  prefill_graph_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, QColor(0xff, 0x7f, 0x0e), 7));
  decode_graph_ = growth_plot_->addGraph();
  decode_graph_->setName(tr("decode"));
  decode_graph_->setLineStyle(QCPGraph::lsNone);
  decode_graph_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, QColor(0x1f, 0x77, 0xb4), 4));
  capacity_line_ = new QCPItemStraightLine(growth_plot_);
  capacity_line_->setPen(QPen(QColor(0xD6, 0x27, 0x28), 1.2, Qt::DashLine));
  growth_plot_->xAxis->setLabel(tr("generation time (s, idle time left out)"));
  growth_plot_->yAxis->setLabel(tr("tokens in the cache"));
  placeLegendAbove(growth_plot_);  // beside the data, never over it (issue 16)
  tabs_->addTab(growth_plot_, tr("Growth"));

  bytes_plot_ = makePlot(this);
  // One bar a layer, coloured by what the layer keeps; the multi-head figure (MLA) as a wider,
  // lighter bar behind it (made first, so drawn first).
  auto bars = [this](const QString& name, QColor colour, double width) {
    auto* b = new QCPBars(bytes_plot_->xAxis, bytes_plot_->yAxis);
    b->setName(name);
    b->setBrush(colour);
    b->setPen(Qt::NoPen);
    b->setWidth(width);
    return b;
  };
  mha_bars_ = bars(tr("multi-head attention would need"), QColor(0xC9, 0xCE, 0xD4), 0.85);
  bytes_bars_ = bars(tr("KV cache"), QColor(0x41, 0x7B, 0xB8), 0.55);
  window_bars_ = bars(tr("sliding-window KV"), QColor(0x9A, 0x6F, 0xC4), 0.55);
  state_bars_ = bars(tr("linear-attention state"), QColor(0x5B, 0xA0, 0x5B), 0.55);
  bytes_plot_->xAxis->setLabel(tr("layer"));
  bytes_plot_->yAxis->setLabel(tr("MiB in use"));
  placeLegendAbove(bytes_plot_);
  // Only what the model has joins the legend (refresh); none of it widens the dock before then.
  for (QCPBars* b : {mha_bars_, state_bars_, window_bars_}) b->removeFromLegend();
  tabs_->addTab(bytes_plot_, tr("Bytes per layer"));

  blocks_plot_ = makePlot(this);
  blocks_ = new QCPColorMap(blocks_plot_->xAxis, blocks_plot_->yAxis);
  blocks_->setInterpolate(false);
  QCPColorGradient g;
  g.clearColorStops();
  g.setColorStopAt(0, empty_cell_colour().darker(108));
  g.setColorStopAt(0.001, weight_colour(0.25));
  g.setColorStopAt(1, weight_colour(0.85));
  g.setNanHandling(QCPColorGradient::nhTransparent);
  blocks_->setGradient(g);
  blocks_->setDataRange(QCPRange(0, 1));
  blocks_plot_->yAxis->setRangeReversed(true);
  blocks_plot_->xAxis->setLabel(tr("block (column)"));
  blocks_plot_->yAxis->setLabel(tr("block row"));
  blocks_plot_->xAxis->grid()->setVisible(false);
  blocks_plot_->yAxis->grid()->setVisible(false);
  tabs_->addTab(blocks_plot_, tr("Blocks"));
  connect(tabs_, &QTabWidget::currentChanged, this, [this] { markDirty(); });
}

void KvView::setTab(Tab t) { tabs_->setCurrentIndex(int(t)); }

QCustomPlot* KvView::currentPlot() const {
  switch (tabs_->currentIndex()) {
    case BytesPerLayer: return bytes_plot_;
    case Blocks: return blocks_plot_;
    default: return growth_plot_;
  }
}

double KvView::compressionRatio() const {
  const KvStats& kv = traceModel()->kv();
  if (!traceModel()->hasKv() || kv.bytes_per_token_layer <= 0) return 0.0;
  return kv.mha_bytes_per_token_layer > 0 ? double(kv.mha_bytes_per_token_layer) / double(kv.bytes_per_token_layer) : 1.0;
}

QString KvView::fillText() const {
  const KvStats& kv = traceModel()->kv();
  if (!traceModel()->hasKv())
    return tr("No KV figures: they come from the engine while it runs (not from a saved conversation or a trace file).");
  const double pct = kv.capacity > 0 ? 100.0 * double(kv.tokens) / double(kv.capacity) : 0.0;
  return tr("%1 / %2 tokens (%3 %) · %4 in use, %5 reserved\n%6 · %7 layers · %8 tokens per block, %9 / %10 blocks")
      .arg(kv.tokens)
      .arg(kv.capacity)
      .arg(pct, 0, 'f', 1)
      .arg(format_bytes(double(kv.bytes_used)))
      .arg(format_bytes(double(kv.bytes_reserved)))
      .arg(QString::fromStdString(kv.element_type))
      .arg(kv.n_layers)
      .arg(kv.block_tokens)
      .arg(kv.blocks_used)
      .arg(kv.blocks_total);
}

QString KvView::compressionText() const {
  const KvStats& kv = traceModel()->kv();
  if (!traceModel()->hasKv() || kv.bytes_per_token_layer <= 0) return {};
  // One definition of the KV figure (moescope/anatomy.h): bytes per token for the whole model in
  // the cache's element type, per layer as a detail; in BF16 too, the figure of Model anatomy and
  // `moescope-cli inspect`.
  KvFigure f;
  f.element_type = kv.element_type.empty() ? "F32" : kv.element_type;
  f.layers = kv.n_layers;
  f.bytes_per_token_layer = kv.bytes_per_token_layer;
  f.bytes_per_token = kv.bytes_per_token_layer * kv.n_layers;
  f.mha_bytes_per_token = kv.mha_bytes_per_token_layer * kv.n_layers;
  f.state_bytes = kv.state_bytes;
  const ModelSpec* spec = traceModel()->spec();
  const std::string attention = spec ? attention_kind_name(*spec) : std::string(compressionRatio() > 1.0001 ? "MLA" : "GQA");
  QString text = tr("KV cache: %1.").arg(QString::fromStdString(kv_figure_text(f, attention)));
  const int elem = f.element_type == "F32" ? 4 : f.element_type == "F64" ? 8 : f.element_type == "F8" ? 1 : 2;
  if (elem != 2)
    text += tr(" In BF16 (the figure Model anatomy and moescope-cli inspect give): %1 per token.")
                .arg(format_bytes(double(f.bytes_per_token) * 2.0 / elem));
  text += tr(" Now: %1 for %2 tokens").arg(format_bytes(double(kv.bytes_used))).arg(kv.tokens);
  if (compressionRatio() > 1.0001)
    text += tr(" (multi-head attention would need %1)").arg(format_bytes(double(f.mha_bytes_per_token) * double(kv.tokens)));
  return text + QLatin1Char('.');
}

int KvView::fillPermille() const { return fill_->value(); }

QString KvView::layerKindsText() const {
  const ModelSpec* spec = traceModel()->spec();
  return spec && spec->n_layers > 0 ? tr("What the %1 layers keep: %2.").arg(spec->n_layers).arg(cache_kinds_text(*spec)) : QString();
}

// Every layer with what it keeps. With the model's spec the engine's figures (which count the
// layers that keep K/V, and the linear-attention layers' state apart) are put on the model's
// layers; without one, only the engine's layers with a KV cache, their kind unknown.
std::vector<KvView::LayerRow> KvView::layerRows() const {
  const TraceModel* m = traceModel();
  const KvStats& kv = m->kv();
  const ModelSpec* spec = m->spec();
  const bool have = m->hasKv();
  std::vector<LayerRow> rows;
  if (spec && spec->n_layers > 0 && (!have || kv.n_layers == spec->n_attention_layers())) {
    const double state = have && kv.state_layers > 0 ? double(kv.state_bytes) / double(kv.state_layers)
                                                     : double(spec->linear.state_values()) * 4.0;
    for (int l = 0; l < spec->n_layers; ++l) {
      LayerRow r;
      r.layer = l;
      r.cache = layer_cache_kind(*spec, l);
      r.state = spec->is_linear(l);
      r.window = !r.state && spec->window(l) > 0;
      if (have && r.state) {
        r.bytes = state;
      } else if (have) {
        r.bytes = double(kv.bytes_per_token_layer) * double(kv.tokens);
        r.mha = double(kv.mha_bytes_per_token_layer) * double(kv.tokens);
      }
      rows.push_back(r);
    }
  } else if (have) {
    for (int l = 0; l < kv.n_layers; ++l) {
      LayerRow r;
      r.layer = l;
      r.bytes = double(kv.bytes_per_token_layer) * double(kv.tokens);
      r.mha = double(kv.mha_bytes_per_token_layer) * double(kv.tokens);
      rows.push_back(r);
    }
  }
  return rows;
}

void KvView::refresh() {
  TraceModel* m = traceModel();
  const KvStats& kv = m->kv();
  // Labels are set only when their text changes (a word-wrapped label re-lays out the dock).
  const QString fill = fillText();
  if (fill_label_->text() != fill) {
    fill_label_->setText(fill);
    fill_label_->setToolTip(fill);
  }
  if (fill_->isVisible() != m->hasKv()) fill_->setVisible(m->hasKv());
  const int permille = kv.capacity > 0 ? int(1000.0 * double(kv.tokens) / double(kv.capacity)) : 0;
  if (fill_->value() != permille) fill_->setValue(permille);
  const QString mla = compressionText();
  if (mla_label_->text() != mla) mla_label_->setText(mla);
  if (mla_label_->isVisible() == mla.isEmpty()) mla_label_->setVisible(!mla.isEmpty());
  const QString layers = layerKindsText();
  if (layers_label_->text() != layers) layers_label_->setText(layers);
  if (layers_label_->isVisibleTo(this) == layers.isEmpty()) layers_label_->setVisible(!layers.isEmpty());
  setStatus(m->hasModel() ? tr("Model: %1 · backend: %2").arg(m->model().name, m->model().backend) : QString());

  switch (tabs_->currentIndex()) {
    case Growth: {
      QVector<double> x, y, px, py, dx, dy;
      for (const KvPoint& p : m->kvHistory()) {
        x.push_back(p.seconds);
        y.push_back(p.tokens);
        (p.prefill ? px : dx).push_back(p.seconds);
        (p.prefill ? py : dy).push_back(p.tokens);
      }
      growth_line_->setData(x, y, true);
      prefill_graph_->setData(px, py, true);
      decode_graph_->setData(dx, dy, true);
      capacity_line_->setVisible(false);
      growth_plot_->xAxis->setRange(0, std::max(1.0, x.isEmpty() ? 1.0 : x.back() * 1.05));
      const double top = y.isEmpty() ? 1.0 : *std::max_element(y.begin(), y.end());
      growth_plot_->yAxis->setRange(0, std::max(1.0, top) * 1.1);
      growth_plot_->yAxis->setLabel(kv.capacity > 0 ? tr("tokens in the cache (capacity %1)").arg(kv.capacity) : tr("tokens in the cache"));
      growth_plot_->replot(QCustomPlot::rpQueuedReplot);
      break;
    }
    case BytesPerLayer: {
      QVector<double> keys, used, wkeys, wused, skeys, sused;
      const double mib = 1024.0 * 1024.0;
      const std::vector<LayerRow> rows = layerRows();
      for (const LayerRow& r : rows) {
        if (r.state) {
          skeys.push_back(r.layer);
          sused.push_back(r.bytes / mib);
          continue;
        }
        (r.window ? wkeys : keys).push_back(r.layer);
        (r.window ? wused : used).push_back(r.bytes / mib);
      }
      QVector<double> mkeys = keys + wkeys;  // the multi-head equivalent of every attention layer
      std::sort(mkeys.begin(), mkeys.end());
      const bool show_mha = compressionRatio() > 1.0001 && m->hasKv();
      bytes_bars_->setData(keys, used, true);
      window_bars_->setData(wkeys, wused, true);
      state_bars_->setData(skeys, sused, true);
      QVector<double> mvals(mkeys.size(), rows.empty() ? 0.0 : double(kv.mha_bytes_per_token_layer) * double(kv.tokens) / mib);
      mha_bars_->setData(show_mha ? mkeys : QVector<double>(), show_mha ? mvals : QVector<double>(), true);
      auto legend = [](QCPBars* b, bool on) {
        b->setVisible(on);
        if (on) b->addToLegend();
        else b->removeFromLegend();
      };
      legend(mha_bars_, show_mha);
      legend(bytes_bars_, !keys.isEmpty() || (wkeys.isEmpty() && skeys.isEmpty()));
      legend(window_bars_, !wkeys.isEmpty());
      legend(state_bars_, !skeys.isEmpty());
      bytes_plot_->xAxis->setRange(-0.7, std::max<int>(1, int(rows.size())) - 0.3);
      double top = 1e-6;
      for (double v : used) top = std::max(top, v);
      for (double v : wused) top = std::max(top, v);
      for (double v : sused) top = std::max(top, v);
      if (show_mha) for (double v : mvals) top = std::max(top, v);
      bytes_plot_->yAxis->setRange(0, top * 1.25);
      bytes_plot_->replot(QCustomPlot::rpQueuedReplot);
      break;
    }
    case Blocks: {
      const int64_t total = m->hasKv() ? std::max<int64_t>(1, kv.blocks_total) : 1;
      blocks_per_cell_ = int((total + kMaxCells - 1) / kMaxCells);
      const int64_t cells = (total + blocks_per_cell_ - 1) / blocks_per_cell_;
      block_cols_ = int(std::clamp<int64_t>(int64_t(std::ceil(std::sqrt(double(cells) * 2.0))), 1, 64));
      const int rows = int((cells + block_cols_ - 1) / block_cols_);
      blocks_->data()->setSize(block_cols_, rows);
      blocks_->data()->setRange(QCPRange(0, block_cols_ - 1), QCPRange(0, rows - 1));
      const double bt = std::max(1, kv.block_tokens);
      for (int64_t c = 0; c < int64_t(block_cols_) * rows; ++c) {
        // Fraction of the cell's token slots in use (blocks fill in order).
        const double first_token = double(c) * blocks_per_cell_ * bt;
        const double cell_tokens = blocks_per_cell_ * bt;
        double v = m->hasKv() ? std::clamp((double(kv.tokens) - first_token) / cell_tokens, 0.0, 1.0) : 0.0;
        if (c >= cells) v = std::nan("");
        blocks_->data()->setCell(int(c % block_cols_), int(c / block_cols_), v);
      }
      blocks_plot_->xAxis->setRange(-0.5, block_cols_ - 0.5);
      blocks_plot_->yAxis->setRange(-0.5, rows - 0.5);
      blocks_plot_->xAxis->setLabel(blocks_per_cell_ > 1 ? tr("each cell = %1 blocks of %2 tokens; colour = share of its slots in use").arg(blocks_per_cell_).arg(kv.block_tokens)
                                                         : tr("each cell = one block of %1 tokens; colour = share of its slots in use").arg(kv.block_tokens));
      blocks_plot_->replot(QCustomPlot::rpQueuedReplot);
      break;
    }
  }
}

QString KvView::csv() const {
  const TraceModel* m = traceModel();
  const KvStats& kv = m->kv();
  QString out;
  switch (tabs_->currentIndex()) {
    case BytesPerLayer:
      // cache: what the layer keeps (empty without the model's spec); figures empty without the
      // engine's; a linear-attention layer's state has no multi-head equivalent.
      out = QStringLiteral("layer,tokens,bytes,mha_bytes,cache\n");
      for (const LayerRow& r : layerRows()) {
        const bool have = m->hasKv();
        out += QStringLiteral("%1,%2,%3,%4,%5\n")
                   .arg(r.layer)
                   .arg(have ? QString::number(kv.tokens) : QString(), have ? QString::number(qint64(r.bytes)) : QString(),
                        have && !r.state ? QString::number(qint64(r.mha)) : QString(), csv_field(r.cache));
      }
      break;
    case Blocks: {
      out = QStringLiteral("block,tokens_used,block_tokens\n");
      for (int64_t b = 0; m->hasKv() && b < kv.blocks_total; ++b) {
        const int64_t used = std::clamp<int64_t>(kv.tokens - b * kv.block_tokens, 0, kv.block_tokens);
        out += QStringLiteral("%1,%2,%3\n").arg(b).arg(used).arg(kv.block_tokens);
      }
      break;
    }
    default:
      out = QStringLiteral("seconds,tokens,phase\n");
      for (const KvPoint& p : m->kvHistory())
        out += QStringLiteral("%1,%2,%3\n").arg(p.seconds, 0, 'f', 4).arg(p.tokens).arg(p.prefill ? QStringLiteral("prefill") : QStringLiteral("decode"));
  }
  return out;
}

}  // namespace moescope::ui
