#pragma once
// Routing experiments: disable experts (in one layer or everywhere), force an expert, change
// top-k, ignore DeepSeek-V3's correction bias. The intervention applies to the chat's next
// answers (ActiveIntervention) until reset. "Compare with/without" runs one prompt twice on the
// engine host, in a session of its own beside the chat's, and shows both answers, where routing first diverged and how each token of
// the original answer became more or less likely under the intervention.
#include <QWidget>

#include "ui/engine_requests.h"
#include "ui/engine_types.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QLineEdit;
class QListWidget;
class QPushButton;
class QSpinBox;
class QTableWidget;
class QTextBrowser;

namespace moescope::ui {

class ActiveIntervention;
class EngineFeed;
class EngineHost;

class RoutingPanel : public QWidget {
  Q_OBJECT
public:
  // host: runs the comparison on the loaded model; intervention: what the panel edits, which the
  // chat applies to its next answers.
  RoutingPanel(EngineFeed* feed, EngineHost* host, ActiveIntervention* intervention, QWidget* parent = nullptr);

  // The model the comparison runs on (also set by EngineFeed::modelChanged).
  void setModel(const QString& dir, const std::vector<int>& moe_layers, int n_experts, int top_k, bool has_bias,
                bool has_shared = false);
  // Disables `experts` in `layer` (-1: every MoE layer). Applies at once.
  void disableExperts(int layer, const std::vector<int>& experts);
  void setForced(int expert, int layer);
  void setTopK(int k);
  void setIgnoreBias(bool on);
  void reset();
  RoutingControl control() const;

  void setPrompt(const QString& prompt);
  void startCompare();
  const CompareOutcome& lastOutcome() const { return outcome_; }

signals:
  // "learn more" was clicked: the window opens the guide at this view's page (ui/guide.h).
  void learnMoreRequested(const QString& view_id);
  void compareFinished(const moescope::ui::CompareOutcome& outcome);

private:
  void apply();  // the widgets → ActiveIntervention
  void showOutcome(const CompareOutcome& o);
  void refreshIndicator();

  EngineHost* host_;
  ActiveIntervention* intervention_;
  QString model_dir_;
  std::vector<int> moe_layers_;
  int n_experts_ = 0;
  int n_layers_ = 0;
  bool has_shared_ = false;  // a shared expert runs where every routed one is disabled
  std::vector<std::pair<int, int>> disabled_;  // (layer or -1, expert)
  quint64 pending_ = 0;
  CompareOutcome outcome_;

  QLabel* indicator_;
  QPushButton* reset_;
  QComboBox* scope_;
  QLineEdit* experts_;
  QListWidget* rules_;
  QSpinBox* forced_;
  QComboBox* forced_scope_;
  QSpinBox* top_k_;
  QCheckBox* ignore_bias_;
  QLineEdit* prompt_;
  QSpinBox* max_tokens_;
  QPushButton* compare_;
  QLabel* status_;
  QTextBrowser* original_;
  QTextBrowser* intervened_;
  QTableWidget* tokens_;
};

}  // namespace moescope::ui
