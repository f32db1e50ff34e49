#pragma once
// Colours shared by the views and the chat colouring: a categorical colour per expert (the same
// expert has the same colour everywhere) and a sequential scale for routing weights and loads.
#include <QColor>
#include <QString>

class QCPColorGradient;

namespace moescope::ui {

// Categorical: up to 20 experts get the Tableau-20 colours (the 10 strong ones first); larger
// models step the hue by the golden angle and cycle three lightness levels, so neighbouring ids
// differ strongly (256 colours cannot all be told apart; hover shows ids).
QColor expert_colour(int expert, int n_experts);
// Black or white, whichever reads better on `background`.
QColor text_colour_on(const QColor& background);
// Sequential scale for weights and loads, light (low) to dark (high); `t` in [0, 1].
QColor weight_colour(double t);
QCPColorGradient weight_gradient();
// Background of cells where nothing was routed.
inline QColor empty_cell_colour() { return QColor(0xF4, 0xF5, 0xF7); }

}  // namespace moescope::ui
