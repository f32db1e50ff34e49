#pragma once
// The routing trace: for every token and every MoE layer, the selected experts (in descending
// selection score) and their final weights; optionally the full router scores. Stored compactly
// (16-bit ids, half-precision weights) so a long conversation with a 61-layer, 256-expert model
// stays small. JSON version 1 is the format in DESIGN.md.
//
// Weights unknown: a trace filled from a remote server's routed experts (vLLM, SGLang: ids only)
// has no weights. append() with weights == nullptr marks the whole trace so; has_weights() is then
// false, weight() answers 0, and the JSON form leaves out every "weights" array and says
// "weights_known": false. Statistics (routing_stats.h) use only the ids.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace moescope {

enum class Phase : uint8_t { Prefill, Decode };

struct TraceToken {
  int32_t pos = 0;
  int32_t id = 0;
  std::string text;
  Phase phase = Phase::Prefill;
  bool operator==(const TraceToken&) const = default;
};

class RoutingTrace {
public:
  RoutingTrace() = default;
  RoutingTrace(std::string model, int n_experts, int top_k, std::vector<int> moe_layers);

  // ids/weights: [n_moe_layers][k] for one token, k <= top_k() (rest padded as "none"); ids
  // outside [0, n_experts) are "none" too. weights == nullptr: not known (see above).
  // probs: [n_moe_layers][n_experts] or nullptr. shared_gates: [n_moe_layers], the sigmoid gate of a
  // gated shared expert (Qwen2-MoE, Qwen3.5) at each MoE layer, or nullptr (tokens without them
  // read as 0 once a trace has some).
  void append(const TraceToken& token, const int32_t* ids, const float* weights, int k, const float* probs = nullptr,
              const float* shared_gates = nullptr);
  void truncate(size_t n_tokens);
  void clear() { truncate(0); }
  // Segments: tokens [first, last) as a trace of their own (same shape; probabilities when this
  // trace has them), and the bulk append of one. Appending a segment whose first token sits at a
  // position this trace already holds (positions ascend) first cuts the trace there (the session re-used a shorter
  // prefix: an edit or a regenerate). This is how the app moves a trace from the engine to the
  // views: immutable segments, each copied once, never converted (docs/architecture.md).
  RoutingTrace slice(size_t first, size_t last) const;
  // Appends tokens [first, last) of `segment` (all by default). Error when the shapes differ.
  void append(const RoutingTrace& segment, size_t first = 0, size_t last = size_t(-1));
  bool same_shape(const RoutingTrace& other) const {
    return n_experts_ == other.n_experts_ && top_k_ == other.top_k_ && moe_layers_ == other.moe_layers_;
  }
  // Every token, id, weight and score bit for bit (the model name included).
  bool operator==(const RoutingTrace&) const = default;

  size_t size() const { return tokens_.size(); }
  const TraceToken& token(size_t i) const { return tokens_[i]; }
  const std::string& model() const { return model_; }
  int n_experts() const { return n_experts_; }
  int top_k() const { return top_k_; }
  const std::vector<int>& moe_layers() const { return moe_layers_; }
  int n_moe_layers() const { return int(moe_layers_.size()); }

  // Expert id in slot `slot` of token i at MoE layer index m (index into moe_layers()); -1 = none.
  int expert(size_t i, int m, int slot) const;
  float weight(size_t i, int m, int slot) const;  // 0 when !has_weights()
  bool has_weights() const { return !weights_unknown_; }
  bool has_probs() const { return !probs_.empty(); }
  float prob(size_t i, int m, int expert) const;  // 0 when not recorded
  // The gated shared expert's gate value (JSON "shared_gate"); -1 when none was recorded.
  bool has_shared_gates() const { return !gates_.empty(); }
  float shared_gate(size_t i, int m) const;
  size_t bytes() const;                           // memory held by the routing arrays

  nlohmann::json to_json() const;
  static RoutingTrace from_json(const nlohmann::json& j);  // validates; Error on bad input
  void save(const std::filesystem::path& path) const;
  static RoutingTrace load(const std::filesystem::path& path);

private:
  size_t slot_index(size_t i, int m, int slot) const {
    return (i * size_t(moe_layers_.size()) + size_t(m)) * size_t(top_k_) + size_t(slot);
  }
  std::string model_;
  int n_experts_ = 0;
  int top_k_ = 0;
  std::vector<int> moe_layers_;
  std::vector<TraceToken> tokens_;
  std::vector<uint16_t> ids_;      // [tokens][moe_layers][top_k], 0xFFFF = none
  std::vector<uint16_t> weights_;  // same shape, IEEE half
  std::vector<uint16_t> probs_;    // [tokens][moe_layers][n_experts] half, or empty
  std::vector<uint16_t> gates_;    // [tokens][moe_layers] half: the shared expert's gate, or empty
  bool weights_unknown_ = false;   // some token was appended without weights
};

}  // namespace moescope
