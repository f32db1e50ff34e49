#pragma once
// Routing map: tokens left to right; rows are either the experts of one MoE layer (colour =
// routing weight, or choice rank when the weights are unknown) or the MoE layers (colour = the token's top expert). Drag to pan, wheel to zoom,
// hover for the token and its experts, click to inspect the token.
#include "ui/views/routing_map_plottable.h"
#include "ui/views/view_frame.h"

class QCheckBox;
class QComboBox;
class QCPColorScale;
class QCPItemRect;

namespace moescope::ui {

class ExpertLegend;

class RoutingMapView : public ViewFrame {
  Q_OBJECT
public:
  explicit RoutingMapView(TraceModel* model, QWidget* parent = nullptr);
  QCustomPlot* currentPlot() const override { return plot_; }
  QString csv() const override;

  void setMode(RoutingMapPlottable::Mode mode);
  void setLayer(int moe_index);
  void showTokens(double first, double last);  // sets the visible token window
  RoutingMapPlottable* map() const { return map_; }
  // What hovering cell (token, row) shows.
  QString cellText(size_t token, int row) const;

protected:
  void refresh() override;
  bool eventFilter(QObject* o, QEvent* e) override;

private:
  void syncLayers();
  void onReset();
  void updateTicks();
  void clampRanges();
  double fitted_span_ = -1;  // the row span fitRows() last chose
  void fitRows(bool force);
  void updateWeightTop(bool from_start);
  void updateScale();
  int scale_ticks_k_ = 0;  // top_k the rank ticks of the colour scale were made for (0: weight ticks)

  QComboBox* mode_box_;
  QComboBox* layer_box_;
  QCheckBox* follow_;
  QCustomPlot* plot_;
  RoutingMapPlottable* map_;
  QCPColorScale* scale_;
  QCPItemRect* selection_;
  ExpertLegend* legend_;
  size_t weight_scanned_ = 0;
  double weight_top_ = 0.0;
  size_t last_size_ = 0;
  bool fresh_ = true;  // set the initial range on the next refresh
  bool clamping_ = false;
};

}  // namespace moescope::ui
