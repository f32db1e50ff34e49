#include "ui/views/palette.h"

#include <algorithm>
#include <cmath>
#include <qcustomplot.h>

namespace moescope::ui {

namespace {

// Tableau 20, strong colours first so models with <= 10 experts get only those.
constexpr unsigned kTab20[20] = {0x1f77b4, 0xff7f0e, 0x2ca02c, 0xd62728, 0x9467bd, 0x8c564b, 0xe377c2,
                                 0x7f7f7f, 0xbcbd22, 0x17becf, 0xaec7e8, 0xffbb78, 0x98df8a, 0xff9896,
                                 0xc5b0d5, 0xc49c94, 0xf7b6d2, 0xc7c7c7, 0xdbdb8d, 0x9edae5};

// Sequential stops (ColorBrewer YlGnBu, 7 classes): readable on white at the low end.
constexpr unsigned kStops[7] = {0xffffcc, 0xc7e9b4, 0x7fcdbb, 0x41b6c4, 0x1d91c0, 0x225ea8, 0x0c2c84};

}  // namespace

QColor expert_colour(int expert, int n_experts) {
  if (expert < 0) return empty_cell_colour();
  if (n_experts <= 20) return QColor::fromRgb(kTab20[expert % 20]);
  const double hue = std::fmod(double(expert) * 0.6180339887, 1.0);
  static constexpr double kLight[3] = {0.45, 0.62, 0.33};
  static constexpr double kSat[3] = {0.75, 0.85, 0.65};
  return QColor::fromHslF(float(hue), float(kSat[expert % 3]), float(kLight[(expert / 3) % 3]));
}

QColor text_colour_on(const QColor& bg) {
  const double lum = 0.2126 * bg.redF() + 0.7152 * bg.greenF() + 0.0722 * bg.blueF();
  return lum > 0.55 ? QColor(Qt::black) : QColor(Qt::white);
}

QColor weight_colour(double t) {
  t = std::clamp(t, 0.0, 1.0) * 6.0;
  const int i = std::min(5, int(t));
  const double f = t - i;
  const QColor a = QColor::fromRgb(kStops[i]), b = QColor::fromRgb(kStops[i + 1]);
  return QColor::fromRgbF(float(a.redF() + (b.redF() - a.redF()) * f), float(a.greenF() + (b.greenF() - a.greenF()) * f),
                          float(a.blueF() + (b.blueF() - a.blueF()) * f));
}

QCPColorGradient weight_gradient() {
  QCPColorGradient g;
  g.clearColorStops();
  for (int i = 0; i < 7; ++i) g.setColorStopAt(i / 6.0, QColor::fromRgb(kStops[i]));
  g.setColorInterpolation(QCPColorGradient::ciRGB);
  return g;
}

}  // namespace moescope::ui
