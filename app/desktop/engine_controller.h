#pragma once
// The UI thread's side of the engine: owns the worker thread (a QThread member) and the worker
// QObject living in it, sends it commands through explicitly queued connections, and turns what
// it produces into ~30 updates a second with a QTimer that drains the StreamBuffer. Shutdown is
// stop → quit() → wait(). The UI thread never waits on the engine.
#include <QObject>
#include <QThread>
#include <QTimer>
#include <atomic>
#include <nlohmann/json.hpp>

#include "engine_requests.h"
#include "stream_buffer.h"
#include "ui/engine_types.h"

namespace moescope::ui {
class EngineFeed;
}

namespace moescope::desktop {

class EngineWorker;

class EngineController : public QObject {
  Q_OBJECT
public:
  static constexpr int kFlushIntervalMs = 33;  // ~30 repaints a second at most

  explicit EngineController(ui::EngineFeed* feed, QObject* parent = nullptr);
  ~EngineController() override;

  void loadModel(const QString& dir, const QString& backend, int threads = 0);
  void cancelLoad();  // the window goes back at once; the worker drops the result
  // Starts an answer to `messages` (template messages). Returns false when busy or no model.
  bool generate(const nlohmann::ordered_json& messages, const ui::SamplingSettings& sampling, quint64 seed);
  void stop();  // the engine ends the answer before its next token
  // The routing intervention applied to the next answers (ui/experiments; empty: as trained).
  void setRoutingControl(const RoutingControl& control) { control_ = control; }
  const RoutingControl& routingControl() const { return control_; }
  // Whether the next answers record the router's full scores (see RouterScores).
  void setRouterScores(RouterScores mode) { router_scores_ = mode; }
  RouterScores routerScores() const { return router_scores_; }

  bool isLoading() const { return loading_; }
  bool isGenerating() const { return generating_; }
  bool hasModel() const { return has_model_; }
  const ui::ModelInfo& model() const { return model_; }

signals:
  void loadProgress(const QString& stage, int percent);
  void modelLoaded(const moescope::ui::ModelInfo& info);
  void modelLoadFailed(const QString& dir, const QString& message);
  void loadCancelled();
  void streamed(const moescope::ui::StreamChunk& chunk);
  void generationFinished(const moescope::ui::GenerationSummary& summary);
  void generationFailed(const QString& message);
  void contextOverflow(int prompt_tokens, int context, int drop_messages);

  // To the worker (queued).
  void requestLoad(const moescope::desktop::LoadRequest& request);
  void requestGenerate(const moescope::desktop::GenerationRequest& request);

private:
  void flush();
  void endGeneration();

  ui::EngineFeed* feed_;
  QThread thread_;
  EngineWorker* worker_;
  StreamBuffer buffer_;
  std::atomic<bool> stop_{false};
  std::atomic<quint64> load_cancel_{0};  // loads with id <= this are dropped
  QTimer flush_timer_;
  quint64 next_id_ = 0;
  quint64 load_id_ = 0;
  quint64 generation_id_ = 0;
  QString load_dir_;
  bool loading_ = false;
  bool generating_ = false;
  bool has_model_ = false;
  ui::ModelInfo model_;
  RoutingControl control_;
  RouterScores router_scores_ = RouterScores::Automatic;
};

}  // namespace moescope::desktop
