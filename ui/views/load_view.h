#pragma once
// Load balance: tokens routed to each expert of a layer against the uniform share, the layer ×
// expert load map, imbalance over time, and the metrics of routing_stats.h per layer and their mean and worst over the layers,
// over this answer, this conversation or everything since load.
#include "moescope/routing_stats.h"
#include "ui/views/trace_model.h"
#include "ui/views/view_frame.h"

class QCPBars;
class QCPColorMap;
class QCPColorScale;
class QCPGraph;
class QCPItemStraightLine;
class QComboBox;
class QTabWidget;
class QTableWidget;

namespace moescope::ui {

class LoadView : public ViewFrame {
  Q_OBJECT
public:
  enum Tab { PerExpert = 0, LayerMap = 1, OverTime = 2, Metrics = 3 };
  LoadView(TraceModel* model, QWidget* parent = nullptr);
  QCustomPlot* currentPlot() const override;
  QString csv() const override;

  void setWindow(StatsWindow w);
  void setLayer(int moe_index);
  void setTab(Tab t);
  StatsWindow window() const { return window_; }
  int layer() const { return layer_; }
  const RoutingStats& shownStats() const;
  double uniformLoad() const { return uniform_; }  // the uniform line: tokens · top_k / n_experts
  QTableWidget* metricsTable() const { return table_; }
  QCPBars* bars() const { return bars_; }
  QCPColorMap* layerMap() const { return map_; }

protected:
  void refresh() override;

private:
  void refreshBars();
  void refreshMap();
  void refreshTimeline();
  void refreshTable();
  void syncLayers();

  StatsWindow window_ = StatsWindow::Conversation;
  int layer_ = 0;
  double uniform_ = 0.0;
  QComboBox* window_box_;
  QComboBox* layer_box_;
  QTabWidget* tabs_;
  QCustomPlot* bars_plot_;
  QCPBars* bars_;
  QCPGraph* dead_marks_;
  QCPItemStraightLine* uniform_line_;
  QCustomPlot* map_plot_;
  QCPColorMap* map_;
  QCPColorScale* map_scale_;
  QCustomPlot* time_plot_;
  QCPGraph* cv_graph_;
  QCPGraph* maxvio_graph_;
  QCPGraph* layer_graph_;
  QTableWidget* table_;
};

}  // namespace moescope::ui
