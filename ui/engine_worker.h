#pragma once
// The engine on the host's worker thread (../shared/STYLE.md, threads): the only owner of the
// loaded Model and of its Sessions — the chat's, and one beside it for the experiments (compare
// with/without, corpus analysis) on the same weights (Backend::sibling: on a GPU, the same device
// copy). Lives in the QThread that EngineHost owns; every call arrives and every result leaves
// through a ui::Mailbox (ui/thread_relay.h), as values, so requests run one after another in arrival
// order.
// While the chat generates, text, trace segments and KV figures go into the StreamBuffer that the
// host's timer drains; the stop flag is checked by the engine before every token.
#include <QObject>
#include <atomic>
#include <memory>
#include <optional>

#include "moescope/chat.h"
#include "moescope/session.h"
#include "ui/engine_requests.h"
#include "ui/engine_types.h"

namespace moescope::ui {

class StreamBuffer;
class RemoteClient;

// Flags the host sets from the UI thread and the worker reads.
struct WorkerFlags {
  std::atomic<bool> stop{false};            // ends the chat's answer before its next token
  std::atomic<quint64> load_cancel{0};      // loads with id <= this are dropped
  std::atomic<bool> cancel_analysis{false};
  std::atomic<int> model_loads{0};          // checkpoints read since start (tests: one per model)
  std::atomic<int> sessions{0};             // sessions made on loaded models (chat + experiments)
};

class EngineWorker : public QObject {
  Q_OBJECT
public:
  // buffer and flags belong to the host and outlive the worker.
  EngineWorker(StreamBuffer* buffer, WorkerFlags* flags);
  ~EngineWorker() override;

public slots:
  void load(const moescope::ui::LoadRequest& request);
  void generate(const moescope::ui::GenerationRequest& request);
  void compare(const moescope::ui::CompareRequest& request);
  void analyze(const moescope::ui::AnalysisRequest& request);
  void listModels(const moescope::ui::ModelListRequest& request);
  // In the worker's thread as it ends: the network objects go while their thread still runs.
  void shutdown();

signals:
  void loadProgress(quint64 id, const QString& stage, int percent);
  void loaded(quint64 id, const moescope::ui::ModelInfo& info);
  void loadFailed(quint64 id, const QString& message);
  void finished(const moescope::ui::GenerationSummary& summary);
  void failed(quint64 id, const QString& message);
  // The prompt does not fit: prompt_tokens of context; drop_messages: how many of the oldest
  // messages to drop so that it fits (-1: even the last message alone does not fit).
  void contextOverflow(quint64 id, int prompt_tokens, int context, int drop_messages);
  void compared(const moescope::ui::CompareOutcome& outcome);
  void analysisProgress(quint64 id, qint64 done, qint64 total);
  void analysed(const moescope::ui::AnalysisOutcome& outcome);
  void shapeLearned(const moescope::ui::ModelInfo& info);  // remote backend (RemoteClient)
  void modelsListed(const moescope::ui::ModelListOutcome& outcome);

private:
  void run_generation(const GenerationRequest& request);
  int fitting_drop(const nlohmann::ordered_json& messages, int budget) const;
  Session& experiments_session();  // made on first use, on the chat's weights
  const ChatFormat& format() const;

  StreamBuffer* buffer_;
  WorkerFlags* flags_;
  RemoteClient* remote_;                   // a child: chats with a server instead of session_
  std::unique_ptr<Session> session_;       // the chat's
  std::unique_ptr<Session> experiments_;   // compare and corpus analysis
  std::optional<ChatFormat> format_;       // empty for a model built in memory (no tokenizer)
};

}  // namespace moescope::ui
