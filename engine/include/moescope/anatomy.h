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
#include <string>
#include <vector>
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

// The KV-cache figure every place shows the same way (`inspect`, Model anatomy, the KV view): bytes
// per token for the whole model (all softmax-attention layers) in a named cache element type, the
// per-layer figure as a detail, and what plain multi-head attention would need beside it.
struct KvFigure {
  std::string element_type = "BF16";
  int layers = 0;                   // layers keeping K/V per token
  int64_t bytes_per_token = 0;      // all of them
  int64_t bytes_per_token_layer = 0;
  int64_t mha_bytes_per_token = 0;  // the multi-head equivalent, all layers
  int64_t state_bytes = 0;          // linear-attention layers' fixed state (fp32), not per token
  double times_smaller() const { return bytes_per_token > 0 ? double(mha_bytes_per_token) / double(bytes_per_token) : 0.0; }
};
// From the spec alone, at `bytes_per_value` (2 for BF16/F16, 4 for F32) named `element_type`.
KvFigure kv_figure(const ModelSpec& spec, int bytes_per_value = 2, const std::string& element_type = "BF16");
// "68.6 KiB per token in BF16 for all 61 layers (1.1 KiB per layer); MLA: 71.1× smaller than
// multi-head attention (4.8 MiB)". `attention` names the kind ("MLA", "GQA", ...).
std::string kv_figure_text(const KvFigure& kv, const std::string& attention);
// "MLA", "GQA" or "MHA".
std::string attention_kind_name(const ModelSpec& spec);
// Bytes in binary units with three significant figures: "68.6 KiB".
std::string format_bytes_iec(double bytes);
// The context `inspect` and Model anatomy size the memory figures for by default: the model's own
// (max_position_embeddings), 4096 when the config gives none.
int64_t default_memory_context(const ModelSpec& spec);

// The weight formats the memory figures are given for: the safetensors types, FP8 and INT4, and
// llama.cpp's GGUF types and mixes. Bits per weight include the block scales (Q4_K: 144 bytes a
// block of 256 = 4.5); the _M mixes and Q2_K are llama-quantize's mixes of several types, whose
// share of each varies a little by model: typical figures (within ~0.1 bit), e.g. DeepSeek-R1's
// published Q4_K_M file is 4.8 bits a weight.
struct WeightFormat {
  const char* key;    // "q4_k_m"
  const char* label;  // "Q4_K_M"
  double bits_per_weight;
};
const std::vector<WeightFormat>& weight_formats();

// The `moescope-cli inspect` JSON: architecture, layers, attention kind, experts, parameter
// breakdown, KV bytes per token, and for each weight format (weight_formats()) the weights, the KV
// cache at `context` tokens, their total and the weight bytes a decoded token reads.
nlohmann::json anatomy_json(const ModelSpec& spec, int64_t context);

}  // namespace moescope
