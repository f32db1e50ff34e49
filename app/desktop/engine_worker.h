#pragma once
// The engine on its own thread (STYLE.md item 7): loads a checkpoint, holds the Session, renders
// the conversation with the checkpoint's chat template and generates. Lives in the QThread that
// EngineController owns; every call arrives and every result leaves through a queued connection,
// as values. While generating, tokens / routes / KV figures go into the StreamBuffer that the
// controller's timer drains; the stop flag is checked by the engine before every token.
#include <QObject>
#include <atomic>
#include <memory>
#include <optional>

#include "engine_requests.h"
#include "moescope/chat.h"
#include "moescope/session.h"
#include "ui/engine_types.h"

namespace moescope::desktop {

class StreamBuffer;

class EngineWorker : public QObject {
  Q_OBJECT
public:
  // buffer, stop and load_cancel belong to the controller and outlive the worker.
  EngineWorker(StreamBuffer* buffer, const std::atomic<bool>* stop, const std::atomic<quint64>* load_cancel);
  ~EngineWorker() override;

public slots:
  void load(const moescope::desktop::LoadRequest& request);
  void generate(const moescope::desktop::GenerationRequest& request);

signals:
  void loadProgress(quint64 id, const QString& stage, int percent);
  void loaded(quint64 id, const moescope::ui::ModelInfo& info);
  void loadFailed(quint64 id, const QString& message);
  void finished(const moescope::ui::GenerationSummary& summary);
  void failed(quint64 id, const QString& message);
  // The prompt does not fit: prompt_tokens of context; drop_messages: how many of the oldest
  // messages to drop so that it fits (-1: even the last message alone does not fit).
  void contextOverflow(quint64 id, int prompt_tokens, int context, int drop_messages);

private:
  void run_generation(const GenerationRequest& request);
  int fitting_drop(const nlohmann::ordered_json& messages, int budget) const;

  StreamBuffer* buffer_;
  const std::atomic<bool>* stop_;
  const std::atomic<quint64>* load_cancel_;
  std::unique_ptr<Session> session_;
  std::optional<ChatFormat> format_;
};

}  // namespace moescope::desktop
