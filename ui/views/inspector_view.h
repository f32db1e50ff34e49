#pragma once
// Token inspector: one token's path through every MoE layer — the experts it was sent to with
// their weights, the runners-up and the router's confidence when full router scores were recorded,
// and the always-active shared expert when the model has one.
#include <utility>
#include <vector>

#include "moescope/model_spec.h"
#include "moescope/route_explain.h"
#include "moescope/routing_trace.h"
#include "ui/views/view_frame.h"

class QCPGraph;
class QLabel;
class QSpinBox;
class QTableWidget;

namespace moescope::ui {

struct LayerConfidence {
  bool recorded = false;
  double entropy = 0.0;  // −Σ p log p ÷ log n_experts over the recorded scores (normalised to sum 1)
  // How close the last chosen expert came to being replaced: with the model's rule, its selection
  // value (score + bias) minus that of the expert that would have come in next within the kept
  // groups; without it, the k-th highest score minus the (k+1)-th.
  double margin = 0.0;
  std::vector<std::pair<int, float>> runners_up;  // best unselected experts by score
  // The router's steps under the model's rule (rule_known: a rule was given and scores recorded).
  bool rule_known = false;
  moescope::RouteExplanation why;
  bool biased = false;        // the rule adds a correction bias (why.selection = score + bias)
  bool matches_trace = true;  // the rule's choice is the recorded one (false: an intervention was on)
};
// Confidence of the router for token t at MoE layer m (recorded = false without router scores).
// rule/bias: the model's router for that layer (moescope/route_explain.h), or null.
LayerConfidence router_confidence(const moescope::RoutingTrace& trace, size_t t, int m, int n_runners_up = 3,
                                  const moescope::rules::RouterRule* rule = nullptr, const float* bias = nullptr);
// What the chosen experts' weights add up to under a router (the routed scaling factor, 1, or
// not fixed), in words.
QString weight_sum_text(const moescope::RouterSpec& r);

class InspectorView : public ViewFrame {
  Q_OBJECT
public:
  explicit InspectorView(TraceModel* model, QWidget* parent = nullptr);
  QCustomPlot* currentPlot() const override { return plot_; }
  QString csv() const override;
  int token() const;
  QTableWidget* table() const { return table_; }
  QString headerText() const;

protected:
  void refresh() override;

private:
  // The model's rule for MoE layer m of the trace, when the loaded model's router fits it.
  bool layerRule(int m, moescope::rules::RouterRule* rule, const float** bias) const;
  LayerConfidence confidence(size_t t, int m) const;
  QSpinBox* token_box_;
  QLabel* header_;
  QCustomPlot* plot_;
  QCPGraph* path_;
  QTableWidget* table_;
  int drawn_token_ = -2;
  const moescope::RoutingTrace* drawn_trace_ = nullptr;
  bool path_stale_ = true;
};

}  // namespace moescope::ui
