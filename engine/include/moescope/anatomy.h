#pragma once
// Model anatomy from a ModelSpec alone (no weights needed): parameters by component, total vs
// active per token, KV bytes per token (MLA beside the multi-head equivalent), and the memory a
// model needs at a given weight precision and context.
//
// Counting convention (the one behind the makers' published figures): every weight of the
// transformer layers (norm weights and biases included, which are negligible), the input
// embedding and the output head; a tied head is counted once. "Active" per token: attention,
// norms, router, shared experts, top-k routed experts of each MoE layer, the dense layers, and
// embedding + head. Makers differ on whether the input embedding is active, so both figures are
// given (active and active_without_embedding).
#include <cstdint>
#include <nlohmann/json_fwd.hpp>

#include "moescope/model_spec.h"

namespace moescope {

struct ParamCounts {
  int64_t embedding = 0;
  int64_t lm_head = 0;          // 0 when tied
  int64_t attention = 0;        // softmax-attention layers (projections, q/k/latent norms)
  int64_t linear_attention = 0; // linear-attention layers (projections, convolution, decay, gated norm)
  int64_t norms = 0;            // layer norms + final norm
  int64_t dense_ffn = 0;        // dense layers' SwiGLU
  int64_t router = 0;           // router weights (+ correction bias)
  int64_t routed_experts = 0;   // all routed experts, all layers
  int64_t routed_active = 0;    // top_k experts per MoE layer
  int64_t shared_experts = 0;   // incl. Qwen2-MoE's shared_expert_gate
  int64_t total = 0;
  int64_t active = 0;
  int64_t active_without_embedding = 0;
};

ParamCounts count_params(const ModelSpec& spec);

// Bytes of weights read to decode one token at batch 1, at `bytes_per_param`: the active
// parameters less the embedding table (only one row of it is read).
double decode_weight_bytes(const ModelSpec& spec, double bytes_per_param);

// The `moescope-cli inspect` JSON: architecture, layers, attention kind, experts, parameter
// breakdown, KV bytes per token, and memory for weights (BF16/FP8/INT4) + KV at `context` tokens.
nlohmann::json anatomy_json(const ModelSpec& spec, int64_t context);

}  // namespace moescope
