#include "experiments_runner.h"

#include <QCoreApplication>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <optional>
#include <spdlog/spdlog.h>

#include "moescope/chat.h"
#include "moescope/compare.h"
#include "moescope/model_weights.h"
#include "moescope/session.h"

namespace moescope::ui {

// Lives in the runner's thread; every slot runs there.
class ExperimentsWorker : public QObject {
  Q_OBJECT
public:
  explicit ExperimentsWorker(const std::atomic<bool>* cancel) : cancel_(cancel) {}

public slots:
  void compare(const moescope::ui::CompareRequest& request);
  void analyze(const moescope::ui::AnalysisRequest& request);

signals:
  void compared(const moescope::ui::CompareOutcome& outcome);
  void progress(quint64 id, qint64 done, qint64 total);
  void analysed(const moescope::ui::AnalysisOutcome& outcome);

private:
  void ensure_session(const QString& dir);

  const std::atomic<bool>* cancel_;
  QString dir_;
  std::unique_ptr<Session> session_;
  std::optional<ChatFormat> format_;
};

void ExperimentsWorker::ensure_session(const QString& dir) {
  if (session_ && dir == dir_) return;
  session_.reset();
  format_.reset();
  const std::filesystem::path p = dir.toStdString();
  spdlog::info("experiments: loading {}", p.string());
  std::shared_ptr<const Model> model = load_model_shared(p);  // the chat's model when it is the same
  format_.emplace(ChatFormat::from_dir(p));
  session_ = std::make_unique<Session>(model, make_backend(model, BackendOptions{}));
  dir_ = dir;
}

void ExperimentsWorker::compare(const CompareRequest& request) {
  CompareOutcome out;
  out.id = request.id;
  try {
    ensure_session(request.model_dir);
    const auto messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", request.prompt.toStdString()}}});
    const ChatPrompt prompt = format_->render(messages);
    GenerateParams params;
    params.sampling.temperature = 0.0f;  // greedy: both runs are deterministic
    params.max_tokens = request.max_tokens;
    params.stop_ids = format_->stop_ids();
    const RunComparison rc = compare_runs(*session_, prompt.ids, params, request.control);
    const Tokenizer& tok = format_->tokenizer();
    auto text = [&](const std::vector<int32_t>& ids) { return QString::fromStdString(tok.decode(ids, true)); };
    out.original_text = text(rc.original);
    out.intervened_text = text(rc.intervened);
    out.first_token_divergence = rc.first_token_divergence;
    out.route_divergence_pos = rc.first_route_divergence_pos;
    // compare_runs reports the MoE layer's index among the MoE layers; the UI speaks model layers.
    const std::vector<int> moe_layers = session_->spec().moe_layer_indices();
    const int m = rc.first_route_divergence_layer;
    out.route_divergence_layer = m >= 0 && m < int(moe_layers.size()) ? moe_layers[size_t(m)] : m;
    out.prompt_tokens = int(prompt.ids.size());
    out.routed_overlap = rc.routed_overlap;
    for (const TokenProbChange& c : rc.changes)
      out.changes.push_back({QString::fromStdString(tok.decode(std::span<const int32_t>(&c.id, 1), false)),
                             c.p_original, c.p_intervened});
  } catch (const std::exception& e) {
    spdlog::error("compare failed: {}", e.what());
    out.error = QString::fromUtf8(e.what());
  }
  emit compared(out);
}

void ExperimentsWorker::analyze(const AnalysisRequest& request) {
  AnalysisOutcome out;
  out.id = request.id;
  try {
    ensure_session(request.model_dir);
    const std::vector<Domain> domains = read_corpus(request.corpus.toStdString());
    AnalysisOptions options;
    options.cancel = cancel_;
    int last_percent = -1;
    // At most ~100 progress signals, whatever the corpus size.
    options.progress = [&](size_t done, size_t total) {
      const int percent = total ? int(100 * done / total) : 100;
      if (percent == last_percent) return;
      last_percent = percent;
      emit progress(request.id, qint64(done), qint64(total));
    };
    auto analysis = std::make_shared<CorpusAnalysis>(analyze_corpus(*session_, format_->tokenizer(), domains, options));
    out.analysis = std::move(analysis);
    out.tokenizer = format_->tokenizer_ptr();
  } catch (const std::exception& e) {
    out.cancelled = cancel_->load();
    if (!out.cancelled) spdlog::error("corpus analysis failed: {}", e.what());
    out.error = out.cancelled ? QStringLiteral("cancelled") : QString::fromUtf8(e.what());
  }
  emit analysed(out);
}

ExperimentsRunner::ExperimentsRunner(QObject* parent) : QObject(parent), worker_(new ExperimentsWorker(&cancel_)) {
  qRegisterMetaType<CompareRequest>();
  qRegisterMetaType<CompareOutcome>();
  qRegisterMetaType<AnalysisRequest>();
  qRegisterMetaType<AnalysisOutcome>();
  worker_->moveToThread(&thread_);
  connect(this, &ExperimentsRunner::requestCompare, worker_, &ExperimentsWorker::compare, Qt::QueuedConnection);
  connect(this, &ExperimentsRunner::requestAnalysis, worker_, &ExperimentsWorker::analyze, Qt::QueuedConnection);
  connect(worker_, &ExperimentsWorker::compared, this, [this](const CompareOutcome& o) {
    --busy_;
    emit compared(o);
  }, Qt::QueuedConnection);
  connect(worker_, &ExperimentsWorker::progress, this, &ExperimentsRunner::analysisProgress, Qt::QueuedConnection);
  connect(worker_, &ExperimentsWorker::analysed, this, [this](const AnalysisOutcome& o) {
    --busy_;
    emit analysed(o);
  }, Qt::QueuedConnection);
  thread_.setObjectName(QStringLiteral("moescope-experiments"));
  thread_.start();
}

ExperimentsRunner::~ExperimentsRunner() {
  cancel_ = true;
  thread_.quit();
  thread_.wait();
  delete worker_;  // its thread has finished: a deleteLater would never run
}

ExperimentsRunner* ExperimentsRunner::shared() {
  static ExperimentsRunner* runner = new ExperimentsRunner(QCoreApplication::instance());
  return runner;
}

quint64 ExperimentsRunner::compare(CompareRequest request) {
  request.id = ++next_id_;
  ++busy_;
  emit requestCompare(request);
  return request.id;
}

quint64 ExperimentsRunner::analyze(AnalysisRequest request) {
  request.id = ++next_id_;
  cancel_ = false;
  ++busy_;
  emit requestAnalysis(request);
  return request.id;
}

}  // namespace moescope::ui

#include "experiments_runner.moc"
