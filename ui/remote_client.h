#pragma once
// The remote backend: chat with a model served by an OpenAI-compatible server (vLLM, SGLang,
// moescope-cli serve) and fill the same routing trace a local model fills, from the routed experts
// the server returns (moescope/remote_routing.h: vLLM's and SGLang's wire formats).
//
// Lives in the engine host's worker thread beside the local engine (a child of the EngineWorker);
// Qt Network runs there on that thread's event loop, so a streaming answer never blocks it or the
// UI. What arrives goes into the same StreamBuffer the local engine writes, and the same stop flag
// ends it (the request is closed). Every failure is one line: the connection, the HTTP status with
// the server's own JSON message, a timeout (no byte for RemoteServer::timeout_ms), a server gone
// mid-answer (the partial answer is kept: GenerationSummary::error), a malformed payload, and a
// response without routing (GenerationSummary::notice names the server flag to add).
#include <QElapsedTimer>
#include <QObject>
#include <QPointer>
#include <QTimer>
#include <filesystem>
#include <memory>
#include <optional>

#include "moescope/remote_routing.h"
#include "moescope/tokenizer.h"
#include "ui/engine_requests.h"
#include "ui/engine_types.h"

class QNetworkAccessManager;
class QNetworkReply;
class QNetworkRequest;

namespace moescope::ui {

class StreamBuffer;
struct WorkerFlags;

// The base URL's endpoint `path` ("/v1/models"): scheme and host checked, a trailing "/v1" or "/"
// accepted. Error with one line for anything else.
QUrl remote_endpoint(const QString& base, const QString& path);
// The server's message from an error body: {"error": {"message": …}}, {"message": …},
// {"detail": …}, {"error": "…"}; the body itself (cut) when it is not JSON.
QString remote_error_message(const QByteArray& body);
// The model config the user named (server dialog, routing dumps): a config.json, a checkpoint
// folder or a preset name. Error listing the presets when it is none of them.
std::filesystem::path model_config_path(const QString& config);
// An expert count for a model known only from its routing: the smallest usual count (8, 16, …, 512)
// that holds expert `largest_id`, else largest_id + 1.
int inferred_expert_count(int largest_id);

class RemoteClient : public QObject {
  Q_OBJECT
public:
  // buffer and flags belong to the host and outlive the client.
  RemoteClient(StreamBuffer* buffer, WorkerFlags* flags, QObject* parent = nullptr);
  ~RemoteClient() override;

  bool isConnected() const { return connected_.has_value(); }
  bool isAnswering() const { return answer_ != nullptr; }
  void connectTo(quint64 id, const RemoteServer& server);  // connected() or connectFailed()
  void disconnectServer();                                  // a local model was loaded instead
  void listModels(const ModelListRequest& request);         // listed()
  void generate(const GenerationRequest& request);          // finished() or failed()

signals:
  void connected(quint64 id, const moescope::ui::ModelInfo& info);
  void connectFailed(quint64 id, const QString& message);
  // The layer or expert counts were learned from a response (no config, the server said none):
  // sent before the answer's finished(), so the views take the answer's trace.
  void shapeLearned(const moescope::ui::ModelInfo& info);
  void finished(const moescope::ui::GenerationSummary& summary);
  void failed(quint64 id, const QString& message);
  // The server refused the conversation: it does not fit its context (drop_messages -1: unknown).
  void contextOverflow(quint64 id, int prompt_tokens, int context, int drop_messages);
  void listed(const moescope::ui::ModelListOutcome& outcome);

private:
  struct Connection {
    RemoteServer server;
    ModelInfo info;
    remote::TraceShape shape;  // n_experts 0: not known yet
    std::shared_ptr<const Tokenizer> tokenizer;  // from a local config folder, for the prompt's text
  };
  struct Answer;

  QNetworkAccessManager& network();
  QNetworkRequest request_for(const RemoteServer& server, const QString& path) const;
  void onModels(quint64 id, const RemoteServer& server, QNetworkReply* reply);
  void start(const GenerationRequest& request, bool retried);
  void extendTrace(Answer& a, bool complete);
  void onData();
  void onAnswerDone();
  void endAnswer(GenerationSummary summary);
  void failAnswer(const QString& message);

  StreamBuffer* buffer_;
  WorkerFlags* flags_;
  QNetworkAccessManager* network_ = nullptr;  // made on first use, in the worker's thread
  std::optional<Connection> connected_;
  QPointer<QNetworkReply> connecting_;
  std::unique_ptr<Answer> answer_;
  QTimer stop_poll_;  // checks the host's stop flag while an answer streams
};

}  // namespace moescope::ui
