#include "ui/views/inspector_view.h"

#include <QHeaderView>
#include <QLabel>
#include <QSpinBox>
#include <QTableWidget>
#include <QVBoxLayout>
#include <algorithm>
#include <cmath>
#include <numeric>
#include <qcustomplot.h>

#include "moescope/routing.h"
#include "ui/guide.h"
#include "ui/views/palette.h"
#include "ui/views/trace_model.h"

namespace moescope::ui {

namespace {
const char* kHelp =
    "At every MoE layer the router scores all experts for the token and sends it to the top_k best; "
    "their outputs are added with the weights shown (after renormalisation and scaling), listed by weight. "
    "Filled dots are the chosen experts (bigger = larger weight, colour = expert), the grey line follows the "
    "top expert from layer to layer, hollow dots are runners-up. Runners-up, the group step and confidence "
    "need the full router scores: the app records them for small models (Chat ▸ Record full router scores) "
    "and `moescope-cli generate --trace FILE --probs` writes them to a trace file.\n\n"
    "score = the router's score for the expert (softmax or sigmoid of its logit); +bias = the score plus the "
    "correction bias (DeepSeek-V3/R1, GLM: auxiliary-loss-free balancing), which only decides the choice — "
    "the weight comes from the unbiased score. Group-limited routing (DeepSeek-V2/V3/R1) first scores each "
    "group of experts (V3: the sum of its two best biased scores; V2: its best score), keeps the topk_group "
    "best groups and chooses only inside them: a runner-up marked \"group dropped\" scored higher than a "
    "chosen expert but its group was not kept.\n\n"
    "entropy = −Σ p log p ÷ log(experts) of the scores normalised to sum 1 (0 = certain, 1 = no "
    "preference). margin = how close the last chosen expert came to being replaced under the model's own "
    "rule: its selection value (score, + bias where the model has one) minus that of the expert that would "
    "have come in next from the kept groups. Without the loaded model's router it is the k-th best score "
    "minus the (k+1)-th. A shared expert, when the model has one, processes every token at every MoE layer "
    "in addition to the routed ones.\n\n"
    "Weights unknown: a trace from a remote server (vLLM, SGLang) carries only the chosen experts' ids, "
    "in the order of choice, so the experts are listed in that order, every dot has the same size, and "
    "no weight is shown or exported.";

QTableWidgetItem* cell(const QString& text, Qt::Alignment align = Qt::AlignLeft | Qt::AlignVCenter) {
  auto* it = new QTableWidgetItem(text);
  it->setTextAlignment(align);
  it->setFlags(Qt::ItemIsSelectable | Qt::ItemIsEnabled);
  return it;
}

// The group step of group-limited routing: which groups were kept, with their scores, and the best
// group that was not.
QString group_step_text(const LayerConfidence& c) {
  if (!c.recorded) return QObject::tr("not recorded");
  if (!c.rule_known) return QObject::tr("model's router unknown");
  const RouteExplanation& x = c.why;
  QString text;
  if (x.group_score.empty()) {
    text = QObject::tr("no groups");
  } else {
    QStringList kept;
    int best_dropped = -1;
    for (int g = 0; g < int(x.group_score.size()); ++g) {
      if (x.kept_groups >> g & 1u)
        kept << QStringLiteral("%1 (%2)").arg(g).arg(x.group_score[size_t(g)], 0, 'f', 3);
      else if (best_dropped < 0 || x.group_score[size_t(g)] > x.group_score[size_t(best_dropped)])
        best_dropped = g;
    }
    text = QObject::tr("kept %1 of %2 groups: %3").arg(kept.size()).arg(x.group_score.size()).arg(kept.join(QStringLiteral(", ")));
    if (best_dropped >= 0)
      text += QObject::tr(" · best dropped: %1 (%2)").arg(best_dropped).arg(x.group_score[size_t(best_dropped)], 0, 'f', 3);
  }
  if (!c.matches_trace) text += QObject::tr(" · the recorded choice differs from the model's rule (an intervention was on)");
  return text;
}

QString shared_expert_text(const TraceModel* m) {
  const ModelSpec* spec = m->spec();
  if (!spec) return QObject::tr("shared expert: unknown (no model config for this trace)");
  switch (spec->moe.shared) {
    case SharedExperts::None: return QObject::tr("no shared expert");
    case SharedExperts::Plain: return QObject::tr("+ shared expert at every MoE layer (always on, width %1)").arg(spec->moe.shared_width);
    case SharedExperts::SigmoidGated:
      return m->trace().has_shared_gates()
                 ? QObject::tr("+ gated shared expert at every MoE layer (always on, scaled by a sigmoid gate of its own, "
                               "width %1; its gate value is the last entry of each layer's experts)").arg(spec->moe.shared_width)
                 : QObject::tr("+ gated shared expert at every MoE layer (always on, scaled by a sigmoid gate of its own, "
                               "width %1; this trace has no gate values: the backend did not record them)").arg(spec->moe.shared_width);
  }
  return {};
}
}  // namespace

LayerConfidence router_confidence(const RoutingTrace& trace, size_t t, int m, int n_runners,
                                  const rules::RouterRule* rule, const float* bias) {
  LayerConfidence c;
  if (!trace.has_probs() || t >= trace.size() || m < 0 || m >= trace.n_moe_layers()) return c;
  c.recorded = true;
  const int E = trace.n_experts();
  std::vector<float> p(static_cast<size_t>(E));
  double sum = 0;
  for (int e = 0; e < E; ++e) {
    p[size_t(e)] = std::max(0.0f, trace.prob(t, m, e));
    sum += p[size_t(e)];
  }
  if (sum > 0 && E > 1) {
    double h = 0;
    for (float v : p)
      if (v > 0) h -= (v / sum) * std::log(v / sum);
    c.entropy = h / std::log(double(E));
  }
  std::vector<int> order(static_cast<size_t>(E));
  std::iota(order.begin(), order.end(), 0);
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return p[size_t(a)] > p[size_t(b)]; });
  const int k = trace.top_k();
  if (k > 0 && k < E) c.margin = double(p[size_t(order[size_t(k - 1)])]) - double(p[size_t(order[size_t(k)])]);
  std::vector<int> chosen;
  for (int s = 0; s < k; ++s)
    if (const int e = trace.expert(t, m, s); e >= 0) chosen.push_back(e);
  for (int e : order) {
    if (int(c.runners_up.size()) >= n_runners) break;
    if (std::find(chosen.begin(), chosen.end(), e) == chosen.end()) c.runners_up.emplace_back(e, p[size_t(e)]);
  }
  if (rule && rule->n_experts == E) {
    c.rule_known = true;
    c.why = explain_route(*rule, p.data(), bias);
    c.biased = rule->use_bias && bias;
    std::vector<int> a = c.why.chosen, b = chosen;
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    c.matches_trace = a == b;
    c.margin = std::isnan(c.why.margin) ? 0.0 : double(c.why.margin);
  }
  return c;
}

QString weight_sum_text(const RouterSpec& r) {
  const QString scale = QString::number(double(r.scaling), 'g', 4);
  if (r.scoring == ScoreFunc::TopKSoftmax)
    return QObject::tr("weights: softmax over the chosen experts' logits, summing to %1").arg(scale);
  if (r.renormalize)
    return r.scale_after_renorm && r.scaling != 1.0f
               ? QObject::tr("weights: renormalised over the chosen experts and scaled, summing to the routed scaling factor %1").arg(scale)
               : QObject::tr("weights: renormalised over the chosen experts, summing to 1");
  return r.scaling != 1.0f ? QObject::tr("weights: the chosen experts' scores × the routed scaling factor %1 (no fixed sum)").arg(scale)
                           : QObject::tr("weights: the chosen experts' scores as they are (no fixed sum)");
}

bool InspectorView::layerRule(int m, rules::RouterRule* rule, const float** bias) const {
  const TraceModel* tm = traceModel();
  const ModelSpec* spec = tm->spec();
  const RoutingTrace& rt = tm->trace();
  if (!spec || m < 0 || m >= rt.n_moe_layers() || spec->moe.router.n_experts != rt.n_experts() ||
      spec->moe.router.top_k != rt.top_k() || spec->moe_layer_indices() != rt.moe_layers())
    return false;
  const auto& biases = tm->model().router_bias;
  const std::vector<float>* b = biases && size_t(m) < biases->size() ? &(*biases)[size_t(m)] : nullptr;
  *bias = b && !b->empty() ? b->data() : nullptr;
  *rule = make_router_rule(spec->moe.router, RoutingControl{}, rt.moe_layers()[size_t(m)], *bias != nullptr);
  return true;
}

LayerConfidence InspectorView::confidence(size_t t, int m) const {
  rules::RouterRule rule;
  const float* bias = nullptr;
  const bool known = layerRule(m, &rule, &bias);
  return router_confidence(traceModel()->trace(), t, m, 3, known ? &rule : nullptr, bias);
}

InspectorView::InspectorView(TraceModel* model, QWidget* parent)
    : ViewFrame(model, QStringLiteral("inspector"),
                tr("One token's path through the model: at each MoE layer (left to right), the experts it was "
                   "sent to and how much each counted. Click a token in the routing map or the coloured chat."),
                tr(kHelp), parent) {
  token_box_ = new QSpinBox(this);
  token_box_->setRange(-1, 0);
  token_box_->setSpecialValueText(tr("none"));
  token_box_->setToolTip(tr("Token index in the trace"));
  connect(token_box_, &QSpinBox::valueChanged, this, [this](int v) { traceModel()->selectToken(v); });
  controls()->insertWidget(0, new QLabel(tr("Token"), this));
  controls()->insertWidget(1, token_box_);
  header_ = new QLabel(this);
  header_->setObjectName(QStringLiteral("inspectorHeader"));
  header_->setWordWrap(true);
  header_->setTextFormat(Qt::RichText);
  body()->addWidget(header_);

  plot_ = makePlot(this);
  path_ = plot_->addGraph();
  path_->setPen(QPen(QColor(0x9A, 0xA0, 0xA6), 1.5));
  plot_->xAxis->setLabel(tr("MoE layer"));
  plot_->yAxis->setLabel(tr("expert"));
  plot_->yAxis->setRangeReversed(true);
  useIntegerTicks(plot_->yAxis);
  body()->addWidget(plot_, 3);

  table_ = new QTableWidget(this);
  table_->setColumnCount(6);
  table_->setHorizontalHeaderLabels({tr("layer"), tr("experts by weight (w weight · s score · +b biased score)"),
                                     tr("group step"), tr("runners-up (score)"), tr("entropy"), tr("margin")});
  table_->verticalHeader()->setVisible(false);
  table_->horizontalHeader()->setSectionResizeMode(QHeaderView::ResizeToContents);
  table_->horizontalHeader()->setSectionResizeMode(1, QHeaderView::Stretch);
  table_->setEditTriggers(QAbstractItemView::NoEditTriggers);
  body()->addWidget(table_, 2);

  connect(traceModel(), &TraceModel::reset, this, [this] { path_stale_ = true; });
  connect(traceModel(), &TraceModel::tokenSelected, this, [this](int t) {
    QSignalBlocker block(token_box_);
    token_box_->setValue(t);
    markDirty();
  });
}

// The selected token, or the newest one while none is selected.
int InspectorView::token() const {
  const int t = traceModel()->selectedToken();
  return t >= 0 ? t : int(traceModel()->trace().size()) - 1;
}

namespace {
QString weights_unknown_text() {
  return QObject::tr("weights unknown — the server sends expert ids only (listed in the order of choice)");
}
}  // namespace

QString InspectorView::headerText() const {
  const TraceModel* m = traceModel();
  const RoutingTrace& rt = m->trace();
  const int t = token();
  if (t < 0 || size_t(t) >= rt.size())
    return tr("No token selected: click one in the routing map or the coloured chat, or pick an index above.");
  const TraceToken& tok = rt.token(size_t(t));
  return tr("<b>token %1</b>%8 “%2” · id %3 · position %4 · %5 · %6 · router scores %7")
      .arg(t)
      .arg(visible_token_text(tok.text).toHtmlEscaped())
      .arg(tok.id)
      .arg(tok.pos)
      .arg(tok.phase == Phase::Prefill ? tr("prompt (prefill)") : tr("generated (decode)"))
      .arg(shared_expert_text(m).toHtmlEscaped())
      .arg(rt.has_probs() ? tr("recorded") : !rt.has_weights() ? tr("not sent") : tr("not recorded"))
      .arg(m->selectedToken() < 0 ? tr(" (the newest; click a token to pick another)") : QString()) +
         (m->spec() && m->spec()->n_moe_layers() > 0
              ? QStringLiteral("<br>") + tr("router: %1").arg(router_rule_text(m->spec()->moe.router)).toHtmlEscaped()
              : QString()) +
         (!rt.has_weights() ? QStringLiteral("<br>") + weights_unknown_text().toHtmlEscaped()
          : m->spec()       ? QStringLiteral("<br>") + weight_sum_text(m->spec()->moe.router).toHtmlEscaped()
                            : QString());
}

void InspectorView::refresh() {
  const TraceModel* m = traceModel();
  const RoutingTrace& rt = m->trace();
  {
    QSignalBlocker block(token_box_);
    token_box_->setRange(-1, std::max(0, int(rt.size()) - 1));
    token_box_->setValue(m->selectedToken());
  }
  setStatus(rt.size() ? tr("%1 tokens in the trace · source: %2").arg(rt.size()).arg(m->source()) : tr("No trace yet."));
  const QString header = headerText();
  if (header_->text() != header) header_->setText(header);
  const int t = token();
  // A token's routing never changes once recorded: redraw only for another token or another trace.
  if (t == drawn_token_ && &rt == drawn_trace_ && !path_stale_) return;
  drawn_token_ = t;
  drawn_trace_ = &rt;
  path_stale_ = false;
  plot_->clearItems();
  const int L = rt.n_moe_layers(), K = rt.top_k(), E = rt.n_experts();
  const bool weights = rt.has_weights();
  const QString chosen_header = weights ? tr("experts by weight (w weight · s score · +b biased score)")
                                        : rt.has_probs() ? tr("experts, in order of choice (weights unknown · s score)")
                                                         : tr("experts, in order of choice (weights unknown)");
  if (table_->horizontalHeaderItem(1) && table_->horizontalHeaderItem(1)->text() != chosen_header)
    table_->horizontalHeaderItem(1)->setText(chosen_header);
  QVector<double> px, py;
  table_->setRowCount(t >= 0 ? L : 0);
  double wmax = 1e-6;
  if (t >= 0)
    for (int l = 0; l < L; ++l)
      for (int s = 0; s < K; ++s) wmax = std::max(wmax, double(rt.weight(size_t(t), l, s)));
  for (int l = 0; t >= 0 && l < L; ++l) {
    const LayerConfidence conf = confidence(size_t(t), l);
    std::vector<std::pair<int, float>> picked;  // (expert, weight), by weight
    for (int s = 0; s < K; ++s)
      if (const int e = rt.expert(size_t(t), l, s); e >= 0) picked.emplace_back(e, rt.weight(size_t(t), l, s));
    if (weights)  // without weights: the order of choice, as recorded
      std::stable_sort(picked.begin(), picked.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    QStringList chosen;
    for (size_t i = 0; i < picked.size(); ++i) {
      const auto [e, w] = picked[i];
      QString text = QStringLiteral("%1 (%2)").arg(e).arg(w, 0, 'f', 3);
      if (!weights) {
        text = conf.recorded ? QStringLiteral("%1 (s %2)").arg(e).arg(rt.prob(size_t(t), l, e), 0, 'f', 3) : QString::number(e);
      } else if (conf.recorded) {
        const QString score = QString::number(rt.prob(size_t(t), l, e), 'f', 3);
        text = conf.biased ? QStringLiteral("%1 (w %2 · s %3 · +b %4)").arg(e).arg(w, 0, 'f', 3).arg(score)
                            .arg(conf.why.selection[size_t(e)], 0, 'f', 3)
                      : QStringLiteral("%1 (w %2 · s %3)").arg(e).arg(w, 0, 'f', 3).arg(score);
      }
      chosen << text;
      if (i == 0) {
        px.push_back(l);
        py.push_back(e);
      }
      auto* dot = new QCPItemTracer(plot_);
      dot->position->setCoords(l, e);
      dot->setStyle(QCPItemTracer::tsCircle);
      dot->setSize(weights ? 5 + 13 * double(w) / wmax : 11.0);
      const QColor c = expert_colour(e, E);
      dot->setPen(QPen(c.darker(140)));
      dot->setBrush(c);
    }
    QStringList runners;
    for (const auto& [e, p] : conf.runners_up) {
      const bool dropped = conf.rule_known && !conf.why.in_kept_group(e);
      runners << (dropped ? tr("%1 (%2, group dropped)").arg(e).arg(p, 0, 'f', 3) : QStringLiteral("%1 (%2)").arg(e).arg(p, 0, 'f', 3));
      auto* ring = new QCPItemTracer(plot_);
      ring->position->setCoords(l, e);
      ring->setStyle(QCPItemTracer::tsCircle);
      ring->setSize(7);
      ring->setPen(QPen(QColor(0x80, 0x86, 0x8C), 1.2));
      ring->setBrush(Qt::NoBrush);
    }
    table_->setItem(l, 0, cell(QString::number(rt.moe_layers()[size_t(l)]), Qt::AlignRight | Qt::AlignVCenter));
    if (rt.has_shared_gates()) chosen << tr("shared × %1").arg(rt.shared_gate(size_t(t), l), 0, 'f', 3);
    table_->setItem(l, 1, cell(chosen.join(QStringLiteral(", "))));
    // Without scores: "not recorded" (a local trace without them), "not sent" (a server's ids-only one).
    const QString none = weights ? tr("not recorded") : tr("not sent");
    table_->setItem(l, 2, cell(conf.recorded ? group_step_text(conf) : none));
    table_->setItem(l, 3, cell(conf.recorded ? runners.join(QStringLiteral(", ")) : none));
    table_->setItem(l, 4, cell(conf.recorded ? QString::number(conf.entropy, 'f', 3) : none, Qt::AlignRight | Qt::AlignVCenter));
    table_->setItem(l, 5, cell(conf.recorded ? QString::number(conf.margin, 'f', 4) : none, Qt::AlignRight | Qt::AlignVCenter));
  }
  path_->setData(px, py, true);
  auto ticker = QSharedPointer<QCPAxisTickerText>::create();
  const int stride = std::max(1, L / 16);
  for (int l = 0; l < L; l += stride) ticker->addTick(l, QString::number(rt.moe_layers()[size_t(l)]));
  plot_->xAxis->setTicker(ticker);
  plot_->xAxis->setRange(-0.6, std::max(1, L) - 0.4);
  plot_->yAxis->setRange(-0.8, std::max(1, E) - 0.2);
  plot_->replot(QCustomPlot::rpQueuedReplot);
}

QString InspectorView::csv() const {
  const RoutingTrace& rt = traceModel()->trace();
  QString out = QStringLiteral("token,layer,rank,expert,weight,score,selection_score,group,group_kept,selected,entropy,margin\n");
  const int t = token();
  if (t < 0 || size_t(t) >= rt.size()) return out;
  for (int l = 0; l < rt.n_moe_layers(); ++l) {
    const LayerConfidence conf = confidence(size_t(t), l);
    const QString ent = conf.recorded ? QString::number(conf.entropy, 'g', 6) : QString();
    const QString mar = conf.recorded ? QString::number(conf.margin, 'g', 6) : QString();
    // score, selection score, group, kept: empty where not recorded / no groups.
    auto detail = [&](int e) {
      const QString score = conf.recorded ? QString::number(rt.prob(size_t(t), l, e), 'g', 6) : QString();
      const QString sel = conf.rule_known ? QString::number(conf.why.selection[size_t(e)], 'g', 6) : QString();
      const bool groups = conf.rule_known && conf.why.group_size > 0;
      return QStringList{score, sel, groups ? QString::number(e / conf.why.group_size) : QString(),
                         groups ? QString::number(conf.why.in_kept_group(e) ? 1 : 0) : QString()}
          .join(QLatin1Char(','));
    };
    std::vector<std::pair<int, float>> picked;
    for (int s = 0; s < rt.top_k(); ++s)
      if (const int e = rt.expert(size_t(t), l, s); e >= 0) picked.emplace_back(e, rt.weight(size_t(t), l, s));
    // Without weights (a remote server's trace): the order of choice, and the weight left empty.
    const bool weights = rt.has_weights();
    if (weights)
      std::stable_sort(picked.begin(), picked.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
    int rank = 0;
    const QString layer = QString::number(rt.moe_layers()[size_t(l)]);
    for (const auto& [e, w] : picked)
      out += QStringLiteral("%1,%2,%3,%4,%5,%6,1,%7,%8\n").arg(t).arg(layer).arg(rank++).arg(e)
                 .arg(weights ? QString::number(w, 'g', 6) : QString(), detail(e), ent, mar);
    for (const auto& [e, p] : conf.runners_up)
      out += QStringLiteral("%1,%2,%3,%4,%5,%6,0,%7,%8\n").arg(t).arg(layer).arg(rank++).arg(e)
                 .arg(weights ? QStringLiteral("0") : QString(), detail(e), ent, mar);
  }
  return out;
}

}  // namespace moescope::ui
