#pragma once
#include <memory>
// A QCustomPlot plottable that draws a routing trace as a heatmap without copying it: tokens along
// the key axis, and either the experts of one MoE layer (cell colour = routing weight) or the MoE
// layers (cell colour = the token's top expert). A trace without weights (a remote server's: expert
// ids only) is coloured by choice rank instead: the first choice darkest, the last lightest. Each replot renders only the visible tokens into
// an image of at most one column per screen pixel, so 4,000 tokens × 256 experts pan and zoom
// smoothly. Token t covers keys [t − ½, t + ½]; row r covers values [r − ½, r + ½].
#include <QImage>
#include <qcustomplot.h>

#include "moescope/routing_trace.h"

namespace moescope::ui {

class RoutingMapPlottable : public QCPAbstractPlottable {
  Q_OBJECT
public:
  enum class Mode { ExpertsOfLayer, LayersTopExpert };
  RoutingMapPlottable(QCPAxis* keyAxis, QCPAxis* valueAxis);

  // Shared, so a trace the model replaces stays alive until the view hands over the new one.
  void setTrace(std::shared_ptr<const RoutingTrace> trace) { trace_ = std::move(trace); }
  void setMode(Mode mode, int moe_index);
  void setWeightRange(double top) { weight_top_ = top > 0 ? top : 1.0; }  // weight shown darkest
  // True when the trace has no weights and cells are coloured by choice rank.
  bool byRank() const;
  // Colour level 0-255 of choice `slot` among `top_k` when coloured by rank.
  static int rankLevel(int slot, int top_k);
  Mode mode() const { return mode_; }
  int layer() const { return layer_; }
  int rows() const;
  // The colour of one cell as drawn (tests check known cells).
  QColor cellColour(size_t token, int row) const;
  // The last image drawn (one column per rendered token bucket) and how many tokens it covered.
  const QImage& lastImage() const { return image_; }

  double selectTest(const QPointF& pos, bool onlySelectable, QVariant* details = nullptr) const override;
  QCPRange getKeyRange(bool& foundRange, QCP::SignDomain inSignDomain = QCP::sdBoth) const override;
  QCPRange getValueRange(bool& foundRange, QCP::SignDomain inSignDomain = QCP::sdBoth,
                         const QCPRange& inKeyRange = QCPRange()) const override;

protected:
  void draw(QCPPainter* painter) override;
  void drawLegendIcon(QCPPainter* painter, const QRectF& rect) const override;

private:
  int level(size_t t, int m, int slot) const;  // colour level 0-255 of one chosen cell
  std::shared_ptr<const RoutingTrace> trace_;
  Mode mode_ = Mode::ExpertsOfLayer;
  int layer_ = 0;
  double weight_top_ = 1.0;
  QImage image_;
  std::vector<QRgb> weight_lut_;  // 256 levels
  std::vector<QRgb> expert_lut_;  // [n_experts + 1], last: none
};

}  // namespace moescope::ui
