// The one table that maps config.json's architectures[0] to a normaliser onto ModelSpec.
// Adding a model: see docs/adding-a-model.md.
#include <algorithm>
#include <cmath>
#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "model/config_reader.h"
#include "moescope/error.h"
#include "moescope/gguf.h"
#include "moescope/model_spec.h"
#include "moescope/routing_rules.h"

namespace moescope {

using detail::ConfigReader;

namespace {

constexpr long long kMaxVocab = 1 << 22;
constexpr long long kMaxHidden = 1 << 16;
constexpr long long kMaxLayers = 1024;
constexpr long long kMaxHeads = 1024;
constexpr long long kMaxHeadDim = 1024;
constexpr long long kMaxExperts = 4096;
constexpr long long kMaxWidth = 1 << 20;
constexpr long long kMaxPositions = 1 << 24;

[[noreturn]] void inconsistent(const std::string& why) { throw Error("config.json: " + why); }

// YaRN's attention magnitude correction (DeepSeek's yarn_get_mscale).
float yarn_mscale(float scale, float mscale) {
  if (scale <= 1.0f) return 1.0f;
  return 0.1f * mscale * std::log(scale) + 1.0f;
}

// Reads rope_theta and rope scaling in both spellings: config.json as published on the Hub
// (`rope_theta` + `rope_scaling: {"type": ...}`) and as transformers 5 saves it
// (`rope_parameters: {"rope_type": ..., "rope_theta": ...}`).
void read_rope(const ConfigReader& c, RopeSpec& rope) {
  const nlohmann::json* params = nullptr;
  if (c.present("rope_parameters")) params = &c.raw().at("rope_parameters");
  else if (c.present("rope_scaling")) params = &c.raw().at("rope_scaling");
  if (params && !params->is_object()) inconsistent("rope scaling must be an object");

  rope.theta = c.number_or("rope_theta", rope.theta, 1.0, 1e12);
  if (!params) return;
  ConfigReader p(*params);
  rope.theta = p.number_or("rope_theta", rope.theta, 1.0, 1e12);
  std::string type = p.string_or("rope_type", p.string_or("type", "default"));
  if (type == "default") return;
  if (type == "llama3") {  // transformers' _compute_llama3_parameters
    rope.llama3 = true;
    rope.factor = p.number("factor", 1.0, 1e6);
    rope.low_freq_factor = p.number("low_freq_factor", 1e-3, 1e6);
    rope.high_freq_factor = p.number("high_freq_factor", 1e-3, 1e6);
    if (rope.high_freq_factor <= rope.low_freq_factor)
      inconsistent("rope scaling: high_freq_factor must exceed low_freq_factor");
    rope.original_max_position = p.integer("original_max_position_embeddings", 1, kMaxPositions);
    return;
  }
  if (type != "yarn")
    inconsistent("rope scaling type '" + type + "' is not supported (supported: default, yarn, llama3)");
  rope.yarn = true;
  rope.factor = p.number("factor", 1.0, 1e6);
  rope.beta_fast = p.number_or("beta_fast", 32.0f, 0.0, 1e6);
  rope.beta_slow = p.number_or("beta_slow", 1.0f, 0.0, 1e6);
  if (rope.beta_fast == 0.0f) rope.beta_fast = 32.0f;  // transformers: `or 32`
  if (rope.beta_slow == 0.0f) rope.beta_slow = 1.0f;
  rope.mscale = p.number_or("mscale", 0.0f, 0.0, 1e3);
  rope.mscale_all_dim = p.number_or("mscale_all_dim", 0.0f, 0.0, 1e3);
  rope.original_max_position = p.integer("original_max_position_embeddings", 1, kMaxPositions);
  rope.truncate = p.boolean_or("truncate", true);
  // cos/sin multiplier, as transformers' _compute_yarn_parameters and DeepSeek's _mscale.
  if (p.present("attention_factor")) {
    rope.attention_factor = p.number("attention_factor", 0.0, 1e3);
  } else if (rope.mscale != 0.0f && rope.mscale_all_dim != 0.0f) {
    rope.attention_factor =
        yarn_mscale(rope.factor, rope.mscale) / yarn_mscale(rope.factor, rope.mscale_all_dim);
  } else {
    rope.attention_factor = yarn_mscale(rope.factor, 1.0f);
  }
}

void read_common(const ConfigReader& c, ModelSpec& s) {
  s.model_type = c.string_or("model_type", "");
  s.vocab_size = c.integer("vocab_size", 1, kMaxVocab);
  s.hidden = c.integer("hidden_size", 1, kMaxHidden);
  s.n_layers = c.integer("num_hidden_layers", 1, kMaxLayers);
  s.max_position = c.integer_or("max_position_embeddings", 4096, 1, kMaxPositions);
  s.rms_eps = c.number_or("rms_norm_eps", 1e-6f, 1e-12, 0.5);
  s.tie_embeddings = c.boolean_or("tie_word_embeddings", false);
  s.bos_ids = c.int_or_list("bos_token_id");
  s.eos_ids = c.int_or_list("eos_token_id");
  std::string act = c.string_or("hidden_act", "silu");
  if (act != "silu") inconsistent("hidden_act '" + act + "' is not supported (supported: silu)");
  s.attn.n_heads = c.integer("num_attention_heads", 1, kMaxHeads);
  s.attn.n_kv_heads = c.integer_or("num_key_value_heads", s.attn.n_heads, 1, kMaxHeads);
  read_rope(c, s.rope);
}

// Grouped-query attention with rotary embeddings (Mixtral, Qwen, OLMoE).
void read_gqa(const ConfigReader& c, ModelSpec& s) {
  auto& a = s.attn;
  a.kind = AttentionKind::GQA;
  if (c.present("head_dim")) {
    a.head_dim = c.integer("head_dim", 2, kMaxHeadDim);
  } else {
    if (s.hidden % a.n_heads != 0)
      inconsistent("hidden_size " + std::to_string(s.hidden) + " is not divisible by num_attention_heads " +
                   std::to_string(a.n_heads));
    a.head_dim = s.hidden / a.n_heads;
  }
  if (a.n_heads % a.n_kv_heads != 0)
    inconsistent("num_attention_heads " + std::to_string(a.n_heads) +
                 " is not a multiple of num_key_value_heads " + std::to_string(a.n_kv_heads));
  float partial = c.number_or("partial_rotary_factor", 1.0f, 0.0, 1.0);
  if (c.present("rope_parameters") && c.raw().at("rope_parameters").is_object())  // transformers 5 keeps it there
    partial = ConfigReader(c.raw().at("rope_parameters")).number_or("partial_rotary_factor", partial, 0.0, 1.0);
  s.rope.dim = int(float(a.head_dim) * partial);
  s.rope.interleaved = false;
  a.softmax_scale = 1.0f / std::sqrt(float(a.head_dim));
  if (c.boolean_or("use_sliding_window", true) && c.present("sliding_window"))
    a.sliding_window = c.integer("sliding_window", 1, kMaxPositions);
}

// Qwen2-MoE / Qwen3-MoE layer pattern: sparse where (i+1) % decoder_sparse_step == 0 and i is
// not listed in mlp_only_layers.
void qwen_layer_pattern(const ConfigReader& c, ModelSpec& s) {
  int step = c.integer_or("decoder_sparse_step", 1, 1, kMaxLayers);
  std::vector<int> dense_only = c.int_list_or("mlp_only_layers");
  s.moe_layer.assign(size_t(s.n_layers), false);
  for (int i = 0; i < s.n_layers; ++i)
    s.moe_layer[size_t(i)] = (std::find(dense_only.begin(), dense_only.end(), i) == dense_only.end()) &&
                             ((i + 1) % step == 0);
}

void softmax_router(const ConfigReader& c, ModelSpec& s, const char* experts_key, bool renorm_default) {
  auto& r = s.moe.router;
  // The Hub's configs say num_experts (Qwen, OLMoE) or num_local_experts (Mixtral); transformers 5
  // saves num_local_experts for all of them. Accept either.
  const char* other = std::string(experts_key) == "num_experts" ? "num_local_experts" : "num_experts";
  r.n_experts = c.present(experts_key) || !c.present(other) ? c.integer(experts_key, 1, kMaxExperts)
                                                             : c.integer(other, 1, kMaxExperts);
  r.top_k = c.integer("num_experts_per_tok", 1, kMaxExperts);
  r.scoring = ScoreFunc::Softmax;
  r.renormalize = c.boolean_or("norm_topk_prob", renorm_default);
}

void mixtral(const ConfigReader& c, ModelSpec& s) {
  read_common(c, s);
  read_gqa(c, s);
  s.naming = TensorNaming::Mixtral;
  softmax_router(c, s, "num_local_experts", true);
  s.moe.router.renormalize = true;  // Mixtral always renormalises its top-k
  s.moe.expert_width = c.integer("intermediate_size", 1, kMaxWidth);
  s.moe_layer.assign(size_t(s.n_layers), true);
}

void qwen2_moe(const ConfigReader& c, ModelSpec& s) {
  read_common(c, s);
  read_gqa(c, s);
  s.attn.qkv_bias = c.boolean_or("qkv_bias", true);
  softmax_router(c, s, "num_experts", false);
  s.moe.expert_width = c.integer("moe_intermediate_size", 1, kMaxWidth);
  s.dense_width = c.integer("intermediate_size", 1, kMaxWidth);
  int shared = c.integer_or("shared_expert_intermediate_size", 0, 0, kMaxWidth);
  if (shared > 0) {
    s.moe.shared = SharedExperts::SigmoidGated;
    s.moe.shared_width = shared;
  }
  qwen_layer_pattern(c, s);
}

void qwen3_moe(const ConfigReader& c, ModelSpec& s) {
  read_common(c, s);
  read_gqa(c, s);
  s.attn.qk_norm = QKNorm::PerHead;
  s.attn.qkv_bias = c.boolean_or("attention_bias", false);
  softmax_router(c, s, "num_experts", false);
  s.moe.expert_width = c.integer("moe_intermediate_size", 1, kMaxWidth);
  s.dense_width = c.integer("intermediate_size", 1, kMaxWidth);
  qwen_layer_pattern(c, s);
}

void olmoe(const ConfigReader& c, ModelSpec& s) {
  read_common(c, s);
  read_gqa(c, s);
  s.attn.qk_norm = QKNorm::Full;
  s.attn.qkv_bias = c.boolean_or("attention_bias", false);
  s.attn.clip_qkv = c.number_or("clip_qkv", 0.0f, 0.0, 1e9);
  softmax_router(c, s, "num_experts", false);
  s.moe.expert_width = c.integer("intermediate_size", 1, kMaxWidth);
  s.moe_layer.assign(size_t(s.n_layers), true);
}

// `layer_types` (one "sliding_attention" or "full_attention" per layer) into attn.sliding_layer.
// Returns false when the config has no such list.
bool read_layer_types(const ConfigReader& c, ModelSpec& s) {
  if (!c.present("layer_types")) return false;
  auto& a = s.attn;
  const auto& types = c.raw().at("layer_types");
  if (!types.is_array() || types.size() != size_t(s.n_layers))
    inconsistent("layer_types has " + std::to_string(types.is_array() ? types.size() : 0) +
                 " entries but num_hidden_layers is " + std::to_string(s.n_layers));
  a.sliding_layer.assign(size_t(s.n_layers), false);
  for (size_t i = 0; i < types.size(); ++i) {
    const std::string t = types[i].is_string() ? types[i].get<std::string>() : types[i].dump();
    if (t == "sliding_attention") a.sliding_layer[i] = true;
    else if (t != "full_attention")
      inconsistent("layer_types[" + std::to_string(i) + "] is '" + t +
                   "' (supported: sliding_attention, full_attention)");
  }
  if (a.sliding_window == 0 && std::find(a.sliding_layer.begin(), a.sliding_layer.end(), true) != a.sliding_layer.end())
    inconsistent("layer_types has sliding_attention layers but sliding_window is not set");
  return true;
}

// Dense decoders (the DeepSeek-R1 distills): every layer a dense SwiGLU FFN, no router.
void dense_common(const ConfigReader& c, ModelSpec& s) {
  read_common(c, s);
  read_gqa(c, s);
  s.dense_width = c.integer("intermediate_size", 1, kMaxWidth);
  s.moe_layer.assign(size_t(s.n_layers), false);
}

// Qwen2 / Qwen3 (transformers' Qwen2Config): a sliding window only with use_sliding_window
// (default false), on the layers `layer_types` names or else on layers >= max_window_layers.
void qwen_dense_window(const ConfigReader& c, ModelSpec& s) {
  auto& a = s.attn;
  a.sliding_window = 0;
  if (!c.boolean_or("use_sliding_window", false) || !c.present("sliding_window")) return;
  a.sliding_window = c.integer("sliding_window", 1, kMaxPositions);
  if (read_layer_types(c, s)) return;
  const int first = c.integer_or("max_window_layers", 28, 0, kMaxLayers);
  a.sliding_layer.assign(size_t(s.n_layers), false);
  for (int i = first; i < s.n_layers; ++i) a.sliding_layer[size_t(i)] = true;
}

void qwen2(const ConfigReader& c, ModelSpec& s) {
  dense_common(c, s);
  s.attn.qkv_bias = true;  // Qwen2Attention: q/k/v always with bias, o_proj without
  qwen_dense_window(c, s);
}

void qwen3(const ConfigReader& c, ModelSpec& s) {
  dense_common(c, s);
  s.attn.qk_norm = QKNorm::PerHead;
  s.attn.qkv_bias = c.boolean_or("attention_bias", false);
  qwen_dense_window(c, s);
}

void llama(const ConfigReader& c, ModelSpec& s) {
  dense_common(c, s);
  s.attn.qkv_bias = c.boolean_or("attention_bias", false);  // o_proj too (bound when present)
  s.attn.sliding_window = 0;
  if (c.boolean_or("mlp_bias", false)) inconsistent("mlp_bias=true is not supported");
}

// gpt-oss (transformers' modeling_gpt_oss.py): GQA with biases on q/k/v/o and a learned sink
// logit per head, sliding-window and full layers alternating as `layer_types` says, YaRN, a
// router with a bias whose top-k logits are softmaxed, and experts with biases and the clamped
// SwiGLU. Every layer is MoE.
void gpt_oss(const ConfigReader& c, ModelSpec& s) {
  s.rope.theta = 150000.0f;  // GptOssConfig.default_theta
  read_common(c, s);
  read_gqa(c, s);
  s.naming = TensorNaming::GptOss;
  auto& a = s.attn;
  a.qkv_bias = c.boolean_or("attention_bias", true);
  a.sinks = true;
  a.sliding_window = c.present("sliding_window") ? c.integer("sliding_window", 1, kMaxPositions) : 0;
  if (!read_layer_types(c, s)) {
    // transformers' GptOssConfig default: sliding on even layers, full on odd ones.
    a.sliding_layer.assign(size_t(s.n_layers), false);
    for (int i = 0; i < s.n_layers; ++i) a.sliding_layer[size_t(i)] = i % 2 == 0;
  }
  auto& r = s.moe.router;
  r.n_experts = c.integer(c.present("num_local_experts") ? "num_local_experts" : "num_experts", 1, kMaxExperts);
  r.top_k = c.integer(c.present("num_experts_per_tok") ? "num_experts_per_tok" : "experts_per_token", 1, kMaxExperts);
  r.scoring = ScoreFunc::TopKSoftmax;
  r.logit_bias = true;
  s.moe.expert_width = c.integer("intermediate_size", 1, kMaxWidth);
  s.moe.expert_bias = true;
  s.moe.activation = ExpertActivation::ClampedSwiGLU;
  s.moe.swiglu_limit = c.number_or("swiglu_limit", 7.0f, 0.0, 1e6);
  s.moe.swiglu_alpha = c.number_or("swiglu_alpha", 1.702f, 0.0, 1e3);
  if (!c.present("rope_scaling") && !c.present("rope_parameters")) {
    // GptOssConfig's default when the config names no rope scaling: YaRN, factor 32 over 4096.
    s.rope.yarn = true, s.rope.factor = 32.0f, s.rope.beta_fast = 32.0f, s.rope.beta_slow = 1.0f;
    s.rope.truncate = false, s.rope.original_max_position = 4096;
    s.rope.attention_factor = yarn_mscale(32.0f, 1.0f);
  }
  s.moe_layer.assign(size_t(s.n_layers), true);
  if (c.present("quantization_config")) {
    ConfigReader q(c.raw().at("quantization_config"));
    std::string method = q.string_or("quant_method", "");
    if (method != "mxfp4")
      inconsistent("quantization_config.quant_method '" + method + "' is not supported for gpt-oss (supported: mxfp4)");
    // MXFP4 blocks hold 32 weights of one row: both matrix widths must be whole blocks.
    if (s.hidden % 32 != 0 || s.moe.expert_width % 32 != 0)
      inconsistent("MXFP4 experts need hidden_size and intermediate_size to be multiples of 32 (got " +
                   std::to_string(s.hidden) + " and " + std::to_string(s.moe.expert_width) + ")");
  }
}

void deepseek_moe(const ConfigReader& c, ModelSpec& s);

// DeepSeek-V2 and V3 share MLA and the dense/MoE layer pattern; routers differ.
void deepseek_common(const ConfigReader& c, ModelSpec& s) {
  read_common(c, s);
  auto& a = s.attn;
  a.kind = AttentionKind::MLA;
  a.n_kv_heads = a.n_heads;
  a.q_lora_rank = c.integer_or("q_lora_rank", 0, 0, kMaxWidth);
  a.kv_lora_rank = c.integer("kv_lora_rank", 1, kMaxWidth);
  a.qk_nope_head_dim = c.integer("qk_nope_head_dim", 0, kMaxHeadDim);
  a.qk_rope_head_dim = c.integer("qk_rope_head_dim", 2, kMaxHeadDim);
  a.v_head_dim = c.integer("v_head_dim", 1, kMaxHeadDim);
  a.qkv_bias = c.boolean_or("attention_bias", false);
  if (a.qkv_bias) inconsistent("attention_bias=true is not supported for MLA models");
  s.rope.dim = a.qk_rope_head_dim;
  s.rope.interleaved = c.boolean_or("rope_interleave", true);
  // Softmax scale: q_head_dim^-0.5, times mscale(factor, mscale_all_dim)^2 under YaRN
  // (DeepSeek's official model.py and transformers' yarn_apply_mscale).
  a.softmax_scale = 1.0f / std::sqrt(float(a.q_head_dim()));
  if (s.rope.yarn && s.rope.mscale_all_dim != 0.0f) {
    float m = yarn_mscale(s.rope.factor, s.rope.mscale_all_dim);
    a.softmax_scale *= m * m;
  }

  deepseek_moe(c, s);
}

// DeepSeek's MoE layout (also GLM-4.5's): routed + shared experts, leading dense layers.
void deepseek_moe(const ConfigReader& c, ModelSpec& s) {
  s.dense_width = c.integer("intermediate_size", 1, kMaxWidth);
  s.moe.expert_width = c.integer("moe_intermediate_size", 1, kMaxWidth);
  auto& r = s.moe.router;
  r.n_experts = c.integer("n_routed_experts", 1, kMaxExperts);
  r.top_k = c.integer("num_experts_per_tok", 1, kMaxExperts);
  r.scaling = c.number_or("routed_scaling_factor", 1.0f, 0.0, 1e6);
  r.n_group = c.integer_or("n_group", 1, 1, rules::kMaxGroups);
  r.topk_group = c.integer_or("topk_group", 1, 1, kMaxExperts);
  int n_shared = c.integer_or("n_shared_experts", 0, 0, 64);
  if (n_shared > 0) {
    s.moe.shared = SharedExperts::Plain;
    s.moe.shared_width = s.moe.expert_width * n_shared;
  }
  // Official DeepSeek: MoE where i >= first_k_dense_replace and i % moe_layer_freq == 0.
  int first_dense = c.integer_or("first_k_dense_replace", 0, 0, kMaxLayers);
  int freq = c.integer_or("moe_layer_freq", 1, 1, kMaxLayers);
  s.moe_layer.assign(size_t(s.n_layers), false);
  for (int i = 0; i < s.n_layers; ++i) s.moe_layer[size_t(i)] = i >= first_dense && i % freq == 0;
}

void deepseek_v2(const ConfigReader& c, ModelSpec& s) {
  deepseek_common(c, s);
  // DeepseekV2MLP (dense layers, shared experts) takes biases from mlp_bias; moescope's have none.
  if (c.boolean_or("mlp_bias", false)) inconsistent("mlp_bias=true is not supported for DeepSeek-V2");
  auto& r = s.moe.router;
  std::string scoring = c.string_or("scoring_func", "softmax");
  if (scoring != "softmax") inconsistent("scoring_func '" + scoring + "' is not supported for DeepSeek-V2");
  r.scoring = ScoreFunc::Softmax;
  std::string method = c.string_or("topk_method", "greedy");
  if (method == "greedy") r.group_score = GroupScore::None;
  else if (method == "group_limited_greedy") r.group_score = GroupScore::Max;
  else inconsistent("topk_method '" + method + "' is not supported for DeepSeek-V2 (greedy, group_limited_greedy)");
  // DeepSeek-V2's official MoEGate: renormalise when norm_topk_prob (top_k > 1), otherwise scale by
  // routed_scaling_factor; never both.
  r.renormalize = c.boolean_or("norm_topk_prob", false) && r.top_k > 1;
  r.scale_after_renorm = false;
}

// DeepSeek-V3's router: sigmoid scores, e_score_correction_bias for selection, groups scored by
// their two best experts (also GLM-4.5's, transformers' Glm4MoeTopkRouter).
void deepseek_v3_router(const ConfigReader& c, ModelSpec& s) {
  auto& r = s.moe.router;
  std::string scoring = c.string_or("scoring_func", "sigmoid");
  if (scoring == "sigmoid") r.scoring = ScoreFunc::Sigmoid;
  else if (scoring == "softmax") r.scoring = ScoreFunc::Softmax;
  else inconsistent("scoring_func '" + scoring + "' is not supported (sigmoid, softmax)");
  std::string method = c.string_or("topk_method", "noaux_tc");
  if (method == "noaux_tc") {
    r.correction_bias = true;
    r.group_score = GroupScore::SumTop2;
  } else if (method == "greedy") {
    r.group_score = GroupScore::None;
  } else {
    inconsistent("topk_method '" + method + "' is not supported for DeepSeek-V3 (noaux_tc, greedy)");
  }
  r.renormalize = c.boolean_or("norm_topk_prob", true);
  r.scale_after_renorm = true;
}

void deepseek_v3(const ConfigReader& c, ModelSpec& s) {
  deepseek_common(c, s);
  deepseek_v3_router(c, s);
}

// GLM-4.7-Flash (transformers' modeling_glm4_moe_lite.py): DeepSeek-V3's MLA, MoE layout and
// router; which layers are MoE comes from `mlp_layer_types` ("dense" / "sparse"), by default (no
// list, no first_k_dense_replace) layer 0 dense and the rest sparse, as Glm4MoeLiteConfig.
void glm4_moe_lite(const ConfigReader& c, ModelSpec& s) {
  deepseek_common(c, s);
  deepseek_v3_router(c, s);
  if (c.present("mlp_layer_types")) {
    const auto& types = c.raw().at("mlp_layer_types");
    if (!types.is_array())
      inconsistent("mlp_layer_types must be a list of \"dense\" or \"sparse\" per layer (num_hidden_layers " +
                   std::to_string(s.n_layers) + ")");
    if (types.size() != size_t(s.n_layers))
      inconsistent("mlp_layer_types has " + std::to_string(types.size()) + " entries but num_hidden_layers is " +
                   std::to_string(s.n_layers));
    for (size_t i = 0; i < types.size(); ++i) {
      const std::string t = types[i].is_string() ? types[i].get<std::string>() : types[i].dump();
      if (t != "dense" && t != "sparse")
        inconsistent("mlp_layer_types[" + std::to_string(i) + "] is '" + t + "' (supported: dense, sparse)");
      s.moe_layer[i] = t == "sparse";
    }
  } else if (!c.present("first_k_dense_replace")) {
    for (int i = 0; i < s.n_layers; ++i) s.moe_layer[size_t(i)] = i >= 1;
  }
}

// GLM-4.5 / 4.6 / Air (transformers' modeling_glm4_moe.py): GQA with partial rotary (the first
// partial_rotary_factor of each head, halves rotated), optional per-head q/k norm, q/k/v biases,
// DeepSeek-V3's MoE layout and router. The multi-token-prediction layer
// (num_nextn_predict_layers) is not part of the forward, as in transformers.
void glm4_moe(const ConfigReader& c, ModelSpec& s) {
  read_common(c, s);
  read_gqa(c, s);
  s.attn.sliding_window = 0;
  s.attn.qkv_bias = c.boolean_or("attention_bias", false);
  if (c.boolean_or("use_qk_norm", false)) s.attn.qk_norm = QKNorm::PerHead;
  if (!c.present("partial_rotary_factor") &&
      !(c.present("rope_parameters") && c.raw().at("rope_parameters").is_object() &&
        c.raw().at("rope_parameters").contains("partial_rotary_factor")))
    s.rope.dim = int(float(s.attn.head_dim) * 0.5f);  // Glm4MoeConfig's default
  deepseek_moe(c, s);
  deepseek_v3_router(c, s);
  // Glm4MoeDecoderLayer: MoE where layer_idx >= first_k_dense_replace, which Glm4MoeConfig
  // defaults to 1 (DeepSeek's to 0); moe_layer_freq is not read.
  const int first_dense = c.integer_or("first_k_dense_replace", 1, 0, kMaxLayers);
  for (int i = 0; i < s.n_layers; ++i) s.moe_layer[size_t(i)] = i >= first_dense;
}

// Qwen3.5-MoE (transformers' modeling_qwen3_5_moe.py): `layer_types` chooses per layer Gated
// DeltaNet linear attention or gated full attention (GQA whose q_proj also yields a sigmoid
// output gate, per-head q/k norm, partial rotary); every layer MoE with Qwen's softmax router and
// a sigmoid-gated shared expert; RMSNorms scale by (1 + w). The text model's rotary is mrope, but
// for text all three position rows are the token's position, so it is plain partial rotary.
void qwen3_5_moe(const ConfigReader& c, ModelSpec& s) {
  read_common(c, s);
  read_gqa(c, s);
  s.attn.sliding_window = 0;
  s.attn.qk_norm = QKNorm::PerHead;
  s.attn.output_gate = true;
  s.attn.qkv_bias = c.boolean_or("attention_bias", false);
  s.norm_weight_offset = 1.0f;
  if (!c.present("partial_rotary_factor") &&
      !(c.present("rope_parameters") && c.raw().at("rope_parameters").is_object() &&
        c.raw().at("rope_parameters").contains("partial_rotary_factor")))
    s.rope.dim = int(float(s.attn.head_dim) * 0.25f);  // Qwen3_5MoeTextConfig's default
  auto& la = s.linear;
  la.n_k_heads = c.integer_or("linear_num_key_heads", 16, 1, kMaxHeads);
  la.n_v_heads = c.integer_or("linear_num_value_heads", 32, 1, kMaxHeads);
  la.k_head_dim = c.integer_or("linear_key_head_dim", 128, 1, kMaxHeadDim);
  la.v_head_dim = c.integer_or("linear_value_head_dim", 128, 1, kMaxHeadDim);
  la.conv_kernel = c.integer_or("linear_conv_kernel_dim", 4, 1, 64);
  if (la.n_v_heads % la.n_k_heads != 0)
    inconsistent("linear_num_value_heads " + std::to_string(la.n_v_heads) + " is not a multiple of linear_num_key_heads " +
                 std::to_string(la.n_k_heads));
  s.linear_layer.assign(size_t(s.n_layers), false);
  if (c.present("layer_types")) {
    const auto& types = c.raw().at("layer_types");
    if (!types.is_array())
      inconsistent("layer_types must be a list of one layer type per layer (num_hidden_layers " +
                   std::to_string(s.n_layers) + ")");
    if (types.size() != size_t(s.n_layers))
      inconsistent("layer_types has " + std::to_string(types.size()) + " entries but num_hidden_layers is " +
                   std::to_string(s.n_layers));
    for (size_t i = 0; i < types.size(); ++i) {
      const std::string t = types[i].is_string() ? types[i].get<std::string>() : types[i].dump();
      if (t == "linear_attention") s.linear_layer[i] = true;
      else if (t != "full_attention")
        inconsistent("layer_types[" + std::to_string(i) + "] is '" + t + "' (supported: linear_attention, full_attention)");
    }
  } else {  // Qwen3_5MoeTextConfig: every full_attention_interval-th layer is full attention
    const int interval = c.integer_or("full_attention_interval", 4, 1, kMaxLayers);
    for (int i = 0; i < s.n_layers; ++i) s.linear_layer[size_t(i)] = (i + 1) % interval != 0;
  }
  softmax_router(c, s, "num_experts", true);
  s.moe.router.renormalize = true;  // Qwen3_5MoeTopKRouter always renormalises its top-k
  s.moe.expert_width = c.integer("moe_intermediate_size", 1, kMaxWidth);
  const int shared = c.integer_or("shared_expert_intermediate_size", 0, 0, kMaxWidth);
  if (shared > 0) {
    s.moe.shared = SharedExperts::SigmoidGated;
    s.moe.shared_width = shared;
  }
  s.moe_layer.assign(size_t(s.n_layers), true);
}

// The published Qwen3.5 checkpoints: Qwen3_5MoeForConditionalGeneration, the text model's
// config under `text_config` (tensors under model.language_model.*, TensorNaming::LanguageModel)
// and a vision tower that moescope does not run.
void qwen3_5_moe_multimodal(const ConfigReader& c, ModelSpec& s) {
  if (!c.present("text_config") || !c.raw().at("text_config").is_object())
    inconsistent("Qwen3_5MoeForConditionalGeneration needs a text_config object");
  nlohmann::json text = c.raw().at("text_config");
  // Fields the Hub keeps at the top level apply to the text model too; the top-level
  // tie_word_embeddings is the one transformers ties the composite model's head by.
  for (const char* k : {"bos_token_id", "eos_token_id"})
    if (!text.contains(k) && c.raw().contains(k)) text[k] = c.raw().at(k);
  if (c.present("tie_word_embeddings")) text["tie_word_embeddings"] = c.raw().at("tie_word_embeddings");
  qwen3_5_moe(ConfigReader(text), s);
  s.naming = TensorNaming::LanguageModel;
  s.vision_unused = c.present("vision_config");
}

struct Architecture {
  const char* name;
  std::function<void(const ConfigReader&, ModelSpec&)> normalise;
};

const std::vector<Architecture>& architectures() {
  static const std::vector<Architecture> table = {
      {"DeepseekV3ForCausalLM", deepseek_v3},
      {"DeepseekV2ForCausalLM", deepseek_v2},
      {"Qwen3MoeForCausalLM", qwen3_moe},
      {"Qwen2MoeForCausalLM", qwen2_moe},
      {"OlmoeForCausalLM", olmoe},
      {"MixtralForCausalLM", mixtral},
      {"GptOssForCausalLM", gpt_oss},
      {"Glm4MoeForCausalLM", glm4_moe},
      {"Glm4MoeLiteForCausalLM", glm4_moe_lite},
      {"Qwen3ForCausalLM", qwen3},
      {"Qwen2ForCausalLM", qwen2},
      {"LlamaForCausalLM", llama},
      {"Qwen3_5MoeForCausalLM", qwen3_5_moe},
      {"Qwen3_5MoeForConditionalGeneration", qwen3_5_moe_multimodal},
  };
  return table;
}

void validate(ModelSpec& s) {
  const auto& a = s.attn;
  if (s.rope.dim <= 0 || s.rope.dim % 2 != 0 || s.rope.dim > a.q_head_dim())
    inconsistent("rotary dimension " + std::to_string(s.rope.dim) + " must be even and at most the head dimension");
  const auto& r = s.moe.router;
  if (s.n_moe_layers() > 0) {
    if (r.top_k > r.n_experts)
      inconsistent("num_experts_per_tok " + std::to_string(r.top_k) + " exceeds the number of experts " +
                   std::to_string(r.n_experts));
    if (r.group_score != GroupScore::None) {
      if (r.n_experts % r.n_group != 0)
        inconsistent("n_group " + std::to_string(r.n_group) + " does not divide the number of experts " +
                     std::to_string(r.n_experts));
      if (r.topk_group > r.n_group)
        inconsistent("topk_group " + std::to_string(r.topk_group) + " exceeds n_group " + std::to_string(r.n_group));
      int per_group = r.n_experts / r.n_group;
      if (r.group_score == GroupScore::SumTop2 && per_group < 2 && r.n_group > 1)
        inconsistent("noaux_tc group scoring needs at least 2 experts per group");
      if (r.top_k > r.topk_group * per_group)
        inconsistent("num_experts_per_tok " + std::to_string(r.top_k) + " exceeds the experts in topk_group groups");
      if (r.n_group == 1) s.moe.router.group_score = GroupScore::None;
    }
    if (s.moe.expert_width <= 0) inconsistent("expert width must be positive");
  }
  if (s.n_linear_layers() > 0) {
    const auto& la = s.linear;
    if (la.n_k_heads <= 0 || la.n_v_heads <= 0 || la.k_head_dim <= 0 || la.v_head_dim <= 0 || la.conv_kernel <= 0)
      inconsistent("linear attention layers need positive head counts, head dims and conv kernel");
  }
  bool any_dense = std::find(s.moe_layer.begin(), s.moe_layer.end(), false) != s.moe_layer.end();
  if (any_dense && s.dense_width <= 0) inconsistent("dense layers need intermediate_size");
  for (int id : s.eos_ids)
    if (id < 0 || id >= s.vocab_size) inconsistent("eos_token_id " + std::to_string(id) + " is outside the vocabulary");
  for (int id : s.bos_ids)
    if (id < 0 || id >= s.vocab_size) inconsistent("bos_token_id " + std::to_string(id) + " is outside the vocabulary");
}

}  // namespace

std::vector<std::string> supported_architectures() {
  std::vector<std::string> names;
  for (const auto& a : architectures()) names.emplace_back(a.name);
  return names;
}

ModelSpec spec_from_config(const nlohmann::json& config) {
  if (!config.is_object()) throw Error("config.json: expected a JSON object");
  std::string supported;
  for (const auto& a : architectures()) supported += std::string(supported.empty() ? "" : ", ") + a.name;
  if (!config.contains("architectures") || !config["architectures"].is_array() ||
      config["architectures"].empty() || !config["architectures"][0].is_string())
    throw Error("config.json: 'architectures' is missing (supported: " + supported + ")");
  const std::string arch = config["architectures"][0].get<std::string>();
  for (const auto& a : architectures()) {
    if (arch != a.name) continue;
    ModelSpec s;
    s.architecture = arch;
    ConfigReader reader(config);
    a.normalise(reader, s);
    validate(s);
    return s;
  }
  throw Error("config.json: architecture '" + arch + "' is not supported (supported: " + supported + ")");
}

namespace {
nlohmann::json read_json_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  if (!in) throw Error("cannot open " + p.string());
  try {
    return nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    throw Error(p.filename().string() + ": invalid JSON (" + std::string(e.what()) + ")");
  }
}
}  // namespace

ModelSpec load_model_spec(const std::filesystem::path& dir_or_file) {
  namespace fs = std::filesystem;
  if (std::error_code ec; fs::is_regular_file(dir_or_file, ec) &&
                          (dir_or_file.extension() == ".gguf" || GgufFile::looks_like_gguf(dir_or_file)))
    return spec_from_gguf(*GgufFile::open(dir_or_file));
  fs::path file = fs::is_directory(dir_or_file) ? dir_or_file / "config.json" : dir_or_file;
  if (!fs::exists(file)) throw Error("no config.json in " + dir_or_file.string());
  ModelSpec s = spec_from_config(read_json_file(file));
  fs::path dir = file.parent_path();
  s.name = fs::is_directory(dir_or_file) ? fs::absolute(dir_or_file).filename().string() : file.stem().string();
  if (s.name.empty() || s.name == ".") s.name = fs::absolute(dir_or_file).parent_path().filename().string();
  fs::path gen = dir / "generation_config.json";
  if (fs::exists(gen)) {
    auto g = read_json_file(gen);
    ConfigReader r(g);
    for (int id : r.int_or_list("eos_token_id"))
      if (id >= 0 && id < s.vocab_size && std::find(s.eos_ids.begin(), s.eos_ids.end(), id) == s.eos_ids.end())
        s.eos_ids.push_back(id);
    if (s.bos_ids.empty()) s.bos_ids = r.int_or_list("bos_token_id");
  }
  return s;
}

int ModelSpec::n_moe_layers() const { return int(std::count(moe_layer.begin(), moe_layer.end(), true)); }

int ModelSpec::n_linear_layers() const { return int(std::count(linear_layer.begin(), linear_layer.end(), true)); }

std::vector<int> ModelSpec::moe_layer_indices() const {
  std::vector<int> out;
  for (int i = 0; i < n_layers; ++i)
    if (moe_layer[size_t(i)]) out.push_back(i);
  return out;
}

int ModelSpec::kv_values_per_token() const {
  if (attn.kind == AttentionKind::MLA) return attn.kv_lora_rank + attn.qk_rope_head_dim;
  return 2 * attn.n_kv_heads * attn.head_dim;
}

int ModelSpec::mha_kv_values_per_token() const {
  if (attn.kind == AttentionKind::MLA) return attn.n_heads * (attn.q_head_dim() + attn.v_head_dim);
  return 2 * attn.n_heads * attn.head_dim;
}

std::vector<float> RopeSpec::inverse_frequencies() const {
  // Follows transformers' _compute_default_rope_parameters / _compute_yarn_parameters.
  const int half = dim / 2;
  std::vector<float> inv(static_cast<size_t>(half));
  for (int i = 0; i < half; ++i) {
    float pos_freq = std::pow(theta, float(2 * i) / float(dim));
    inv[size_t(i)] = 1.0f / pos_freq;
  }
  if (llama3) {  // transformers' _compute_llama3_parameters
    const float low_wavelen = float(original_max_position) / low_freq_factor;
    const float high_wavelen = float(original_max_position) / high_freq_factor;
    for (int i = 0; i < half; ++i) {
      const float f = inv[size_t(i)], wavelen = 2.0f * float(M_PI) / f;
      if (wavelen < high_wavelen) continue;
      if (wavelen > low_wavelen) {
        inv[size_t(i)] = f / factor;
        continue;
      }
      const float smooth = (float(original_max_position) / wavelen - low_freq_factor) / (high_freq_factor - low_freq_factor);
      inv[size_t(i)] = (1.0f - smooth) * f / factor + smooth * f;
    }
    return inv;
  }
  if (!yarn) return inv;
  auto correction_dim = [&](float rotations) {
    return (float(dim) * std::log(float(original_max_position) / (rotations * 2.0f * float(M_PI)))) /
           (2.0f * std::log(theta));
  };
  float low = correction_dim(beta_fast), high = correction_dim(beta_slow);
  if (truncate) {
    low = std::floor(low);
    high = std::ceil(high);
  }
  low = std::max(low, 0.0f);
  high = std::min(high, float(dim - 1));
  if (low == high) high += 0.001f;  // avoid a zero-width ramp
  for (int i = 0; i < half; ++i) {
    float ramp = std::clamp((float(i) - low) / (high - low), 0.0f, 1.0f);
    float extrapolation = 1.0f - ramp;  // weight of the original frequency
    float pos_freq = std::pow(theta, float(2 * i) / float(dim));
    float interp = 1.0f / (factor * pos_freq);
    inv[size_t(i)] = interp * (1.0f - extrapolation) + (1.0f / pos_freq) * extrapolation;
  }
  return inv;
}

}  // namespace moescope
