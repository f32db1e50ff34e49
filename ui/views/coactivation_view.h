#pragma once
// Co-activation: for one MoE layer, how often expert j is chosen together with expert i,
// P(j | i) = tokens that chose both ÷ tokens that chose i, as a matrix and the strongest pairs.
#include <cstdint>
#include <vector>

#include "ui/views/trace_model.h"
#include "ui/views/view_frame.h"

class QCPColorMap;
class QCPColorScale;
class QComboBox;
class QSpinBox;
class QTableWidget;

namespace moescope::ui {

struct ExpertPair {
  int i = 0, j = 0;
  int64_t both = 0, given = 0;  // tokens with i and j; tokens with i
  double p = 0.0;               // P(j | i)
};
// The strongest pairs of a co-activation count matrix (n × n, row-major) among experts chosen by
// at least `min_count` tokens, highest P(j | i) first (ties: more tokens first).
std::vector<ExpertPair> strongest_pairs(const std::vector<int64_t>& counts, int n, int64_t min_count, size_t max_pairs);

class CoactivationView : public ViewFrame {
  Q_OBJECT
public:
  explicit CoactivationView(TraceModel* model, QWidget* parent = nullptr);
  QCustomPlot* currentPlot() const override { return plot_; }
  QString csv() const override;
  void setLayer(int moe_index);
  void setWindow(StatsWindow w);
  const std::vector<int64_t>& counts() const { return counts_; }
  const std::vector<ExpertPair>& pairs() const { return pairs_; }
  QCPColorMap* matrix() const { return map_; }

protected:
  void refresh() override;

private:
  void syncLayers();

  QComboBox* layer_box_;
  QComboBox* window_box_;
  QSpinBox* min_count_;
  QCustomPlot* plot_;
  QCPColorMap* map_;
  QCPColorScale* scale_;
  QTableWidget* table_;
  int layer_ = 0;
  StatsWindow window_ = StatsWindow::Conversation;
  std::vector<int64_t> counts_;
  std::vector<ExpertPair> pairs_;
  int n_ = 0;
};

}  // namespace moescope::ui
