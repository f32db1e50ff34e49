#pragma once
// The one engine host of the app (docs/architecture.md): the only owner of the worker thread and,
// through the EngineWorker living in it, of the loaded Model and its Sessions. Built once by the
// composition root with the user's backend choice and shared by the chat, the experiments
// (compare, corpus analysis), the views and the views bench; every request goes through it and
// runs on that one thread in arrival order, on the one loaded copy of the weights. Commands go
// out through explicitly queued connections; what generation produces comes back coalesced into
// ~30 chunks a second by a QTimer draining the StreamBuffer, and is published on the EngineFeed.
// Shutdown is stop → quit() → wait(). The UI thread never waits on the engine.
#include <QObject>
#include <QThread>
#include <QTimer>
#include <memory>
#include <nlohmann/json.hpp>

#include "ui/engine_requests.h"
#include "ui/engine_types.h"
#include "ui/engine_worker.h"
#include "ui/thread_relay.h"
#include "ui/stream_buffer.h"

namespace moescope::ui {

class EngineFeed;

class EngineHost : public QObject {
  Q_OBJECT
public:
  static constexpr int kFlushIntervalMs = 33;  // ~30 repaints a second at most

  // feed: where views follow generation (may be null: a host without views).
  explicit EngineHost(EngineFeed* feed, QObject* parent = nullptr);
  ~EngineHost() override;

  EngineFeed* feed() const { return feed_; }

  // weights: LoadOptions::weights (Q8_0: quantised at load, see moescope/model_weights.h).
  void loadModel(const QString& dir, const QString& backend, int threads = 0,
                 WeightsMode weights = WeightsMode::AsStored);
  // Tools and tests: a model built in memory (no tokenizer: answers take prompt ids).
  void loadModel(std::shared_ptr<const Model> model, const QString& name, const QString& backend, int threads = 0,
                 int context = 0);
  // The remote backend: chat with a model on an OpenAI-compatible server (vLLM, SGLang,
  // moescope-cli serve) instead of a local one; modelLoaded or modelLoadFailed follow.
  void connectServer(const RemoteServer& server);
  // The models a server lists (GET /v1/models), answered by modelsListed with the returned id.
  quint64 listModels(const RemoteServer& server);
  bool isRemote() const { return has_model_ && !model_.server.isEmpty(); }
  void cancelLoad();  // the window goes back at once; the worker drops the result
  // Starts an answer to `messages` (template messages), with `control` applied to it (empty: as
  // trained). Returns false when busy or no model.
  bool generate(const nlohmann::ordered_json& messages, const SamplingSettings& sampling, quint64 seed,
                const RoutingControl& control = {});
  // Any request (prompt ids, no stop at EOS: tools and benchmarks); its id and router-score
  // mode are the host's.
  bool generate(GenerationRequest request);
  void stop();  // the engine ends the answer before its next token
  // Whether the next answers record the router's full scores (see RouterScores).
  void setRouterScores(RouterScores mode) { router_scores_ = mode; }
  RouterScores routerScores() const { return router_scores_; }

  // Experiments on the loaded model, in a session beside the chat's (its KV cache untouched);
  // queued behind a running answer. Return the request id the outcome carries.
  quint64 compare(CompareRequest request);
  quint64 analyze(AnalysisRequest request);
  void cancelAnalysis();
  bool experimentsBusy() const { return experiments_pending_ > 0; }

  bool isLoading() const { return loading_; }
  bool isGenerating() const { return generating_; }
  bool hasModel() const { return has_model_; }
  const ModelInfo& model() const { return model_; }
  // Checkpoints read and sessions made since the host started (what tests count: one load per
  // model, whatever the chat and the experiments do).
  int modelLoads() const { return flags_.model_loads.load(); }
  int sessions() const { return flags_.sessions.load(); }

signals:
  void loadProgress(const QString& stage, int percent);
  void modelLoaded(const moescope::ui::ModelInfo& info);
  void modelLoadFailed(const QString& dir, const QString& message);
  void loadCancelled();
  void streamed(const moescope::ui::StreamChunk& chunk);
  void generationFinished(const moescope::ui::GenerationSummary& summary);
  void generationFailed(const QString& message);
  void contextOverflow(int prompt_tokens, int context, int drop_messages);
  void compared(const moescope::ui::CompareOutcome& outcome);
  void analysisProgress(quint64 id, qint64 done, qint64 total);
  void analysed(const moescope::ui::AnalysisOutcome& outcome);
  void modelsListed(const moescope::ui::ModelListOutcome& outcome);
  // The remote model's layer or expert counts were learned from a response (model() changed).
  void modelShapeChanged(const moescope::ui::ModelInfo& info);

  // To the worker (queued).
  void requestLoad(const moescope::ui::LoadRequest& request);
  void requestGenerate(const moescope::ui::GenerationRequest& request);
  void requestCompare(const moescope::ui::CompareRequest& request);
  void requestAnalysis(const moescope::ui::AnalysisRequest& request);
  void requestModelList(const moescope::ui::ModelListRequest& request);

private:
  void startLoad(LoadRequest request);
  void flush();
  void endGeneration();

  EngineFeed* feed_;
  QThread thread_;
  EngineWorker* worker_;
  Mailbox* to_worker_;  // lives in the engine's thread (a child of worker_)
  Mailbox* to_host_;    // lives in this object's thread (a child of it)
  StreamBuffer buffer_;
  WorkerFlags flags_;
  QTimer flush_timer_;
  quint64 next_id_ = 0;
  quint64 load_id_ = 0;
  quint64 generation_id_ = 0;
  QString load_dir_;
  bool loading_ = false;
  bool generating_ = false;
  bool has_model_ = false;
  int experiments_pending_ = 0;
  ModelInfo model_;
  RouterScores router_scores_ = RouterScores::Automatic;
};

}  // namespace moescope::ui
