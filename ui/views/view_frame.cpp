#include "ui/views/view_frame.h"

#include <QComboBox>
#include <QSignalBlocker>
#include <algorithm>

#include <QElapsedTimer>
#include <QFile>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QLabel>
#include <QMenu>
#include <QMessageBox>
#include <QToolButton>
#include <QVBoxLayout>
#include <qcustomplot.h>

#include "moescope/anatomy.h"
#include "ui/views/trace_model.h"

namespace moescope::ui {

namespace {
// A one-line label that shows as much of its text as fits, ending in "…" when cut; the whole
// text is its tooltip.
class ElidingLabel : public QLabel {
public:
  using QLabel::QLabel;
  void setFullText(const QString& text) {
    if (full_ == text) return;
    full_ = text;
    setToolTip(text);
    elide();
  }

protected:
  void resizeEvent(QResizeEvent* e) override {
    QLabel::resizeEvent(e);
    elide();
  }

private:
  void elide() {
    const QString shown = fontMetrics().elidedText(full_, Qt::ElideRight, std::max(0, contentsRect().width()));
    if (text() != shown) setText(shown);
  }
  QString full_;
};
}  // namespace

namespace {
constexpr int kIdleInterval = 100;        // ms between checks when idle
// ms between live redraws while the model generates. The CPU backend keeps every core busy, so
// each redraw comes out of the engine's time: there the views redraw once a second (all views
// together then cost < 3 % of decode speed, moescope-views-bench); a GPU backend leaves the CPU
// mostly idle and the views redraw twice a second.
constexpr int kGeneratingIntervalCpu = 1000;
constexpr int kGeneratingIntervalDevice = 500;

QToolButton* toolbar_button(const QString& text, const QString& tip, QWidget* parent) {
  auto* b = new QToolButton(parent);
  b->setText(text);
  b->setToolTip(tip);
  b->setAutoRaise(true);
  return b;
}
}  // namespace

ViewFrame::ViewFrame(TraceModel* model, const QString& id, const QString& sentence, const QString& learn_more,
                     QWidget* parent)
    : QWidget(parent), model_(model), id_(id) {
  setObjectName(id + QStringLiteral("View"));
  auto* col = new QVBoxLayout(this);
  col->setContentsMargins(6, 4, 6, 4);
  col->setSpacing(3);

  auto* head = new QHBoxLayout;
  auto* text = new QLabel(sentence, this);
  text->setObjectName(QStringLiteral("viewSentence"));
  text->setWordWrap(true);
  text->setToolTip(learn_more);
  text->setStyleSheet(QStringLiteral("color:#33383D;"));
  head->addWidget(text, 1);
  auto* more = new QLabel(tr("<a href=\"#guide\">learn more</a>"), this);
  more->setObjectName(QStringLiteral("learnMore"));
  more->setToolTip(learn_more);
  // The link never opens anything itself: the window shows the guide's page on this view.
  more->setOpenExternalLinks(false);
  more->setTextInteractionFlags(Qt::LinksAccessibleByMouse | Qt::LinksAccessibleByKeyboard);
  more->setCursor(Qt::PointingHandCursor);
  connect(more, &QLabel::linkActivated, this, [this] { emit learnMoreRequested(id_); });
  head->addWidget(more, 0, Qt::AlignTop);
  col->addLayout(head);

  controls_ = new QHBoxLayout;
  controls_->setSpacing(6);
  col->addLayout(controls_);
  // Open and export share one menu button, so a narrow dock keeps its own controls in view.
  auto* files = toolbar_button(tr("Export ▾"), tr("Save the plot (PNG, PDF) or its data (CSV), or open a routing trace"), this);
  files->setObjectName(QStringLiteral("viewExport"));
  files->setPopupMode(QToolButton::InstantPopup);
  auto* menu = new QMenu(files);
  menu->addAction(tr("Save as PNG image…"), this, [this] { exportWithDialog(QStringLiteral("png")); });
  menu->addAction(tr("Save as PDF (vector)…"), this, [this] { exportWithDialog(QStringLiteral("pdf")); });
  menu->addAction(tr("Save the data as CSV…"), this, [this] { exportWithDialog(QStringLiteral("csv")); });
  menu->addSeparator();
  menu->addAction(tr("Open a routing trace…"), this, &ViewFrame::openTrace)
      ->setToolTip(tr("Show a routing trace JSON file (moescope-cli --trace) in every view"));
  files->setMenu(menu);
  controls_->addStretch(1);
  controls_->addWidget(files);

  body_ = new QVBoxLayout;
  body_->setSpacing(3);
  col->addLayout(body_, 1);
  status_ = new ElidingLabel(this);
  status_->setObjectName(QStringLiteral("viewStatus"));
  status_->setStyleSheet(QStringLiteral("color:#6A737D;"));
  // One line, elided with "…" (the whole text in the tooltip): a status that changes every refresh
  // must not re-lay out the dock.
  status_->setSizePolicy(QSizePolicy::Ignored, QSizePolicy::Fixed);
  status_->setTextInteractionFlags(Qt::TextSelectableByMouse);
  col->addWidget(status_);

  connect(&timer_, &QTimer::timeout, this, &ViewFrame::tick);
  timer_.start(kIdleInterval);
  if (model_) {
    connect(model_, &TraceModel::reset, this, [this] { dirty_ = true; });
    // Back to the quick interval as soon as an answer ends (not up to 500 ms later).
    // When an answer starts, the first live redraw waits a whole generating interval: short
    // answers are drawn once, when they end, and long ones every interval, never in a burst at
    // the start when the prompt is being read.
    connect(model_, &TraceModel::changed, this, [this] {
      const int want = wantedInterval();
      if (timer_.interval() != want) timer_.start(want);
    });
  }
}

bool ViewFrame::event(QEvent* e) {
  // Shown again (dock opened, floated, tab raised): draw the current data before the first paint.
  if (e->type() == QEvent::Show && model_ && (dirty_ || model_->version() != drawn_version_)) refreshNow();
  return QWidget::event(e);
}

int ViewFrame::wantedInterval() const {
  if (!model_ || !model_->generating()) return kIdleInterval;
  const bool on_device = model_->hasModel() && model_->model().device_bytes >= 0;
  return on_device ? kGeneratingIntervalDevice : kGeneratingIntervalCpu;
}

void ViewFrame::tick() {
  const int want = wantedInterval();
  if (timer_.interval() != want) timer_.setInterval(want);
  if (!isVisible()) return;
  if (!dirty_ && model_ && model_->version() == drawn_version_) return;
  refreshNow();
}

void ViewFrame::refreshNow() {
  dirty_ = false;
  if (model_) drawn_version_ = model_->version();
  ++refreshes_;
  QElapsedTimer t;
  t.start();
  // While the model generates, plots are drawn without antialiasing (about half the painting time).
  const bool live = model_ && model_->generating();
  if (live != drawn_live_) {
    drawn_live_ = live;
    for (QCustomPlot* p : findChildren<QCustomPlot*>()) {
      p->setNotAntialiasedElements(live ? QCP::aeAll : QCP::aeNone);
      if (!live) p->replot(QCustomPlot::rpQueuedReplot);
    }
  }
  refresh();
  refresh_seconds_ += t.nsecsElapsed() * 1e-9;
}

void ViewFrame::setStatus(const QString& text) { static_cast<ElidingLabel*>(status_)->setFullText(text); }

QCustomPlot* ViewFrame::makePlot(QWidget* parent) {
  auto* p = new QCustomPlot(parent);
  p->setMinimumHeight(140);
  p->setNoAntialiasingOnDrag(true);
  p->setPlottingHint(QCP::phCacheLabels, true);
  // replot() then schedules a paint instead of repainting at once (QCustomPlot's default): a
  // synchronous repaint flushes the window's backing store for every plot, ~2 ms each, while
  // scheduled paints of all views are merged into one.
  p->setPlottingHint(QCP::phImmediateRefresh, false);
  QFont f = p->font();
  f.setPointSizeF(std::max(8.0, f.pointSizeF() - 0.5));
  for (QCPAxis* a : {p->xAxis, p->yAxis}) {
    a->setTickLabelFont(f);
    a->setLabelFont(f);
  }
  p->axisRect()->setupFullAxesBox(false);
  p->xAxis2->setVisible(false);
  p->yAxis2->setVisible(false);
  return p;
}

void ViewFrame::useIntegerTicks(QCPAxis* axis) {
  auto ticker = QSharedPointer<QCPAxisTickerFixed>::create();
  ticker->setTickStep(1);
  ticker->setScaleStrategy(QCPAxisTickerFixed::ssMultiples);
  axis->setTicker(ticker);
}

void ViewFrame::placeLegendAbove(QCustomPlot* plot) {
  QCPLegend* legend = plot->legend;
  legend->setVisible(true);
  if (legend->layout() == plot->plotLayout()) return;
  // The legend row must not make the dock wider than the plot itself needs: the minimum width stays
  // what it was without it, and the row holds as many items as fit (one a row in a narrow dock).
  const int min_width = static_cast<QWidget*>(plot)->minimumSizeHint().width();  // public in QWidget
  plot->axisRect()->insetLayout()->take(legend);  // QCustomPlot's default place: inside the axis rect
  plot->plotLayout()->insertRow(0);
  plot->plotLayout()->addElement(0, 0, legend);
  plot->plotLayout()->setRowStretchFactor(0, 0.001);  // as high as the legend needs, no more
  plot->plotLayout()->setRowSpacing(0);
  legend->setFillOrder(QCPLegend::foColumnsFirst);
  legend->setBrush(Qt::NoBrush);
  legend->setBorderPen(Qt::NoPen);
  legend->setMargins(QMargins(4, 2, 4, 0));
  plot->setMinimumWidth(std::max(plot->minimumWidth(), min_width));
  QObject::connect(plot, &QCustomPlot::beforeReplot, plot, [plot] {
    QCPLegend* l = plot->legend;
    int widest = 1;
    for (int i = 0; i < l->itemCount(); ++i)
      if (QCPAbstractLegendItem* item = l->item(i)) widest = std::max(widest, item->minimumOuterSizeHint().width());
    const int room = plot->width() - l->margins().left() - l->margins().right();
    const int per_row = std::clamp(room / (widest + l->columnSpacing()), 1, std::max(1, l->itemCount()));
    if (l->wrap() != per_row) {
      l->setWrap(per_row);
      l->setFillOrder(QCPLegend::foColumnsFirst, true);  // rearranges the items for the new wrap
    }
  });
}

bool ViewFrame::exportPng(const QString& path, int width, int height) {
  refreshNow();
  QCustomPlot* p = currentPlot();
  return p && p->savePng(path, width, height);
}

bool ViewFrame::exportPdf(const QString& path) {
  refreshNow();
  QCustomPlot* p = currentPlot();
  return p && p->savePdf(path);
}

bool ViewFrame::exportCsv(const QString& path) const {
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate)) return false;
  const QByteArray data = csv().toUtf8();
  return f.write(data) == data.size();
}

void ViewFrame::exportWithDialog(const QString& kind) {
  const QString filter = kind == QLatin1String("png") ? tr("PNG image (*.png)")
                         : kind == QLatin1String("pdf") ? tr("PDF document (*.pdf)")
                                                        : tr("CSV table (*.csv)");
  const QString path = QFileDialog::getSaveFileName(this, tr("Export"), id_ + QLatin1Char('.') + kind, filter);
  if (path.isEmpty()) return;
  const bool ok = kind == QLatin1String("png") ? exportPng(path) : kind == QLatin1String("pdf") ? exportPdf(path) : exportCsv(path);
  if (!ok) QMessageBox::warning(this, tr("Export"), tr("Could not write %1.").arg(path));
}

void ViewFrame::openTrace() {
  if (!model_) return;
  const QString path = QFileDialog::getOpenFileName(this, tr("Open routing trace"), {}, tr("Routing trace (*.json)"));
  if (path.isEmpty()) return;
  QString error;
  if (!model_->openTraceFile(path, &error))
    QMessageBox::warning(this, tr("Open trace"), tr("Could not open %1:\n%2").arg(path, error));
}

QString format_count(double v) {
  const double a = std::abs(v);
  if (a >= 1e9) return QString::number(v / 1e9, 'f', 2) + QStringLiteral(" G");
  if (a >= 1e6) return QString::number(v / 1e6, 'f', 2) + QStringLiteral(" M");
  if (a >= 1e4) return QString::number(v / 1e3, 'f', 1) + QStringLiteral(" k");
  return QString::number(v, 'g', 4);
}

QString format_bytes(double b) { return QString::fromStdString(format_bytes_iec(b)); }

QString csv_field(const QString& s) {
  if (!s.contains(QLatin1Char(',')) && !s.contains(QLatin1Char('"')) && !s.contains(QLatin1Char('\n')) &&
      !s.contains(QLatin1Char('\r')))
    return s;
  QString q = s;
  q.replace(QLatin1String("\""), QLatin1String("\"\""));
  return QLatin1Char('"') + q + QLatin1Char('"');
}

QString visible_token_text(const std::string& text) {
  QString s = QString::fromStdString(text);
  s.replace(QLatin1Char(' '), QChar(0x2423));
  s.replace(QLatin1Char('\n'), QChar(0x23CE));
  s.replace(QLatin1Char('\t'), QChar(0x21E5));
  return s;
}

bool sync_layer_box(QComboBox* box, const std::vector<int>& layers, int& current) {
  bool same = box->count() == int(layers.size());
  for (int i = 0; same && i < box->count(); ++i) same = box->itemData(i).toInt() == layers[size_t(i)];
  if (same) return false;
  const QSignalBlocker block(box);
  box->clear();
  for (int l : layers) box->addItem(QObject::tr("layer %1").arg(l), l);
  current = std::clamp(current, 0, std::max(0, int(layers.size()) - 1));
  box->setCurrentIndex(layers.empty() ? -1 : current);
  return true;
}

}  // namespace moescope::ui
