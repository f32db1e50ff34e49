#pragma once
// What every view shares: the one-sentence explanation at the top (with a "learn more" link that
// asks for the guide's page on the view, its help text as the tooltip),
// a toolbar row for the view's own controls followed by Open trace… / PNG / PDF / CSV, and the
// refresh timer: a view redraws at most every 100 ms (while the model generates: every second on
// the CPU backend, every 500 ms on a GPU), only when it is visible and its data or settings
// changed (STYLE.md item 8).
#include <QString>
#include <QTimer>
#include <QWidget>
#include <vector>

class QCustomPlot;
class QCPAxis;
class QHBoxLayout;
class QLabel;
class QVBoxLayout;

class QComboBox;

namespace moescope::ui {

class TraceModel;

class ViewFrame : public QWidget {
  Q_OBJECT
public:
  ViewFrame(TraceModel* model, const QString& id, const QString& sentence, const QString& learn_more,
            QWidget* parent);
  TraceModel* traceModel() const { return model_; }
  QString viewId() const { return id_; }

  // The plot the export buttons save (the visible one when a view has several).
  virtual QCustomPlot* currentPlot() const = 0;
  // The data behind currentPlot() as CSV, header first.
  virtual QString csv() const = 0;
  bool exportPng(const QString& path, int width = 0, int height = 0);
  bool exportPdf(const QString& path);
  bool exportCsv(const QString& path) const;
  // Redraws now, visible or not (tests, screenshots).
  void refreshNow();
  int refreshCount() const { return refreshes_; }
  double refreshSeconds() const { return refresh_seconds_; }  // spent in refresh() so far

signals:
  // "learn more" was clicked: the window opens the guide at this view's page (ui/guide.h).
  void learnMoreRequested(const QString& view_id);

protected:
  QVBoxLayout* body() const { return body_; }
  QHBoxLayout* controls() const { return controls_; }
  void setStatus(const QString& text);
  virtual void refresh() = 0;
  bool event(QEvent* e) override;
  // A control changed: redraw on the next tick.
  void markDirty() { dirty_ = true; }
  // A plot with the views' common look (fonts, margins, drag/zoom off unless asked).
  static QCustomPlot* makePlot(QWidget* parent);
  // Shows the plot's legend in a row of its own above the axis rect, its items side by side, so it
  // never covers data (issue 16).
  static void placeLegendAbove(QCustomPlot* plot);
  // Ticks on whole numbers only (expert ids, layers), however far the axis is zoomed.
  static void useIntegerTicks(QCPAxis* axis);

private:
  void tick();
  int wantedInterval() const;  // the timer's interval now (idle, or live on the CPU / a device)
  void openTrace();
  void exportWithDialog(const QString& kind);

  TraceModel* model_;
  QString id_;
  QVBoxLayout* body_;
  QHBoxLayout* controls_;
  QLabel* status_;
  QTimer timer_;
  quint64 drawn_version_ = ~quint64(0);
  bool dirty_ = true;
  int refreshes_ = 0;
  double refresh_seconds_ = 0.0;
  bool drawn_live_ = false;
};

// Numbers for labels: 1 234 567 → "1.23 M", bytes → "12.5 MiB".
QString format_count(double v);
QString format_bytes(double bytes);
// One CSV field (quoted when it holds a comma, quote or newline).
QString csv_field(const QString& s);
// A token's text made visible: spaces as ␣, newlines as ⏎, tabs as ⇥.
QString visible_token_text(const std::string& text);

// The layer selector the views share: fills `box` with "layer N" for every MoE layer (item data:
// the model layer) when the list changed, keeping `current` (an index among them) in range and
// selected, without emitting the box's signals. Returns true when the list was rebuilt.
bool sync_layer_box(QComboBox* box, const std::vector<int>& layers, int& current);

}  // namespace moescope::ui
