#include "ui/views/routing_map_plottable.h"

#include <algorithm>
#include <cmath>

#include "ui/views/palette.h"

namespace moescope::ui {

RoutingMapPlottable::RoutingMapPlottable(QCPAxis* keyAxis, QCPAxis* valueAxis) : QCPAbstractPlottable(keyAxis, valueAxis) {
  weight_lut_.resize(256);
  for (int i = 0; i < 256; ++i) weight_lut_[size_t(i)] = weight_colour(0.12 + 0.88 * i / 255.0).rgb();
  setAntialiased(false);
}

void RoutingMapPlottable::setMode(Mode mode, int moe_index) {
  mode_ = mode;
  layer_ = std::max(0, moe_index);
}

int RoutingMapPlottable::rows() const {
  if (!trace_) return 0;
  return mode_ == Mode::ExpertsOfLayer ? trace_->n_experts() : trace_->n_moe_layers();
}

QColor RoutingMapPlottable::cellColour(size_t t, int row) const {
  if (!trace_ || t >= trace_->size() || row < 0 || row >= rows()) return empty_cell_colour();
  if (mode_ == Mode::LayersTopExpert) return expert_colour(trace_->expert(t, row, 0), trace_->n_experts());
  if (layer_ >= trace_->n_moe_layers()) return empty_cell_colour();
  for (int s = 0; s < trace_->top_k(); ++s)
    if (trace_->expert(t, layer_, s) == row) return QColor::fromRgb(weight_lut_[size_t(level(t, layer_, s))]);
  return empty_cell_colour();
}

bool RoutingMapPlottable::byRank() const { return trace_ && !trace_->has_weights(); }

int RoutingMapPlottable::rankLevel(int slot, int top_k) {
  // First choice darkest, the last one lightest; a single choice is darkest.
  if (top_k <= 1) return 255;
  return std::clamp(int(std::lround(255.0 * double(top_k - 1 - slot) / double(top_k - 1))), 0, 255);
}

int RoutingMapPlottable::level(size_t t, int m, int slot) const {
  if (byRank()) return rankLevel(slot, trace_->top_k());
  // weight_top_ is never 0 (setWeightRange keeps 1 for "nothing seen yet").
  return std::clamp(int(std::lround(trace_->weight(t, m, slot) / weight_top_ * 255.0)), 0, 255);
}

double RoutingMapPlottable::selectTest(const QPointF&, bool, QVariant*) const { return -1; }

QCPRange RoutingMapPlottable::getKeyRange(bool& found, QCP::SignDomain) const {
  found = trace_ && trace_->size() > 0;
  return QCPRange(-0.5, trace_ ? double(trace_->size()) - 0.5 : 0.5);
}

QCPRange RoutingMapPlottable::getValueRange(bool& found, QCP::SignDomain, const QCPRange&) const {
  found = rows() > 0;
  return QCPRange(-0.5, rows() - 0.5);
}

void RoutingMapPlottable::draw(QCPPainter* painter) {
  QCPAxis* key = mKeyAxis.data();
  QCPAxis* value = mValueAxis.data();
  if (!trace_ || !key || !value || trace_->size() == 0 || rows() == 0) return;
  const size_t n = trace_->size();
  const int R = rows();

  // Visible token range [first, last), and at most one image column per pixel.
  const QCPRange kr = key->range();
  const size_t first = size_t(std::clamp(std::floor(kr.lower + 0.5), 0.0, double(n)));
  const size_t last = size_t(std::clamp(std::ceil(kr.upper + 0.5), 0.0, double(n)));
  if (last <= first) return;
  const size_t visible = last - first;
  const int pixels = std::max(1, int(std::abs(key->coordToPixel(double(last) - 0.5) - key->coordToPixel(double(first) - 0.5))));
  // Never more columns than the plot has pixels (a guard against a degenerate axis layout).
  const int cols = int(std::min<size_t>({visible, size_t(pixels), size_t(std::max(1, key->axisRect()->width())), 16384}));

  // Image rows follow the screen: row 0 of the image is whichever data row is at the top.
  const bool top_is_first = value->coordToPixel(0) < value->coordToPixel(R - 1);
  auto image_row = [&](int r) { return top_is_first ? r : R - 1 - r; };
  if (image_.width() != cols || image_.height() != R) image_ = QImage(cols, R, QImage::Format_RGB32);
  image_.fill(empty_cell_colour());

  if (mode_ == Mode::ExpertsOfLayer) {
    if (layer_ < trace_->n_moe_layers()) {
      // Several tokens may share a column: keep the strongest weight (levels compare like weights;
      // without weights, the earliest choice).
      std::vector<uint8_t> levels(size_t(cols) * size_t(R), 0);
      std::vector<uint8_t> used(size_t(cols) * size_t(R), 0);
      for (size_t t = first; t < last; ++t) {
        const size_t c = (t - first) * size_t(cols) / visible;
        for (int s = 0; s < trace_->top_k(); ++s) {
          const int e = trace_->expert(t, layer_, s);
          if (e < 0 || e >= R) continue;
          const int lv = level(t, layer_, s);
          const size_t i = size_t(image_row(e)) * size_t(cols) + c;
          levels[i] = uint8_t(std::max<int>(levels[i], lv));
          used[i] = 1;
        }
      }
      for (int y = 0; y < R; ++y) {
        auto* line = reinterpret_cast<QRgb*>(image_.scanLine(y));
        for (int x = 0; x < cols; ++x) {
          const size_t i = size_t(y) * size_t(cols) + size_t(x);
          if (used[i]) line[x] = weight_lut_[levels[i]];
        }
      }
    }
  } else {
    const int E = trace_->n_experts();
    if (int(expert_lut_.size()) != E + 1) {
      expert_lut_.resize(size_t(E) + 1);
      for (int e = 0; e < E; ++e) expert_lut_[size_t(e)] = expert_colour(e, E).rgb();
      expert_lut_[size_t(E)] = empty_cell_colour().rgb();
    }
    for (int x = 0; x < cols; ++x) {
      const size_t t = first + size_t(x) * visible / size_t(cols);
      for (int m = 0; m < R; ++m)
        {
        const int e = trace_->expert(t, m, 0);
        reinterpret_cast<QRgb*>(image_.scanLine(image_row(m)))[x] = expert_lut_[size_t(e < 0 || e >= E ? E : e)];
      }
    }
  }

  const double x0 = key->coordToPixel(double(first) - 0.5), x1 = key->coordToPixel(double(last) - 0.5);
  const double y0 = value->coordToPixel(-0.5), y1 = value->coordToPixel(R - 0.5);
  const QRectF target(QPointF(std::min(x0, x1), std::min(y0, y1)), QPointF(std::max(x0, x1), std::max(y0, y1)));
  const bool smooth = painter->renderHints().testFlag(QPainter::SmoothPixmapTransform);
  painter->setRenderHint(QPainter::SmoothPixmapTransform, false);
  painter->drawImage(target, key->rangeReversed() ? image_.mirrored(true, false) : image_);
  painter->setRenderHint(QPainter::SmoothPixmapTransform, smooth);
}

void RoutingMapPlottable::drawLegendIcon(QCPPainter* painter, const QRectF& rect) const {
  painter->fillRect(rect, weight_colour(0.7));
}

}  // namespace moescope::ui
