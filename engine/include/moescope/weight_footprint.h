#pragma once
// What a loaded model's weights take, by component and type, as the backends read them: the
// file's own quantisation (a Q4_K_M GGUF: mostly Q4_K with Q6_K, the router widened to F32),
// where anatomy.h can only assume one precision for everything.
#include <cstdint>
#include <map>
#include <string>
#include <nlohmann/json_fwd.hpp>

#include "moescope/model_weights.h"

namespace moescope {

struct WeightFootprint {
  struct Part {
    int64_t bytes = 0;
    std::map<std::string, int64_t> bytes_by_type;  // "Q4_K" -> bytes
  };
  // "embedding", "attention", "linear_attention", "norms", "dense_ffn", "router", "routed_experts",
  // "shared_experts", "lm_head" (absent when tied), as in anatomy's ParamCounts.
  std::map<std::string, Part> parts;
  int64_t total_bytes = 0;
  // Bytes read to decode one token at batch 1: everything but the embedding (one row) and the
  // routed experts, which count at top_k of each MoE layer's average expert.
  int64_t decode_bytes_per_token = 0;
  std::map<std::string, int64_t> bytes_by_type;  // the whole model
  double bits_per_weight = 0.0;                  // total bytes · 8 / weights
};

WeightFootprint weight_footprint(const ModelSpec& spec, const ModelWeights& w);
// "Q4_K 55 %, Q6_K 41 %, F32 4 %": the types by share of the bytes, largest first (shares under
// 0.5 % left out).
std::string types_text(const WeightFootprint& f);
// {"total_bytes", "decode_bytes_per_token", "bits_per_weight", "types", "bytes_by_type", "parts": {...}}
nlohmann::json footprint_json(const WeightFootprint& f);

}  // namespace moescope
