#include "anatomy_view.h"

#include <QComboBox>
#include <QFile>
#include <QFileDialog>
#include <QBoxLayout>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QPushButton>
#include <QResizeEvent>
#include <QScrollBar>
#include <QScrollArea>
#include <QSlider>
#include <QSpinBox>
#include <QTableWidget>
#include <QTextStream>
#include <QVBoxLayout>
#include <cmath>
#include <nlohmann/json.hpp>
#include <qcustomplot.h>

#include "moescope/anatomy.h"
#include "presets.h"
#include "ui/engine_feed.h"
#include "ui/guide.h"

namespace moescope::ui {

namespace {

// 671.0B, 37.5B, 1.8M: one decimal, the unit the published figures use.
QString count_text(double n) {
  if (n >= 1e9) return QString::number(n / 1e9, 'f', 1) + QLatin1Char('B');
  if (n >= 1e6) return QString::number(n / 1e6, 'f', 1) + QLatin1Char('M');
  if (n >= 1e3) return QString::number(n / 1e3, 'f', 1) + QLatin1Char('K');
  return QString::number(qint64(n));
}

QString bytes_text(double b) { return QString::fromStdString(format_bytes_iec(b)); }

constexpr int kLoadedIndex = 0;
constexpr int kStackBelow = 640;  // narrower than this: the bars below the table  // combo: "Loaded model", then presets, then opened configs

}  // namespace

AnatomyView::AnatomyView(EngineFeed* feed, QWidget* parent) : QWidget(parent) {
  // Everything sits in a scroll area: a small dock scrolls instead of squeezing the rows into each
  // other (issue 16: the context row over the total row, a clipped summary).
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(0, 0, 0, 0);
  auto* scroll = new QScrollArea(this);
  scroll->setObjectName(QStringLiteral("anatomy-scroll"));
  scroll->setWidgetResizable(true);
  scroll->setFrameShape(QFrame::NoFrame);
  // Up and down only: the parts wrap or shrink to the dock's width (nothing hides at the right).
  scroll->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  outer->addWidget(scroll);
  content_ = new QWidget(scroll);
  content_->setObjectName(QStringLiteral("anatomy-content"));
  scroll->setWidget(content_);
  auto* layout = new QVBoxLayout(content_);
  auto* intro = new QLabel(tr("What a model is made of: parameters per component, how many of them each token "
                              "actually uses (active), the KV cache per token, and the memory it needs."),
                           this);
  intro->setWordWrap(true);
  QLabel* more = nullptr;
  layout->addLayout(intro_with_learn_more(intro, this, tr("What a model is made of: total and active parameters, the KV cache"), &more));
  connect(more, &QLabel::linkActivated, this, [this] { emit learnMoreRequested(QStringLiteral("anatomy")); });

  auto* row = new QHBoxLayout;
  source_ = new QComboBox(this);
  source_->setObjectName(QStringLiteral("anatomy-source"));
  // The combo may get narrower than its longest entry (a file path) in a small dock.
  source_->setSizeAdjustPolicy(QComboBox::AdjustToMinimumContentsLengthWithIcon);
  source_->setMinimumContentsLength(10);
  source_->addItem(tr("Loaded model"), QString());
  for (const QString& p : preset_names()) source_->addItem(tr("Preset: %1").arg(p), QStringLiteral("preset:") + p);
  auto* open = new QPushButton(tr("Inspect config.json…"), this);
  auto* csv = new QPushButton(tr("Export CSV…"), this);
  row->addWidget(source_, 1);
  row->addWidget(open);
  row->addWidget(csv);
  layout->addLayout(row);

  summary_ = new QLabel(this);
  summary_->setObjectName(QStringLiteral("anatomy-summary"));
  summary_->setWordWrap(true);
  summary_->setTextFormat(Qt::RichText);
  layout->addWidget(summary_);
  error_ = new QLabel(this);
  error_->setStyleSheet(QStringLiteral("color: #b00020"));
  error_->setWordWrap(true);
  error_->hide();
  layout->addWidget(error_);

  params_ = new QTableWidget(0, 4, this);
  params_->setObjectName(QStringLiteral("anatomy-params"));
  params_->setHorizontalHeaderLabels({tr("Component"), tr("Total"), tr("Active / token"), tr("% of total")});
  params_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  params_->horizontalHeader()->setSectionResizeMode(0, QHeaderView::ResizeToContents);
  params_->verticalHeader()->hide();
  params_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  params_->verticalHeader()->setDefaultSectionSize(params_->fontMetrics().height() + 6);
  params_->setVerticalScrollBarPolicy(Qt::ScrollBarAsNeeded);
  fitParamsHeight(9);  // eight components + total; showSpec() sets it for the rows it shows

  plot_ = new QCustomPlot(this);
  plot_->setMinimumSize(260, 200);
  // Table and bars side by side; in a narrow dock one above the other (resizeEvent), so the
  // table's columns and headers keep their width.
  middle_ = new QBoxLayout(QBoxLayout::LeftToRight);
  middle_->addWidget(params_, 3);
  middle_->addWidget(plot_, 2);
  layout->addLayout(middle_, 1);

  auto* mem_row = new QHBoxLayout;
  auto* context_label = new QLabel(tr("Context (tokens):"), this);
  context_label->setObjectName(QStringLiteral("anatomy-context-label"));
  mem_row->addWidget(context_label);
  context_ = new QSpinBox(this);
  context_->setObjectName(QStringLiteral("anatomy-context"));
  context_->setRange(1, 1 << 20);
  context_->setSingleStep(1024);
  context_->setValue(4096);
  slider_ = new QSlider(Qt::Horizontal, this);
  slider_->setRange(0, 20);  // log2 of the context
  slider_->setValue(12);
  mem_row->addWidget(context_);
  mem_row->addWidget(slider_, 1);
  layout->addLayout(mem_row);

  memory_ = new QTableWidget(int(weight_formats().size()) + 1, 4, this);  // + the loaded file's row
  memory_->setObjectName(QStringLiteral("anatomy-memory"));
  memory_->setHorizontalHeaderLabels({tr("Weights as"), tr("Weights"), tr("KV cache (BF16)"), tr("Total")});
  memory_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  memory_->verticalHeader()->hide();
  memory_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  memory_->verticalHeader()->setDefaultSectionSize(memory_->fontMetrics().height() + 6);
  // Five formats in view (BF16 … Q5_K_M), the rest a scroll away, so that a small dock keeps room
  // for the parameter table.
  memory_->setVerticalScrollBarPolicy(Qt::ScrollBarAsNeeded);
  memory_->setFixedHeight(memory_->horizontalHeader()->sizeHint().height() + 5 * (memory_->fontMetrics().height() + 6) + 4);
  memory_->setToolTip(tr("The weights at each format: BF16, FP8, and llama.cpp's GGUF types. Q8_0, Q6_K, MXFP4 and "
                         "IQ1_S are single types (their block scales included); Q5_K_M, Q4_K_M, Q3_K_M and Q2_K are "
                         "llama-quantize's mixes, at their typical bits a weight (within ~0.1 bit by model)."));
  layout->addWidget(memory_);

  connect(source_, &QComboBox::currentIndexChanged, this, &AnatomyView::onSource);
  connect(context_, &QSpinBox::valueChanged, this, [this](int v) {
    const QSignalBlocker b(slider_);
    slider_->setValue(int(std::lround(std::log2(std::max(1, v)))));
    refreshMemory();
  });
  connect(slider_, &QSlider::valueChanged, this, [this](int v) { context_->setValue(1 << v); });
  connect(open, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getOpenFileName(this, tr("Inspect config.json"), QString(),
                                                      tr("Model configuration (config.json *.json)"));
    if (!path.isEmpty()) openConfig(path);
  });
  connect(csv, &QPushButton::clicked, this, [this] {
    const QString path = QFileDialog::getSaveFileName(this, tr("Export anatomy"), QStringLiteral("anatomy.csv"),
                                                      tr("CSV (*.csv)"));
    if (!path.isEmpty()) exportCsv(path);
  });
  if (feed) {
    connect(feed, &EngineFeed::modelChanged, this,
            [this](const ModelInfo& info) { setLoadedModel(info.dir, info.footprint); });
  }
  summary_->setText(tr("No model loaded yet: choose a preset or inspect a config.json."));
  refreshMemory();
}

void AnatomyView::setLoadedModel(const QString& dir, std::shared_ptr<const WeightFootprint> footprint) {
  loaded_footprint_ = std::move(footprint);
  setModelDir(dir);
}

void AnatomyView::setModelDir(const QString& dir) {
  loaded_dir_ = dir;
  if (source_->currentIndex() == kLoadedIndex) onSource(kLoadedIndex);
}

void AnatomyView::onSource(int index) {
  const QString data = source_->itemData(index).toString();
  try {
    error_->hide();
    showing_loaded_ = index == kLoadedIndex;
    if (index == kLoadedIndex) {
      if (loaded_dir_.isEmpty()) return;
      showSpec(load_model_spec(loaded_dir_.toStdString()), tr("loaded model"));
    } else if (data.startsWith(QStringLiteral("preset:"))) {
      const QString name = data.mid(7), path = preset_path(name);
      if (path.isEmpty()) throw std::runtime_error("preset " + name.toStdString() + " is not installed");
      showSpec(load_model_spec(path.toStdString()), tr("preset %1").arg(name));
    } else {
      showSpec(load_model_spec(data.toStdString()), QFileInfo(data).fileName());
    }
  } catch (const std::exception& e) {
    error_->setText(tr("Cannot read this configuration: %1").arg(QString::fromUtf8(e.what())));
    error_->show();
  }
}

bool AnatomyView::showPreset(const QString& name) {
  const int i = source_->findData(QStringLiteral("preset:") + name);
  if (i < 0) return false;
  source_->setCurrentIndex(i);
  onSource(i);  // also when it was already current
  return error_->isHidden();
}

bool AnatomyView::openConfig(const QString& path) {
  int i = source_->findData(path);
  if (i < 0) {
    source_->addItem(tr("File: %1").arg(QFileInfo(path).absoluteFilePath()), path);
    i = source_->count() - 1;
  }
  source_->setCurrentIndex(i);
  onSource(i);
  return error_->isHidden();
}

void AnatomyView::setContext(int tokens) { context_->setValue(tokens); }
int AnatomyView::contextTokens() const { return context_->value(); }

void AnatomyView::showSpec(const ModelSpec& spec, const QString& source) {
  spec_ = spec;
  {
    // The memory figures start at the model's own context, as `moescope-cli inspect` does.
    const QSignalBlocker b(context_);
    context_->setValue(int(std::min<int64_t>(default_memory_context(spec), context_->maximum())));
    const QSignalBlocker s(slider_);
    slider_->setValue(int(std::lround(std::log2(std::max(1, context_->value())))));
  }
  const nlohmann::json j = anatomy_json(spec, 1);
  const ParamCounts c = count_params(spec);
  const auto& e = j["experts"];
  const QString attn = QString::fromStdString(j["attention"]["kind"].get<std::string>());
  const int n_shared = spec.moe.shared == SharedExperts::None ? 0 : 1;
  QString text = tr("<b>%1</b> (%2, %3)<br>%4 layers (%5 MoE, %6 dense) · attention %7 · experts: %8 routed, "
                    "%9 shared, %10 active per token<br><b>%11</b> parameters in total, <b>%12</b> active per token")
                     .arg(QString::fromStdString(spec.name.empty() ? spec.architecture : spec.name).toHtmlEscaped(),
                          QString::fromStdString(spec.architecture), source)
                     .arg(spec.n_layers)
                     .arg(e["moe_layers"].get<int>())
                     .arg(e["dense_layers"].get<int>())
                     .arg(attn)
                     .arg(e["routed"].get<int>())
                     .arg(n_shared && spec.moe.expert_width > 0
                              ? QString::number(std::max(1, spec.moe.shared_width / spec.moe.expert_width))
                              : QStringLiteral("0"))
                     .arg(e["active"].get<int>())
                     .arg(count_text(double(c.total)), count_text(double(c.active)));
  // The KV figure as every view and `moescope-cli inspect` give it (moescope/anatomy.h).
  text += tr("<br>KV cache: %1").arg(QString::fromStdString(kv_figure_text(kv_figure(spec), attention_kind_name(spec))).toHtmlEscaped());
  // What each layer keeps (sliding windows, linear attention's share, attention sinks) and the
  // router's rule, in the words of the KV view and the token inspector (ui/guide.h).
  text += QStringLiteral("<br>") + tr("What the %1 layers keep: %2").arg(spec.n_layers).arg(cache_kinds_text(spec)).toHtmlEscaped();
  if (spec.n_moe_layers() > 0) text += QStringLiteral("<br>") + tr("Router: %1").arg(router_rule_text(spec.moe.router)).toHtmlEscaped();
  summary_->setText(text);

  struct Row {
    QString name;
    int64_t total, active;
  };
  // Active per component follows count_params' convention (anatomy.h).
  std::vector<Row> rows = {
      {tr("Embedding"), c.embedding, c.embedding},
      {tr("Attention"), c.attention, c.attention},
      {tr("Norms"), c.norms, c.norms},
      {tr("Dense FFN"), c.dense_ffn, c.dense_ffn},
      {tr("Router"), c.router, c.router},
      {tr("Routed experts"), c.routed_experts, c.routed_active},
      {tr("Shared experts"), c.shared_experts, c.shared_experts},
      {tr("Output head"), c.lm_head, c.lm_head},
      {tr("Total"), c.total, c.active},
  };
  if (c.linear_attention > 0)  // Qwen3.5 / Qwen3-Next: the Gated DeltaNet layers
    rows.insert(rows.begin() + 2, Row{tr("Linear attention"), c.linear_attention, c.linear_attention});
  fitParamsHeight(int(rows.size()));
  params_->setRowCount(int(rows.size()));
  for (int i = 0; i < int(rows.size()); ++i) {
    const Row& r = rows[size_t(i)];
    const QString cells[] = {r.name, count_text(double(r.total)), count_text(double(r.active)),
                             QString::number(c.total ? 100.0 * double(r.total) / double(c.total) : 0.0, 'f', 1)};
    for (int k = 0; k < 4; ++k) {
      auto* item = new QTableWidgetItem(cells[k]);
      if (k > 0) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
      if (i + 1 == int(rows.size())) {
        QFont f = item->font();
        f.setBold(true);
        item->setFont(f);
      }
      item->setData(Qt::UserRole, k == 1 ? QVariant(qint64(r.total)) : k == 2 ? QVariant(qint64(r.active)) : QVariant());
      params_->setItem(i, k, item);
    }
  }

  // Bars: total beside active per component, in billions or millions.
  plot_->clearPlottables();
  const double unit = c.total >= 1e9 ? 1e9 : 1e6;
  QVector<double> ticks, total, active;
  QVector<QString> labels;
  for (int i = 0; i + 1 < int(rows.size()); ++i) {
    if (rows[size_t(i)].total == 0) continue;
    ticks << ticks.size() + 1;
    labels << rows[size_t(i)].name;
    total << double(rows[size_t(i)].total) / unit;
    active << double(rows[size_t(i)].active) / unit;
  }
  auto* group = new QCPBarsGroup(plot_);
  auto* bt = new QCPBars(plot_->yAxis, plot_->xAxis);
  bt->setName(tr("total"));
  bt->setBrush(QColor(0x9e, 0xb9, 0xd4));
  bt->setPen(Qt::NoPen);
  bt->setData(ticks, total);
  bt->setWidth(0.38);
  bt->setBarsGroup(group);
  auto* ba = new QCPBars(plot_->yAxis, plot_->xAxis);
  ba->setName(tr("active per token"));
  ba->setBrush(QColor(0xd9, 0x5f, 0x02));
  ba->setPen(Qt::NoPen);
  ba->setData(ticks, active);
  ba->setWidth(0.38);
  ba->setBarsGroup(group);
  auto ticker = QSharedPointer<QCPAxisTickerText>::create();
  ticker->addTicks(ticks, labels);
  plot_->yAxis->setTicker(ticker);
  plot_->yAxis->setRangeReversed(true);
  plot_->xAxis->setLabel(unit == 1e9 ? tr("parameters (billions)") : tr("parameters (millions)"));
  double max_total = 0;
  for (double t : total) max_total = std::max(max_total, t);
  plot_->xAxis->setRange(0, max_total * 1.05 + 1e-9);
  plot_->yAxis->setRange(0.4, ticks.size() + 0.6);
  // The legend in a row of its own above the bars, never over them or their labels (issue 16).
  plot_->legend->setVisible(true);
  if (plot_->legend->layout() != plot_->plotLayout()) {
    plot_->axisRect()->insetLayout()->take(plot_->legend);
    plot_->plotLayout()->insertRow(0);
    plot_->plotLayout()->addElement(0, 0, plot_->legend);
    plot_->plotLayout()->setRowStretchFactor(0, 0.001);
    plot_->plotLayout()->setRowSpacing(0);
    plot_->legend->setBorderPen(Qt::NoPen);
    plot_->legend->setBrush(Qt::NoBrush);
  }
  plot_->legend->setFillOrder(QCPLegend::foColumnsFirst);
  plot_->replot();
  refreshMemory();
}

void AnatomyView::resizeEvent(QResizeEvent* e) {
  QWidget::resizeEvent(e);
  const auto direction = width() < kStackBelow ? QBoxLayout::TopToBottom : QBoxLayout::LeftToRight;
  if (middle_->direction() != direction) middle_->setDirection(direction);
}

void AnatomyView::fitParamsHeight(int rows) {
  // Every row visible without scrolling the table (the view's scroll area scrolls instead).
  // Room for the horizontal scroll bar too: a narrow dock scrolls the columns sideways.
  params_->setMinimumHeight(params_->horizontalHeader()->sizeHint().height() + rows * params_->verticalHeader()->defaultSectionSize() +
                            params_->horizontalScrollBar()->sizeHint().height() + 2 * params_->frameWidth() + 2);
}

void AnatomyView::refreshMemory() {
  if (!spec_) return;
  const nlohmann::json j = anatomy_json(*spec_, context_->value());
  int row = 0;
  // The loaded model's own weights first: what its file's quantisation takes.
  const bool file_row = showing_loaded_ && loaded_footprint_ && loaded_footprint_->total_bytes > 0;
  memory_->setRowCount(int(weight_formats().size()) + (file_row ? 1 : 0));
  if (file_row) {
    const WeightFootprint& f = *loaded_footprint_;
    const double kv = j["memory"]["bf16"]["kv_bytes"].get<double>();
    const QString cells[] = {tr("This file (%1 bits)").arg(f.bits_per_weight, 0, 'f', 2), bytes_text(double(f.total_bytes)),
                             bytes_text(kv), bytes_text(double(f.total_bytes) + kv)};
    for (int k = 0; k < 4; ++k) {
      auto* item = new QTableWidgetItem(cells[k]);
      if (k > 0) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
      item->setToolTip(tr("The loaded weights as they are: %1. A decoded token reads %2 of them.")
                           .arg(QString::fromStdString(types_text(f)), bytes_text(double(f.decode_bytes_per_token))));
      memory_->setItem(row, k, item);
    }
    ++row;
  }
  for (const WeightFormat& f : weight_formats()) {
    const auto& m = j["memory"][f.key];
    const QString cells[] = {tr("%1 (%2 bits)").arg(QString::fromLatin1(f.label)).arg(f.bits_per_weight, 0, 'g', 4),
                             bytes_text(m["weights_bytes"].get<double>()),
                             bytes_text(m["kv_bytes"].get<double>()), bytes_text(m["total_bytes"].get<double>())};
    for (int k = 0; k < 4; ++k) {
      auto* item = new QTableWidgetItem(cells[k]);
      if (k > 0) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
      memory_->setItem(row, k, item);
    }
    ++row;
  }
}

QString AnatomyView::summaryText() const { return summary_->text(); }

bool AnatomyView::exportCsv(const QString& path) const {
  QFile f(path);
  if (!f.open(QIODevice::WriteOnly | QIODevice::Truncate | QIODevice::Text)) return false;
  QTextStream out(&f);
  out << "component,total_params,active_params\n";
  for (int i = 0; i < params_->rowCount(); ++i)
    out << params_->item(i, 0)->text().toLower().replace(QLatin1Char(' '), QLatin1Char('_')) << ','
        << params_->item(i, 1)->data(Qt::UserRole).toLongLong() << ','
        << params_->item(i, 2)->data(Qt::UserRole).toLongLong() << '\n';
  out << "\ncontext_tokens," << context_->value() << "\nweights_as,weights,kv_cache,total\n";
  for (int i = 0; i < memory_->rowCount(); ++i)
    if (memory_->item(i, 0))
      out << memory_->item(i, 0)->text() << ',' << memory_->item(i, 1)->text() << ',' << memory_->item(i, 2)->text()
          << ',' << memory_->item(i, 3)->text() << '\n';
  return out.status() == QTextStream::Ok;
}

}  // namespace moescope::ui
