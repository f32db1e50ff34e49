#pragma once
// Runs routing experiments off the UI thread (STYLE.md item 7): an ExperimentsWorker QObject in a
// QThread member, explicitly queued connections both ways, an atomic cancel flag, shutdown by
// cancel → quit() → wait(). The worker keeps its own Session on the model directory it was last
// asked about (made on first use), so a comparison or an analysis never disturbs the chat's KV
// cache; the weights are the chat's own when it is the same model (load_model_shared: one
// memory map). A CUDA backend still uploads its own copy of the weights to the device. Results come back as values (immutable analysis data behind a shared_ptr<const>).
#include <QObject>
#include <QString>
#include <QThread>
#include <atomic>
#include <memory>
#include <vector>

#include "moescope/corpus_analysis.h"
#include "moescope/routing.h"
#include "moescope/tokenizer.h"

namespace moescope::ui {

struct CompareRequest {
  quint64 id = 0;
  QString model_dir;
  QString prompt;        // a user message, rendered with the model's chat template
  RoutingControl control;
  int max_tokens = 32;   // greedy decoding, so that any difference is the intervention's
};

struct CompareOutcome {
  struct Token {
    QString text;
    double p_original = 0.0;
    double p_intervened = 0.0;
  };
  quint64 id = 0;
  QString error;  // non-empty: failed
  QString original_text, intervened_text;
  int first_token_divergence = -1;
  int route_divergence_pos = -1;    // position in prompt + original answer
  int route_divergence_layer = -1;  // model layer index
  int prompt_tokens = 0;
  double routed_overlap = 1.0;
  std::vector<Token> changes;  // one per original answer token
};

struct AnalysisRequest {
  quint64 id = 0;
  QString model_dir;
  QString corpus;  // a file (one domain) or a folder (a domain per file)
};

struct AnalysisOutcome {
  quint64 id = 0;
  QString error;
  bool cancelled = false;
  std::shared_ptr<const CorpusAnalysis> analysis;
  std::shared_ptr<const Tokenizer> tokenizer;
};

class ExperimentsWorker;

class ExperimentsRunner : public QObject {
  Q_OBJECT
public:
  explicit ExperimentsRunner(QObject* parent = nullptr);
  ~ExperimentsRunner() override;

  // The runner the app's views share (one worker thread, one model copy).
  static ExperimentsRunner* shared();

  quint64 compare(CompareRequest request);
  quint64 analyze(AnalysisRequest request);
  void cancel() { cancel_ = true; }
  bool busy() const { return busy_ > 0; }

signals:
  void compared(const moescope::ui::CompareOutcome& outcome);
  void analysisProgress(quint64 id, qint64 done, qint64 total);
  void analysed(const moescope::ui::AnalysisOutcome& outcome);

  // To the worker (queued).
  void requestCompare(const moescope::ui::CompareRequest& request);
  void requestAnalysis(const moescope::ui::AnalysisRequest& request);

private:
  QThread thread_;
  ExperimentsWorker* worker_;
  std::atomic<bool> cancel_{false};
  quint64 next_id_ = 0;
  int busy_ = 0;
};

}  // namespace moescope::ui

Q_DECLARE_METATYPE(moescope::ui::CompareRequest)
Q_DECLARE_METATYPE(moescope::ui::CompareOutcome)
Q_DECLARE_METATYPE(moescope::ui::AnalysisRequest)
Q_DECLARE_METATYPE(moescope::ui::AnalysisOutcome)
