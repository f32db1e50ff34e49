#pragma once
// KV cache: how full it is, bytes per layer, the paged blocks, growth during prefill and decode,
// and for Multi-head Latent Attention the size beside what plain multi-head attention would need.
#include "ui/views/view_frame.h"

class QCPBars;
class QCPColorMap;
class QCPGraph;
class QCPItemStraightLine;
class QLabel;
class QTabWidget;

namespace moescope::ui {

class KvFillBar;

class KvView : public ViewFrame {
  Q_OBJECT
public:
  enum Tab { Growth = 0, BytesPerLayer = 1, Blocks = 2 };
  explicit KvView(TraceModel* model, QWidget* parent = nullptr);
  QCustomPlot* currentPlot() const override;
  QString csv() const override;
  void setTab(Tab t);
  QString fillText() const;
  int fillPermille() const;  // what the fill bar shows, in thousandths of the capacity
  QString compressionText() const;
  double compressionRatio() const;  // MHA bytes ÷ cache bytes (1 for GQA, 0 without figures)
  QCPColorMap* blockMap() const { return blocks_; }
  int blockColumns() const { return block_cols_; }
  int blocksPerCell() const { return blocks_per_cell_; }

protected:
  void refresh() override;

private:
  KvFillBar* fill_;
  QLabel* fill_label_;
  QLabel* mla_label_;
  QTabWidget* tabs_;
  QCustomPlot* growth_plot_;
  QCPGraph* growth_line_;
  QCPGraph* prefill_graph_;
  QCPGraph* decode_graph_;
  QCPItemStraightLine* capacity_line_;
  QCustomPlot* bytes_plot_;
  QCPBars* bytes_bars_;
  QCPBars* mha_bars_;
  QCustomPlot* blocks_plot_;
  QCPColorMap* blocks_;
  int block_cols_ = 32;
  int blocks_per_cell_ = 1;
};

}  // namespace moescope::ui
