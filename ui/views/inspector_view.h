#pragma once
// Token inspector: one token's path through every MoE layer — the experts it was sent to with
// their weights, the runners-up and the router's confidence when full router scores were recorded,
// and the always-active shared expert when the model has one.
#include <utility>
#include <vector>

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
  double margin = 0.0;   // k-th highest score − (k+1)-th highest
  std::vector<std::pair<int, float>> runners_up;  // best unselected experts by score
};
// Confidence of the router for token t at MoE layer m (recorded = false without router scores).
LayerConfidence router_confidence(const moescope::RoutingTrace& trace, size_t t, int m, int n_runners_up = 3);

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
