#pragma once
// KV cache: how full it is, bytes per layer, the paged blocks, growth during prefill and decode,
// and for Multi-head Latent Attention the size beside what plain multi-head attention would need;
// per layer, what the layer keeps (full attention, sliding window, MLA latent, or the fixed state of
// a linear-attention layer).
#include <vector>

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
  // What the model's layers keep, by kind (full attention, sliding window, MLA latent, recurrent
  // state), with the linear-attention share and attention sinks; empty without the model's spec.
  QString layerKindsText() const;
  struct LayerRow {
    int layer = 0;
    QString cache;        // ui/guide.h layer_cache_kind(); empty without the spec
    double bytes = 0.0;   // in use now (0 without the engine's figures)
    double mha = 0.0;     // what plain multi-head attention would hold (0 for a state)
    bool state = false;   // a linear-attention layer's fixed recurrent state
    bool window = false;  // a sliding-window layer
  };
  std::vector<LayerRow> layerRows() const;
  QCPColorMap* blockMap() const { return blocks_; }
  int blockColumns() const { return block_cols_; }
  int blocksPerCell() const { return blocks_per_cell_; }

protected:
  void refresh() override;

private:
  KvFillBar* fill_;
  QLabel* fill_label_;
  QLabel* mla_label_;
  QLabel* layers_label_;
  QTabWidget* tabs_;
  QCustomPlot* growth_plot_;
  QCPGraph* growth_line_;
  QCPGraph* prefill_graph_;
  QCPGraph* decode_graph_;
  QCPItemStraightLine* capacity_line_;
  QCustomPlot* bytes_plot_;
  QCPBars* bytes_bars_;
  QCPBars* mha_bars_;
  QCPBars* state_bars_;
  QCPBars* window_bars_;
  QCustomPlot* blocks_plot_;
  QCPColorMap* blocks_;
  int block_cols_ = 32;
  int blocks_per_cell_ = 1;
};

}  // namespace moescope::ui
