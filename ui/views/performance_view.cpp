#include "ui/views/performance_view.h"

#include <QLabel>
#include <QTabWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <qcustomplot.h>

#include "ui/views/trace_model.h"

namespace moescope::ui {

namespace {
const char* kHelp =
    "Prefill reads the prompt in one batched pass, so it runs at many tokens per second (right axis, "
    "one dot per answer: new prompt tokens ÷ prefill time, exact once the answer is finished). Decode "
    "produces one token per forward pass and is limited by how fast the active weights can be read "
    "from memory: a MoE model reads only its top-k experts per token, which is why it decodes like a "
    "much smaller dense model. 'now' is measured over the last half second of generated tokens; "
    "'average' is the answer's decode speed so far. Time per token = 1000 ÷ decode tokens/s. The x axis "
    "is generation time, with idle time between answers left out. With the CUDA backend, 'Device memory' "
    "shows what the engine holds on the GPU: weights, KV cache, scratch buffers and the cuBLAS workspace "
    "(the CPU backend memory-maps the weights in host RAM and holds no device memory).";
}  // namespace

PerformanceView::PerformanceView(TraceModel* model, QWidget* parent)
    : ViewFrame(model, QStringLiteral("performance"),
                tr("How fast the model reads your prompt (prefill) and writes its answer (decode), in tokens "
                   "per second over time."),
                tr(kHelp), parent) {
  summary_ = new QLabel(this);
  summary_->setObjectName(QStringLiteral("perfSummary"));
  // Wrapped to the dock's width: a narrow dock shows every figure (the text is set only when it changes).
  summary_->setWordWrap(true);
  body()->addWidget(summary_);
  tabs_ = new QTabWidget(this);
  tabs_->setDocumentMode(true);
  body()->addWidget(tabs_, 1);

  speed_plot_ = makePlot(this);
  decode_ = speed_plot_->addGraph();
  decode_->setName(tr("decode, now"));
  decode_->setPen(QPen(QColor(0x1f, 0x77, 0xb4), 1.4));
  // Small dots as well as lines: a short answer has a single point, which a line alone hides.
  decode_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 4));
  average_ = speed_plot_->addGraph();
  average_->setName(tr("decode, answer average"));
  average_->setPen(QPen(QColor(0x2c, 0xa0, 0x2c), 1.6, Qt::DashLine));
  average_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssSquare, QPen(QColor(0x2c, 0xa0, 0x2c), 1.4), Qt::NoBrush, 6));
  speed_plot_->yAxis2->setVisible(true);
  speed_plot_->yAxis2->setTickLabels(true);
  speed_plot_->yAxis2->setLabel(tr("prefill tokens/s"));
  prefill_ = speed_plot_->addGraph(speed_plot_->xAxis, speed_plot_->yAxis2);
  prefill_->setName(tr("prefill (right axis)"));
  prefill_->setLineStyle(QCPGraph::lsNone);
  prefill_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, QColor(0xff, 0x7f, 0x0e), 8));
  speed_plot_->xAxis->setLabel(tr("generation time (s)"));
  speed_plot_->yAxis->setLabel(tr("decode tokens/s"));
  placeLegendAbove(speed_plot_);  // beside the data, never over it (issue 16)
  tabs_->addTab(speed_plot_, tr("Tokens/s"));

  time_plot_ = makePlot(this);
  ms_ = time_plot_->addGraph();
  ms_->setPen(QPen(QColor(0x94, 0x67, 0xbd), 1.4));
  ms_->setScatterStyle(QCPScatterStyle(QCPScatterStyle::ssDisc, 4));
  time_plot_->xAxis->setLabel(tr("generation time (s)"));
  time_plot_->yAxis->setLabel(tr("ms per generated token"));
  tabs_->addTab(time_plot_, tr("Time per token"));

  memory_plot_ = makePlot(this);
  memory_ = memory_plot_->addGraph();
  memory_->setLineStyle(QCPGraph::lsStepLeft);
  memory_->setPen(QPen(QColor(0xd6, 0x27, 0x28), 1.6));
  memory_->setBrush(QColor(0xd6, 0x27, 0x28, 40));
  memory_plot_->xAxis->setLabel(tr("generation time (s)"));
  memory_plot_->yAxis->setLabel(tr("device memory in use (GiB)"));
  tabs_->addTab(memory_plot_, tr("Device memory"));
  tabs_->setTabVisible(DeviceMemory, false);  // shown once the backend reports device memory
  connect(tabs_, &QTabWidget::currentChanged, this, [this] { markDirty(); });
}

void PerformanceView::setTab(Tab t) { tabs_->setCurrentIndex(int(t)); }

QCustomPlot* PerformanceView::currentPlot() const {
  switch (tabs_->currentIndex()) {
    case TimePerToken: return time_plot_;
    case DeviceMemory: return memory_plot_;
    default: return speed_plot_;
  }
}

QString PerformanceView::summaryText() const {
  const TraceModel* m = traceModel();
  QStringList parts;
  if (!m->prefills().empty()) {
    const PrefillPoint& p = m->prefills().back();
    parts << tr("prefill %1 tokens/s (%2 tokens%3)").arg(p.tps, 0, 'f', 1).arg(p.tokens).arg(p.exact ? QString() : tr(", estimate"));
  }
  if (!m->speed().empty()) {
    const SpeedPoint& s = m->speed().back();
    parts << tr("decode %1 tokens/s now, %2 average · %3 ms per token").arg(s.decode_tps, 0, 'f', 1).arg(s.average_tps, 0, 'f', 1).arg(s.ms_per_token, 0, 'f', 1);
  }
  if (parts.isEmpty() && m->deviceBytes() < 0) return tr("No timings yet: they are measured live while the model generates (not stored with conversations).");
  QString backend = m->hasModel() ? m->model().backend : QString();
  if (!backend.isEmpty()) parts << tr("backend: %1").arg(backend);
  if (m->deviceBytes() >= 0) parts << tr("device memory in use: %1 GiB").arg(double(m->deviceBytes()) / double(1 << 30), 0, 'f', 2);
  return parts.join(QStringLiteral("\n"));
}

void PerformanceView::refresh() {
  const TraceModel* m = traceModel();
  const QString summary = summaryText();
  if (summary_->text() != summary) summary_->setText(summary);
  QVector<double> x, now, avg, ms, px, py;
  for (const SpeedPoint& s : m->speed()) {
    x.push_back(s.seconds);
    now.push_back(s.decode_tps);
    avg.push_back(s.average_tps);
    ms.push_back(s.ms_per_token);
  }
  for (const PrefillPoint& p : m->prefills()) {
    px.push_back(p.seconds);
    py.push_back(p.tps);
  }
  double x_hi = 0.01;  // the axis follows the data: a whole answer may take a few milliseconds
  if (!x.isEmpty()) x_hi = std::max(x_hi, x.back());
  if (!px.isEmpty()) x_hi = std::max(x_hi, px.back());
  const bool device = m->deviceBytes() >= 0;
  if (tabs_->isTabVisible(DeviceMemory) != device) tabs_->setTabVisible(DeviceMemory, device);
  if (tabs_->currentIndex() == DeviceMemory) {
    QVector<double> mx, my;
    double top = 0.0;
    for (const MemoryPoint& p : m->deviceMemory()) {
      mx.push_back(p.seconds);
      my.push_back(double(p.bytes) / double(1 << 30));
      top = std::max(top, my.back());
    }
    if (!mx.isEmpty()) {  // hold the last figure up to now
      mx.push_back(std::max(x_hi, mx.back()));
      my.push_back(my.back());
    }
    memory_->setData(mx, my, true);
    memory_plot_->xAxis->setRange(0, (mx.isEmpty() ? x_hi : mx.back()) * 1.02);
    memory_plot_->yAxis->setRange(0, std::max(0.001, top) * 1.15);
    memory_plot_->replot(QCustomPlot::rpQueuedReplot);
  } else if (tabs_->currentIndex() == Speed) {
    decode_->setData(x, now, true);
    average_->setData(x, avg, true);
    prefill_->setData(px, py, false);
    double top = 1.0, ptop = 1.0;
    for (double v : now) top = std::max(top, v);
    for (double v : avg) top = std::max(top, v);
    for (double v : py) ptop = std::max(ptop, v);
    speed_plot_->xAxis->setRange(0, x_hi * 1.02);
    speed_plot_->yAxis->setRange(0, top * 1.15);
    speed_plot_->yAxis2->setRange(0, ptop * 1.15);
    speed_plot_->replot(QCustomPlot::rpQueuedReplot);
  } else {
    ms_->setData(x, ms, true);
    double top = 1.0;
    for (double v : ms) top = std::max(top, v);
    time_plot_->xAxis->setRange(0, x_hi * 1.02);
    time_plot_->yAxis->setRange(0, top * 1.15);
    time_plot_->replot(QCustomPlot::rpQueuedReplot);
  }
  setStatus(device ? tr("Device memory: %1 GiB in use (weights, KV cache, scratch)").arg(double(m->deviceBytes()) / double(1 << 30), 0, 'f', 2)
                  : tr("Device memory: none — the CPU backend memory-maps the weights in host RAM."));
}

QString PerformanceView::csv() const {
  const TraceModel* m = traceModel();
  if (tabs_->currentIndex() == DeviceMemory) {  // the data of the plot on screen
    QString out = QStringLiteral("seconds,device_bytes\n");
    for (const MemoryPoint& p : m->deviceMemory()) out += QStringLiteral("%1,%2\n").arg(p.seconds, 0, 'f', 4).arg(p.bytes);
    return out;
  }
  QString out = QStringLiteral("seconds,kind,tokens_per_second,average_tokens_per_second,ms_per_token,tokens\n");
  for (const PrefillPoint& p : m->prefills())
    out += QStringLiteral("%1,prefill,%2,,,%3\n").arg(p.seconds, 0, 'f', 4).arg(p.tps, 0, 'g', 8).arg(p.tokens);
  for (const SpeedPoint& s : m->speed())
    out += QStringLiteral("%1,decode,%2,%3,%4,\n").arg(s.seconds, 0, 'f', 4).arg(s.decode_tps, 0, 'g', 8).arg(s.average_tps, 0, 'g', 8).arg(s.ms_per_token, 0, 'g', 8);
  return out;
}

}  // namespace moescope::ui
