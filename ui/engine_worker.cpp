#include "ui/engine_worker.h"

#include <QFile>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "moescope/compare.h"
#include "moescope/error.h"
#include "moescope/model_weights.h"
#include "ui/remote_client.h"
#include "ui/stream_buffer.h"

namespace moescope::ui {

namespace {

QString qs(const std::string& s) { return QString::fromStdString(s); }

// The experiments' session holds at most this many tokens (a compared prompt and its answer, a
// corpus window of 256): its KV cache is allocated up front, beside the chat's.
constexpr int kExperimentsContext = 2048;

// Hands what the engine reports during generate() to the stream buffer: decoded text, the new
// part of the session's trace (appended there to the pending segment, in the engine's own form)
// and the KV figures. Special tokens are left out of the text, except for a harmony model
// (gpt-oss), whose channel markers tell the reasoning from the answer (ui/thinking.h).
class BufferObserver : public GenerationObserver {
public:
  BufferObserver(StreamBuffer& buffer, const ChatFormat* format, const Backend& backend)
      : buffer_(buffer), backend_(backend) {
    if (format) decoder_.emplace(format->tokenizer(), /*skip_special_tokens=*/!format->harmony());
  }

  void on_token(int32_t id, double step_seconds) override {
    ++tokens_;
    decode_seconds_ += step_seconds;
    const std::string piece = decoder_ ? decoder_->push(id) : "<" + std::to_string(id) + ">";
    text_ += piece;
    buffer_.add_text(qs(piece), 1, tokens_per_second());
    buffer_.set_kv(backend_.kv_stats());
    if (const int64_t device = backend_.device_memory_used(); device > 0) buffer_.set_device_bytes(device);
  }

  void on_trace(const RoutingTrace& trace, size_t first) override { buffer_.add_trace(trace, first); }

  std::string finish() {
    const std::string rest = decoder_ ? decoder_->flush() : std::string();
    if (!rest.empty()) {
      text_ += rest;
      buffer_.add_text(qs(rest), 0, tokens_per_second());
    }
    return text_;
  }
  double tokens_per_second() const { return decode_seconds_ > 0 ? tokens_ / decode_seconds_ : 0.0; }

private:
  StreamBuffer& buffer_;
  std::optional<StreamingDecoder> decoder_;
  const Backend& backend_;
  std::string text_;
  int tokens_ = 0;
  double decode_seconds_ = 0.0;
};

QString read_text(const std::filesystem::path& p) {
  QFile f(QString::fromStdString(p.string()));
  if (!f.open(QIODevice::ReadOnly)) return {};
  return QString::fromUtf8(f.readAll());
}

// Each MoE layer's correction bias as floats (empty where there is none or it is not in host memory).
std::shared_ptr<const std::vector<std::vector<float>>> router_biases(const Model& model, const std::vector<int>& moe_layers) {
  auto out = std::make_shared<std::vector<std::vector<float>>>(moe_layers.size());
  for (size_t m = 0; m < moe_layers.size(); ++m) {
    const size_t l = size_t(moe_layers[m]);
    if (l >= model.weights.layers.size()) continue;
    const TensorView& b = model.weights.layers[l].router_bias;
    if (!b.data || b.numel() != model.spec.moe.router.n_experts) continue;
    (*out)[m].resize(size_t(b.numel()));
    to_f32(b.dtype, b.data, (*out)[m].data(), b.numel());
  }
  return out;
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

EngineWorker::EngineWorker(StreamBuffer* buffer, WorkerFlags* flags)
    : buffer_(buffer), flags_(flags), remote_(new RemoteClient(buffer, flags, this)) {
  // The remote backend answers asynchronously on this thread's event loop; its outcomes leave as
  // the local engine's do.
  connect(remote_, &RemoteClient::connected, this, [this](quint64 id, const ModelInfo& info) {
    if (flags_->load_cancel.load() >= id) {
      remote_->disconnectServer();
      return;
    }
    experiments_.reset();
    session_.reset();  // the server answers from now on; the local weights are given back
    format_.reset();
    emit loadProgress(id, tr("Ready"), 100);
    emit loaded(id, info);
  });
  connect(remote_, &RemoteClient::connectFailed, this, &EngineWorker::loadFailed);
  connect(remote_, &RemoteClient::shapeLearned, this, &EngineWorker::shapeLearned);
  connect(remote_, &RemoteClient::finished, this, &EngineWorker::finished);
  connect(remote_, &RemoteClient::failed, this, &EngineWorker::failed);
  connect(remote_, &RemoteClient::contextOverflow, this, &EngineWorker::contextOverflow);
  connect(remote_, &RemoteClient::listed, this, &EngineWorker::modelsListed);
}

EngineWorker::~EngineWorker() = default;

const ChatFormat& EngineWorker::format() const {
  if (!format_) throw Error("this model has no tokenizer: it takes prompts as token ids");
  return *format_;
}

void EngineWorker::load(const LoadRequest& request) {
  const std::filesystem::path dir = request.dir.toStdString();
  auto cancelled = [&] { return flags_->load_cancel.load() >= request.id; };
  if (request.remote && remote_) {
    emit loadProgress(request.id, tr("Connecting to %1…").arg(request.remote->url), 30);
    remote_->connectTo(request.id, *request.remote);
    return;
  }
  try {
    std::shared_ptr<const Model> model = request.model;
    std::optional<ChatFormat> format;
    if (!model) {
      spdlog::info("loading model {} (backend {}, weights {})", dir.string(), request.backend.toStdString(),
                   weights_mode_name(request.weights));
      if (!std::filesystem::exists(dir)) throw Error("model " + dir.string() + " does not exist");
      if (!std::filesystem::is_directory(dir) && !is_gguf_path(dir))
        throw Error(dir.string() + " is neither a checkpoint directory nor a GGUF file");
      emit loadProgress(request.id, request.weights == WeightsMode::Q8_0 ? tr("Reading and quantising the weights…")
                                                                          : tr("Reading the checkpoint…"),
                        10);
      model = load_model_shared(dir, LoadOptions{request.weights});
      ++flags_->model_loads;
      if (cancelled()) return;
      emit loadProgress(request.id, tr("Reading the tokenizer and chat template…"), 55);
      format.emplace(ChatFormat::from_dir(dir));
      if (cancelled()) return;
    }
    emit loadProgress(request.id, tr("Preparing the backend…"), 75);
    BackendOptions options;
    options.kind = request.backend.toStdString();
    options.threads = request.threads;
    options.context = request.context;
    // The previous model stays usable until the new one is ready (a cancelled or failed load
    // leaves it in place).
    auto session = std::make_unique<Session>(model, make_backend(model, options));
    ++flags_->sessions;
    if (cancelled()) return;
    if (format) {
      auto tok = format->tokenizer_ptr();
      session->token_text = [tok](int32_t id) { return tok->decode(std::span<const int32_t>(&id, 1)); };
    } else {
      session->token_text = [](int32_t id) { return "<" + std::to_string(id) + ">"; };
    }

    ModelInfo info;
    info.dir = request.model ? QString() : request.dir;  // in memory: `dir` is its name
    info.name = request.model ? request.dir : qs(model->spec.name.empty() ? dir.filename().string() : model->spec.name);
    info.spec = std::shared_ptr<const ModelSpec>(model, &model->spec);
    info.architecture = qs(model->spec.architecture);
    info.backend = qs(session->backend().name());
    info.weights = qs(weights_label(*model));
    info.weights_mode = model->weights_mode;
    info.footprint = std::make_shared<const WeightFootprint>(weight_footprint(model->spec, model->weights));
    info.context_length = session->backend().context_length();
    info.n_layers = model->spec.n_layers;
    info.n_experts = model->spec.moe.router.n_experts;
    info.top_k = model->spec.moe.router.top_k;
    info.moe_layers = model->spec.moe_layer_indices();
    info.router_bias = router_biases(*model, info.moe_layers);
    if (format) {
      const ChatPrompt probe = format->render(nlohmann::ordered_json::array({{{"role", "user"}, {"content", "Hello"}}}));
      info.template_fallback = probe.used_fallback;
      info.template_problem = qs(probe.used_fallback ? probe.fallback_reason : format->template_problem());
      info.generation_config_json =
          read_text((std::filesystem::is_directory(dir) ? dir : dir.parent_path()) / "generation_config.json");
    }
    if (const int64_t device = session->backend().device_memory_used(); device > 0) info.device_bytes = device;

    experiments_.reset();  // it ran on the previous model's weights
    if (remote_) remote_->disconnectServer();
    session_ = std::move(session);
    format_ = std::move(format);
    spdlog::info("model {} ready on {}", info.name.toStdString(), info.backend.toStdString());
    emit loadProgress(request.id, tr("Ready"), 100);
    emit loaded(request.id, info);
  } catch (const std::exception& e) {
    spdlog::error("loading {} failed: {}", dir.string(), e.what());
    emit loadFailed(request.id, QString::fromUtf8(e.what()));
  }
}

void EngineWorker::generate(const GenerationRequest& request) {
  if (remote_ && remote_->isConnected()) {
    remote_->generate(request);  // finished() or failed() come later, from the network
    return;
  }
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
  if (!session_) throw Error("no model is loaded");
  ChatPrompt prompt;
  nlohmann::ordered_json messages;
  if (!request.prompt_ids.empty()) {
    prompt.ids = request.prompt_ids;
  } else {
    messages = nlohmann::ordered_json::parse(request.messages_json);
    prompt = format().render(messages);
  }
  const int context = session_->backend().context_length();
  // Room for at least a short answer; the answer itself may still end at the context limit.
  const int budget = context - std::min(64, std::max(1, context / 8));
  if (int(prompt.ids.size()) > budget) {
    const int drop = format_ && !messages.empty() ? fitting_drop(messages, budget) : -1;
    spdlog::warn("prompt of {} tokens does not fit the context of {}", prompt.ids.size(), context);
    emit contextOverflow(request.id, int(prompt.ids.size()), context, drop);
    return;
  }

  GenerateParams params;
  const SamplingSettings& s = request.sampling;
  params.sampling.temperature = float(s.temperature);
  params.sampling.top_p = float(s.top_p);
  params.sampling.top_k = s.top_k;
  params.sampling.min_p = float(s.min_p);
  params.sampling.repetition_penalty = float(s.repetition_penalty);
  params.sampling.seed = request.seed;
  params.max_tokens = s.max_tokens;
  params.stop_at_eos = request.stop_at_eos;
  if (format_ && request.stop_at_eos) params.stop_ids = format_->stop_ids();
  params.control = request.control;
  params.record_probs = records_router_scores(request.router_scores, int(session_->spec().moe_layer_indices().size()),
                                              session_->spec().moe.router.n_experts);

  BufferObserver observer(*buffer_, format_ ? &*format_ : nullptr, session_->backend());
  const GenerateResult result = session_->generate(prompt.ids, params, &observer, &flags_->stop);
  const std::string text = observer.finish();

  GenerationSummary summary;
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
  summary.trace = std::make_shared<const RoutingTrace>(session_->trace());
  spdlog::info("answer: {} tokens ({}), prompt {} ({} reused), {:.1f} tokens/s", summary.generated_tokens,
               summary.stop_reason.toStdString(), summary.prompt_tokens, summary.reused_tokens,
               summary.tokens_per_second);
  emit finished(summary);
}

void EngineWorker::listModels(const ModelListRequest& request) {
  if (remote_) remote_->listModels(request);
}

void EngineWorker::shutdown() {
  delete remote_;
  remote_ = nullptr;
}

Session& EngineWorker::experiments_session() {
  if (remote_ && remote_->isConnected())
    throw Error("this experiment changes or re-runs the model's routing, which a server does not allow: open a local model "
                "(File ▸ Open model) to run it");
  if (!session_) throw Error("no model is loaded: load one first (File ▸ Open model)");
  if (!experiments_) {
    const int context = std::min(kExperimentsContext, session_->backend().context_length());
    experiments_ = std::make_unique<Session>(session_->model(), session_->backend().sibling(context));
    experiments_->token_text = session_->token_text;
    ++flags_->sessions;
    spdlog::info("experiments: a session of {} tokens beside the chat's, on the same weights ({})", context,
                 experiments_->backend().name());
  }
  return *experiments_;
}

void EngineWorker::compare(const CompareRequest& request) {
  CompareOutcome out;
  out.id = request.id;
  try {
    Session& session = experiments_session();
    const ChatFormat& fmt = format();
    const auto messages = nlohmann::ordered_json::array({{{"role", "user"}, {"content", request.prompt.toStdString()}}});
    const ChatPrompt prompt = fmt.render(messages);
    GenerateParams params;
    params.sampling.temperature = 0.0f;  // greedy: both runs are deterministic
    params.max_tokens = request.max_tokens;
    params.stop_ids = fmt.stop_ids();
    const RunComparison rc = compare_runs(session, prompt.ids, params, request.control);
    const Tokenizer& tok = fmt.tokenizer();
    auto text = [&](const std::vector<int32_t>& ids) { return QString::fromStdString(tok.decode(ids, true)); };
    out.original_text = text(rc.original);
    out.intervened_text = text(rc.intervened);
    out.first_token_divergence = rc.first_token_divergence;
    out.route_divergence_pos = rc.first_route_divergence_pos;
    // compare_runs reports the MoE layer's index among the MoE layers; the UI speaks model layers.
    const std::vector<int> moe_layers = session.spec().moe_layer_indices();
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

void EngineWorker::analyze(const AnalysisRequest& request) {
  AnalysisOutcome out;
  out.id = request.id;
  try {
    Session& session = experiments_session();
    const ChatFormat& fmt = format();
    const std::vector<Domain> domains = read_corpus(request.corpus.toStdString());
    AnalysisOptions options;
    options.cancel = &flags_->cancel_analysis;
    int last_percent = -1;
    // At most ~100 progress signals, whatever the corpus size.
    options.progress = [&](size_t done, size_t total) {
      const int percent = total ? int(100 * done / total) : 100;
      if (percent == last_percent) return;
      last_percent = percent;
      emit analysisProgress(request.id, qint64(done), qint64(total));
    };
    out.analysis = std::make_shared<CorpusAnalysis>(analyze_corpus(session, fmt.tokenizer(), domains, options));
    out.tokenizer = fmt.tokenizer_ptr();
  } catch (const std::exception& e) {
    out.cancelled = flags_->cancel_analysis.load();
    if (!out.cancelled) spdlog::error("corpus analysis failed: {}", e.what());
    out.error = out.cancelled ? QStringLiteral("cancelled") : QString::fromUtf8(e.what());
  }
  emit analysed(out);
}

}  // namespace moescope::ui
