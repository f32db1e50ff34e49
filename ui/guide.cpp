#include "ui/guide.h"

#include <QFile>
#include <QHBoxLayout>
#include <QLabel>
#include <QListWidget>
#include <QPushButton>
#include <QSignalBlocker>
#include <QSplitter>
#include <QTextBrowser>
#include <QUrl>
#include <QVBoxLayout>
#include <algorithm>
#include <spdlog/spdlog.h>

#include "moescope/anatomy.h"

namespace moescope::ui {

namespace {
constexpr const char* kScheme = "guide";

QString esc(const QString& s) { return s.toHtmlEscaped(); }
QString esc(const std::string& s) { return QString::fromStdString(s).toHtmlEscaped(); }

// Parameter counts as the makers write them: "671.0 B", "1.83 M", "24.6 k".
QString params_text(int64_t n) {
  const double v = double(n);
  if (v >= 1e9) return QStringLiteral("%1 B").arg(v / 1e9, 0, 'f', 1);
  if (v >= 1e6) return QStringLiteral("%1 M").arg(v / 1e6, 0, 'f', 2);
  if (v >= 1e4) return QStringLiteral("%1 k").arg(v / 1e3, 0, 'f', 1);
  return QString::number(n);
}

QString scoring_text(ScoreFunc f) {
  switch (f) {
    case ScoreFunc::Softmax: return QObject::tr("softmax over all experts");
    case ScoreFunc::Sigmoid: return QObject::tr("sigmoid (each expert on its own)");
    case ScoreFunc::TopKSoftmax: return QObject::tr("top-k on the raw logits, then softmax over the chosen ones");
  }
  return {};
}

// What happens to the chosen experts' weights, as the engine computes them (routing_rules.h).
QString weights_text(const RouterSpec& r) {
  if (r.scoring == ScoreFunc::TopKSoftmax) return QObject::tr("the weights are that softmax, so they sum to 1");
  const bool scaled = r.scaling != 1.0f && (!r.renormalize || r.scale_after_renorm);
  const QString factor = QString::number(double(r.scaling), 'g', 4);
  if (r.renormalize && scaled)
    return QObject::tr("the weights are renormalised to sum to 1, then multiplied by routed_scaling_factor %1, so they "
                       "sum to %1").arg(factor);
  if (r.renormalize) return QObject::tr("the weights are renormalised to sum to 1");
  if (scaled) return QObject::tr("the weights are the scores multiplied by routed_scaling_factor %1 (not renormalised)").arg(factor);
  return QObject::tr("the weights are the scores themselves (not renormalised)");
}

// Placeholders for the model's own strings in the figures, put in after every .arg(): a name
// holding "%1" would otherwise take the place of a later argument.
constexpr const char* kModelMark = "{model}";
constexpr const char* kArchMark = "{architecture}";

QString experts_text(const ModelSpec& s) {
  const RouterSpec& r = s.moe.router;
  return QObject::tr("%1 routed experts per MoE layer, top_k = %2").arg(r.n_experts).arg(r.top_k);
}

QString figure_of(const QString& id, const ModelSpec& s) {
  const RouterSpec& r = s.moe.router;
  const QString m = QLatin1String(kModelMark);
  const QString arch = QLatin1String(kArchMark);
  const int moe_layers = s.n_moe_layers();
  if (moe_layers == 0 && id != QLatin1String("mla") && id != QLatin1String("performance"))
    return QObject::tr("%1 (%2) has no MoE layer: it is a dense model, every token uses every weight.")
        .arg(m, arch);
  const ParamCounts p = count_params(s);
  if (id == QLatin1String("moe"))
    return QObject::tr("%1 (%2): %3 of its %4 layers are MoE layers, with %5; each expert is an FFN of width %6. "
                       "Parameters: %7 total, %8 active per token.")
        .arg(m, arch).arg(moe_layers).arg(s.n_layers)
        .arg(experts_text(s)).arg(s.moe.expert_width).arg(params_text(p.total), params_text(p.active));
  if (id == QLatin1String("router"))
    return QObject::tr("%1: the router scores %2 experts (%3) and sends every token to the top %4; %5.")
        .arg(m).arg(r.n_experts).arg(scoring_text(r.scoring)).arg(r.top_k).arg(weights_text(r));
  if (id == QLatin1String("scoring")) {
    QString t = QObject::tr("%1 scores its %2 experts with %3 and chooses the top %4. ")
                    .arg(m).arg(r.n_experts).arg(scoring_text(r.scoring)).arg(r.top_k);
    t += r.correction_bias ? QObject::tr("It has a correction bias (e_score_correction_bias): added to the scores to "
                                         "choose the experts, left out of the weights.")
                           : QObject::tr("It has no correction bias: the scores alone choose the experts.");
    return t;
  }
  if (id == QLatin1String("groups")) {
    if (r.group_score == GroupScore::None || r.n_group <= 1)
      return QObject::tr("%1 does not limit its choice to groups: the top %2 are chosen among all %3 experts.")
          .arg(m).arg(r.top_k).arg(r.n_experts);
    const int per_group = r.n_experts / r.n_group;
    const QString group_score = r.group_score == GroupScore::SumTop2
                                    ? QObject::tr("the sum of its two best biased scores")
                                    : QObject::tr("its best score");
    return QObject::tr("%1: %2 experts in n_group = %3 groups of %4; each group is scored by %5, the topk_group = %6 "
                       "best groups are kept, and the top %7 experts are chosen among their %8 experts.")
        .arg(m).arg(r.n_experts).arg(r.n_group).arg(per_group).arg(group_score).arg(r.topk_group).arg(r.top_k)
        .arg(per_group * r.topk_group);
  }
  if (id == QLatin1String("shared")) {
    QString t = QObject::tr("%1: %2, each of width %3").arg(m, experts_text(s)).arg(s.moe.expert_width);
    if (s.dense_width > 0) t += QObject::tr(" (a dense FFN here is %1 wide)").arg(s.dense_width);
    t += QStringLiteral("; ");
    if (s.moe.shared == SharedExperts::None)
      t += QObject::tr("no shared expert.");
    else
      t += QObject::tr("shared expert width %1%2, used by every token.")
               .arg(s.moe.shared_width)
               .arg(s.moe.shared == SharedExperts::SigmoidGated ? QObject::tr(" behind a sigmoid gate") : QString());
    t += QObject::tr(" Parameters: routed experts %1 (%2 active per token), shared experts %3.")
             .arg(params_text(p.routed_experts), params_text(p.routed_active), params_text(p.shared_experts));
    return t;
  }
  if (id == QLatin1String("balance")) {
    const double share = r.n_experts > 0 ? double(r.top_k) / double(r.n_experts) : 0.0;
    QString t = QObject::tr("%1: with %2, the uniform load of an expert is tokens × %3 ÷ %4: it is chosen by %5 % of "
                            "the tokens. ")
                    .arg(m, experts_text(s)).arg(r.top_k).arg(r.n_experts).arg(share * 100.0, 0, 'f', 1);
    if (r.n_experts > r.top_k)
      t += QObject::tr("A window of fewer than %1 tokens leaves some experts dead in every layer. ")
               .arg((r.n_experts + r.top_k - 1) / r.top_k);
    t += r.correction_bias ? QObject::tr("It balances with a correction bias.")
                           : QObject::tr("It has no correction bias.");
    return t;
  }
  if (id == QLatin1String("specialisation")) {
    const double chance = r.n_experts > 1 ? double(r.top_k - 1) / double(r.n_experts - 1) : 0.0;
    return QObject::tr("%1: %2 in %3 MoE layers, %4 experts in all. Chosen at random, an expert's partner would "
                       "show P(j | i) = (%5 − 1) ÷ (%6 − 1) = %7 in the co-activation matrix.")
        .arg(m, experts_text(s)).arg(moe_layers).arg(int64_t(r.n_experts) * moe_layers).arg(r.top_k).arg(r.n_experts)
        .arg(chance, 0, 'f', 3);
  }
  if (id == QLatin1String("mla")) {
    const std::string kind = attention_kind_name(s);
    QString t = QObject::tr("%1 uses %2. KV cache: %3.").arg(m, esc(kind), esc(kv_figure_text(kv_figure(s), kind)));
    if (s.attn.kind == AttentionKind::MLA)
      t += QObject::tr(" Per token and layer it caches kv_lora_rank %1 + qk_rope_head_dim %2 = %3 values.")
               .arg(s.attn.kv_lora_rank).arg(s.attn.qk_rope_head_dim).arg(s.kv_values_per_token());
    else
      t += QObject::tr(" Per token and layer it caches %1 values (2 × %2 kv heads × %3).")
               .arg(s.kv_values_per_token()).arg(s.attn.n_kv_heads).arg(s.attn.head_dim);
    return t;
  }
  if (id == QLatin1String("performance")) {
    QString t = QObject::tr("%1: %2 parameters, %3 active per token").arg(m, params_text(p.total), params_text(p.active));
    if (moe_layers > 0) t += QObject::tr(" (%1)").arg(experts_text(s));
    t += QObject::tr("; decoding one token reads about %1 of weights in BF16.")
             .arg(esc(format_bytes_iec(decode_weight_bytes(s, 2.0))));
    return t;
  }
  return {};
}
}  // namespace

QString layer_cache_kind(const ModelSpec& spec, int layer) {
  if (layer < 0 || layer >= spec.n_layers) return {};
  if (spec.is_linear(layer)) return QObject::tr("recurrent state (linear attention)");
  if (spec.attn.kind == AttentionKind::MLA)
    return QObject::tr("MLA latent (%1 + %2 values per token)").arg(spec.attn.kv_lora_rank).arg(spec.attn.qk_rope_head_dim);
  if (const int w = spec.window(layer); w > 0) return QObject::tr("sliding window of %1 tokens").arg(w);
  return QObject::tr("full attention");
}

QString cache_kinds_text(const ModelSpec& spec) {
  std::vector<std::pair<QString, int>> kinds;  // in order of first appearance
  for (int l = 0; l < spec.n_layers; ++l) {
    const QString k = layer_cache_kind(spec, l);
    auto it = std::find_if(kinds.begin(), kinds.end(), [&](const auto& p) { return p.first == k; });
    if (it == kinds.end()) kinds.emplace_back(k, 1);
    else ++it->second;
  }
  QStringList parts;
  for (const auto& [k, n] : kinds) parts << QStringLiteral("%1 × %2").arg(n).arg(k);
  QString text = parts.join(QStringLiteral(", "));
  if (const int lin = spec.n_linear_layers(); lin > 0)
    text += QObject::tr("; linear attention (Gated DeltaNet) in %1 of %2 layers (%3 %), each keeping a fixed %4 "
                        "recurrent state (FP32) instead of a cache that grows with the tokens")
                .arg(lin)
                .arg(spec.n_layers)
                .arg(100.0 * lin / std::max(1, spec.n_layers), 0, 'f', 0)
                .arg(QString::fromStdString(format_bytes_iec(double(spec.linear.state_values()) * 4.0)));
  if (spec.attn.sinks)
    text += QObject::tr("; attention sinks: a learned logit per head joins every softmax, so a head can attend to "
                        "nothing");
  return text;
}

QString router_rule_text(const RouterSpec& r) {
  QString text;
  switch (r.scoring) {
    case ScoreFunc::Softmax:
      text = r.renormalize ? QObject::tr("softmax over all %1 experts, top-%2, renormalised over the chosen (the same as a "
                                         "softmax over the chosen experts' logits)").arg(r.n_experts).arg(r.top_k)
                           : QObject::tr("softmax over all %1 experts, top-%2, not renormalised").arg(r.n_experts).arg(r.top_k);
      break;
    case ScoreFunc::TopKSoftmax:
      text = QObject::tr("top-%2 of the %1 raw logits, then a softmax over the chosen (softmax after top-k)")
                 .arg(r.n_experts).arg(r.top_k);
      break;
    case ScoreFunc::Sigmoid:
      text = QObject::tr("a sigmoid score per expert (%1 experts), top-%2%3")
                 .arg(r.n_experts).arg(r.top_k)
                 .arg(r.renormalize ? QObject::tr(", renormalised over the chosen") : QString());
      break;
  }
  if (r.group_score != GroupScore::None)
    text += QObject::tr(" · group-limited: keeps the best %1 of %2 groups (a group scores %3)")
                .arg(r.topk_group).arg(r.n_group)
                .arg(r.group_score == GroupScore::Max ? QObject::tr("its best expert") : QObject::tr("the sum of its two best"));
  if (r.correction_bias)
    text += QObject::tr(" · a correction bias is added to the scores for the choice only; the weights use the "
                        "unbiased scores");
  if (r.logit_bias) text += QObject::tr(" · the router's linear layer has a bias, added to the logits");
  if (r.scaling != 1.0f && (!r.renormalize || r.scale_after_renorm))
    text += QObject::tr(" · weights × %1").arg(QString::number(double(r.scaling), 'g', 4));
  return text;
}

QHBoxLayout* intro_with_learn_more(QLabel* intro, QWidget* parent, const QString& tooltip, QLabel** link) {
  auto* row = new QHBoxLayout;
  row->setContentsMargins(0, 0, 0, 0);
  row->addWidget(intro, 1);
  auto* more = new QLabel(QObject::tr("<a href=\"#guide\">learn more</a>"), parent);
  more->setObjectName(QStringLiteral("learnMore"));
  more->setToolTip(tooltip);
  more->setOpenExternalLinks(false);
  more->setTextInteractionFlags(Qt::LinksAccessibleByMouse | Qt::LinksAccessibleByKeyboard);
  more->setCursor(Qt::PointingHandCursor);
  row->addWidget(more, 0, Qt::AlignTop);
  if (link) *link = more;
  return row;
}

const std::vector<GuidePage>& guide_pages() {
  static const std::vector<GuidePage> pages = {
      {QStringLiteral("moe"), QObject::tr("What a MoE layer is"), QStringLiteral("routing")},
      {QStringLiteral("router"), QObject::tr("The router and top-k"), QStringLiteral("inspector")},
      {QStringLiteral("scoring"), QObject::tr("Softmax or sigmoid, and the correction bias"), QStringLiteral("inspector")},
      {QStringLiteral("groups"), QObject::tr("Group-limited selection"), QStringLiteral("inspector")},
      {QStringLiteral("shared"), QObject::tr("Shared and fine-grained experts"), QStringLiteral("anatomy")},
      {QStringLiteral("balance"), QObject::tr("Load balance and its metrics"), QStringLiteral("load")},
      {QStringLiteral("specialisation"), QObject::tr("Expert specialisation"), QStringLiteral("colouring")},
      {QStringLiteral("mla"), QObject::tr("MLA and the compressed KV cache"), QStringLiteral("kv")},
      {QStringLiteral("performance"), QObject::tr("Prefill, decode and active parameters"), QStringLiteral("performance")},
  };
  return pages;
}

const GuidePage* guide_page(const QString& id) {
  for (const GuidePage& p : guide_pages())
    if (p.id == id) return &p;
  return nullptr;
}

QString guide_page_for_view(const QString& view_id) {
  static const QMap<QString, QString> pages = {
      {QStringLiteral("routing"), QStringLiteral("moe")},         {QStringLiteral("inspector"), QStringLiteral("router")},
      {QStringLiteral("colouring"), QStringLiteral("specialisation")}, {QStringLiteral("load"), QStringLiteral("balance")},
      {QStringLiteral("coactivation"), QStringLiteral("specialisation")}, {QStringLiteral("kv"), QStringLiteral("mla")},
      {QStringLiteral("performance"), QStringLiteral("performance")}, {QStringLiteral("anatomy"), QStringLiteral("shared")},
      {QStringLiteral("experiments"), QStringLiteral("router")},    {QStringLiteral("corpus"), QStringLiteral("specialisation")},
  };
  return pages.value(view_id);
}

QString guide_body_html(const QString& id) {
  if (!guide_page(id)) return {};
  QFile f(QStringLiteral(":/guide/%1.html").arg(id));
  if (!f.open(QIODevice::ReadOnly)) {
    spdlog::error("guide page {} is missing from the resources", id.toStdString());
    return {};
  }
  return QString::fromUtf8(f.readAll());
}

QString guide_figure_html(const QString& id, const ModelSpec* spec, const QString& model_name) {
  if (!guide_page(id)) return {};
  if (!spec) return QObject::tr("No model is loaded: open one (File ▸ Open model…) to see its numbers here.");
  QString t = figure_of(id, *spec);
  // The architecture first: a model name may read "{architecture}", never the other way round.
  t.replace(QLatin1String(kArchMark), esc(spec->architecture));
  const QString name = model_name.isEmpty() ? QString::fromStdString(spec->name) : model_name;
  t.replace(QLatin1String(kModelMark), QStringLiteral("<b>%1</b>").arg(esc(name)));
  return t;
}

QString guide_page_html(const QString& id, const ModelSpec* spec, const QString& model_name) {
  const GuidePage* page = guide_page(id);
  if (!page) return {};
  return QStringLiteral("<html><head><title>%1</title></head><body><h2>%1</h2>%2"
                        "<table width=\"100%\" cellpadding=\"8\" style=\"background-color:#F1F8FF;\"><tr><td>"
                        "<p><b>%3</b></p><p>%4</p></td></tr></table></body></html>")
      .arg(esc(page->title), guide_body_html(id), QObject::tr("In the loaded model"),
           guide_figure_html(id, spec, model_name));
}

// ---- the window --------------------------------------------------------------------------------

GuideWindow::GuideWindow(QWidget* parent) : QWidget(parent, Qt::Window) {
  setObjectName(QStringLiteral("guideWindow"));
  setWindowTitle(tr("moescope guide"));
  resize(900, 600);
  auto* split = new QSplitter(Qt::Horizontal, this);
  contents_ = new QListWidget(split);
  contents_->setObjectName(QStringLiteral("guideContents"));
  for (const GuidePage& p : guide_pages()) {
    auto* item = new QListWidgetItem(p.title, contents_);
    item->setData(Qt::UserRole, p.id);
  }
  // Every title whole, never a horizontal scroll bar.
  contents_->setHorizontalScrollBarPolicy(Qt::ScrollBarAlwaysOff);
  contents_->setMinimumWidth(contents_->sizeHintForColumn(0) + 2 * contents_->frameWidth() + 8);
  connect(contents_, &QListWidget::currentRowChanged, this, [this](int row) {
    if (row >= 0 && row < int(guide_pages().size())) showPage(guide_pages()[size_t(row)].id);
  });

  auto* right = new QWidget(split);
  auto* col = new QVBoxLayout(right);
  col->setContentsMargins(0, 0, 0, 0);
  text_ = new QTextBrowser(right);
  text_->setObjectName(QStringLiteral("guideText"));
  // Links are handled here: another page, never a file or a URL.
  text_->setOpenLinks(false);
  text_->setOpenExternalLinks(false);
  connect(text_, &QTextBrowser::anchorClicked, this, &GuideWindow::followLink);
  col->addWidget(text_, 1);
  auto* row = new QHBoxLayout;
  row->addStretch(1);
  open_view_ = new QPushButton(right);
  open_view_->setObjectName(QStringLiteral("guideOpenView"));
  connect(open_view_, &QPushButton::clicked, this, [this] {
    const GuidePage* p = guide_page(page_);
    if (p && show_view_) show_view_(p->view);
  });
  row->addWidget(open_view_);
  col->addLayout(row);

  split->addWidget(contents_);
  split->addWidget(right);
  split->setStretchFactor(1, 1);
  split->setSizes({contents_->minimumWidth(), 900 - contents_->minimumWidth()});
  auto* outer = new QVBoxLayout(this);
  outer->setContentsMargins(6, 6, 6, 6);
  outer->addWidget(split);

  showPage(guide_pages().front().id);
}

void GuideWindow::setModel(std::shared_ptr<const ModelSpec> spec, const QString& name) {
  spec_ = std::move(spec);
  model_name_ = name;
  render();
}

void GuideWindow::setViews(const QMap<QString, QString>& titles, std::function<bool(const QString&)> show) {
  view_titles_ = titles;
  show_view_ = std::move(show);
  render();
}

bool GuideWindow::showPage(const QString& id) {
  if (!guide_page(id)) {
    spdlog::warn("guide: no page '{}'", id.toStdString());
    return false;
  }
  page_ = id;
  render();
  return true;
}

QString GuideWindow::currentTitle() const {
  const GuidePage* p = guide_page(page_);
  return p ? p->title : QString();
}

void GuideWindow::render() {
  const GuidePage* p = guide_page(page_);
  if (!p) return;
  text_->setHtml(guide_page_html(page_, spec_.get(), model_name_));
  for (int i = 0; i < contents_->count(); ++i)
    if (contents_->item(i)->data(Qt::UserRole).toString() == page_ && contents_->currentRow() != i) {
      const QSignalBlocker block(contents_);
      contents_->setCurrentRow(i);
    }
  const bool have = view_titles_.contains(p->view) && show_view_;
  open_view_->setText(have ? tr("Open %1").arg(view_titles_.value(p->view)) : tr("Open the view"));
  open_view_->setEnabled(have);
  open_view_->setToolTip(have ? tr("Show the %1 view in the main window").arg(view_titles_.value(p->view))
                              : tr("This window has no such view"));
}

void GuideWindow::followLink(const QUrl& url) {
  if (url.scheme() == QLatin1String(kScheme) && showPage(url.path())) return;
  spdlog::warn("guide: link '{}' ignored (the guide opens only its own pages)", url.toString().toStdString());
}

}  // namespace moescope::ui
