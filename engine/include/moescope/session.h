#pragma once
// A conversation with one model on one backend: feeds token sequences, reuses the KV cache for
// the longest prefix it already holds (chat turns, regenerate, edit-and-resend), samples the
// continuation and records the routing trace. Synchronous and single-threaded from the caller's
// point of view; cancellation is an atomic flag checked before every token.
#include <atomic>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "moescope/backend.h"
#include "moescope/routing_trace.h"
#include "moescope/sampler.h"

namespace moescope {

struct GenerateParams {
  SamplingParams sampling;
  int max_tokens = 256;
  bool stop_at_eos = true;            // stop on the model's eos ids
  std::vector<int32_t> stop_ids;      // further ids that end the answer (e.g. <|im_end|>)
  RoutingControl control;             // interventions
  bool record_probs = false;          // full router scores into the trace
};

enum class StopReason { MaxTokens, EndOfSequence, Cancelled, ContextFull };
const char* stop_reason_name(StopReason r);

struct GenerateResult {
  std::vector<int32_t> generated;  // sampled ids (the stop id included when one ended it)
  StopReason reason = StopReason::MaxTokens;
  int prompt_tokens = 0;
  int reused_tokens = 0;           // prompt tokens whose KV was already cached
  double prefill_seconds = 0.0;
  double decode_seconds = 0.0;     // all decode steps
  int decode_steps = 0;            // forwards of one token
};

class GenerationObserver {
public:
  virtual ~GenerationObserver() = default;
  virtual void on_prefill(int n_tokens, double seconds) {}
  // A sampled token, before it is fed back. step_seconds: time of the step that produced it.
  virtual void on_token(int32_t id, double step_seconds) {}
  // The trace grew by tokens [first, trace.size()).
  virtual void on_trace(const RoutingTrace& trace, size_t first) {}
};

class Session {
public:
  Session(std::shared_ptr<const Model> model, std::unique_ptr<Backend> backend);

  const ModelSpec& spec() const { return model_->spec; }
  Backend& backend() { return *backend_; }
  const Backend& backend() const { return *backend_; }
  const RoutingTrace& trace() const { return trace_; }
  std::shared_ptr<const Model> model() const { return model_; }
  // Decodes one token for the trace's text field (set by whoever owns the tokenizer).
  std::function<std::string(int32_t)> token_text;

  // Runs `prompt` (the whole conversation so far) and samples a continuation.
  GenerateResult generate(std::span<const int32_t> prompt, const GenerateParams& params,
                          GenerationObserver* observer = nullptr, const std::atomic<bool>* cancel = nullptr);
  // Only feeds tokens (no sampling): analysis, scoring. Returns the logits of every token when
  // all_logits, else of the last.
  ForwardResult prefill(std::span<const int32_t> tokens, bool all_logits, const RoutingControl* control = nullptr);
  void reset();

private:
  int reuse_prefix(std::span<const int32_t> prompt, const RoutingControl& control);
  void record(std::span<const int32_t> tokens, int pos0, Phase phase, const ForwardResult& r);

  std::shared_ptr<const Model> model_;
  std::unique_ptr<Backend> backend_;
  RoutingTrace trace_;
  std::vector<int32_t> cached_;  // tokens whose K/V the backend holds, in order
  RoutingControl cached_control_;
  ForwardResult fwd_;
};

}  // namespace moescope
