#pragma once
// Performance: prefill and decode speed over generation time, the time per generated token and
// (CUDA backend) the device memory the engine holds.
#include "ui/views/view_frame.h"

class QCPGraph;
class QLabel;
class QTabWidget;

namespace moescope::ui {

class PerformanceView : public ViewFrame {
  Q_OBJECT
public:
  enum Tab { Speed = 0, TimePerToken = 1, DeviceMemory = 2 };
  explicit PerformanceView(TraceModel* model, QWidget* parent = nullptr);
  QCustomPlot* currentPlot() const override;
  QString csv() const override;
  void setTab(Tab t);
  QString summaryText() const;

protected:
  void refresh() override;

private:
  QLabel* summary_;
  QTabWidget* tabs_;
  QCustomPlot* speed_plot_;
  QCPGraph* decode_;
  QCPGraph* average_;
  QCPGraph* prefill_;
  QCustomPlot* time_plot_;
  QCPGraph* ms_;
  QCustomPlot* memory_plot_;
  QCPGraph* memory_;
};

}  // namespace moescope::ui
