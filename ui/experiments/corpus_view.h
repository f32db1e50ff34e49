#pragma once
// Corpus analysis: runs a text file or a folder (one domain per file) through the model on the
// engine host (in the experiments' session, on the loaded weights), then shows each domain's expert load per layer (heatmap), how different
// the domains' routing is per layer (Jensen-Shannon divergence), which tokens each expert takes
// most (specialisation), and exports the CSVs of CorpusAnalysis::write.
#include <QWidget>

#include "ui/engine_requests.h"

class QComboBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QTableWidget;
class QCustomPlot;
class QCPColorMap;

namespace moescope::ui {

class EngineFeed;
class EngineHost;

class CorpusView : public QWidget {
  Q_OBJECT
public:
  CorpusView(EngineFeed* feed, EngineHost* host, QWidget* parent = nullptr);

  void setModelDir(const QString& dir);
  void setCorpus(const QString& path);
  void start();
  void cancel();
  bool exportCsv(const QString& dir) const;  // CorpusAnalysis::write
  const AnalysisOutcome& outcome() const { return outcome_; }
  QProgressBar* progress() const { return progress_; }

signals:
  // "learn more" was clicked: the window opens the guide at this view's page (ui/guide.h).
  void learnMoreRequested(const QString& view_id);
  void finished(const moescope::ui::AnalysisOutcome& outcome);

private:
  void showLayer(int moe_index);

  EngineHost* host_;
  QString model_dir_;
  quint64 pending_ = 0;
  AnalysisOutcome outcome_;
  QLineEdit* path_;
  QPushButton* run_;
  QPushButton* cancel_;
  QPushButton* export_;
  QProgressBar* progress_;
  QLabel* status_;
  QComboBox* layer_;
  QCustomPlot* plot_;
  QCPColorMap* map_ = nullptr;
  QTableWidget* divergence_;
  QTableWidget* top_tokens_;
};

}  // namespace moescope::ui
