// GGUF models: llama.cpp's metadata mapped onto ModelSpec, its tensor names onto ModelWeights.
//
// The rule is that a GGUF file and the Hugging Face checkpoint it was converted from (with
// llama.cpp's convert_hf_to_gguf.py) give the same ModelSpec and the same forward pass
// (test_gguf). Where GGUF has no key for a config.json field, the value is what llama.cpp itself
// assumes for the architecture (src/llama-model.cpp, src/models/*.cpp), written down below:
//   - the dense/MoE layer pattern comes from which layers have a router tensor (ffn_gate_inp);
//   - top-k renormalisation: qwen3moe and llama (Mixtral) always, qwen2moe and olmoe never,
//     deepseek2 when expert_weights_norm is set;
//   - deepseek2: DeepSeek-V3/R1 when expert_gating_func is sigmoid, V2 otherwise; the score
//     correction bias when exp_probs_b is present (noaux_tc, groups scored by their top-2 sum), V2
//     groups scored by their best expert; YaRN's mscale equals mscale_all_dim (GGUF stores only
//     the latter, as yarn_log_multiplier = 0.1·mscale_all_dim), so the cos/sin factor is
//     rope.scaling.attn_factor (default 1), as llama.cpp computes it.
// Tensor layout differences: GGUF lists dimensions innermost first (a [out, in] matrix is
// ne = [in, out]); experts are stacked into one [E, rows, cols] tensor per projection (each
// expert's weights are a view into it); llama.cpp's llama converter permutes the rows of q and k
// within each head for its interleaved RoPE (undone here, so the spec keeps HF's rotate-half);
// newer deepseek2 files split kv_b_proj into attn_k_b (transposed) and attn_v_b (joined back here).
#include <spdlog/spdlog.h>

#include <cmath>
#include <cstring>
#include <map>
#include <regex>

#include "moescope/error.h"
#include "moescope/gguf.h"
#include "moescope/model_weights.h"
#include "moescope/routing_rules.h"

namespace fs = std::filesystem;

namespace moescope {

namespace {

constexpr int64_t kMaxVocab = 1 << 22, kMaxHidden = 1 << 16, kMaxLayers = 1024, kMaxHeads = 1024,
                  kMaxHeadDim = 1024, kMaxExperts = 4096, kMaxWidth = 1 << 20, kMaxPositions = 1 << 24;

float yarn_mscale(float scale, float mscale) {
  if (scale <= 1.0f) return 1.0f;
  return 0.1f * mscale * std::log(scale) + 1.0f;
}

struct ArchMap {
  const char* gguf;
  const char* hf;
  const char* model_type;
};

// head_count_kv may be one value or one per layer; MoE models use one value.
int64_t per_model_int(const GgufFile& g, const std::string& key, int64_t fallback, int64_t lo, int64_t hi) {
  const GgufValue* v = g.find(key);
  if (v && v->type == GgufType::Array) {
    if (v->ints.empty()) throw Error(g.path().filename().string() + ": metadata '" + key + "' is an empty array");
    for (int64_t x : v->ints)
      if (x != v->ints[0])
        throw Error(g.path().filename().string() + ": metadata '" + key + "' differs between layers, which is not supported");
    if (v->ints[0] < lo || v->ints[0] > hi)
      throw Error(g.path().filename().string() + ": metadata '" + key + "' is " + std::to_string(v->ints[0]) + ", outside [" +
                  std::to_string(lo) + ", " + std::to_string(hi) + "]");
    return v->ints[0];
  }
  return g.get_int_or(key, fallback, lo, hi);
}

[[noreturn]] void inconsistent(const GgufFile& g, const std::string& why) {
  throw Error(g.path().filename().string() + ": " + why);
}

}  // namespace

ModelSpec spec_from_gguf(const GgufFile& g) {
  static const ArchMap kArchs[] = {
      {"deepseek2", "DeepseekV2ForCausalLM", "deepseek_v2"},  // V3 decided below
      {"qwen3moe", "Qwen3MoeForCausalLM", "qwen3_moe"},
      {"qwen2moe", "Qwen2MoeForCausalLM", "qwen2_moe"},
      {"olmoe", "OlmoeForCausalLM", "olmoe"},
      {"llama", "MixtralForCausalLM", "mixtral"},
  };
  const std::string fname = g.path().filename().string();
  const std::string arch = g.get_string("general.architecture");
  const ArchMap* am = nullptr;
  std::string supported;
  for (const auto& a : kArchs) {
    supported += std::string(supported.empty() ? "" : ", ") + a.gguf;
    if (arch == a.gguf) am = &a;
  }
  if (!am) throw Error(fname + ": GGUF architecture '" + arch + "' is not supported (supported: " + supported + ")");
  const std::string k = arch + ".";
  auto I = [&](const std::string& key, int64_t lo, int64_t hi) { return int(g.get_int(k + key, lo, hi)); };
  auto Io = [&](const std::string& key, int64_t fb, int64_t lo, int64_t hi) { return int(g.get_int_or(k + key, fb, lo, hi)); };
  auto Fo = [&](const std::string& key, double fb, double lo, double hi) { return float(g.get_float_or(k + key, fb, lo, hi)); };

  ModelSpec s;
  s.architecture = am->hf;
  s.model_type = am->model_type;
  s.name = g.path().stem().string();
  s.hidden = I("embedding_length", 1, kMaxHidden);
  s.n_layers = I("block_count", 1, kMaxLayers);
  s.max_position = Io("context_length", 4096, 1, kMaxPositions);
  s.rms_eps = Fo("attention.layer_norm_rms_epsilon", 1e-6, 1e-12, 0.5);
  if (!g.has_tensor("token_embd.weight")) inconsistent(g, "missing tensor 'token_embd.weight'");
  const auto& embd = g.tensor("token_embd.weight");
  if (embd.ne.size() != 2) inconsistent(g, "tensor 'token_embd.weight' is not a matrix");
  if (embd.ne[1] < 1 || embd.ne[1] > kMaxVocab) inconsistent(g, "tensor 'token_embd.weight' has an absurd vocabulary size");
  s.vocab_size = int(embd.ne[1]);
  s.tie_embeddings = !g.has_tensor("output.weight");
  if (auto v = g.find("tokenizer.ggml.bos_token_id"); v && v->is_integer()) s.bos_ids = {int(v->i)};
  if (auto v = g.find("tokenizer.ggml.eos_token_id"); v && v->is_integer()) s.eos_ids = {int(v->i)};
  for (int id : s.bos_ids)
    if (id < 0 || id >= s.vocab_size) inconsistent(g, "tokenizer.ggml.bos_token_id " + std::to_string(id) + " is outside the vocabulary");
  for (int id : s.eos_ids)
    if (id < 0 || id >= s.vocab_size) inconsistent(g, "tokenizer.ggml.eos_token_id " + std::to_string(id) + " is outside the vocabulary");

  auto& a = s.attn;
  a.n_heads = int(per_model_int(g, k + "attention.head_count", 0, 1, kMaxHeads));
  if (a.n_heads == 0) inconsistent(g, "metadata '" + k + "attention.head_count' is missing");
  a.n_kv_heads = int(per_model_int(g, k + "attention.head_count_kv", a.n_heads, 1, kMaxHeads));
  s.rope.theta = Fo("rope.freq_base", 10000.0, 1.0, 1e12);
  const std::string scaling = g.get_string_or(k + "rope.scaling.type", "none");
  if (scaling == "yarn") {
    s.rope.yarn = true;
    s.rope.factor = Fo("rope.scaling.factor", 1.0, 1.0, 1e6);
    s.rope.original_max_position = I("rope.scaling.original_context_length", 1, kMaxPositions);
    s.rope.beta_fast = Fo("rope.scaling.yarn_beta_fast", 32.0, 0.0, 1e6);
    s.rope.beta_slow = Fo("rope.scaling.yarn_beta_slow", 1.0, 0.0, 1e6);
    if (s.rope.beta_fast == 0.0f) s.rope.beta_fast = 32.0f;
    if (s.rope.beta_slow == 0.0f) s.rope.beta_slow = 1.0f;
    s.rope.mscale_all_dim = float(double(Fo("rope.scaling.yarn_log_multiplier", 0.0, 0.0, 1e3)) / 0.1);
    s.rope.mscale = s.rope.mscale_all_dim;
    if (g.find(k + "rope.scaling.attn_factor")) s.rope.attention_factor = Fo("rope.scaling.attn_factor", 1.0, 0.0, 1e3);
    else if (s.rope.mscale != 0.0f) s.rope.attention_factor = 1.0f;  // mscale == mscale_all_dim
    else s.rope.attention_factor = yarn_mscale(s.rope.factor, 1.0f);
  } else if (scaling != "none") {
    inconsistent(g, "rope scaling type '" + scaling + "' is not supported (supported: none, yarn)");
  }

  // Which layers are MoE: those with a router.
  s.moe_layer.assign(size_t(s.n_layers), false);
  for (int i = 0; i < s.n_layers; ++i)
    s.moe_layer[size_t(i)] = g.has_tensor("blk." + std::to_string(i) + ".ffn_gate_inp.weight");
  auto& r = s.moe.router;
  const bool any_moe = s.n_moe_layers() > 0;
  if (any_moe) {
    r.n_experts = I("expert_count", 1, kMaxExperts);
    r.top_k = I("expert_used_count", 1, kMaxExperts);
  } else if (arch == "llama") {
    inconsistent(g, "a llama GGUF without experts is a dense model; moescope runs MoE models (Mixtral-style llama files)");
  }

  if (arch == "deepseek2") {
    a.kind = AttentionKind::MLA;
    a.n_kv_heads = a.n_heads;
    a.q_lora_rank = Io("attention.q_lora_rank", 0, 0, kMaxWidth);
    a.kv_lora_rank = I("attention.kv_lora_rank", 1, kMaxWidth);
    a.qk_rope_head_dim = I("rope.dimension_count", 2, kMaxHeadDim);
    int q_head, v_head;
    if (g.find(k + "attention.key_length_mla")) {
      q_head = I("attention.key_length_mla", 1, 2 * kMaxHeadDim);
      v_head = I("attention.value_length_mla", 1, kMaxHeadDim);
    } else {  // files before llama.cpp's MLA cache: key/value lengths are the per-head ones
      q_head = I("attention.key_length", 1, 2 * kMaxHeadDim);
      v_head = I("attention.value_length", 1, kMaxHeadDim);
    }
    if (q_head < a.qk_rope_head_dim) inconsistent(g, "the key length is shorter than the rotary dimension");
    a.qk_nope_head_dim = q_head - a.qk_rope_head_dim;
    a.v_head_dim = v_head;
    s.rope.dim = a.qk_rope_head_dim;
    s.rope.interleaved = true;  // llama.cpp's deepseek2 uses LLAMA_ROPE_TYPE_NORM (adjacent pairs)
    a.softmax_scale = 1.0f / std::sqrt(float(a.q_head_dim()));
    if (s.rope.yarn && s.rope.mscale_all_dim != 0.0f) {
      const float m = yarn_mscale(s.rope.factor, s.rope.mscale_all_dim);
      a.softmax_scale *= m * m;
    }
    s.dense_width = Io("feed_forward_length", 0, 0, kMaxWidth);
    s.moe.expert_width = Io("expert_feed_forward_length", 0, 0, kMaxWidth);
    r.scaling = Fo("expert_weights_scale", 1.0, 0.0, 1e6);
    r.n_group = Io("expert_group_count", 1, 1, rules::kMaxGroups);
    r.topk_group = Io("expert_group_used_count", 1, 1, kMaxExperts);
    const int n_shared = Io("expert_shared_count", 0, 0, 64);
    if (n_shared > 0) {
      s.moe.shared = SharedExperts::Plain;
      s.moe.shared_width = s.moe.expert_width * n_shared;
    }
    const int gating = Io("expert_gating_func", 1, 1, 2);  // 1 softmax, 2 sigmoid (llama_expert_gating_func_type)
    const bool norm = g.get_bool_or(k + "expert_weights_norm", false);
    bool bias = false;
    for (int i = 0; i < s.n_layers; ++i) bias |= g.has_tensor("blk." + std::to_string(i) + ".exp_probs_b.bias");
    if (gating == 2) {
      s.architecture = "DeepseekV3ForCausalLM";
      s.model_type = "deepseek_v3";
      r.scoring = ScoreFunc::Sigmoid;
      r.correction_bias = bias;
      r.group_score = bias ? GroupScore::SumTop2 : GroupScore::None;
      r.renormalize = norm;
      r.scale_after_renorm = true;
    } else {
      r.scoring = ScoreFunc::Softmax;
      if (bias) inconsistent(g, "softmax gating with a score correction bias (exp_probs_b) is not a DeepSeek model");
      r.group_score = r.n_group > 1 ? GroupScore::Max : GroupScore::None;
      r.renormalize = norm && r.top_k > 1;
      r.scale_after_renorm = false;
    }
    const int leading = Io("leading_dense_block_count", 0, 0, kMaxLayers);
    for (int i = 0; i < std::min(leading, s.n_layers); ++i)
      if (s.moe_layer[size_t(i)]) inconsistent(g, "layer " + std::to_string(i) + " has experts but leading_dense_block_count is " + std::to_string(leading));
  } else {
    a.kind = AttentionKind::GQA;
    a.head_dim = Io("attention.key_length", 0, 0, kMaxHeadDim);
    if (a.head_dim == 0) {
      if (s.hidden % a.n_heads != 0) inconsistent(g, "embedding_length is not divisible by the head count");
      a.head_dim = s.hidden / a.n_heads;
    }
    if (a.n_heads % a.n_kv_heads != 0) inconsistent(g, "the head count is not a multiple of the KV head count");
    s.rope.dim = Io("rope.dimension_count", a.head_dim, 2, kMaxHeadDim);
    s.rope.interleaved = false;
    a.softmax_scale = 1.0f / std::sqrt(float(a.head_dim));
    a.sliding_window = Io("attention.sliding_window", 0, 0, kMaxPositions);
    a.qkv_bias = g.has_tensor("blk.0.attn_q.bias");
    r.scoring = ScoreFunc::Softmax;
    if (arch == "qwen3moe") {
      a.qk_norm = QKNorm::PerHead;
      r.renormalize = g.get_bool_or(k + "expert_weights_norm", true);
      s.moe.expert_width = Io("expert_feed_forward_length", 0, 0, kMaxWidth);
      s.dense_width = Io("feed_forward_length", 0, 0, kMaxWidth);
    } else if (arch == "qwen2moe") {
      r.renormalize = g.get_bool_or(k + "expert_weights_norm", false);
      s.moe.expert_width = Io("expert_feed_forward_length", 0, 0, kMaxWidth);
      s.dense_width = Io("feed_forward_length", 0, 0, kMaxWidth);
      const int shared = Io("expert_shared_feed_forward_length", 0, 0, kMaxWidth);
      if (shared > 0) {
        s.moe.shared = SharedExperts::SigmoidGated;
        s.moe.shared_width = shared;
      }
    } else if (arch == "olmoe") {
      a.qk_norm = QKNorm::Full;
      a.clip_qkv = Fo("attention.clamp_kqv", 0.0, 0.0, 1e9);
      r.renormalize = false;
      s.moe.expert_width = Io("expert_feed_forward_length", Io("feed_forward_length", 0, 0, kMaxWidth), 0, kMaxWidth);
    } else {  // llama with experts: Mixtral
      s.naming = TensorNaming::Mixtral;
      r.renormalize = true;
      s.moe.expert_width = Io("expert_feed_forward_length", Io("feed_forward_length", 0, 0, kMaxWidth), 0, kMaxWidth);
    }
  }

  // The checks config.json gets (architectures.cpp validate), in GGUF words.
  if (s.rope.dim <= 0 || s.rope.dim % 2 != 0 || s.rope.dim > a.q_head_dim())
    inconsistent(g, "rotary dimension " + std::to_string(s.rope.dim) + " must be even and at most the head dimension");
  if (any_moe) {
    if (r.top_k > r.n_experts)
      inconsistent(g, "expert_used_count " + std::to_string(r.top_k) + " exceeds expert_count " + std::to_string(r.n_experts));
    if (s.moe.expert_width <= 0) inconsistent(g, "the expert width (expert_feed_forward_length) is missing");
    if (r.group_score != GroupScore::None) {
      if (r.n_experts % r.n_group != 0) inconsistent(g, "expert_group_count does not divide expert_count");
      if (r.topk_group > r.n_group) inconsistent(g, "expert_group_used_count exceeds expert_group_count");
      if (r.top_k > r.topk_group * (r.n_experts / r.n_group))
        inconsistent(g, "expert_used_count exceeds the experts in the used groups");
      if (r.group_score == GroupScore::SumTop2 && r.n_experts / r.n_group < 2 && r.n_group > 1)
        inconsistent(g, "top-2 group scoring needs at least 2 experts per group");
      if (r.n_group == 1) r.group_score = GroupScore::None;
    }
  }
  if (std::find(s.moe_layer.begin(), s.moe_layer.end(), false) != s.moe_layer.end() && s.dense_width <= 0)
    inconsistent(g, "dense layers need feed_forward_length");
  return s;
}

namespace {

// Buffers the GGUF binding makes (un-permuted q/k, joined kv_b, dequantised weights), kept by the
// Model beside the mapping.
using Owned = std::vector<std::unique_ptr<uint8_t[]>>;

TensorView own_f32(Owned& owned, std::vector<int64_t> shape, const std::vector<float>& values) {
  auto buf = std::make_unique<uint8_t[]>(values.size() * 4);
  std::memcpy(buf.get(), values.data(), values.size() * 4);
  TensorView t{DType::F32, std::move(shape), buf.get()};
  owned.push_back(std::move(buf));
  return t;
}

std::vector<float> widen(const TensorView& t) {
  std::vector<float> out(size_t(t.numel()));
  to_f32(t.dtype, t.data, out.data(), t.numel());
  return out;
}

// llama.cpp's LlamaModel.permute, undone: within each head of `rows_per_head` rows, file row
// 2·j + i holds HF row i·(rows_per_head / 2) + j. Whole rows move, so any dtype works.
TensorView unpermute_rows(Owned& owned, const TensorView& t, int64_t n_heads) {
  const int64_t rows = t.shape[0], per = rows / n_heads, half = per / 2;
  const size_t row_bytes = dtype_bytes(t.dtype, t.shape[1]);
  auto buf = std::make_unique<uint8_t[]>(row_bytes * size_t(rows));
  const auto* src = static_cast<const uint8_t*>(t.data);
  for (int64_t h = 0; h < n_heads; ++h)
    for (int64_t i = 0; i < 2; ++i)
      for (int64_t j = 0; j < half; ++j)
        std::memcpy(buf.get() + size_t(h * per + i * half + j) * row_bytes, src + size_t(h * per + 2 * j + i) * row_bytes,
                    row_bytes);
  TensorView out{t.dtype, t.shape, buf.get()};
  owned.push_back(std::move(buf));
  return out;
}

// kv_b_proj [n_heads·(nope + v), kv_lora] from attn_k_b [n_heads, kv_lora, nope] (HF order) and
// attn_v_b [n_heads, v, kv_lora], in F32.
TensorView join_kv_b(Owned& owned, const TensorView& kb, const TensorView& vb) {
  const int64_t H = kb.shape[0], C = kb.shape[1], N = kb.shape[2], V = vb.shape[1];
  const std::vector<float> k = widen(kb), v = widen(vb);
  std::vector<float> out(size_t(H * (N + V) * C));
  for (int64_t h = 0; h < H; ++h) {
    for (int64_t i = 0; i < N; ++i)
      for (int64_t c = 0; c < C; ++c) out[size_t((h * (N + V) + i) * C + c)] = k[size_t((h * C + c) * N + i)];
    for (int64_t i = 0; i < V; ++i)
      for (int64_t c = 0; c < C; ++c) out[size_t((h * (N + V) + N + i) * C + c)] = v[size_t((h * V + i) * C + c)];
  }
  return own_f32(owned, {H * (N + V), C}, out);
}

// View of expert e in a stacked [E, R, C] tensor.
TensorView expert_view(const TensorView& stacked, int64_t e) {
  TensorView t{stacked.dtype, {stacked.shape[1], stacked.shape[2]}, nullptr};
  t.data = static_cast<const uint8_t*>(stacked.data) + dtype_bytes(stacked.dtype, stacked.shape[1] * stacked.shape[2]) * size_t(e);
  return t;
}

// The Hugging Face names of every GGUF tensor, as bind_weights asks for them.
std::map<std::string, TensorView> hf_tensors(const ModelSpec& s, const GgufFile& g, Owned& owned) {
  std::map<std::string, TensorView> out;
  const bool mixtral = s.naming == TensorNaming::Mixtral;
  const std::string moe = mixtral ? "block_sparse_moe" : "mlp";
  static const std::map<std::string, std::string> kLayer = {
      {"attn_norm.weight", "input_layernorm.weight"},
      {"ffn_norm.weight", "post_attention_layernorm.weight"},
      {"attn_q.weight", "self_attn.q_proj.weight"}, {"attn_q.bias", "self_attn.q_proj.bias"},
      {"attn_k.weight", "self_attn.k_proj.weight"}, {"attn_k.bias", "self_attn.k_proj.bias"},
      {"attn_v.weight", "self_attn.v_proj.weight"}, {"attn_v.bias", "self_attn.v_proj.bias"},
      {"attn_output.weight", "self_attn.o_proj.weight"}, {"attn_output.bias", "self_attn.o_proj.bias"},
      {"attn_q_norm.weight", "self_attn.q_norm.weight"}, {"attn_k_norm.weight", "self_attn.k_norm.weight"},
      {"attn_q_a.weight", "self_attn.q_a_proj.weight"}, {"attn_q_a_norm.weight", "self_attn.q_a_layernorm.weight"},
      {"attn_q_b.weight", "self_attn.q_b_proj.weight"},
      {"attn_kv_a_mqa.weight", "self_attn.kv_a_proj_with_mqa.weight"},
      {"attn_kv_a_norm.weight", "self_attn.kv_a_layernorm.weight"},
      {"attn_kv_b.weight", "self_attn.kv_b_proj.weight"},
      {"ffn_gate.weight", "mlp.gate_proj.weight"}, {"ffn_up.weight", "mlp.up_proj.weight"},
      {"ffn_down.weight", "mlp.down_proj.weight"},
  };
  const std::string shared = s.moe.shared == SharedExperts::SigmoidGated ? "mlp.shared_expert" : "mlp.shared_experts";
  static const std::regex blk(R"(^blk\.([0-9]+)\.(.+)$)");
  static const std::regex per_expert(R"(^ffn_(gate|up|down)\.([0-9]+)\.weight$)");  // old Mixtral files
  const char* w_names[3][2] = {{"gate", mixtral ? "w1" : "gate_proj"}, {"up", mixtral ? "w3" : "up_proj"},
                               {"down", mixtral ? "w2" : "down_proj"}};
  auto expert_name = [&](const std::string& p, int64_t e, const std::string& which) {
    for (auto& w : w_names)
      if (which == w[0]) return p + moe + ".experts." + std::to_string(e) + "." + w[1] + ".weight";
    return std::string();
  };
  for (const std::string& name : g.tensor_names()) {
    const TensorView t = g.tensor(name).view();
    if (name == "token_embd.weight") { out["model.embed_tokens.weight"] = t; continue; }
    if (name == "output_norm.weight") { out["model.norm.weight"] = t; continue; }
    if (name == "output.weight") { out["lm_head.weight"] = t; continue; }
    std::smatch m;
    if (!std::regex_match(name, m, blk)) continue;  // e.g. rope_freqs: not used
    const std::string p = "model.layers." + m[1].str() + ".";
    const std::string rest = m[2].str();
    std::smatch e;
    if (auto it = kLayer.find(rest); it != kLayer.end()) {
      out[p + it->second] = t;
    } else if (rest == "ffn_gate_inp.weight") {
      out[p + moe + ".gate.weight"] = t;
    } else if (rest == "exp_probs_b.bias") {
      out[p + moe + ".gate.e_score_correction_bias"] = t;
    } else if (rest == "ffn_gate_exps.weight" || rest == "ffn_up_exps.weight" || rest == "ffn_down_exps.weight") {
      if (t.shape.size() != 3) throw Error(g.path().filename().string() + ": tensor '" + name + "' is not 3-D [experts, rows, columns]");
      const std::string which = rest.substr(4, rest.find("_exps") - 4);
      for (int64_t x = 0; x < t.shape[0]; ++x) out[expert_name(p, x, which)] = expert_view(t, x);
    } else if (rest == "ffn_gate_up_exps.weight") {  // gate and up fused along the rows
      if (t.shape.size() != 3 || t.shape[1] % 2 != 0)
        throw Error(g.path().filename().string() + ": tensor '" + name + "' is not [experts, 2·width, hidden]");
      for (int64_t x = 0; x < t.shape[0]; ++x) {
        TensorView both = expert_view(t, x);
        const int64_t w = both.shape[0] / 2;
        TensorView gate{t.dtype, {w, both.shape[1]}, both.data};
        TensorView up{t.dtype, {w, both.shape[1]},
                      static_cast<const uint8_t*>(both.data) + dtype_bytes(t.dtype, w * both.shape[1])};
        out[expert_name(p, x, "gate")] = gate;
        out[expert_name(p, x, "up")] = up;
      }
    } else if (std::regex_match(rest, e, per_expert)) {
      out[expert_name(p, std::stoll(e[2].str()), e[1].str())] = t;
    } else if (rest == "ffn_gate_shexp.weight") {
      out[p + shared + ".gate_proj.weight"] = t;
    } else if (rest == "ffn_up_shexp.weight") {
      out[p + shared + ".up_proj.weight"] = t;
    } else if (rest == "ffn_down_shexp.weight") {
      out[p + shared + ".down_proj.weight"] = t;
    } else if (rest == "ffn_gate_inp_shexp.weight") {
      TensorView gate = t;
      if (gate.shape.size() == 1) gate.shape = {1, gate.shape[0]};
      out[p + "mlp.shared_expert_gate.weight"] = gate;
    }
  }
  // MLA: kv_b_proj from its two halves (llama.cpp's converter writes only those since 2025).
  if (s.attn.kind == AttentionKind::MLA) {
    for (int i = 0; i < s.n_layers; ++i) {
      const std::string b = "blk." + std::to_string(i) + ".";
      const std::string hf = "model.layers." + std::to_string(i) + ".self_attn.kv_b_proj.weight";
      if (out.count(hf) || !g.has_tensor(b + "attn_k_b.weight") || !g.has_tensor(b + "attn_v_b.weight")) continue;
      const TensorView kb = g.tensor(b + "attn_k_b.weight").view(), vb = g.tensor(b + "attn_v_b.weight").view();
      const auto& a = s.attn;
      if (kb.shape != std::vector<int64_t>{a.n_heads, a.kv_lora_rank, a.qk_nope_head_dim} ||
          vb.shape != std::vector<int64_t>{a.n_heads, a.v_head_dim, a.kv_lora_rank})
        throw Error(g.path().filename().string() + ": tensors '" + b + "attn_k_b.weight' " + kb.shape_string() + " and '" + b +
                    "attn_v_b.weight' " + vb.shape_string() + " do not match the attention dimensions in the metadata");
      out[hf] = join_kv_b(owned, kb, vb);
    }
  }
  // llama (Mixtral): undo the converter's q/k row permutation.
  if (g.get_string("general.architecture") == "llama") {
    for (int i = 0; i < s.n_layers; ++i) {
      const std::string p = "model.layers." + std::to_string(i) + ".self_attn.";
      for (auto [proj, heads] : {std::pair{"q_proj", s.attn.n_heads}, std::pair{"k_proj", s.attn.n_kv_heads}}) {
        auto it = out.find(p + proj + ".weight");
        if (it == out.end() || it->second.shape.size() != 2 || it->second.shape[0] % (2 * int64_t(heads)) != 0) continue;
        it->second = unpermute_rows(owned, it->second, heads);
      }
    }
  }
  return out;
}

}  // namespace

// Block-quantised weights are kept as they are in the file (memory-mapped) wherever a backend reads
// them: the projections, experts, shared experts, dense FFNs and the LM head, whose rows the CPU
// kernels multiply in place (cpu/gemm.h), and the embedding, whose rows it dequantises one token at
// a time; the CUDA backend dequantises them as it uploads them. The rest (MLA's kv_b, which the
// attention splits by head, routers, norms, biases, and any matrix whose rows are not whole blocks)
// is small and widened to F32 here.
void dequantize_weights_for_backends(ModelWeights& w, std::vector<std::unique_ptr<uint8_t[]>>& owned) {
  std::map<const void*, TensorView> done;
  size_t tensors = 0, bytes = 0;
  std::map<std::string, int> types, kept;
  for_each_weight(w, [&](WeightPart part, bool matrix, TensorView& t) {
    if (!t.data || !dtype_is_quantized(t.dtype)) return;
    if ((matrix || part == WeightPart::Embedding) && t.shape.size() == 2 && t.shape[1] % dtype_block_elems(t.dtype) == 0) {
      ++kept[dtype_name(t.dtype)];
      return;
    }
    if (auto it = done.find(t.data); it != done.end() && it->second.shape == t.shape) {
      t = it->second;
      return;
    }
    ++types[dtype_name(t.dtype)];
    auto buf = std::make_unique<uint8_t[]>(size_t(t.numel()) * 4);
    to_f32(t.dtype, t.data, reinterpret_cast<float*>(buf.get()), t.numel());
    TensorView f{DType::F32, t.shape, buf.get()};
    done[t.data] = f;
    t = f;
    ++tensors;
    bytes += size_t(t.numel()) * 4;
    owned.push_back(std::move(buf));
  });
  auto list = [](const std::map<std::string, int>& m) {
    std::string s;
    for (const auto& [name, n] : m) s += (s.empty() ? "" : ", ") + std::to_string(n) + " " + name;
    return s;
  };
  if (!kept.empty()) spdlog::info("quantised weights read in place: {} tensors", list(kept));
  if (tensors) spdlog::info("widened {} small quantised tensors ({}) to F32 at load time, {:.1f} MB", tensors, list(types),
                            double(bytes) / 1e6);
}

ModelWeights bind_gguf_weights(const ModelSpec& spec, const GgufFile& g, std::vector<std::unique_ptr<uint8_t[]>>& owned) {
  const std::map<std::string, TensorView> named = hf_tensors(spec, g, owned);
  // Missing-tensor messages name the GGUF file; shapes are checked by the binder.
  return bind_weights(
      spec, [&](const std::string& n) { return named.count(n) > 0; },
      [&](const std::string& n, const std::vector<int64_t>& shape) {
        auto it = named.find(n);
        if (it == named.end())
          throw Error(g.path().filename().string() + ": no tensor for '" + n + "' (the GGUF file lacks it)");
        if (it->second.shape != shape) {
          TensorView want{DType::F32, shape, nullptr};
          throw Error(g.path().filename().string() + ": tensor for '" + n + "' has shape " + it->second.shape_string() +
                      ", the metadata implies " + want.shape_string());
        }
        return it->second;
      });
}

}  // namespace moescope
