#include "engine_worker.h"

#include <QFile>
#include <QFileInfo>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "moescope/error.h"
#include "moescope/model_weights.h"
#include "stream_buffer.h"

namespace moescope::desktop {

namespace {

QString qs(const std::string& s) { return QString::fromStdString(s); }

// Copies what the engine reports during generate() into the stream buffer, by value.
class BufferObserver : public GenerationObserver {
public:
  // probs: this answer records the router's full scores (earlier tokens of the trace may have
  // them while this answer's do not: the trace pads those with zeros).
  BufferObserver(StreamBuffer& buffer, const Tokenizer& tokenizer, const Backend& backend, bool probs)
      : buffer_(buffer), decoder_(tokenizer, /*skip_special_tokens=*/true), backend_(backend), probs_(probs) {}

  void on_token(int32_t id, double step_seconds) override {
    ++tokens_;
    decode_seconds_ += step_seconds;
    const std::string piece = decoder_.push(id);
    text_ += piece;
    buffer_.add_text(qs(piece), 1, decode_seconds_ > 0 ? tokens_ / decode_seconds_ : 0.0);
    buffer_.set_kv(backend_.kv_stats());
    if (const int64_t device = backend_.device_memory_used(); device > 0) buffer_.set_device_bytes(device);
  }

  void on_trace(const RoutingTrace& trace, size_t first) override {
    std::vector<ui::TokenRoute> routes;
    routes.reserve(trace.size() - first);
    const int n_moe = trace.n_moe_layers(), k = trace.top_k(), n_experts = trace.n_experts();
    const bool probs = probs_ && trace.has_probs();
    for (size_t i = first; i < trace.size(); ++i) {
      const TraceToken& t = trace.token(i);
      ui::TokenRoute r;
      r.pos = t.pos;
      r.id = t.id;
      r.text = qs(t.text);
      r.prefill = t.phase == Phase::Prefill;
      r.n_moe_layers = n_moe;
      r.top_k = k;
      r.experts.resize(size_t(n_moe) * size_t(k));
      r.weights.resize(size_t(n_moe) * size_t(k));
      for (int m = 0; m < n_moe; ++m)
        for (int s = 0; s < k; ++s) {
          r.experts[size_t(m * k + s)] = int16_t(trace.expert(i, m, s));
          r.weights[size_t(m * k + s)] = trace.weight(i, m, s);
        }
      if (probs) {
        r.n_experts = n_experts;
        r.probs.resize(size_t(n_moe) * size_t(n_experts));
        for (int m = 0; m < n_moe; ++m)
          for (int e = 0; e < n_experts; ++e) r.probs[size_t(m) * size_t(n_experts) + size_t(e)] = trace.prob(i, m, e);
      }
      routes.push_back(std::move(r));
    }
    buffer_.add_routes(std::move(routes));
  }

  std::string finish() {
    const std::string rest = decoder_.flush();
    if (!rest.empty()) {
      text_ += rest;
      buffer_.add_text(qs(rest), 0, decode_seconds_ > 0 ? tokens_ / decode_seconds_ : 0.0);
    }
    return text_;
  }
  double tokens_per_second() const { return decode_seconds_ > 0 ? tokens_ / decode_seconds_ : 0.0; }

private:
  StreamBuffer& buffer_;
  StreamingDecoder decoder_;
  const Backend& backend_;
  const bool probs_;
  std::string text_;
  int tokens_ = 0;
  double decode_seconds_ = 0.0;
};

QString read_text(const std::filesystem::path& p) {
  QFile f(QString::fromStdString(p.string()));
  if (!f.open(QIODevice::ReadOnly)) return {};
  return QString::fromUtf8(f.readAll());
}

}  // namespace

bool records_router_scores(RouterScores mode, int n_moe_layers, int n_experts) {
  switch (mode) {
    case RouterScores::Always: return true;
    case RouterScores::Never: return false;
    case RouterScores::Automatic: return int64_t(n_moe_layers) * n_experts <= kAutomaticRouterScores;
  }
  return false;
}

EngineWorker::EngineWorker(StreamBuffer* buffer, const std::atomic<bool>* stop, const std::atomic<quint64>* load_cancel)
    : buffer_(buffer), stop_(stop), load_cancel_(load_cancel) {}

EngineWorker::~EngineWorker() = default;

void EngineWorker::load(const LoadRequest& request) {
  const std::filesystem::path dir = request.dir.toStdString();
  auto cancelled = [&] { return load_cancel_->load() >= request.id; };
  try {
    spdlog::info("loading model {} (backend {})", dir.string(), request.backend.toStdString());
    if (!std::filesystem::exists(dir)) throw Error("model " + dir.string() + " does not exist");
    if (!std::filesystem::is_directory(dir) && !is_gguf_path(dir))
      throw Error(dir.string() + " is neither a checkpoint directory nor a GGUF file");
    emit loadProgress(request.id, tr("Reading the checkpoint…"), 10);
    std::shared_ptr<const Model> model = load_model_shared(dir);
    if (cancelled()) return;
    emit loadProgress(request.id, tr("Reading the tokenizer and chat template…"), 55);
    ChatFormat format = ChatFormat::from_dir(dir);
    if (cancelled()) return;
    emit loadProgress(request.id, tr("Preparing the backend…"), 75);
    BackendOptions options;
    options.kind = request.backend.toStdString();
    options.threads = request.threads;
    auto session = std::make_unique<Session>(model, make_backend(model, options));
    if (cancelled()) return;
    auto tok = format.tokenizer_ptr();
    session->token_text = [tok](int32_t id) { return tok->decode(std::span<const int32_t>(&id, 1)); };

    ui::ModelInfo info;
    info.dir = request.dir;
    info.name = qs(model->spec.name.empty() ? dir.filename().string() : model->spec.name);
    info.architecture = qs(model->spec.architecture);
    info.backend = qs(session->backend().name());
    info.context_length = session->backend().context_length();
    info.n_layers = model->spec.n_layers;
    info.n_experts = model->spec.moe.router.n_experts;
    info.top_k = model->spec.moe.router.top_k;
    info.moe_layers = model->spec.moe_layer_indices();
    const ChatPrompt probe = format.render(nlohmann::ordered_json::array({{{"role", "user"}, {"content", "Hello"}}}));
    info.template_fallback = probe.used_fallback;
    info.template_problem = qs(probe.used_fallback ? probe.fallback_reason : format.template_problem());
    info.generation_config_json =
        read_text((std::filesystem::is_directory(dir) ? dir : dir.parent_path()) / "generation_config.json");
    if (const int64_t device = session->backend().device_memory_used(); device > 0) info.device_bytes = device;

    session_ = std::move(session);
    format_.emplace(std::move(format));
    spdlog::info("model {} ready on {}", info.name.toStdString(), info.backend.toStdString());
    emit loadProgress(request.id, tr("Ready"), 100);
    emit loaded(request.id, info);
  } catch (const std::exception& e) {
    spdlog::error("loading {} failed: {}", dir.string(), e.what());
    emit loadFailed(request.id, QString::fromUtf8(e.what()));
  }
}

void EngineWorker::generate(const GenerationRequest& request) {
  try {
    run_generation(request);
  } catch (const std::exception& e) {
    spdlog::error("generation failed: {}", e.what());
    emit failed(request.id, QString::fromUtf8(e.what()));
  }
}

int EngineWorker::fitting_drop(const nlohmann::ordered_json& messages, int budget) const {
  // Keep a leading system message; drop the oldest turns until the prompt fits.
  const bool has_system = !messages.empty() && messages[0].value("role", "") == "system";
  const size_t first = has_system ? 1 : 0;
  for (size_t drop = 1; first + drop < messages.size(); ++drop) {
    nlohmann::ordered_json kept = nlohmann::ordered_json::array();
    if (has_system) kept.push_back(messages[0]);
    for (size_t i = first + drop; i < messages.size(); ++i) kept.push_back(messages[i]);
    if (int(format_->render(kept).ids.size()) <= budget) return int(drop);
  }
  return -1;
}

void EngineWorker::run_generation(const GenerationRequest& request) {
  if (!session_ || !format_) throw Error("no model is loaded");
  const auto messages = nlohmann::ordered_json::parse(request.messages_json);
  const ChatPrompt prompt = format_->render(messages);
  const int context = session_->backend().context_length();
  // Room for at least a short answer; the answer itself may still end at the context limit.
  const int budget = context - std::min(64, std::max(1, context / 8));
  if (int(prompt.ids.size()) > budget) {
    const int drop = fitting_drop(messages, budget);
    spdlog::warn("prompt of {} tokens does not fit the context of {}", prompt.ids.size(), context);
    emit contextOverflow(request.id, int(prompt.ids.size()), context, drop);
    return;
  }

  GenerateParams params;
  const ui::SamplingSettings& s = request.sampling;
  params.sampling.temperature = float(s.temperature);
  params.sampling.top_p = float(s.top_p);
  params.sampling.top_k = s.top_k;
  params.sampling.min_p = float(s.min_p);
  params.sampling.repetition_penalty = float(s.repetition_penalty);
  params.sampling.seed = request.seed;
  params.max_tokens = s.max_tokens;
  params.stop_ids = format_->stop_ids();
  params.control = request.control;
  params.record_probs = records_router_scores(request.router_scores, int(session_->spec().moe_layer_indices().size()),
                                              session_->spec().moe.router.n_experts);

  BufferObserver observer(*buffer_, format_->tokenizer(), session_->backend(), params.record_probs);
  const GenerateResult result = session_->generate(prompt.ids, params, &observer, stop_);
  const std::string text = observer.finish();

  ui::GenerationSummary summary;
  summary.request = request.id;
  summary.text = qs(text);
  summary.stop_reason = QString::fromLatin1(stop_reason_name(result.reason));
  summary.cancelled = result.reason == StopReason::Cancelled;
  summary.context_full = result.reason == StopReason::ContextFull;
  summary.prompt_tokens = result.prompt_tokens;
  summary.reused_tokens = result.reused_tokens;
  summary.generated_tokens = int(result.generated.size());
  summary.prefill_seconds = result.prefill_seconds;
  summary.tokens_per_second = result.decode_seconds > 0 ? result.decode_steps / result.decode_seconds
                                                        : observer.tokens_per_second();
  summary.used_fallback = prompt.used_fallback;
  summary.fallback_reason = qs(prompt.fallback_reason);
  summary.kv = session_->backend().kv_stats();
  if (const int64_t device = session_->backend().device_memory_used(); device > 0) summary.device_bytes = device;
  summary.trace_json = qs(session_->trace().to_json().dump());
  spdlog::info("answer: {} tokens ({}), prompt {} ({} reused), {:.1f} tokens/s", summary.generated_tokens,
               summary.stop_reason.toStdString(), summary.prompt_tokens, summary.reused_tokens,
               summary.tokens_per_second);
  emit finished(summary);
}

}  // namespace moescope::desktop
