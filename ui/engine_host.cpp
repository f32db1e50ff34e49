#include "ui/engine_host.h"

#include <limits>
#include <spdlog/spdlog.h>

#include "ui/engine_feed.h"

namespace moescope::ui {

EngineHost::EngineHost(EngineFeed* feed, QObject* parent) : QObject(parent), feed_(feed) {
  qRegisterMetaType<LoadRequest>();
  qRegisterMetaType<ModelListRequest>();
  qRegisterMetaType<ModelListOutcome>();
  qRegisterMetaType<GenerationRequest>();
  qRegisterMetaType<CompareRequest>();
  qRegisterMetaType<CompareOutcome>();
  qRegisterMetaType<AnalysisRequest>();
  qRegisterMetaType<AnalysisOutcome>();
  qRegisterMetaType<StreamChunk>();
  qRegisterMetaType<ModelInfo>();
  qRegisterMetaType<GenerationSummary>();

  thread_.setObjectName(QStringLiteral("moescope-engine"));
  worker_ = new EngineWorker(&buffer_, &flags_);
  // Commands go to the worker's thread and results come back through mailboxes (ui/thread_relay.h).
  to_worker_ = new Mailbox(worker_);  // a child made before the move, so it moves with the worker
  worker_->moveToThread(&thread_);

  to_host_ = new Mailbox(this);
  EngineWorker* w = worker_;
  relay(this, &EngineHost::requestLoad, to_worker_, [w](const LoadRequest& r) { w->load(r); });
  relay(this, &EngineHost::requestGenerate, to_worker_, [w](const GenerationRequest& r) { w->generate(r); });
  relay(this, &EngineHost::requestCompare, to_worker_, [w](const CompareRequest& r) { w->compare(r); });
  relay(this, &EngineHost::requestAnalysis, to_worker_, [w](const AnalysisRequest& r) { w->analyze(r); });
  relay(this, &EngineHost::requestModelList, to_worker_, [w](const ModelListRequest& r) { w->listModels(r); });
  // The worker's network objects are deleted in its thread, as the thread ends.
  connect(&thread_, &QThread::finished, worker_, [w] { w->shutdown(); }, Qt::DirectConnection);

  relay(worker_, &EngineWorker::loadProgress, to_host_, [this](quint64 id, const QString& stage, int percent) {
    if (id == load_id_ && loading_) emit loadProgress(stage, percent);
  });
  relay(worker_, &EngineWorker::loaded, to_host_, [this](quint64 id, const ModelInfo& info) {
    // A cancelled load may still finish in the worker; it then holds the new model, so the
    // window follows it rather than show a model that is gone.
    loading_ = loading_ && id != load_id_;
    has_model_ = true;
    model_ = info;
    if (feed_) emit feed_->modelChanged(info);
    emit modelLoaded(info);
  });
  relay(worker_, &EngineWorker::loadFailed, to_host_, [this](quint64 id, const QString& message) {
    if (id != load_id_ || !loading_) return;
    loading_ = false;
    emit modelLoadFailed(load_dir_, message);
  });
  relay(worker_, &EngineWorker::finished, to_host_, [this](const GenerationSummary& summary) {
    flush();  // the last tokens before the summary
    endGeneration();
    if (feed_) emit feed_->generationFinished(summary);
    emit generationFinished(summary);
  });
  relay(worker_, &EngineWorker::failed, to_host_, [this](quint64, const QString& message) {
    flush();
    endGeneration();
    emit generationFailed(message);
  });
  relay(worker_, &EngineWorker::contextOverflow, to_host_, [this](quint64, int prompt, int context, int drop) {
    endGeneration();
    emit contextOverflow(prompt, context, drop);
  });
  relay(worker_, &EngineWorker::compared, to_host_, [this](const CompareOutcome& o) {
    --experiments_pending_;
    emit compared(o);
  });
  relay(worker_, &EngineWorker::modelsListed, to_host_, [this](const ModelListOutcome& o) { emit modelsListed(o); });
  relay(worker_, &EngineWorker::shapeLearned, to_host_, [this](const ModelInfo& info) {
    if (!has_model_ || info.server != model_.server) return;
    model_ = info;
    if (feed_) emit feed_->modelChanged(info);
    emit modelShapeChanged(info);
  });
  relay(worker_, &EngineWorker::analysisProgress, to_host_,
        [this](quint64 id, qint64 done, qint64 total) { emit analysisProgress(id, done, total); });
  relay(worker_, &EngineWorker::analysed, to_host_, [this](const AnalysisOutcome& o) {
    --experiments_pending_;
    emit analysed(o);
  });

  flush_timer_.setInterval(kFlushIntervalMs);
  connect(&flush_timer_, &QTimer::timeout, this, &EngineHost::flush);
  thread_.start();
}

EngineHost::~EngineHost() {
  flags_.stop = true;
  flags_.cancel_analysis = true;
  flags_.load_cancel = std::numeric_limits<quint64>::max();
  thread_.quit();
  thread_.wait();
  delete worker_;  // its thread has finished: a deleteLater would never run
}

void EngineHost::startLoad(LoadRequest r) {
  r.id = ++next_id_;
  load_id_ = r.id;
  load_dir_ = r.dir;
  loading_ = true;
  emit loadProgress(tr("Waiting for the engine…"), 0);
  emit requestLoad(r);
}

void EngineHost::loadModel(const QString& dir, const QString& backend, int threads, WeightsMode weights) {
  LoadRequest r;
  r.dir = dir;
  r.backend = backend.isEmpty() ? QStringLiteral("auto") : backend;
  r.threads = threads;
  r.weights = weights;
  startLoad(std::move(r));
}

void EngineHost::loadModel(std::shared_ptr<const Model> model, const QString& name, const QString& backend,
                           int threads, int context) {
  LoadRequest r;
  r.dir = name;
  r.backend = backend.isEmpty() ? QStringLiteral("auto") : backend;
  r.threads = threads;
  r.context = context;
  r.model = std::move(model);
  startLoad(std::move(r));
}

void EngineHost::connectServer(const RemoteServer& server) {
  LoadRequest r;
  r.dir = server.url;
  r.remote = server;
  startLoad(std::move(r));
}

quint64 EngineHost::listModels(const RemoteServer& server) {
  ModelListRequest r;
  r.id = ++next_id_;
  r.server = server;
  emit requestModelList(r);
  return r.id;
}

void EngineHost::cancelLoad() {
  if (!loading_) return;
  flags_.load_cancel = load_id_;
  loading_ = false;
  spdlog::info("model load cancelled");
  emit loadCancelled();
}

bool EngineHost::generate(GenerationRequest r) {
  if (generating_ || !has_model_) return false;
  r.id = ++next_id_;
  r.router_scores = router_scores_;
  generation_id_ = r.id;
  flags_.stop = false;
  buffer_.reset();
  generating_ = true;
  flush_timer_.start();
  if (feed_) emit feed_->generationStarted();
  emit requestGenerate(r);
  return true;
}

bool EngineHost::generate(const nlohmann::ordered_json& messages, const SamplingSettings& sampling, quint64 seed,
                          const RoutingControl& control) {
  GenerationRequest r;
  r.messages_json = messages.dump();
  r.sampling = sampling;
  r.seed = seed;
  r.control = control;
  return generate(std::move(r));
}

void EngineHost::stop() {
  if (generating_) flags_.stop = true;
}

quint64 EngineHost::compare(CompareRequest request) {
  request.id = ++next_id_;
  ++experiments_pending_;
  emit requestCompare(request);
  return request.id;
}

quint64 EngineHost::analyze(AnalysisRequest request) {
  request.id = ++next_id_;
  flags_.cancel_analysis = false;
  ++experiments_pending_;
  emit requestAnalysis(request);
  return request.id;
}

void EngineHost::cancelAnalysis() { flags_.cancel_analysis = true; }

void EngineHost::flush() {
  bool empty = true;
  StreamChunk chunk = buffer_.take(&empty);
  if (empty) return;
  if (feed_) emit feed_->chunk(chunk);
  emit streamed(chunk);
}

void EngineHost::endGeneration() {
  flush_timer_.stop();
  generating_ = false;
}

}  // namespace moescope::ui
