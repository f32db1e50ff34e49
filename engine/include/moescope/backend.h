#pragma once
// What every backend (CPU, CUDA) offers the generation loop: run tokens through the model,
// appending to its KV cache, and hand back logits and the routing decisions.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "moescope/model_weights.h"
#include "moescope/routing.h"

namespace moescope {

struct ForwardOptions {
  bool all_logits = false;    // logits for every token (else only for the last)
  bool router_probs = false;  // also return full router scores (for the token inspector)
  const RoutingControl* control = nullptr;  // interventions, or nullptr
};

struct ForwardResult {
  int n_tokens = 0;
  int vocab = 0;
  std::vector<float> logits;  // [all_logits ? n_tokens : 1, vocab]
  // Routing, [n_tokens][n_moe_layers][top_k]: experts in descending selection score and the
  // final weights multiplied with their outputs.
  int n_moe_layers = 0;
  int top_k = 0;
  std::vector<int32_t> expert_ids;
  std::vector<float> expert_weights;
  std::vector<float> probs;  // [n_tokens][n_moe_layers][n_experts] when requested
  // [n_tokens][n_moe_layers]: the sigmoid gate of a gated shared expert (Qwen2-MoE, Qwen3.5),
  // where the backend records it (CPU); empty otherwise.
  std::vector<float> shared_gates;
};

struct KvStats {
  int64_t tokens = 0;          // positions in use
  int64_t capacity = 0;        // context length the cache was sized for
  int block_tokens = 0;        // tokens per paged block
  int64_t blocks_used = 0;
  int64_t blocks_total = 0;
  int64_t bytes_per_token_layer = 0;  // in the cache's element type
  int64_t bytes_used = 0;             // all layers
  int64_t bytes_reserved = 0;         // allocated blocks, all layers
  int64_t mha_bytes_per_token_layer = 0;  // what plain multi-head attention would need
  int n_layers = 0;                   // layers with a KV cache
  std::string element_type;  // "F32", "BF16"
  // Linear-attention layers keep a fixed-size state instead (it does not grow with the tokens).
  int state_layers = 0;
  int64_t state_bytes = 0;            // all of them together
};

struct BackendOptions {
  std::string kind = "auto";  // "cpu", "cuda" or "auto" (CUDA when a device is usable)
  int context = 0;            // KV capacity in tokens; 0: min(max_position_embeddings, 8192)
  int threads = 0;            // CPU threads; 0: one per physical core
};

class Backend {
public:
  virtual ~Backend() = default;
  virtual std::string name() const = 0;        // "CPU (2 threads)", "CUDA: NVIDIA H100 80GB HBM3"
  virtual const ModelSpec& spec() const = 0;
  virtual int context_length() const = 0;
  virtual int n_cached() const = 0;            // tokens in the KV cache
  // Runs tokens at positions [n_cached(), n_cached() + n) and appends them to the cache.
  // Throws Error when the context would overflow (nothing is appended then).
  virtual void forward(std::span<const int32_t> tokens, const ForwardOptions& options, ForwardResult& out) = 0;
  virtual void truncate(int n_tokens) = 0;     // forget cached positions >= n_tokens
  // The longest prefix of at most n cached positions that truncate() can keep. A KV cache keeps
  // any prefix; a recurrent state (linear attention) only all of it or nothing, so a backend
  // with one answers n_cached() when n >= n_cached() and 0 otherwise.
  virtual int reusable_prefix(int n) const { return n; }
  // Seconds spent in the linear-attention state update (convolution and recurrence) since the
  // backend was made; 0 where there is none or it is not measured.
  virtual double linear_state_seconds() const { return 0.0; }
  virtual KvStats kv_stats() const = 0;
  // Another backend of the same kind on the same weights (on a GPU: the same device copy) with a
  // KV cache of its own for `context` tokens (0: as this one): a second Session on one loaded
  // model, as the app's experiments run beside the chat. Used from one thread at a time with
  // this backend (the engine host runs every session on its worker thread).
  virtual std::unique_ptr<Backend> sibling(int context) const = 0;

  // Physical limits measured on this backend's memory and compute, for benchmark rooflines:
  // read bandwidth of the memory the weights live in, and dense matmul throughput.
  struct Calibration {
    double bandwidth_gbs = 0.0;   // GB/s (1e9 bytes)
    double matmul_tflops = 0.0;   // in the precision prefill uses (BF16 on CUDA, FP32 on CPU)
    std::string method;           // how it was measured
  };
  virtual Calibration calibrate() = 0;
  // Bytes of device memory in use by this backend (0 for the CPU backend).
  virtual int64_t device_memory_used() const { return 0; }
};

// For backends: the checks and sizing every forward() starts with, shared so that each backend
// refuses the same input with the same message. Throws Error for no tokens, a token id outside
// the vocabulary or a prompt past the context (`n_cached` + tokens > `capacity`); otherwise sizes
// `out` (logits, routing, probs) for the effective top-k and returns the control to route by
// (options.control, or one that changes nothing).
const RoutingControl& begin_forward(const ModelSpec& spec, std::span<const int32_t> tokens, int n_cached,
                                    int capacity, const ForwardOptions& options, ForwardResult& out);

// Creates the backend named in options (for "auto": CUDA when built and a device is usable).
std::unique_ptr<Backend> make_backend(std::shared_ptr<const Model> model, const BackendOptions& options);
// True when this build has the CUDA backend and a CUDA device is present; reason explains a no.
bool cuda_available(std::string* reason = nullptr);

}  // namespace moescope
