#pragma once
// ModelSpec: every supported Hugging Face config.json normalised into one description that the
// generic transformer forward (CPU and CUDA backends) is driven by. Architectures differ only in
// how their config maps onto it; the table of architectures is in engine/src/model/architectures.cpp.
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json_fwd.hpp>

namespace moescope {

enum class AttentionKind { GQA, MLA };
enum class QKNorm { None, PerHead, Full };  // Qwen3: RMSNorm over head_dim; OLMoE: over all heads
// Softmax / Sigmoid: scores over all experts, top-k on the scores. TopKSoftmax (gpt-oss): top-k
// on the raw logits, weights = softmax over the k selected logits.
enum class ScoreFunc { Softmax, Sigmoid, TopKSoftmax };
// Group-limited expert selection: DeepSeek-V2 scores a group by its best expert, DeepSeek-V3 by
// the sum of its two best (biased) experts.
enum class GroupScore { None, Max, SumTop2 };
enum class SharedExperts { None, Plain, SigmoidGated };  // DeepSeek: plain; Qwen2-MoE: gated
// mlp.experts.E.gate_proj vs block_sparse_moe.experts.E.w1 vs gpt-oss' fused, transposed
// mlp.experts.gate_up_proj [E, H, 2W] (gate and up interleaved) with biases and mlp.router.
// LanguageModel: the Standard names under model.language_model.* instead of model.* (multimodal
// checkpoints such as Qwen3_5MoeForConditionalGeneration; lm_head.weight stays at the top).
enum class TensorNaming { Standard, Mixtral, GptOss, LanguageModel };
// The gated activation of the routed experts: silu(g)·u, or gpt-oss' clamped form
// g' = min(g, limit), u' = clamp(u, ±limit), (u' + 1)·g'·sigmoid(alpha·g').
enum class ExpertActivation { SiLU, ClampedSwiGLU };

struct RopeSpec {
  float theta = 10000.0f;
  int dim = 0;               // rotated dimensions per head (GQA: head_dim, MLA: qk_rope_head_dim)
  bool interleaved = false;  // rotate adjacent pairs (DeepSeek) instead of the two halves (Llama)
  // YaRN (rope_scaling.type == "yarn"); DeepSeek-V2/V3 use it.
  bool yarn = false;
  float factor = 1.0f;
  float beta_fast = 32.0f, beta_slow = 1.0f;
  float mscale = 0.0f, mscale_all_dim = 0.0f;
  int original_max_position = 0;
  bool truncate = true;
  float attention_factor = 1.0f;  // multiplies cos and sin (YaRN's mscale ratio)
  // Llama 3 (rope_type "llama3", the R1 Llama distills): wavelengths above
  // original_max_position / low_freq_factor are divided by `factor`, below
  // original_max_position / high_freq_factor kept, and blended in between.
  bool llama3 = false;
  float low_freq_factor = 1.0f, high_freq_factor = 4.0f;

  std::vector<float> inverse_frequencies() const;  // [dim / 2]
};

struct AttentionSpec {
  AttentionKind kind = AttentionKind::GQA;
  int n_heads = 0;
  int n_kv_heads = 0;  // GQA only
  int head_dim = 0;    // GQA only
  QKNorm qk_norm = QKNorm::None;
  bool qkv_bias = false;   // q/k/v projections carry a bias (Qwen2-MoE)
  float clip_qkv = 0.0f;   // OLMoE: clamp q, k, v to [-clip, clip]; 0 = off
  int sliding_window = 0;  // 0 = full causal attention
  // Per layer: true where the layer uses sliding_window, false where it attends to everything
  // (gpt-oss' layer_types). Empty: every layer uses sliding_window.
  std::vector<bool> sliding_layer;
  bool sinks = false;      // gpt-oss: a learned logit per head joins each softmax (self_attn.sinks)
  // q_proj yields, per head, head_dim query values then head_dim gate values; the attention
  // output (before o_proj) is multiplied by sigmoid(gate) (Qwen3-Next / Qwen3.5 gated attention).
  bool output_gate = false;
  // MLA (DeepSeek-V2/V3)
  int q_lora_rank = 0;  // 0 = plain q_proj
  int kv_lora_rank = 0;
  int qk_nope_head_dim = 0;
  int qk_rope_head_dim = 0;
  int v_head_dim = 0;
  float softmax_scale = 1.0f;  // includes YaRN's mscale^2 for MLA
  // MLA's q_a_layernorm and kv_a_layernorm: DeepSeek's model.py and transformers'
  // DeepseekV3Attention / Glm4MoeLiteAttention build them without an eps argument, so they use
  // RMSNorm's default 1e-6 whatever rms_norm_eps says.
  float latent_norm_eps = 1e-6f;

  int q_head_dim() const { return kind == AttentionKind::MLA ? qk_nope_head_dim + qk_rope_head_dim : head_dim; }
  int out_head_dim() const { return kind == AttentionKind::MLA ? v_head_dim : head_dim; }
};

struct RouterSpec {
  int n_experts = 0;
  int top_k = 0;
  ScoreFunc scoring = ScoreFunc::Softmax;
  bool correction_bias = false;  // DeepSeek-V3 e_score_correction_bias: added for selection only
  GroupScore group_score = GroupScore::None;
  int n_group = 1;
  int topk_group = 1;
  bool renormalize = false;      // divide the top-k weights by their sum
  float scaling = 1.0f;          // routed_scaling_factor
  bool scale_after_renorm = true;  // DeepSeek-V2 scales only when it does not renormalise
  bool logit_bias = false;       // the router linear has a bias (gpt-oss mlp.router.bias)
};

// Gated DeltaNet linear attention (transformers' Qwen3_5MoeGatedDeltaNet): instead of a KV cache
// the layer keeps, per value head, a [k_head_dim, v_head_dim] recurrent state and, per channel of
// its q/k/v projection, the last conv_kernel - 1 inputs of a causal depthwise convolution.
// Per token: qkv = silu(conv(in_proj_qkv · x)); q, k L2-normalised per head, q / sqrt(k_head_dim);
// beta = sigmoid(in_proj_b · x), g = -exp(A_log) · softplus(in_proj_a · x + dt_bias);
// S ← exp(g)·S;  S ← S + k ⊗ beta·(v − Sᵀk);  o = Sᵀq;  out = out_proj(rmsnorm(o)·w · silu(in_proj_z · x)).
// Each key head serves n_v_heads / n_k_heads consecutive value heads.
struct LinearAttentionSpec {
  int n_k_heads = 0, n_v_heads = 0;
  int k_head_dim = 0, v_head_dim = 0;
  int conv_kernel = 0;
  int key_dim() const { return n_k_heads * k_head_dim; }
  int value_dim() const { return n_v_heads * v_head_dim; }
  int conv_dim() const { return 2 * key_dim() + value_dim(); }  // channels of the convolution: q, k, v
  // fp32 values of the fixed-size state one layer keeps (recurrent + convolution).
  int64_t state_values() const {
    return int64_t(n_v_heads) * k_head_dim * v_head_dim + int64_t(conv_dim()) * (conv_kernel - 1);
  }
};

struct MoeSpec {
  RouterSpec router;
  int expert_width = 0;  // moe_intermediate_size
  SharedExperts shared = SharedExperts::None;
  int shared_width = 0;  // total width of the shared expert(s)
  bool expert_bias = false;  // routed experts' projections carry biases (gpt-oss)
  ExpertActivation activation = ExpertActivation::SiLU;
  float swiglu_alpha = 1.702f, swiglu_limit = 7.0f;  // ClampedSwiGLU only
};

struct ModelSpec {
  std::string architecture;  // architectures[0]
  std::string model_type;
  std::string name;          // directory name, for display
  bool vision_unused = false;  // the checkpoint also holds a vision tower, which moescope does not run
  TensorNaming naming = TensorNaming::Standard;

  int vocab_size = 0;
  int hidden = 0;
  int n_layers = 0;
  int max_position = 0;
  float rms_eps = 1e-6f;
  bool tie_embeddings = false;
  // RMSNorm multiplies by (norm_weight_offset + w): 1 for Qwen3-Next / Qwen3.5, whose checkpoints
  // store w - 1 (zero-centred) for the layer, final and q/k norms; 0 elsewhere.
  float norm_weight_offset = 0.0f;

  AttentionSpec attn;
  LinearAttentionSpec linear;
  // [n_layers] true where the layer mixes tokens with Gated DeltaNet linear attention instead of
  // softmax attention (layer_types "linear_attention"); empty: no such layer.
  std::vector<bool> linear_layer;
  RopeSpec rope;
  MoeSpec moe;
  int dense_width = 0;           // intermediate_size of the dense (non-MoE) FFN layers
  std::vector<bool> moe_layer;   // [n_layers]: true where the FFN is MoE

  std::vector<int> bos_ids, eos_ids;  // from config.json / generation_config.json

  int n_moe_layers() const;
  bool is_linear(int layer) const { return !linear_layer.empty() && linear_layer[size_t(layer)]; }
  int n_linear_layers() const;
  int n_attention_layers() const { return n_layers - n_linear_layers(); }  // layers with a KV cache
  // The sliding window of layer l (0: full causal attention).
  int window(int layer) const {
    return attn.sliding_layer.empty() || attn.sliding_layer[size_t(layer)] ? attn.sliding_window : 0;
  }
  std::vector<int> moe_layer_indices() const;
  // Values a KV cache keeps per token and layer: GQA 2·n_kv·head_dim, MLA kv_lora + rope.
  int kv_values_per_token() const;
  // What plain multi-head attention would keep per token and layer (for MLA's compression ratio).
  int mha_kv_values_per_token() const;
};

// Normalises a parsed config.json. Throws moescope::Error naming the field on anything missing,
// absurd or inconsistent, and lists the supported architectures for an unknown one.
ModelSpec spec_from_config(const nlohmann::json& config);
// Reads and normalises DIR/config.json or a config.json path; also reads generation_config.json
// beside it for bos/eos ids when present. A GGUF file (moescope/gguf.h) is read with spec_from_gguf.
ModelSpec load_model_spec(const std::filesystem::path& dir_or_file);
// The spec of a GGUF model (deepseek2, qwen3moe, qwen2moe, olmoe, llama with experts), equal to
// the one of the config.json it was converted from (engine/src/model/gguf_model.cpp says where
// GGUF lacks a field and what llama.cpp assumes instead).
class GgufFile;
ModelSpec spec_from_gguf(const GgufFile& gguf);
// The architectures[0] values that spec_from_config accepts.
std::vector<std::string> supported_architectures();

}  // namespace moescope
