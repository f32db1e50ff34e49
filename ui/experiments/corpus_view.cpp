#include "corpus_view.h"

#include <QComboBox>
#include <QFileDialog>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QProgressBar>
#include <QPushButton>
#include <QSplitter>
#include <QTableWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <qcustomplot.h>
#include <spdlog/spdlog.h>

#include "ui/engine_feed.h"
#include "ui/engine_host.h"
#include "ui/guide.h"

namespace moescope::ui {

namespace {

QTableWidget* make_table(QWidget* parent) {
  auto* t = new QTableWidget(parent);
  t->verticalHeader()->hide();
  t->setEditTriggers(QAbstractItemView::NoEditTriggers);
  t->horizontalHeader()->setStretchLastSection(true);
  t->verticalHeader()->setDefaultSectionSize(t->fontMetrics().height() + 6);
  return t;
}

}  // namespace

CorpusView::CorpusView(EngineFeed* feed, EngineHost* host, QWidget* parent)
    : QWidget(parent), host_(host) {
  auto* layout = new QVBoxLayout(this);
  auto* intro = new QLabel(tr("Which experts each kind of text goes to: run a file or a folder (one domain per "
                              "file) through the model and compare the domains' expert load, layer by layer."),
                           this);
  intro->setWordWrap(true);
  QLabel* more = nullptr;
  layout->addLayout(intro_with_learn_more(intro, this, tr("Which experts specialise in which kind of text"), &more));
  connect(more, &QLabel::linkActivated, this, [this] { emit learnMoreRequested(QStringLiteral("corpus")); });

  auto* row = new QHBoxLayout;
  path_ = new QLineEdit(this);
  path_->setPlaceholderText(tr("a text file or a folder of text files"));
  auto* file = new QPushButton(tr("File…"), this);
  auto* folder = new QPushButton(tr("Folder…"), this);
  run_ = new QPushButton(tr("Analyse"), this);
  cancel_ = new QPushButton(tr("Cancel"), this);
  cancel_->setEnabled(false);
  export_ = new QPushButton(tr("Export CSVs…"), this);
  export_->setEnabled(false);
  row->addWidget(path_, 1);
  for (QPushButton* b : {file, folder, run_, cancel_, export_}) row->addWidget(b);
  layout->addLayout(row);

  auto* prow = new QHBoxLayout;
  progress_ = new QProgressBar(this);
  progress_->setRange(0, 100);
  progress_->setValue(0);
  status_ = new QLabel(this);
  prow->addWidget(progress_, 1);
  prow->addWidget(status_, 1);
  layout->addLayout(prow);

  auto* lrow = new QHBoxLayout;
  lrow->addWidget(new QLabel(tr("MoE layer:"), this));
  layer_ = new QComboBox(this);
  lrow->addWidget(layer_);
  lrow->addStretch(1);
  layout->addLayout(lrow);

  auto* split = new QSplitter(Qt::Vertical, this);
  plot_ = new QCustomPlot(split);
  plot_->setMinimumHeight(150);
  split->addWidget(plot_);
  auto* tables = new QSplitter(Qt::Horizontal, split);
  divergence_ = make_table(tables);
  top_tokens_ = make_table(tables);
  tables->addWidget(divergence_);
  tables->addWidget(top_tokens_);
  split->addWidget(tables);
  layout->addWidget(split, 1);

  // Before the first analysis: say what to do and what each panel will show.
  status_->setObjectName(QStringLiteral("corpus-status"));
  status_->setWordWrap(true);
  status_->setText(tr("Choose a text file (one domain) or a folder (a domain per file) above, then Analyse."));
  divergence_->setColumnCount(1);
  divergence_->setHorizontalHeaderLabels({tr("Domains (JS divergence per MoE layer) — after an analysis")});
  top_tokens_->setColumnCount(3);
  top_tokens_->setHorizontalHeaderLabels({tr("Expert"), tr("Top-1 picks"), tr("Tokens it takes most — after an analysis")});
  plot_->plotLayout()->insertRow(0);
  plot_->plotLayout()->addElement(0, 0, new QCPTextElement(plot_, tr("Expert load per domain (run an analysis to fill this in)")));
  plot_->xAxis->setLabel(tr("expert"));
  plot_->yAxis->setLabel(tr("domain"));

  connect(file, &QPushButton::clicked, this, [this] {
    const QString p = QFileDialog::getOpenFileName(this, tr("Corpus file"));
    if (!p.isEmpty()) path_->setText(p);
  });
  connect(folder, &QPushButton::clicked, this, [this] {
    const QString p = QFileDialog::getExistingDirectory(this, tr("Corpus folder (a domain per file)"));
    if (!p.isEmpty()) path_->setText(p);
  });
  connect(run_, &QPushButton::clicked, this, &CorpusView::start);
  connect(cancel_, &QPushButton::clicked, this, &CorpusView::cancel);
  connect(export_, &QPushButton::clicked, this, [this] {
    const QString d = QFileDialog::getExistingDirectory(this, tr("Export the analysis CSVs to"));
    if (!d.isEmpty()) exportCsv(d);
  });
  connect(layer_, &QComboBox::currentIndexChanged, this, &CorpusView::showLayer);
  connect(host_, &EngineHost::analysisProgress, this, [this](quint64 id, qint64 done, qint64 total) {
    if (id != pending_) return;
    progress_->setValue(total ? int(100 * done / total) : 100);
    status_->setText(tr("%1 of %2 tokens").arg(done).arg(total));
  });
  connect(host_, &EngineHost::analysed, this, [this](const AnalysisOutcome& o) {
    if (o.id != pending_) return;
    pending_ = 0;
    outcome_ = o;
    run_->setEnabled(true);
    cancel_->setEnabled(false);
    if (!o.error.isEmpty()) {
      status_->setText(o.cancelled ? tr("Cancelled.") : tr("Failed: %1").arg(o.error));
      if (o.cancelled) progress_->setValue(0);
      emit finished(o);
      return;
    }
    progress_->setValue(100);
    const CorpusAnalysis& a = *o.analysis;
    int64_t tokens = 0;
    for (const auto& d : a.domains) tokens += d.tokens;
    status_->setText(tr("%n domain(s), %1 tokens", nullptr, int(a.domains.size())).arg(tokens));
    export_->setEnabled(true);
    {
      const QSignalBlocker b(layer_);
      layer_->clear();
      for (int l : a.moe_layers) layer_->addItem(tr("layer %1").arg(l));
    }
    // JS divergence: a row per pair of domains, a column per MoE layer.
    divergence_->clear();
    QStringList cols{tr("Domains (JS divergence)")};
    for (int l : a.moe_layers) cols << tr("L%1").arg(l);
    divergence_->setColumnCount(int(cols.size()));
    divergence_->setHorizontalHeaderLabels(cols);
    divergence_->setRowCount(0);
    for (size_t i = 0; i < a.domains.size(); ++i)
      for (size_t j = i + 1; j < a.domains.size(); ++j) {
        const int r = divergence_->rowCount();
        divergence_->insertRow(r);
        divergence_->setItem(r, 0, new QTableWidgetItem(QString::fromStdString(a.domains[i].name + " / " + a.domains[j].name)));
        for (int m = 0; m < int(a.moe_layers.size()); ++m)
          divergence_->setItem(r, m + 1, new QTableWidgetItem(QString::number(a.js_divergence(i, j, m), 'f', 3)));
      }
    divergence_->resizeColumnsToContents();
    showLayer(0);
    emit finished(o);
  });
  if (feed) connect(feed, &EngineFeed::modelChanged, this, [this](const ModelInfo& info) { setModelDir(info.dir); });
  setModelDir({});
}

void CorpusView::setModelDir(const QString& dir) {
  model_dir_ = dir;
  run_->setEnabled(!dir.isEmpty() && pending_ == 0);
}

void CorpusView::setCorpus(const QString& path) { path_->setText(path); }

void CorpusView::start() {
  if (model_dir_.isEmpty() || pending_ || path_->text().trimmed().isEmpty()) return;
  AnalysisRequest r;
  r.corpus = path_->text().trimmed();
  progress_->setValue(0);
  status_->setText(tr("Analysing…"));
  run_->setEnabled(false);
  cancel_->setEnabled(true);
  export_->setEnabled(false);
  pending_ = host_->analyze(r);
}

void CorpusView::cancel() {
  if (pending_) host_->cancelAnalysis();
}

bool CorpusView::exportCsv(const QString& dir) const {
  if (!outcome_.analysis || !outcome_.tokenizer) return false;
  try {
    outcome_.analysis->write(dir.toStdString(), *outcome_.tokenizer);
    return true;
  } catch (const std::exception& e) {
    spdlog::error("exporting the corpus analysis failed: {}", e.what());
    return false;
  }
}

void CorpusView::showLayer(int m) {
  if (!outcome_.analysis || m < 0 || m >= int(outcome_.analysis->moe_layers.size())) return;
  const CorpusAnalysis& a = *outcome_.analysis;
  const int nd = int(a.domains.size()), ne = a.n_experts;

  // Heatmap: share of each domain's selections that went to each expert at this layer.
  plot_->clearPlottables();
  plot_->plotLayout()->clear();
  auto* rect = new QCPAxisRect(plot_);
  plot_->plotLayout()->addElement(0, 0, rect);
  map_ = new QCPColorMap(rect->axis(QCPAxis::atBottom), rect->axis(QCPAxis::atLeft));
  map_->data()->setSize(ne, nd);
  map_->data()->setRange(QCPRange(0, ne - 1), QCPRange(0, nd - 1));
  for (int d = 0; d < nd; ++d) {
    const auto& load = a.domains[size_t(d)].load[size_t(m)];
    int64_t sum = 0;
    for (int64_t v : load) sum += v;
    for (int e = 0; e < ne; ++e) map_->data()->setCell(e, d, sum ? double(load[size_t(e)]) / double(sum) : 0.0);
  }
  map_->setGradient(QCPColorGradient::gpThermal);
  map_->setInterpolate(false);  // one cell per (domain, expert)
  auto ticker = QSharedPointer<QCPAxisTickerText>::create();
  for (int d = 0; d < nd; ++d) ticker->addTick(d, QString::fromStdString(a.domains[size_t(d)].name));
  rect->axis(QCPAxis::atLeft)->setTicker(ticker);
  rect->axis(QCPAxis::atBottom)->setLabel(tr("expert (colour: share of the domain's selections)"));
  auto* scale = new QCPColorScale(plot_);
  plot_->plotLayout()->addElement(0, 1, scale);
  map_->setColorScale(scale);  // before rescaling: attaching takes over the scale's range
  map_->rescaleDataRange(true);
  auto xticks = QSharedPointer<QCPAxisTickerFixed>::create();
  xticks->setTickStep(ne > 32 ? 8.0 : ne > 16 ? 4.0 : 1.0);
  rect->axis(QCPAxis::atBottom)->setTicker(xticks);
  rect->axis(QCPAxis::atBottom)->setRange(-0.5, ne - 0.5);
  rect->axis(QCPAxis::atLeft)->setRange(-0.5, nd - 0.5);
  plot_->replot();

  // Specialisation: the tokens each expert was the top choice for most often at this layer.
  std::vector<std::vector<std::pair<int64_t, int32_t>>> per_expert(size_t(std::max(0, ne)));
  for (const auto& [token, layers] : a.token_top1)
    if (m < int(layers.size()))
      for (const auto& [e, count] : layers[size_t(m)])
        if (e >= 0 && e < ne) per_expert[size_t(e)].emplace_back(count, token);
  top_tokens_->clear();
  top_tokens_->setColumnCount(3);
  top_tokens_->setHorizontalHeaderLabels({tr("Expert"), tr("Top-1 picks"), tr("Tokens it takes most")});
  top_tokens_->setRowCount(ne);
  for (int e = 0; e < ne; ++e) {
    auto& v = per_expert[size_t(e)];
    std::sort(v.begin(), v.end(), [](auto& x, auto& y) { return x.first > y.first; });
    int64_t picks = 0;
    for (auto& p : v) picks += p.first;
    QStringList toks;
    for (size_t i = 0; i < std::min<size_t>(6, v.size()); ++i) {
      const int32_t id = v[i].second;
      QString t = QString::fromStdString(outcome_.tokenizer->decode(std::span<const int32_t>(&id, 1)));
      t.replace(QLatin1Char('\n'), QStringLiteral("↵"));
      toks << QStringLiteral("'%1'×%2").arg(t).arg(v[i].first);
    }
    top_tokens_->setItem(e, 0, new QTableWidgetItem(QString::number(e)));
    top_tokens_->setItem(e, 1, new QTableWidgetItem(QString::number(picks)));
    top_tokens_->setItem(e, 2, new QTableWidgetItem(toks.join(QStringLiteral("  "))));
  }
  top_tokens_->resizeColumnToContents(0);
  top_tokens_->resizeColumnToContents(1);
}

}  // namespace moescope::ui
