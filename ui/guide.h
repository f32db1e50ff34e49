#pragma once
// The in-app guide (Help ▸ Guide, and every view's "learn more"): short pages on MoE routing, load
// balance and MLA, each ending with a figure taken from the loaded model and a button that opens
// the view that shows it. The pages' text is compiled in as Qt resources (resources/guide/); the
// figures are written here from the model's ModelSpec. Offline: links go only to other pages
// (guide:<id>); the browser never opens files or URLs, and model text is always escaped.
#include <QMap>
#include <QString>
#include <QWidget>
#include <functional>
#include <memory>
#include <vector>

#include "moescope/model_spec.h"

class QHBoxLayout;
class QLabel;
class QListWidget;
class QPushButton;
class QTextBrowser;
class QUrl;

namespace moescope::ui {

struct GuidePage {
  QString id;     // the resource :/guide/<id>.html and the link guide:<id>
  QString title;
  QString view;   // the view its button opens (a ViewRegistry id)
};

// In reading order.
const std::vector<GuidePage>& guide_pages();
const GuidePage* guide_page(const QString& id);  // null when there is none
// The page a view's "learn more" opens (empty for an unknown view).
QString guide_page_for_view(const QString& view_id);
// The page's text as written (an HTML fragment), empty for an unknown page.
QString guide_body_html(const QString& id);
// "In <model>: …": the numbers of the loaded model the page is about, as HTML (everything taken
// from the model escaped); says that no model is loaded when spec is null.
QString guide_figure_html(const QString& id, const ModelSpec* spec, const QString& model_name);
// The whole page: title, text and figure.
QString guide_page_html(const QString& id, const ModelSpec* spec, const QString& model_name);

// How a model is built, in words every view and the guide share (figures from the spec alone).
// What layer `layer` keeps for attention: "full attention", "sliding window of 128 tokens",
// "MLA latent (512 + 64 values per token)" or "recurrent state (linear attention)".
QString layer_cache_kind(const ModelSpec& spec, int layer);
// The layers grouped by that kind, in order of first appearance ("12 × sliding window of 128
// tokens, 12 × full attention"), then the linear-attention share of layers and the attention sinks where the model
// has them.
QString cache_kinds_text(const ModelSpec& spec);
// The router's rule in one line: what it scores with, how it chooses (top-k, groups, correction
// bias, router bias) and, for softmax routers, whether the weights are renormalised over the chosen.
QString router_rule_text(const RouterSpec& r);

// The "learn more" link of a widget that is not a ViewFrame (the experiments' docks), made as
// ViewFrame makes its own: a QLabel named "learnMore" that opens nothing itself; connect its
// linkActivated to the widget's learnMoreRequested. Placed top right of `intro` in one row.
QHBoxLayout* intro_with_learn_more(QLabel* intro, QWidget* parent, const QString& tooltip, QLabel** link);

class GuideWindow : public QWidget {
  Q_OBJECT
public:
  explicit GuideWindow(QWidget* parent = nullptr);

  // The loaded model the figures describe (null: none loaded).
  void setModel(std::shared_ptr<const ModelSpec> spec, const QString& name);
  // The views the button can open (id → title) and how to open one.
  void setViews(const QMap<QString, QString>& titles, std::function<bool(const QString&)> show);
  // Shows a page; false (and the page unchanged) for an unknown id.
  bool showPage(const QString& id);
  QString currentPage() const { return page_; }
  QString currentTitle() const;

  QTextBrowser* browser() const { return text_; }
  QListWidget* contents() const { return contents_; }
  QPushButton* openViewButton() const { return open_view_; }

private:
  void render();
  void followLink(const QUrl& url);

  QListWidget* contents_;
  QTextBrowser* text_;
  QPushButton* open_view_;
  QString page_;
  std::shared_ptr<const ModelSpec> spec_;
  QString model_name_;
  QMap<QString, QString> view_titles_;
  std::function<bool(const QString&)> show_view_;
};

}  // namespace moescope::ui
