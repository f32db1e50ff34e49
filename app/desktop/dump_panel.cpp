#include "dump_panel.h"

#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QProgressBar>
#include <QPushButton>
#include <QSpinBox>
#include <QTextBrowser>
#include <QThread>
#include <QVBoxLayout>
#include <spdlog/spdlog.h>

#include "moescope/model_spec.h"
#include "ui/remote_client.h"
#include "ui/views/trace_model.h"

namespace moescope::desktop {

namespace {

QString stats_html(const RoutingStats& s, const QString& what) {
  const LayerBalance mean = s.mean_over_layers(), worst = s.worst_over_layers();
  QString html = QObject::tr("<p><b>%1</b>: %2 tokens, %3 MoE layers, %4 experts</p>")
                     .arg(what.toHtmlEscaped())
                     .arg(QLocale().toString(qlonglong(s.tokens())))
                     .arg(s.moe_layers().size())
                     .arg(s.n_experts());
  html += QObject::tr("<p>Mean over the layers: cv %1, MaxVio %2, entropy %3, dead experts %4.<br>"
                      "Worst layer: cv %5, MaxVio %6, entropy %7, dead %8.</p>")
              .arg(mean.cv, 0, 'f', 3).arg(mean.maxvio, 0, 'f', 3).arg(mean.entropy, 0, 'f', 3).arg(mean.dead)
              .arg(worst.cv, 0, 'f', 3).arg(worst.maxvio, 0, 'f', 3).arg(worst.entropy, 0, 'f', 3).arg(worst.dead);
  html += QStringLiteral("<table cellspacing=0 cellpadding=2><tr><th align=right>layer</th><th align=right>cv</th>"
                         "<th align=right>MaxVio</th><th align=right>entropy</th><th align=right>dead</th></tr>");
  for (int m = 0; m < int(s.moe_layers().size()); ++m) {
    const LayerBalance b = s.layer(m);
    html += QStringLiteral("<tr><td align=right>%1</td><td align=right>%2</td><td align=right>%3</td><td align=right>%4</td>"
                           "<td align=right>%5</td></tr>")
                .arg(b.layer).arg(b.cv, 0, 'f', 3).arg(b.maxvio, 0, 'f', 3).arg(b.entropy, 0, 'f', 3).arg(b.dead);
  }
  return html + QStringLiteral("</table>");
}

}  // namespace

DumpPanel::DumpPanel(ui::TraceModel* traces, QWidget* parent) : QWidget(parent), traces_(traces) {
  setObjectName(QStringLiteral("dumpPanel"));
  title_ = new QLabel(tr("No routing dump is open: File ▸ Open routing dump…"), this);
  title_->setObjectName(QStringLiteral("dumpTitle"));
  title_->setWordWrap(true);
  sequence_ = new QSpinBox(this);
  sequence_->setObjectName(QStringLiteral("dumpSequence"));
  sequence_->setPrefix(tr("sequence "));
  sequence_->setRange(1, 1);
  sequence_->setEnabled(false);
  label_ = new QLabel(this);
  label_->setObjectName(QStringLiteral("dumpLabel"));
  label_->setWordWrap(true);
  stats_button_ = new QPushButton(tr("Statistics over the whole dump"), this);
  stats_button_->setObjectName(QStringLiteral("dumpStats"));
  stats_button_->setEnabled(false);
  cancel_button_ = new QPushButton(tr("Cancel"), this);
  cancel_button_->setVisible(false);
  progress_ = new QProgressBar(this);
  progress_->setRange(0, 1000);
  progress_->setVisible(false);
  stats_ = new QTextBrowser(this);
  stats_->setObjectName(QStringLiteral("dumpStatsText"));
  stats_->setPlaceholderText(tr("The shown sequence is in every view. The statistics over all sequences are read "
                                "streaming: memory stays flat however large the dump."));
  error_ = new QLabel(this);
  error_->setObjectName(QStringLiteral("dumpError"));
  error_->setWordWrap(true);
  error_->setStyleSheet(QStringLiteral("color:#B31D28;"));
  error_->setVisible(false);

  auto* row = new QHBoxLayout;
  row->addWidget(sequence_);
  row->addWidget(label_, 1);
  auto* stats_row = new QHBoxLayout;
  stats_row->addWidget(stats_button_);
  stats_row->addWidget(progress_, 1);
  stats_row->addWidget(cancel_button_);
  auto* layout = new QVBoxLayout(this);
  layout->addWidget(title_);
  layout->addLayout(row);
  layout->addWidget(error_);
  layout->addLayout(stats_row);
  layout->addWidget(stats_, 1);

  connect(sequence_, &QSpinBox::valueChanged, this, [this](int v) { showSequence(v - 1); });
  connect(stats_button_, &QPushButton::clicked, this, &DumpPanel::computeStats);
  connect(cancel_button_, &QPushButton::clicked, this, &DumpPanel::cancelStats);
}

DumpPanel::~DumpPanel() {
  cancelStats();
  if (worker_) worker_->wait();
}

bool DumpPanel::openDump(const QString& path, const QString& config, const QString& token_ids, QString* error) {
  cancelStats();
  if (worker_) worker_->wait();
  error_->setVisible(false);
  try {
    remote::TraceShape shape;
    if (!config.trimmed().isEmpty()) shape = remote::trace_shape_of(load_model_spec(ui::model_config_path(config.trimmed())));
    auto dump = RoutingDump::open(path.toStdString(), shape, token_ids.toStdString());
    dump_ = std::move(dump);
    path_ = path;
    const remote::TraceShape& s = dump_->shape();
    title_->setText(tr("<b>%1</b> — %2, %n sequence(s), %3 layers × top-%4%5", nullptr, int(std::min<int64_t>(dump_->sequences(), INT_MAX)))
                        .arg(QFileInfo(path).fileName().toHtmlEscaped(), QString::fromStdString(dump_->format()))
                        .arg(s.moe_layers.empty() ? s.n_layers : int(s.moe_layers.size()))
                        .arg(s.top_k)
                        .arg(config.isEmpty() ? tr(" (no model config: layers as in the file)") : tr(", config %1").arg(config.toHtmlEscaped())));
    stats_->clear();
    stats_button_->setEnabled(true);
    const QSignalBlocker block(sequence_);
    sequence_->setRange(1, int(std::clamp<int64_t>(dump_->sequences(), 1, INT_MAX)));
    sequence_->setValue(1);
    sequence_->setEnabled(dump_->sequences() > 1);
    spdlog::info("routing dump {} opened: {} sequences ({})", path.toStdString(), dump_->sequences(), dump_->format());
    showSequence(0);
    return error_->isHidden();
  } catch (const std::exception& e) {
    const QString m = QString::fromUtf8(e.what());
    spdlog::error("routing dump {}: {}", path.toStdString(), e.what());
    error_->setText(tr("Could not open %1: %2").arg(QFileInfo(path).fileName(), m));
    error_->setVisible(true);
    if (error) *error = m;
    return false;
  }
}

void DumpPanel::showSequence(int64_t index) {
  if (!dump_ || index < 0 || index >= dump_->sequences()) return;
  try {
    const RoutingTrace trace = dump_->sequence(index);
    const QString label = QString::fromStdString(dump_->sequence_label(index));
    label_->setText(label + (trace.has_weights() ? QString() : tr(" · weights unknown (ids only)")));
    traces_->replaceTrace(trace, tr("dump %1, %2").arg(QFileInfo(path_).fileName(), label));
    error_->setVisible(false);
  } catch (const std::exception& e) {
    spdlog::error("routing dump {}: sequence {}: {}", path_.toStdString(), index + 1, e.what());
    error_->setText(tr("Sequence %1 could not be read: %2").arg(index + 1).arg(QString::fromUtf8(e.what())));
    error_->setVisible(true);
  }
}

void DumpPanel::computeStats() {
  if (!dump_ || running_) return;
  running_ = true;
  cancel_ = std::make_shared<std::atomic<bool>>(false);
  progress_->setValue(0);
  progress_->setVisible(true);
  cancel_button_->setVisible(true);
  stats_button_->setEnabled(false);
  auto dump = dump_;
  auto cancel = cancel_;
  QPointer<DumpPanel> self(this);
  const QString name = QFileInfo(path_).fileName();
  worker_ = QThread::create([dump, cancel, self, name] {
    int last = -1;
    DumpProgress p;
    p.cancel = cancel.get();
    p.progress = [&](int64_t done, int64_t total) {
      const int permille = total > 0 ? int(1000 * done / total) : 1000;
      if (permille == last) return;
      last = permille;
      QMetaObject::invokeMethod(self, [self, permille] {
        if (self) self->progress_->setValue(permille);
      }, Qt::QueuedConnection);
    };
    QString html, failure;
    try {
      const RoutingStats s = dump->stats(p);
      html = stats_html(s, QObject::tr("All %n sequence(s) of %1", nullptr, int(std::min<int64_t>(dump->sequences(), INT_MAX))).arg(name));
    } catch (const std::exception& e) {
      failure = cancel->load() ? QObject::tr("Cancelled.") : QString::fromUtf8(e.what());
    }
    QMetaObject::invokeMethod(self, [self, html, failure] {
      if (!self) return;
      self->running_ = false;
      self->progress_->setVisible(false);
      self->cancel_button_->setVisible(false);
      self->stats_button_->setEnabled(true);
      if (failure.isEmpty()) self->stats_->setHtml(html);
      else self->stats_->setPlainText(failure);
      emit self->statsReady(failure.isEmpty());
    }, Qt::QueuedConnection);
  });
  connect(worker_, &QThread::finished, worker_, &QObject::deleteLater);
  worker_->start();
}

void DumpPanel::cancelStats() {
  if (cancel_) cancel_->store(true);
}

QString DumpPanel::statsText() const { return stats_->toPlainText(); }

}  // namespace moescope::desktop
