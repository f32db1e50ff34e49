#include "engine_controller.h"

#include <limits>
#include <spdlog/spdlog.h>

#include "engine_worker.h"
#include "ui/engine_feed.h"

namespace moescope::desktop {

EngineController::EngineController(ui::EngineFeed* feed, QObject* parent) : QObject(parent), feed_(feed) {
  qRegisterMetaType<LoadRequest>();
  qRegisterMetaType<GenerationRequest>();
  qRegisterMetaType<ui::StreamChunk>();
  qRegisterMetaType<ui::ModelInfo>();
  qRegisterMetaType<ui::GenerationSummary>();

  thread_.setObjectName(QStringLiteral("moescope-engine"));
  worker_ = new EngineWorker(&buffer_, &stop_, &load_cancel_);
  worker_->moveToThread(&thread_);

  connect(this, &EngineController::requestLoad, worker_, &EngineWorker::load, Qt::QueuedConnection);
  connect(this, &EngineController::requestGenerate, worker_, &EngineWorker::generate, Qt::QueuedConnection);

  connect(worker_, &EngineWorker::loadProgress, this, [this](quint64 id, const QString& stage, int percent) {
    if (id == load_id_ && loading_) emit loadProgress(stage, percent);
  }, Qt::QueuedConnection);
  connect(worker_, &EngineWorker::loaded, this, [this](quint64 id, const ui::ModelInfo& info) {
    // A cancelled load may still finish in the worker; it then holds the new model, so the
    // window follows it rather than show a model that is gone.
    loading_ = loading_ && id != load_id_;
    has_model_ = true;
    model_ = info;
    if (feed_) emit feed_->modelChanged(info);
    emit modelLoaded(info);
  }, Qt::QueuedConnection);
  connect(worker_, &EngineWorker::loadFailed, this, [this](quint64 id, const QString& message) {
    if (id != load_id_ || !loading_) return;
    loading_ = false;
    emit modelLoadFailed(load_dir_, message);
  }, Qt::QueuedConnection);
  connect(worker_, &EngineWorker::finished, this, [this](const ui::GenerationSummary& summary) {
    flush();  // the last tokens before the summary
    endGeneration();
    if (feed_) emit feed_->generationFinished(summary);
    emit generationFinished(summary);
  }, Qt::QueuedConnection);
  connect(worker_, &EngineWorker::failed, this, [this](quint64, const QString& message) {
    flush();
    endGeneration();
    emit generationFailed(message);
  }, Qt::QueuedConnection);
  connect(worker_, &EngineWorker::contextOverflow, this, [this](quint64, int prompt, int context, int drop) {
    endGeneration();
    emit contextOverflow(prompt, context, drop);
  }, Qt::QueuedConnection);

  flush_timer_.setInterval(kFlushIntervalMs);
  connect(&flush_timer_, &QTimer::timeout, this, &EngineController::flush);
  thread_.start();
}

EngineController::~EngineController() {
  stop_ = true;
  load_cancel_ = std::numeric_limits<quint64>::max();
  thread_.quit();
  thread_.wait();
  delete worker_;
}

void EngineController::loadModel(const QString& dir, const QString& backend, int threads) {
  LoadRequest r;
  r.id = ++next_id_;
  r.dir = dir;
  r.backend = backend.isEmpty() ? QStringLiteral("auto") : backend;
  r.threads = threads;
  load_id_ = r.id;
  load_dir_ = dir;
  loading_ = true;
  emit loadProgress(tr("Waiting for the engine…"), 0);
  emit requestLoad(r);
}

void EngineController::cancelLoad() {
  if (!loading_) return;
  load_cancel_ = load_id_;
  loading_ = false;
  spdlog::info("model load cancelled");
  emit loadCancelled();
}

bool EngineController::generate(const nlohmann::ordered_json& messages, const ui::SamplingSettings& sampling,
                                 quint64 seed) {
  if (generating_ || !has_model_) return false;
  GenerationRequest r;
  r.id = ++next_id_;
  r.messages_json = messages.dump();
  r.sampling = sampling;
  r.seed = seed;
  r.control = control_;
  r.router_scores = router_scores_;
  generation_id_ = r.id;
  stop_ = false;
  buffer_.reset();
  generating_ = true;
  flush_timer_.start();
  if (feed_) emit feed_->generationStarted();
  emit requestGenerate(r);
  return true;
}

void EngineController::stop() {
  if (generating_) stop_ = true;
}

void EngineController::flush() {
  bool empty = true;
  ui::StreamChunk chunk = buffer_.take(&empty);
  if (empty) return;
  if (feed_) emit feed_->chunk(chunk);
  emit streamed(chunk);
}

void EngineController::endGeneration() {
  flush_timer_.stop();
  generating_ = false;
}

}  // namespace moescope::desktop
