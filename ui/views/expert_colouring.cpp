#include "ui/views/expert_colouring.h"

#include <QCheckBox>
#include <QComboBox>
#include <QHBoxLayout>
#include <QLabel>
#include <QTextBrowser>
#include <QTextCursor>
#include <QTextDocument>
#include <QUrl>
#include <QVBoxLayout>
#include <algorithm>
#include <map>
#include <qcustomplot.h>

#include "ui/chat_panel.h"
#include "ui/message_widget.h"
#include "ui/views/palette.h"
#include "ui/views/trace_model.h"

namespace moescope::ui {

namespace {
const char* kHelp =
    "The Mixtral paper (Jiang et al. 2024, figure 8) coloured text by the expert each token was "
    "routed to and found that experts follow syntax (indentation, punctuation, common words) more than "
    "topics. Here every generated token is painted with the colour of its top expert (highest router "
    "score) at the chosen MoE layer; the legend lists the experts of the answer with their token counts. "
    "With 'Colour the chat' on, finished answers in the chat are shown as coloured tokens (raw text, "
    "Markdown off) and clicking a token opens it in the token inspector; turn it off for the normal view.";
constexpr const char* kColouredRevision = "moescopeColouredRevision";
constexpr size_t kLiveTokens = 200;
}  // namespace

QString expert_coloured_html(const RoutingTrace& trace, size_t first, size_t last, int m, bool links) {
  QString html = QStringLiteral("<div style=\"white-space:pre-wrap; line-height:150%;\">");
  last = std::min(last, trace.size());
  if (m < 0 || m >= trace.n_moe_layers()) return html + QStringLiteral("</div>");
  for (size_t t = first; t < last; ++t) {
    const int e = trace.expert(t, m, 0);
    const QColor bg = expert_colour(e, trace.n_experts());
    const QColor fg = text_colour_on(bg);
    const QString text = QString::fromStdString(trace.token(t).text).toHtmlEscaped();
    const QString weight = trace.has_weights() ? QString::number(trace.weight(t, m, 0), 'f', 3) : QStringLiteral("unknown");
    const QString tip = e >= 0 ? QStringLiteral("token %1 · expert %2 · weight %3").arg(t).arg(e).arg(weight)
                               : QStringLiteral("token %1 · no expert").arg(t);
    const QString style = QStringLiteral("background-color:%1; color:%2;").arg(bg.name(), fg.name());
    if (links)
      html += QStringLiteral("<a href=\"token:%1\" title=\"%2\" style=\"%3 text-decoration:none;\">%4</a>").arg(t).arg(tip, style, text);
    else
      html += QStringLiteral("<span title=\"%1\" style=\"%2\">%3</span>").arg(tip, style, text);
  }
  return html + QStringLiteral("</div>");
}

std::vector<std::pair<int, int>> top_expert_counts(const RoutingTrace& trace, size_t first, size_t last, int m) {
  std::map<int, int> c;
  last = std::min(last, trace.size());
  if (m >= 0 && m < trace.n_moe_layers())
    for (size_t t = first; t < last; ++t) {
      const int e = trace.expert(t, m, 0);
      if (e >= 0) ++c[e];
    }
  std::vector<std::pair<int, int>> v(c.begin(), c.end());
  std::stable_sort(v.begin(), v.end(), [](auto& a, auto& b) { return a.second > b.second; });
  return v;
}

ExpertLegend::ExpertLegend(QWidget* parent) : QWidget(parent) {
  auto* l = new QHBoxLayout(this);
  l->setContentsMargins(0, 0, 0, 0);
  label_ = new QLabel(this);
  label_->setObjectName(QStringLiteral("expertLegend"));
  label_->setWordWrap(true);
  label_->setTextFormat(Qt::RichText);
  l->addWidget(label_, 1);
}

void ExpertLegend::setCounts(std::vector<std::pair<int, int>> counts, int n_experts, const QString& caption, int max_shown) {
  std::stable_sort(counts.begin(), counts.end(), [](auto& a, auto& b) { return a.second > b.second; });
  QString html = caption.toHtmlEscaped() + QLatin1Char(' ');
  const int shown = std::min<int>(max_shown, int(counts.size()));
  for (int i = 0; i < shown; ++i) {
    const QColor c = expert_colour(counts[size_t(i)].first, n_experts);
    html += QStringLiteral("<span style=\"background-color:%1; color:%2;\">&nbsp;%3&nbsp;</span>&nbsp;×%4&nbsp;&nbsp; ")
                .arg(c.name(), text_colour_on(c).name())
                .arg(counts[size_t(i)].first)
                .arg(counts[size_t(i)].second);
  }
  if (int(counts.size()) > shown) html += tr("… %1 more").arg(int(counts.size()) - shown);
  if (counts.empty()) html += tr("(none)");
  if (label_->text() != html) label_->setText(html);
}

QString ExpertLegend::text() const { return label_->text(); }

ExpertColouringView::ExpertColouringView(TraceModel* model, QWidget* parent)
    : ViewFrame(model, QStringLiteral("colouring"),
                tr("The latest answer with every token coloured by its top expert at the chosen layer; "
                   "tokens of the same colour went to the same expert."),
                tr(kHelp), parent) {
  toggle_ = new QCheckBox(tr("Colour the chat"), this);
  toggle_->setObjectName(QStringLiteral("colourChatToggle"));
  toggle_->setToolTip(tr("Show finished answers in the chat coloured by expert (click a token to inspect it)"));
  connect(toggle_, &QCheckBox::toggled, this, &ExpertColouringView::setChatColouring);
  layer_box_ = new QComboBox(this);
  connect(layer_box_, &QComboBox::currentIndexChanged, this, [this](int i) {
    if (i >= 0) setLayer(i);
  });
  controls()->insertWidget(0, toggle_);
  controls()->insertWidget(1, layer_box_);

  preview_ = new QTextBrowser(this);
  preview_->setObjectName(QStringLiteral("colouredPreview"));
  preview_->setOpenLinks(false);
  preview_->setMinimumHeight(90);
  connect(preview_, &QTextBrowser::anchorClicked, this, [this](const QUrl& url) {
    if (url.scheme() == QLatin1String("token")) traceModel()->selectToken(url.path().toInt());
  });
  body()->addWidget(preview_, 3);
  legend_ = new ExpertLegend(this);
  body()->addWidget(legend_);
  plot_ = makePlot(this);
  plot_->setMinimumHeight(110);
  plot_->xAxis->setLabel(tr("top expert"));
  plot_->yAxis->setLabel(tr("tokens"));
  plot_->xAxis->grid()->setVisible(false);
  body()->addWidget(plot_, 2);

  // The chat is checked on its own timer so colouring follows the chat even with this dock hidden.
  chat_timer_.setInterval(400);
  connect(&chat_timer_, &QTimer::timeout, this, [this] {
    if (!traceModel()->generating()) applyToChat();
  });
}

void ExpertColouringView::syncLayers() { sync_layer_box(layer_box_, traceModel()->trace().moe_layers(), layer_); }

void ExpertColouringView::setLayer(int moe_index) {
  layer_ = std::max(0, moe_index);
  if (layer_box_->currentIndex() != layer_ && layer_ < layer_box_->count()) layer_box_->setCurrentIndex(layer_);
  for (auto& b : coloured_)
    if (b) b->setProperty(kColouredRevision, -1);  // recolour
  markDirty();
}

bool ExpertColouringView::chatColouring() const { return toggle_->isChecked(); }

void ExpertColouringView::setChatColouring(bool on) {
  if (toggle_->isChecked() != on) toggle_->setChecked(on);
  if (on) {
    chat_timer_.start();
    applyToChat();
  } else {
    chat_timer_.stop();
    restoreChat();
  }
}

std::pair<size_t, size_t> ExpertColouringView::shownRange() const {
  const RoutingTrace& rt = traceModel()->trace();
  const auto runs = decode_runs(rt);
  return runs.empty() ? std::pair<size_t, size_t>{0, rt.size()} : runs.back();
}

ChatPanel* ExpertColouringView::findChat() const { return chat_; }

void ExpertColouringView::setChat(ChatPanel* chat) { chat_ = chat; }

// The k-th decode run of the trace is the k-th answer; runs and answers are matched from the end
// (a trace may start after the conversation's first answers).
int ExpertColouringView::applyToChat() {
  ChatPanel* chat = findChat();
  if (!chat || !toggle_->isChecked()) return 0;
  std::vector<MessageWidget*> answers;
  for (MessageWidget* w : chat->messageWidgets())
    if (w && !w->isUser()) answers.push_back(w);
  const RoutingTrace& rt = traceModel()->trace();
  const auto runs = decode_runs(rt);
  int done = 0;
  for (size_t i = 0; i < answers.size() && i < runs.size(); ++i) {
    MessageWidget* w = answers[answers.size() - 1 - i];
    const auto run = runs[runs.size() - 1 - i];
    auto* body = w->findChild<QTextBrowser*>(QStringLiteral("body"));
    if (!body) continue;
    // Already coloured and untouched since: nothing to do.
    const QVariant rev = body->property(kColouredRevision);
    if (rev.isValid() && rev.toInt() == body->document()->revision()) {
      ++done;
      continue;
    }
    body->setOpenLinks(false);
    if (!body->property("moescopeLinked").toBool()) {
      body->setProperty("moescopeLinked", true);
      connect(body, &QTextBrowser::anchorClicked, this, [this](const QUrl& url) {
        if (url.scheme() == QLatin1String("token")) traceModel()->selectToken(url.path().toInt());
      });
    }
    body->setHtml(expert_coloured_html(rt, run.first, run.second, layer_, true));
    body->setProperty(kColouredRevision, body->document()->revision());
    if (std::find(coloured_.begin(), coloured_.end(), body) == coloured_.end()) coloured_.push_back(body);
    ++done;
  }
  return done;
}

void ExpertColouringView::restoreChat() {
  if (!chat_) {
    coloured_.clear();
    return;
  }
  for (MessageWidget* w : chat_->messageWidgets()) {
    if (!w || w->isUser()) continue;
    auto* body = w->findChild<QTextBrowser*>(QStringLiteral("body"));
    if (!body || !body->property(kColouredRevision).isValid()) continue;
    body->setProperty(kColouredRevision, QVariant());
    body->setOpenLinks(true);
    // Re-render the Markdown (the widget skips identical text, so clear it first).
    const QString raw = w->rawContent();
    w->setContent(QString(), false);
    w->setContent(raw, false);
  }
  coloured_.clear();
}

void ExpertColouringView::refresh() {
  // Rich text is the costly part of this view: while the model writes, at most once a second.
  if (traceModel()->generating()) {
    if (live_clock_.isValid() && live_clock_.elapsed() < 1000) {
      markDirty();
      return;
    }
    live_clock_.start();
  }
  syncLayers();
  const RoutingTrace& rt = traceModel()->trace();
  auto [first, last] = shownRange();
  // While the model writes, only the newest tokens are re-rendered (rich text is the costly part).
  if (traceModel()->generating() && last - first > kLiveTokens) first = last - kLiveTokens;
  html_ = expert_coloured_html(rt, first, last, layer_, true);
  preview_->setHtml(html_);
  if (traceModel()->generating()) preview_->moveCursor(QTextCursor::End);
  const auto counts = top_expert_counts(rt, first, last, layer_);
  legend_->setCounts(counts, rt.n_experts(), tr("Experts:"));

  plot_->clearPlottables();
  auto ticker = QSharedPointer<QCPAxisTickerText>::create();
  const int shown = std::min<int>(24, int(counts.size()));
  double top = 1;
  for (int i = 0; i < shown; ++i) {
    auto* b = new QCPBars(plot_->xAxis, plot_->yAxis);
    const QColor c = expert_colour(counts[size_t(i)].first, rt.n_experts());
    b->setBrush(c);
    b->setPen(QPen(c.darker(130)));
    b->setWidth(0.75);
    b->addData(i, counts[size_t(i)].second);
    ticker->addTick(i, QString::number(counts[size_t(i)].first));
    top = std::max(top, double(counts[size_t(i)].second));
  }
  plot_->xAxis->setTicker(ticker);
  plot_->xAxis->setRange(-0.7, std::max(1, shown) - 0.3);
  plot_->yAxis->setRange(0, top * 1.1);
  plot_->xAxis->setLabel(rt.n_moe_layers() > 0 ? tr("top expert at layer %1 (most used first)").arg(rt.moe_layers()[size_t(std::min(layer_, rt.n_moe_layers() - 1))])
                                               : tr("top expert"));
  plot_->replot(QCustomPlot::rpQueuedReplot);
  setStatus(last > first ? tr("%1 tokens (trace %2–%3) · %4 distinct top experts%5")
                               .arg(last - first)
                               .arg(first)
                               .arg(last - 1)
                               .arg(counts.size())
                               .arg(counts.size() > size_t(shown) ? tr(" (%1 most used plotted)").arg(shown) : QString())
                         : tr("No answer yet."));
  if (toggle_->isChecked() && !traceModel()->generating()) applyToChat();
}

QString ExpertColouringView::csv() const {
  const RoutingTrace& rt = traceModel()->trace();
  const auto [first, last] = shownRange();
  QString out = QStringLiteral("token,text,layer,top_expert,weight\n");
  if (layer_ >= rt.n_moe_layers()) return out;
  for (size_t t = first; t < last && t < rt.size(); ++t)
    out += QStringLiteral("%1,%2,%3,%4,%5\n").arg(t).arg(csv_field(QString::fromStdString(rt.token(t).text)))
               .arg(rt.moe_layers()[size_t(layer_)]).arg(rt.expert(t, layer_, 0))
               .arg(rt.has_weights() ? QString::number(rt.weight(t, layer_, 0), 'g', 6) : QString());  // empty: unknown
  return out;
}

}  // namespace moescope::ui
