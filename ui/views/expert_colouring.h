#pragma once
// Colouring generated text by expert (the Mixtral paper's figure 8): every token is painted with
// the colour of its top expert at a chosen MoE layer. The pieces are reusable: the HTML for a span
// of trace tokens, a legend, and a view with the toggle that also colours the chat's answers
// (found in the main window by type; nothing in the chat code changes).
#include <QElapsedTimer>
#include <QPointer>
#include <QWidget>
#include <utility>
#include <vector>

#include "moescope/routing_trace.h"
#include "ui/views/view_frame.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QTextBrowser;

namespace moescope::ui {

class ChatPanel;

// HTML for trace tokens [first, last): each token a span on its top expert's colour at MoE layer
// `moe_index`, with a tooltip (expert and weight); with `links`, each token is a link "token:N"
// (N = trace index) so a click can open it in the inspector.
QString expert_coloured_html(const RoutingTrace& trace, size_t first, size_t last, int moe_index, bool links);
// Top-expert counts of tokens [first, last) at one layer, most frequent first: (expert, tokens).
std::vector<std::pair<int, int>> top_expert_counts(const RoutingTrace& trace, size_t first, size_t last, int moe_index);

// A wrapped row of colour swatches with expert ids and counts.
class ExpertLegend : public QWidget {
  Q_OBJECT
public:
  explicit ExpertLegend(QWidget* parent = nullptr);
  // counts: (expert, count) in any order; the `max_shown` largest are listed.
  void setCounts(std::vector<std::pair<int, int>> counts, int n_experts, const QString& caption, int max_shown = 16);
  QString text() const;

private:
  QLabel* label_;
};

class ExpertColouringView : public ViewFrame {
  Q_OBJECT
public:
  explicit ExpertColouringView(TraceModel* model, QWidget* parent = nullptr);
  QCustomPlot* currentPlot() const override { return plot_; }
  QString csv() const override;

  void setLayer(int moe_index);
  void setChatColouring(bool on);
  // The chat whose answers it colours (handed over by the composition root; none: no colouring).
  void setChat(ChatPanel* chat);
  bool chatColouring() const;
  // The answer shown: the trace range of the latest answer (or the whole trace without one).
  std::pair<size_t, size_t> shownRange() const;
  QString previewHtml() const { return html_; }
  // Colours the chat's answers now (returns how many message bodies were coloured).
  int applyToChat();

protected:
  void refresh() override;

private:
  void syncLayers();
  ChatPanel* findChat() const;
  void restoreChat();

  QCheckBox* toggle_;
  QComboBox* layer_box_;
  ExpertLegend* legend_;
  QTextBrowser* preview_;
  QCustomPlot* plot_;
  QString html_;
  int layer_ = 0;
  QTimer chat_timer_;
  QElapsedTimer live_clock_;
  QPointer<ChatPanel> chat_;
  std::vector<QPointer<QTextBrowser>> coloured_;
};

}  // namespace moescope::ui
