#include "moescope/session.h"

#include <algorithm>
#include <chrono>
#include <spdlog/spdlog.h>

#include "moescope/error.h"
#include "moescope/mapped_files.h"

namespace moescope {

namespace {
double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
bool same_control(const RoutingControl& a, const RoutingControl& b) {
  return a.disabled == b.disabled && a.forced_expert == b.forced_expert && a.forced_layer == b.forced_layer &&
         a.top_k == b.top_k && a.ignore_bias == b.ignore_bias;
}
}  // namespace

const char* stop_reason_name(StopReason r) {
  switch (r) {
    case StopReason::MaxTokens: return "max_tokens";
    case StopReason::EndOfSequence: return "eos";
    case StopReason::Cancelled: return "cancelled";
    case StopReason::ContextFull: return "context_full";
  }
  return "?";
}

Session::Session(std::shared_ptr<const Model> model, std::unique_ptr<Backend> backend)
    : model_(std::move(model)), backend_(std::move(backend)) {
  const auto& s = model_->spec;
  // A dense model (no MoE layer) keeps a trace of tokens without routes.
  const int k = s.n_moe_layers() > 0 ? std::max(1, std::min(s.moe.router.n_experts, s.moe.router.top_k)) : 0;
  trace_ = RoutingTrace(s.name, s.moe.router.n_experts, k,
                        s.moe_layer_indices());
}

void Session::reset() {
  backend_->truncate(0);
  cached_.clear();
  trace_.clear();
}

int Session::reuse_prefix(std::span<const int32_t> prompt, const RoutingControl& control) {
  // KV entries computed under other interventions are not valid for this run.
  if (!same_control(control, cached_control_)) {
    reset();
    cached_control_ = control;
  }
  size_t common = 0;
  const size_t limit = std::min({cached_.size(), prompt.size() - 1, size_t(backend_->n_cached())});  // feed >= 1 token
  while (common < limit && cached_[common] == prompt[common]) ++common;
  // A recurrent state (linear attention) cannot be rewound: reuse all of it or start again.
  if (const int keep = backend_->reusable_prefix(int(common)); keep < int(common)) {
    spdlog::debug("reusing {} of {} cached tokens: the backend's recurrent state cannot be rewound to {}", keep,
                  backend_->n_cached(), common);
    common = size_t(keep);
  }
  backend_->truncate(int(common));
  cached_.resize(common);
  trace_.truncate(common);
  return int(common);
}

void Session::record(std::span<const int32_t> tokens, int pos0, Phase phase, const ForwardResult& r) {
  const size_t first = trace_.size();
  const int nm = r.n_moe_layers, K = r.top_k;
  for (size_t t = 0; t < tokens.size(); ++t) {
    TraceToken tk;
    tk.pos = pos0 + int(t);
    tk.id = tokens[t];
    tk.phase = phase;
    if (token_text) tk.text = token_text(tokens[t]);
    const size_t row = t * size_t(nm);
    trace_.append(tk, r.expert_ids.data() + row * K, r.expert_weights.data() + row * K, K,
                  r.probs.empty() ? nullptr : r.probs.data() + row * size_t(trace_.n_experts()),
                  r.shared_gates.empty() ? nullptr : r.shared_gates.data() + row);
  }
  (void)first;
}

ForwardResult Session::prefill(std::span<const int32_t> tokens, bool all_logits, const RoutingControl* control) {
  static const RoutingControl kNone;
  const RoutingControl& c = control ? *control : kNone;
  if (tokens.empty()) throw Error("no tokens to run");
  check_mapped_files();  // a checkpoint truncated since loading: a clear error, not SIGBUS
  int reused = reuse_prefix(tokens, c);
  if (all_logits && reused > 0) {  // logits of every token: run from scratch
    reset();
    reused = 0;
  }
  ForwardOptions opt;
  opt.all_logits = all_logits;
  opt.control = &c;
  auto rest = tokens.subspan(size_t(reused));
  ForwardResult r;
  backend_->forward(rest, opt, r);
  record(rest, reused, Phase::Prefill, r);
  cached_.insert(cached_.end(), rest.begin(), rest.end());
  return r;
}

GenerateResult Session::generate(std::span<const int32_t> prompt, const GenerateParams& p,
                                 GenerationObserver* observer, const std::atomic<bool>* cancel) {
  if (prompt.empty()) throw Error("empty prompt");
  check_mapped_files();  // a checkpoint truncated since loading: a clear error, not SIGBUS
  if (int(prompt.size()) >= backend_->context_length())
    throw Error("the prompt has " + std::to_string(prompt.size()) + " tokens but the context holds " +
                std::to_string(backend_->context_length()) + " (start a new chat or drop the oldest turns)");
  GenerateResult res;
  res.prompt_tokens = int(prompt.size());
  res.reused_tokens = reuse_prefix(prompt, p.control);

  ForwardOptions opt;
  opt.control = &p.control;
  opt.router_probs = p.record_probs;
  const size_t first_new = trace_.size();
  auto t0 = std::chrono::steady_clock::now();
  auto rest = prompt.subspan(size_t(res.reused_tokens));
  backend_->forward(rest, opt, fwd_);
  record(rest, res.reused_tokens, Phase::Prefill, fwd_);
  cached_.insert(cached_.end(), rest.begin(), rest.end());
  res.prefill_seconds = seconds_since(t0);
  if (observer) {
    observer->on_prefill(int(rest.size()), res.prefill_seconds);
    observer->on_trace(trace_, first_new);
  }

  Sampler sampler(p.sampling, spec().vocab_size);
  std::vector<int32_t> history(prompt.begin(), prompt.end());
  history.reserve(history.size() + size_t(std::max(0, p.max_tokens)));
  double step_seconds = res.prefill_seconds;
  auto is_stop = [&](int32_t id) {
    if (p.stop_at_eos && std::find(spec().eos_ids.begin(), spec().eos_ids.end(), id) != spec().eos_ids.end()) return true;
    return std::find(p.stop_ids.begin(), p.stop_ids.end(), id) != p.stop_ids.end();
  };
  for (int i = 0; i < p.max_tokens; ++i) {
    if (cancel && cancel->load(std::memory_order_relaxed)) {
      res.reason = StopReason::Cancelled;
      return res;
    }
    const int32_t id = sampler.sample(fwd_.logits.data(), history);
    res.generated.push_back(id);
    history.push_back(id);
    if (observer) observer->on_token(id, step_seconds);
    if (is_stop(id)) {
      res.reason = StopReason::EndOfSequence;
      return res;
    }
    if (i + 1 == p.max_tokens) break;
    if (backend_->n_cached() + 1 > backend_->context_length()) {
      res.reason = StopReason::ContextFull;
      return res;
    }
    auto ts = std::chrono::steady_clock::now();
    const int32_t one[1] = {id};
    backend_->forward(std::span<const int32_t>(one, 1), opt, fwd_);
    const size_t before = trace_.size();
    record(std::span<const int32_t>(one, 1), int(cached_.size()), Phase::Decode, fwd_);
    cached_.push_back(id);
    step_seconds = seconds_since(ts);
    res.decode_seconds += step_seconds;
    ++res.decode_steps;
    if (observer) observer->on_trace(trace_, before);
  }
  res.reason = StopReason::MaxTokens;
  return res;
}

}  // namespace moescope
