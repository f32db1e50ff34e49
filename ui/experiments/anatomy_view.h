#pragma once
// Model anatomy: what a model is made of, from its config alone. Layers, attention kind, experts,
// parameters total vs active per token by component (table + bars), KV bytes per token (MLA
// beside the multi-head equivalent) and a memory calculator (weights at BF16/FP8/INT4 + the KV
// cache of a chosen context). Shows the loaded model, a shipped preset or an opened config.json.
#include <QWidget>
#include <optional>

#include "moescope/model_spec.h"
#include "moescope/weight_footprint.h"
#include "ui/engine_types.h"

class QBoxLayout;
class QComboBox;
class QLabel;
class QSlider;
class QSpinBox;
class QTableWidget;
class QCustomPlot;

namespace moescope::ui {

class EngineFeed;

class AnatomyView : public QWidget {
  Q_OBJECT
public:
  explicit AnatomyView(EngineFeed* feed, QWidget* parent = nullptr);

  void showSpec(const ModelSpec& spec, const QString& source);  // adds/selects nothing in the combo
  bool showPreset(const QString& name);
  bool openConfig(const QString& path);  // a config.json (or a model directory)
  void setContext(int tokens);
  int contextTokens() const;
  bool exportCsv(const QString& path) const;

  QTableWidget* paramsTable() const { return params_; }
  QTableWidget* memoryTable() const { return memory_; }
  QString summaryText() const;
  // The parts, for tests of the layout (none may overlap another).
  QWidget* content() const { return content_; }
  // The loaded model (what the engine feed reports): its directory and its weights' footprint,
  // which the memory table shows first while "loaded model" is the source.
  void setLoadedModel(const QString& dir, std::shared_ptr<const WeightFootprint> footprint);
  QLabel* summaryLabel() const { return summary_; }
  QCustomPlot* plot() const { return plot_; }
  QSpinBox* contextBox() const { return context_; }

signals:
  // "learn more" was clicked: the window opens the guide at this view's page (ui/guide.h).
  void learnMoreRequested(const QString& view_id);

protected:
  void resizeEvent(QResizeEvent* e) override;

private:
  void onSource(int index);
  void refreshMemory();
  void fitParamsHeight(int rows);
  void setModelDir(const QString& dir);

  std::optional<ModelSpec> spec_;
  QString loaded_dir_;
  // The loaded model's weights as they are (its file's quantisation): a first memory row while the
  // loaded model is shown.
  std::shared_ptr<const WeightFootprint> loaded_footprint_;
  bool showing_loaded_ = false;
  QWidget* content_;
  QBoxLayout* middle_;
  QComboBox* source_;
  QLabel* summary_;
  QTableWidget* params_;
  QCustomPlot* plot_;
  QSpinBox* context_;
  QSlider* slider_;
  QTableWidget* memory_;
  QLabel* error_;
};

}  // namespace moescope::ui
