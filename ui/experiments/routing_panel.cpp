#include "routing_panel.h"

#include <QCheckBox>
#include <QComboBox>
#include <QFormLayout>
#include <QGroupBox>
#include <QHBoxLayout>
#include <QHeaderView>
#include <QLabel>
#include <QLineEdit>
#include <QListWidget>
#include <QPushButton>
#include <QRegularExpression>
#include <QSpinBox>
#include <QSplitter>
#include <QTableWidget>
#include <QTextBrowser>
#include <QVBoxLayout>
#include <algorithm>

#include "active_intervention.h"
#include "moescope/model_spec.h"
#include "ui/engine_feed.h"
#include "ui/engine_host.h"
#include "ui/guide.h"

namespace moescope::ui {

namespace {

// "3, 7-9" → {3, 7, 8, 9}; ids outside [0, n) are dropped.
std::vector<int> parse_ids(const QString& text, int n) {
  std::vector<int> ids;
  for (const QString& part : text.split(QRegularExpression(QStringLiteral("[,\\s]+")), Qt::SkipEmptyParts)) {
    const QStringList range = part.split(QLatin1Char('-'));
    bool ok1 = false, ok2 = true;
    const int a = range.value(0).toInt(&ok1);
    const int b = range.size() > 1 ? range.value(1).toInt(&ok2) : a;
    if (!ok1 || !ok2) continue;
    for (int e = a; e <= b && e - a < 4096; ++e)
      if (e >= 0 && (n <= 0 || e < n)) ids.push_back(e);
  }
  return ids;
}

QString html_token(const QString& t) {
  QString s = t.toHtmlEscaped();
  s.replace(QLatin1Char('\n'), QStringLiteral("↵"));
  return s;
}

}  // namespace

RoutingPanel::RoutingPanel(EngineFeed* feed, EngineHost* host, ActiveIntervention* intervention, QWidget* parent)
    : QWidget(parent), host_(host), intervention_(intervention) {
  auto* layout = new QVBoxLayout(this);
  auto* intro = new QLabel(tr("Change how the router picks experts and see what the model does without them: the "
                              "intervention applies to the chat's next answers until you reset it."),
                           this);
  intro->setWordWrap(true);
  QLabel* more = nullptr;
  layout->addLayout(intro_with_learn_more(intro, this, tr("How the router picks experts, and what an intervention changes"), &more));
  connect(more, &QLabel::linkActivated, this, [this] { emit learnMoreRequested(QStringLiteral("experiments")); });

  auto* ind_row = new QHBoxLayout;
  indicator_ = new QLabel(this);
  indicator_->setObjectName(QStringLiteral("intervention-indicator"));
  indicator_->setWordWrap(true);
  reset_ = new QPushButton(tr("Reset"), this);
  reset_->setObjectName(QStringLiteral("intervention-reset"));
  ind_row->addWidget(indicator_, 1);
  ind_row->addWidget(reset_);
  layout->addLayout(ind_row);

  auto* box = new QGroupBox(tr("Intervention"), this);
  auto* form = new QFormLayout(box);
  auto* dis_row = new QHBoxLayout;
  experts_ = new QLineEdit(box);
  experts_->setPlaceholderText(tr("experts, e.g. 3, 7-9"));
  scope_ = new QComboBox(box);
  auto* add = new QPushButton(tr("Disable"), box);
  dis_row->addWidget(experts_, 1);
  dis_row->addWidget(scope_);
  dis_row->addWidget(add);
  form->addRow(tr("Disable:"), dis_row);
  rules_ = new QListWidget(box);
  rules_->setMaximumHeight(70);
  auto* remove = new QPushButton(tr("Remove selected"), box);
  auto* rules_row = new QHBoxLayout;
  rules_row->addWidget(rules_, 1);
  rules_row->addWidget(remove, 0, Qt::AlignTop);
  form->addRow(tr("Disabled:"), rules_row);
  auto* force_row = new QHBoxLayout;
  forced_ = new QSpinBox(box);
  forced_->setRange(-1, 4095);
  forced_->setSpecialValueText(tr("none"));
  forced_->setValue(-1);
  forced_scope_ = new QComboBox(box);
  force_row->addWidget(forced_);
  force_row->addWidget(forced_scope_, 1);
  form->addRow(tr("Force expert:"), force_row);
  top_k_ = new QSpinBox(box);
  top_k_->setRange(0, 4096);
  top_k_->setSpecialValueText(tr("as trained"));
  form->addRow(tr("Top-k:"), top_k_);
  ignore_bias_ = new QCheckBox(tr("Ignore the correction bias (DeepSeek-V3)"), box);
  ignore_bias_->setEnabled(false);
  form->addRow(QString(), ignore_bias_);
  layout->addWidget(box);

  auto* cbox = new QGroupBox(tr("Compare with / without"), this);
  auto* cl = new QVBoxLayout(cbox);
  auto* prow = new QHBoxLayout;
  prompt_ = new QLineEdit(cbox);
  prompt_->setPlaceholderText(tr("prompt (defaults to your last chat message)"));
  max_tokens_ = new QSpinBox(cbox);
  max_tokens_->setRange(1, 512);
  max_tokens_->setValue(32);
  max_tokens_->setSuffix(tr(" tokens"));
  compare_ = new QPushButton(tr("Compare with/without"), cbox);
  compare_->setObjectName(QStringLiteral("compare-button"));
  prow->addWidget(prompt_, 1);
  prow->addWidget(max_tokens_);
  prow->addWidget(compare_);
  cl->addLayout(prow);
  status_ = new QLabel(cbox);
  status_->setObjectName(QStringLiteral("compare-status"));
  status_->setWordWrap(true);
  cl->addWidget(status_);
  auto* answers = new QSplitter(Qt::Horizontal, cbox);
  auto make_browser = [&](const QString& title) {
    auto* w = new QWidget(answers);
    auto* l = new QVBoxLayout(w);
    l->setContentsMargins(0, 0, 0, 0);
    l->addWidget(new QLabel(title, w));
    auto* b = new QTextBrowser(w);
    l->addWidget(b);
    answers->addWidget(w);
    return b;
  };
  original_ = make_browser(tr("<b>Without</b> (as trained; red: less likely with the intervention)"));
  intervened_ = make_browser(tr("<b>With</b> the intervention"));
  cl->addWidget(answers, 2);
  tokens_ = new QTableWidget(0, 4, cbox);
  tokens_->setObjectName(QStringLiteral("compare-tokens"));
  tokens_->setHorizontalHeaderLabels({tr("Token"), tr("p without"), tr("p with"), tr("Change")});
  tokens_->horizontalHeader()->setSectionResizeMode(QHeaderView::Stretch);
  tokens_->verticalHeader()->hide();
  tokens_->verticalHeader()->setDefaultSectionSize(tokens_->fontMetrics().height() + 6);
  tokens_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  cl->addWidget(tokens_, 2);
  layout->addWidget(cbox, 1);

  connect(add, &QPushButton::clicked, this, [this] {
    disableExperts(scope_->currentData().toInt(), parse_ids(experts_->text(), n_experts_));
    experts_->clear();
  });
  connect(experts_, &QLineEdit::returnPressed, add, &QPushButton::click);
  connect(remove, &QPushButton::clicked, this, [this] {
    const int row = rules_->currentRow();
    if (row < 0 || row >= int(disabled_.size())) return;
    disabled_.erase(disabled_.begin() + row);
    apply();
  });
  connect(forced_, &QSpinBox::valueChanged, this, &RoutingPanel::apply);
  connect(forced_scope_, &QComboBox::currentIndexChanged, this, &RoutingPanel::apply);
  connect(top_k_, &QSpinBox::valueChanged, this, &RoutingPanel::apply);
  connect(ignore_bias_, &QCheckBox::toggled, this, &RoutingPanel::apply);
  connect(reset_, &QPushButton::clicked, this, &RoutingPanel::reset);
  connect(compare_, &QPushButton::clicked, this, &RoutingPanel::startCompare);
  connect(host_, &EngineHost::compared, this, [this](const CompareOutcome& o) {
    if (o.id != pending_) return;
    pending_ = 0;
    compare_->setEnabled(true);
    showOutcome(o);
  });
  connect(intervention_, &ActiveIntervention::changed, this, &RoutingPanel::refreshIndicator);
  connect(intervention_, &ActiveIntervention::lastPromptChanged, this,
          [this](const QString& p) { prompt_->setPlaceholderText(tr("last message: %1").arg(p.left(80))); });
  if (feed)
    connect(feed, &EngineFeed::modelChanged, this, [this](const ModelInfo& info) {
      const bool bias = info.spec && info.spec->moe.router.correction_bias;
      const bool shared = info.spec && info.spec->moe.shared != SharedExperts::None;
      n_layers_ = info.n_layers;
      setModel(info.dir, info.moe_layers, info.n_experts, info.top_k, bias, shared);
    });
  setModel({}, {}, 0, 0, false);
}

void RoutingPanel::setModel(const QString& dir, const std::vector<int>& moe_layers, int n_experts, int top_k,
                            bool has_bias, bool has_shared) {
  has_shared_ = has_shared;
  const bool same = dir == model_dir_ && moe_layers == moe_layers_;
  model_dir_ = dir;
  moe_layers_ = moe_layers;
  n_experts_ = n_experts;
  if (!moe_layers.empty()) n_layers_ = std::max(n_layers_, moe_layers.back() + 1);
  for (QComboBox* c : {scope_, forced_scope_}) {
    const QSignalBlocker b(c);
    c->clear();
    c->addItem(tr("every MoE layer"), -1);
    for (int l : moe_layers) c->addItem(tr("layer %1").arg(l), l);
  }
  forced_->setMaximum(std::max(0, n_experts - 1));
  top_k_->setMaximum(std::max(1, n_experts));
  top_k_->setToolTip(tr("The model selects %1 experts per token").arg(top_k));
  ignore_bias_->setEnabled(has_bias);
  compare_->setEnabled(!dir.isEmpty() && pending_ == 0);
  if (!same) {
    disabled_.clear();
    if (!dir.isEmpty() || intervention_->active()) reset();
  }
  refreshIndicator();
}

void RoutingPanel::disableExperts(int layer, const std::vector<int>& experts) {
  for (int e : experts)
    if (std::find(disabled_.begin(), disabled_.end(), std::pair{layer, e}) == disabled_.end())
      disabled_.emplace_back(layer, e);
  apply();
}

void RoutingPanel::setForced(int expert, int layer) {
  const int i = forced_scope_->findData(layer);
  forced_scope_->setCurrentIndex(std::max(0, i));
  forced_->setValue(expert);
}
void RoutingPanel::setTopK(int k) { top_k_->setValue(k); }
void RoutingPanel::setIgnoreBias(bool on) { ignore_bias_->setChecked(on); }

void RoutingPanel::reset() {
  disabled_.clear();
  {
    const QSignalBlocker b1(forced_), b2(top_k_), b3(ignore_bias_), b4(forced_scope_);
    forced_->setValue(-1);
    forced_scope_->setCurrentIndex(0);
    top_k_->setValue(0);
    ignore_bias_->setChecked(false);
  }
  apply();
}

RoutingControl RoutingPanel::control() const {
  RoutingControl c;
  if (!disabled_.empty()) {
    int layers = n_layers_;
    for (auto [l, e] : disabled_) layers = std::max(layers, l + 1);
    c.disabled.assign(size_t(layers), {});
    for (auto [l, e] : disabled_) {
      std::vector<int> targets = l >= 0 ? std::vector<int>{l} : moe_layers_;
      for (int t : targets) {
        auto& row = c.disabled[size_t(t)];
        if (int(row.size()) <= e) row.resize(size_t(std::max(n_experts_, e + 1)), 0);
        row[size_t(e)] = 1;
      }
    }
  }
  c.forced_expert = forced_->value();
  c.forced_layer = c.forced_expert >= 0 ? forced_scope_->currentData().toInt() : -1;
  c.top_k = top_k_->value();
  c.ignore_bias = ignore_bias_->isEnabled() && ignore_bias_->isChecked();
  return c;
}

void RoutingPanel::apply() {
  rules_->clear();
  for (auto [l, e] : disabled_)
    rules_->addItem(l >= 0 ? tr("expert %1 in layer %2").arg(e).arg(l) : tr("expert %1 in every MoE layer").arg(e));
  intervention_->set(control());
}

void RoutingPanel::refreshIndicator() {
  const RoutingControl& c = intervention_->control();
  if (c.empty()) {
    indicator_->setText(tr("No intervention: the router works as trained."));
    indicator_->setStyleSheet(QString());
    reset_->setEnabled(false);
  } else {
    // Layers left without a routed expert: say what still runs there.
    QStringList empty;
    for (int l : moe_layers_) {
      int off = 0;
      for (int e = 0; e < n_experts_; ++e) off += c.is_disabled(l, e) ? 1 : 0;
      if (n_experts_ > 0 && off == n_experts_) empty << QString::number(l);
    }
    QString text = tr("<b>Intervention active</b> on the next answers: %1").arg(ActiveIntervention::describe(c));
    if (!empty.isEmpty())
      text += QLatin1Char(' ') + (has_shared_ ? tr("Every routed expert of layer %1 is disabled: only the shared expert runs there.")
                                              : tr("Every routed expert of layer %1 is disabled: that layer's MoE block adds nothing."))
                                     .arg(empty.join(QStringLiteral(", ")));
    indicator_->setText(text);
    indicator_->setStyleSheet(QStringLiteral("QLabel { background: #fff3cd; color: #5c4400; padding: 4px; }"));
    reset_->setEnabled(true);
  }
}

void RoutingPanel::setPrompt(const QString& prompt) { prompt_->setText(prompt); }

void RoutingPanel::startCompare() {
  if (model_dir_.isEmpty() || pending_) return;
  QString prompt = prompt_->text().trimmed();
  if (prompt.isEmpty()) prompt = intervention_->lastPrompt();
  if (prompt.isEmpty()) {
    status_->setText(tr("Type a prompt, or send a message in the chat first."));
    return;
  }
  const RoutingControl c = control();
  if (c.empty()) {
    status_->setText(tr("Set an intervention first: without one both runs are the same."));
    return;
  }
  CompareRequest r;
  r.prompt = prompt;
  r.control = c;
  r.max_tokens = max_tokens_->value();
  compare_->setEnabled(false);
  status_->setText(tr("Running the prompt twice (without, then with the intervention)…"));
  pending_ = host_->compare(r);
}

void RoutingPanel::showOutcome(const CompareOutcome& o) {
  outcome_ = o;
  if (!o.error.isEmpty()) {
    status_->setText(tr("Comparison failed: %1").arg(o.error));
    emit compareFinished(o);
    return;
  }
  QString s = o.first_token_divergence < 0 ? tr("Both answers are identical.")
                                           : tr("The answers differ from token %1 on.").arg(o.first_token_divergence);
  s += QLatin1Char(' ');
  s += o.route_divergence_pos < 0
           ? tr("The routing never diverged.")
           : tr("Routing first diverged at position %1 (%2) in layer %3; mean top-k overlap %4%.")
                 .arg(o.route_divergence_pos)
                 .arg(o.route_divergence_pos < o.prompt_tokens
                          ? tr("prompt token %1").arg(o.route_divergence_pos)
                          : tr("answer token %1").arg(o.route_divergence_pos - o.prompt_tokens))
                 .arg(o.route_divergence_layer)
                 .arg(100.0 * o.routed_overlap, 0, 'f', 1);
  status_->setText(s);

  // The original answer token by token, red where the intervention made the token less likely.
  QString html;
  for (const auto& t : o.changes) {
    const double drop = std::clamp(t.p_original - t.p_intervened, 0.0, 1.0);
    const int alpha = int(40 + 215 * drop);
    html += drop > 0.01 ? QStringLiteral("<span style=\"background-color: rgba(220,50,47,%1)\" title=\"%2 → %3\">%4</span>")
                              .arg(alpha)
                              .arg(t.p_original, 0, 'f', 3)
                              .arg(t.p_intervened, 0, 'f', 3)
                              .arg(html_token(t.text))
                        : html_token(t.text);
  }
  original_->setHtml(html.isEmpty() ? o.original_text.toHtmlEscaped() : html);
  intervened_->setPlainText(o.intervened_text);

  tokens_->setRowCount(int(o.changes.size()));
  for (int i = 0; i < int(o.changes.size()); ++i) {
    const auto& t = o.changes[size_t(i)];
    const double d = t.p_intervened - t.p_original;
    const QString cells[] = {t.text, QString::number(t.p_original, 'f', 3), QString::number(t.p_intervened, 'f', 3),
                             (d >= 0 ? QStringLiteral("+") : QString()) + QString::number(d, 'f', 3)};
    for (int k = 0; k < 4; ++k) {
      auto* item = new QTableWidgetItem(cells[k]);
      if (k > 0) item->setTextAlignment(Qt::AlignRight | Qt::AlignVCenter);
      if (d < -0.01) item->setBackground(QColor(220, 50, 47, int(40 + 180 * std::min(1.0, -d))));
      tokens_->setItem(i, k, item);
    }
  }
  emit compareFinished(o);
}

}  // namespace moescope::ui
