#include "moescope/model_weights.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstring>
#include <functional>
#include <map>
#include <mutex>
#include <thread>

#include "moescope/error.h"
#include "moescope/gguf.h"

namespace moescope {

namespace {


// Hands out tensors by name and expected shape: from a checkpoint (checked), or made up
// (synthetic models).
class Binder {
public:
  Binder(const ModelSpec& spec, std::function<bool(const std::string&)> has, TensorFactory fetch,
         bool synthetic = false)
      : spec_(spec), has_(std::move(has)), fetch_(std::move(fetch)), synthetic_(synthetic) {}
  // Synthetic models ask for every tensor in the engine's own layout (nothing to re-lay out).
  bool synthetic() const { return synthetic_; }

  TensorView tensor(const std::string& name, std::vector<int64_t> shape) const { return fetch_(name, shape); }
  Linear linear(const std::string& prefix, int64_t out, int64_t in, bool bias) const {
    Linear l;
    l.w = tensor(prefix + ".weight", {out, in});
    if (bias) l.b = tensor(prefix + ".bias", {out});
    return l;
  }
  MlpWeights mlp(const std::string& prefix, int64_t width, const char* g = "gate_proj", const char* u = "up_proj",
                 const char* d = "down_proj") const {
    const int64_t h = spec_.hidden;
    MlpWeights m;
    m.gate = tensor(prefix + "." + g + ".weight", {width, h});
    m.up = tensor(prefix + "." + u + ".weight", {width, h});
    m.down = tensor(prefix + "." + d + ".weight", {h, width});
    return m;
  }
  bool has(const std::string& name) const { return has_(name); }

  static void check_shape(const std::string& name, const TensorView& t, const std::vector<int64_t>& shape) {
    if (t.shape != shape) {
      TensorView want;
      want.shape = shape;
      throw Error("checkpoint: tensor '" + name + "' has shape " + t.shape_string() + ", expected " +
                  want.shape_string() + " from config.json");
    }
  }

private:
  const ModelSpec& spec_;
  std::function<bool(const std::string&)> has_;
  TensorFactory fetch_;
  bool synthetic_;
};

// A view of rows [row0, row0 + rows) of expert `e` in a fused [E, R, C] tensor.
TensorView expert_slice(const TensorView& fused, int64_t e, int64_t row0, int64_t rows) {
  TensorView t;
  t.dtype = fused.dtype;
  t.shape = {rows, fused.shape[2]};
  const size_t elt = dtype_size(fused.dtype);
  const size_t offset = size_t((e * fused.shape[1] + row0) * fused.shape[2]) * elt;
  t.data = static_cast<const uint8_t*>(fused.data) + offset;
  return t;
}

// A [rows, cols] tensor of `dtype` in `owned`.
TensorView owned_tensor(ModelWeights& w, DType dtype, int64_t rows, int64_t cols) {
  auto buf = std::shared_ptr<uint8_t[]>(new uint8_t[size_t(rows * cols) * dtype_size(dtype)]);
  w.owned.push_back(buf);
  TensorView t;
  t.dtype = dtype, t.shape = {rows, cols}, t.data = buf.get();
  return t;
}

// An F32 copy of elements first, first + step, ... (n of them) of a 1-D/2-D F32/BF16/F16 tensor.
TensorView f32_strided(ModelWeights& w, const TensorView& src, int64_t first, int64_t step, int64_t n) {
  TensorView t = owned_tensor(w, DType::F32, 1, n);
  t.shape = {n};
  float* out = static_cast<float*>(const_cast<void*>(t.data));
  const auto* in = static_cast<const uint8_t*>(src.data);
  const size_t elt = dtype_size(src.dtype);
  for (int64_t i = 0; i < n; ++i) {
    const uint8_t* e = in + size_t(first + i * step) * elt;
    if (src.dtype == DType::F32) std::memcpy(&out[i], e, 4);
    else if (src.dtype == DType::BF16) out[i] = bf16_to_f32(uint16_t(e[0] | (e[1] << 8)));
    else if (src.dtype == DType::F16) out[i] = f16_to_f32(uint16_t(e[0] | (e[1] << 8)));
    else throw Error("checkpoint: bias tensors must be F32, BF16 or F16");
  }
  return t;
}

// gpt-oss' experts as released: MXFP4 (quantization_config.quant_method "mxfp4"), per expert
// `*_blocks` [E, rows, in/32, 16] (byte j of a block: element 2j in the low nibble, 2j+1 in the
// high one) and `*_scales` [E, rows, in/32] (E8M0 exponents, bias 127), rows in nn.Linear
// orientation: gate_up_proj's 2W rows interleave gate (even) and up (odd); down_proj has H rows
// of W. That is what transformers' convert_moe_packed_tensors (integrations/mxfp4.py) decodes.
// Each row is repacked into the engine's MXFP4 blocks (llama.cpp's layout: the exponent byte,
// then element j in the low nibble and j + 16 in the high nibble of byte j): same values, same
// size, decoded by the same code as GGUF's MXFP4 (tensor_quant.cpp).
void bind_gpt_oss_mxfp4(const Binder& b, const ModelSpec& s, const std::string& moe, LayerWeights& L,
                        ModelWeights& w) {
  const int64_t E = s.moe.router.n_experts, W = s.moe.expert_width, H = s.hidden;
  if (H % 32 != 0 || W % 32 != 0)
    throw Error("config.json: MXFP4 experts need hidden_size and intermediate_size to be multiples of 32 (got " +
                std::to_string(H) + " and " + std::to_string(W) + ")");
  const TensorView gub = b.tensor(moe + ".experts.gate_up_proj_blocks", {E, 2 * W, H / 32, 16});
  const TensorView gus = b.tensor(moe + ".experts.gate_up_proj_scales", {E, 2 * W, H / 32});
  const TensorView dnb = b.tensor(moe + ".experts.down_proj_blocks", {E, H, W / 32, 16});
  const TensorView dns = b.tensor(moe + ".experts.down_proj_scales", {E, H, W / 32});
  for (const auto* t : {&gub, &gus, &dnb, &dns})
    if (t->dtype != DType::U8) throw Error("checkpoint: MXFP4 blocks and scales of '" + moe + ".experts' must be U8");
  // rows [e, first], [e, first + step], ... (n of them) of a blocks/scales pair with `in` inputs
  auto repack = [&](const TensorView& blocks, const TensorView& scales, int64_t e, int64_t rows_total, int64_t in,
                    int64_t first, int64_t step, int64_t n) {
    TensorView t;
    t.dtype = DType::MXFP4, t.shape = {n, in};
    auto buf = std::shared_ptr<uint8_t[]>(new uint8_t[size_t(n) * dtype_bytes(DType::MXFP4, in)]);
    w.owned.push_back(buf);
    t.data = buf.get();
    const int64_t G = in / 32;
    const auto* bl = static_cast<const uint8_t*>(blocks.data);
    const auto* sc = static_cast<const uint8_t*>(scales.data);
    uint8_t* out = buf.get();
    for (int64_t i = 0; i < n; ++i) {
      const int64_t row = e * rows_total + first + i * step;
      for (int64_t g = 0; g < G; ++g, out += 17) {
        const uint8_t* src = bl + size_t((row * G + g) * 16);
        out[0] = sc[size_t(row * G + g)];
        std::memset(out + 1, 0, 16);
        for (int j = 0; j < 32; ++j) {
          const uint8_t code = j % 2 == 0 ? src[j / 2] & 0x0F : src[j / 2] >> 4;
          out[1 + (j % 16)] |= uint8_t(j < 16 ? code : code << 4);
        }
      }
    }
    return t;
  };
  L.experts.resize(size_t(E));
  for (int64_t e = 0; e < E; ++e) {
    MlpWeights& m = L.experts[size_t(e)];
    m.gate = repack(gub, gus, e, 2 * W, H, 0, 2, W);
    m.up = repack(gub, gus, e, 2 * W, H, 1, 2, W);
    m.down = repack(dnb, dns, e, H, W, 0, 1, H);
  }
}

// gpt-oss' experts as transformers keeps them: gate_up_proj [E, H, 2W] (x · gate_up, gate in
// the even columns, up in the odd ones), down_proj [E, W, H], biases [E, 2W] and [E, H]
// (modeling_gpt_oss.py, GptOssExperts). The backends read nn.Linear rows [out, in], so each
// expert's three matrices are transposed once at load into `w.owned`, in the checkpoint's dtype.
void bind_gpt_oss_experts(const Binder& b, const ModelSpec& s, const std::string& moe, LayerWeights& L,
                          ModelWeights& w) {
  const int64_t E = s.moe.router.n_experts, W = s.moe.expert_width, H = s.hidden;
  L.experts.resize(size_t(E));
  if (b.synthetic()) {  // random weights: ask for them in the engine's layout
    for (int64_t e = 0; e < E; ++e) {
      const std::string ep = moe + ".experts." + std::to_string(e);
      MlpWeights& m = L.experts[size_t(e)];
      m = b.mlp(ep, W);
      m.gate_b = b.tensor(ep + ".gate_proj.bias", {W}), m.up_b = b.tensor(ep + ".up_proj.bias", {W});
      m.down_b = b.tensor(ep + ".down_proj.bias", {H});
    }
    return;
  }
  const TensorView gub = b.tensor(moe + ".experts.gate_up_proj_bias", {E, 2 * W});
  const TensorView dnb = b.tensor(moe + ".experts.down_proj_bias", {E, H});
  if (b.has(moe + ".experts.gate_up_proj_blocks")) {
    bind_gpt_oss_mxfp4(b, s, moe, L, w);
    for (int64_t e = 0; e < E; ++e) {
      MlpWeights& m = L.experts[size_t(e)];
      m.gate_b = f32_strided(w, gub, e * 2 * W, 2, W);
      m.up_b = f32_strided(w, gub, e * 2 * W + 1, 2, W);
      m.down_b = f32_strided(w, dnb, e * H, 1, H);
    }
    return;
  }
  const TensorView gu = b.tensor(moe + ".experts.gate_up_proj", {E, H, 2 * W});
  const TensorView dn = b.tensor(moe + ".experts.down_proj", {E, W, H});
  if (gu.dtype != DType::F32 && gu.dtype != DType::BF16 && gu.dtype != DType::F16)
    throw Error("checkpoint: '" + moe + ".experts.gate_up_proj' has a block-quantised type; gpt-oss experts must be "
                "F32, BF16, F16 or MXFP4 blocks");
  const size_t elt = dtype_size(gu.dtype);
  // out[r, c] = in[c·in_stride + r·step + first] for a [rows, cols] result
  auto transpose = [&](const uint8_t* in, int64_t rows, int64_t cols, int64_t in_stride, int64_t step, int64_t first) {
    TensorView t = owned_tensor(w, gu.dtype, rows, cols);
    auto* out = static_cast<uint8_t*>(const_cast<void*>(t.data));
    for (int64_t c = 0; c < cols; ++c)
      for (int64_t r = 0; r < rows; ++r)
        std::memcpy(out + size_t(r * cols + c) * elt, in + size_t(c * in_stride + r * step + first) * elt, elt);
    return t;
  };
  for (int64_t e = 0; e < E; ++e) {
    MlpWeights& m = L.experts[size_t(e)];
    const auto* g = static_cast<const uint8_t*>(gu.data) + size_t(e * H * 2 * W) * elt;
    const auto* d = static_cast<const uint8_t*>(dn.data) + size_t(e * W * H) * elt;
    m.gate = transpose(g, W, H, 2 * W, 2, 0);
    m.up = transpose(g, W, H, 2 * W, 2, 1);
    m.down = transpose(d, H, W, H, 1, 0);
    m.gate_b = f32_strided(w, gub, e * 2 * W, 2, W);
    m.up_b = f32_strided(w, gub, e * 2 * W + 1, 2, W);
    m.down_b = f32_strided(w, dnb, e * H, 1, H);
  }
}

void bind_experts(const Binder& b, const ModelSpec& s, const std::string& p, LayerWeights& L, ModelWeights& w) {
  const auto& m = s.moe;
  const int64_t E = m.router.n_experts, W = m.expert_width, H = s.hidden;
  const bool mixtral = s.naming == TensorNaming::Mixtral;
  const std::string moe = p + (mixtral ? "block_sparse_moe" : "mlp");
  if (s.naming == TensorNaming::GptOss) {
    L.router = b.tensor(moe + ".router.weight", {E, H});
    L.router_logit_bias = b.tensor(moe + ".router.bias", {E});
    bind_gpt_oss_experts(b, s, moe, L, w);
    return;
  }
  L.router = b.tensor(moe + ".gate.weight", {E, H});
  if (m.router.correction_bias) L.router_bias = b.tensor(moe + ".gate.e_score_correction_bias", {E});
  L.experts.resize(size_t(E));
  if (b.has(moe + ".experts.gate_up_proj")) {  // transformers 5 fused layout
    TensorView gu = b.tensor(moe + ".experts.gate_up_proj", {E, 2 * W, H});
    TensorView dn = b.tensor(moe + ".experts.down_proj", {E, H, W});
    for (int64_t e = 0; e < E; ++e) {
      MlpWeights& x = L.experts[size_t(e)];
      x.gate = expert_slice(gu, e, 0, W), x.up = expert_slice(gu, e, W, W), x.down = expert_slice(dn, e, 0, H);
    }
  } else {
    for (int64_t e = 0; e < E; ++e) {
      const std::string ep = moe + ".experts." + std::to_string(e);
      L.experts[size_t(e)] = mixtral ? b.mlp(ep, W, "w1", "w3", "w2") : b.mlp(ep, W);
    }
  }
  if (m.shared == SharedExperts::Plain) L.shared = b.mlp(p + "mlp.shared_experts", m.shared_width);
  if (m.shared == SharedExperts::SigmoidGated) {
    L.shared = b.mlp(p + "mlp.shared_expert", m.shared_width);
    L.shared_gate = b.tensor(p + "mlp.shared_expert_gate.weight", {1, H});
  }
}

}  // namespace

ModelWeights bind_with(const ModelSpec& s, const Binder& b) {
  const int64_t H = s.hidden, V = s.vocab_size;
  const auto& a = s.attn;
  // Multimodal checkpoints keep the language model under model.language_model.*.
  const std::string root = s.naming == TensorNaming::LanguageModel ? "model.language_model." : "model.";
  ModelWeights w;
  w.embed = b.tensor(root + "embed_tokens.weight", {V, H});
  w.dtype = w.embed.dtype;
  w.final_norm = b.tensor(root + "norm.weight", {H});
  if (s.tie_embeddings && !b.has("lm_head.weight")) w.lm_head = w.embed;
  else w.lm_head = b.tensor("lm_head.weight", {V, H});

  w.layers.resize(size_t(s.n_layers));
  for (int i = 0; i < s.n_layers; ++i) {
    auto& L = w.layers[size_t(i)];
    const std::string p = root + "layers." + std::to_string(i) + ".";
    const std::string at = p + "self_attn.";
    L.attn_norm = b.tensor(p + "input_layernorm.weight", {H});
    L.ffn_norm = b.tensor(p + "post_attention_layernorm.weight", {H});
    if (s.is_linear(i)) {  // Gated DeltaNet (transformers' Qwen3_5MoeGatedDeltaNet)
      const auto& la = s.linear;
      const std::string ln = p + "linear_attn.";
      L.lin_qkv = b.linear(ln + "in_proj_qkv", la.conv_dim(), H, false);
      L.lin_z = b.linear(ln + "in_proj_z", la.value_dim(), H, false);
      L.lin_b = b.linear(ln + "in_proj_b", la.n_v_heads, H, false);
      L.lin_a = b.linear(ln + "in_proj_a", la.n_v_heads, H, false);
      L.lin_out = b.linear(ln + "out_proj", H, la.value_dim(), false);
      L.conv = b.tensor(ln + "conv1d.weight", {la.conv_dim(), 1, la.conv_kernel});
      L.dt_bias = b.tensor(ln + "dt_bias", {la.n_v_heads});
      L.a_log = b.tensor(ln + "A_log", {la.n_v_heads});
      L.lin_norm = b.tensor(ln + "norm.weight", {la.v_head_dim});
    } else if (a.kind == AttentionKind::GQA) {
      const int64_t qd = int64_t(a.n_heads) * a.head_dim, kd = int64_t(a.n_kv_heads) * a.head_dim;
      // With an output gate, q_proj's rows are [query, gate] for each head in turn.
      L.q = b.linear(at + "q_proj", a.output_gate ? 2 * qd : qd, H, a.qkv_bias);
      L.k = b.linear(at + "k_proj", kd, H, a.qkv_bias);
      L.v = b.linear(at + "v_proj", kd, H, a.qkv_bias);
      L.o = b.linear(at + "o_proj", H, qd, b.has(at + "o_proj.bias") || (a.sinks && a.qkv_bias));
      if (a.sinks) L.sinks = b.tensor(at + "sinks", {a.n_heads});
      if (a.qk_norm == QKNorm::PerHead) {
        L.q_norm = b.tensor(at + "q_norm.weight", {a.head_dim});
        L.k_norm = b.tensor(at + "k_norm.weight", {a.head_dim});
      } else if (a.qk_norm == QKNorm::Full) {
        L.q_norm = b.tensor(at + "q_norm.weight", {qd});
        L.k_norm = b.tensor(at + "k_norm.weight", {kd});
      }
    } else {
      const int64_t qh = a.q_head_dim();
      if (a.q_lora_rank > 0) {
        L.q_a = b.linear(at + "q_a_proj", a.q_lora_rank, H, false);
        L.q_a_norm = b.tensor(at + "q_a_layernorm.weight", {a.q_lora_rank});
        L.q_b = b.linear(at + "q_b_proj", int64_t(a.n_heads) * qh, a.q_lora_rank, false);
      } else {
        L.q = b.linear(at + "q_proj", int64_t(a.n_heads) * qh, H, false);
      }
      L.kv_a = b.linear(at + "kv_a_proj_with_mqa", a.kv_lora_rank + a.qk_rope_head_dim, H, false);
      L.kv_a_norm = b.tensor(at + "kv_a_layernorm.weight", {a.kv_lora_rank});
      L.kv_b = b.linear(at + "kv_b_proj", int64_t(a.n_heads) * (a.qk_nope_head_dim + a.v_head_dim), a.kv_lora_rank,
                        false);
      L.o = b.linear(at + "o_proj", H, int64_t(a.n_heads) * a.v_head_dim, false);
    }
    if (s.moe_layer[size_t(i)]) bind_experts(b, s, p, L, w);
    else L.dense = b.mlp(p + "mlp", s.dense_width);
  }
  return w;
}

ModelWeights bind_weights(const ModelSpec& s, const Checkpoint& ck) {
  Binder b(
      s, [&](const std::string& name) { return ck.has(name); },
      [&](const std::string& name, const std::vector<int64_t>& shape) {
        const TensorView& t = ck.get(name);
        Binder::check_shape(name, t, shape);
        if (t.dtype == DType::U8 && !name.ends_with("_blocks") && !name.ends_with("_scales"))
          throw Error("checkpoint: tensor '" + name + "' has dtype U8, which only MXFP4 blocks and scales may have");
        return t;
      });
  return bind_with(s, b);
}

ModelWeights bind_weights(const ModelSpec& s, const std::function<bool(const std::string&)>& has,
                          const TensorFactory& fetch) {
  Binder b(s, has, fetch);
  return bind_with(s, b);
}

ModelWeights bind_synthetic_weights(const ModelSpec& s, const TensorFactory& make) {
  Binder b(s, [](const std::string&) { return false; }, make, true);
  return bind_with(s, b);
}

bool is_gguf_path(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return false;
  return path.extension() == ".gguf" || GgufFile::looks_like_gguf(path);
}

const char* weights_mode_name(WeightsMode m) { return m == WeightsMode::Q8_0 ? "q8_0" : "as-stored"; }

WeightsMode parse_weights_mode(const std::string& text) {
  std::string t = text;
  for (char& c : t) c = char(std::tolower(static_cast<unsigned char>(c)));
  if (t == "as-stored") return WeightsMode::AsStored;
  if (t == "q8_0") return WeightsMode::Q8_0;
  throw Error("--weights must be as-stored or q8_0 (got '" + text + "')");
}

const char* weight_part_name(WeightPart p) {
  switch (p) {
    case WeightPart::Embedding: return "embedding";
    case WeightPart::LmHead: return "lm_head";
    case WeightPart::Attention: return "attention";
    case WeightPart::LinearAttention: return "linear_attention";
    case WeightPart::Norms: return "norms";
    case WeightPart::DenseFfn: return "dense_ffn";
    case WeightPart::Router: return "router";
    case WeightPart::RoutedExperts: return "routed_experts";
    case WeightPart::SharedExperts: return "shared_experts";
  }
  return "?";
}

int quantize_weights_q8_0(ModelWeights& w, std::vector<std::unique_ptr<uint8_t[]>>& owned) {
  // One job per distinct source matrix; views that share a source share its Q8_0 copy.
  struct Job {
    TensorView src;
    uint8_t* out = nullptr;
    std::vector<TensorView*> views;
  };
  std::vector<Job> jobs;
  std::map<const void*, size_t> by_data;
  for_each_weight(w, [&](WeightPart, bool matrix, TensorView& t) {
    if (!matrix || !t.data || t.shape.size() != 2 || t.shape[1] % 32 != 0) return;
    if (t.dtype != DType::F32 && t.dtype != DType::BF16 && t.dtype != DType::F16) return;
    if (t.data == w.embed.data) return;  // a tied LM head: the embedding stays as stored
    auto [it, fresh] = by_data.try_emplace(t.data, jobs.size());
    if (fresh) jobs.push_back(Job{t, nullptr, {}});
    Job& job = jobs[it->second];
    if (job.src.shape == t.shape && job.src.dtype == t.dtype) job.views.push_back(&t);
  });
  if (jobs.empty()) return 0;
  size_t before = 0, after = 0;
  for (Job& job : jobs) {
    const size_t bytes = size_t(job.src.shape[0]) * dtype_bytes(DType::Q8_0, job.src.shape[1]);
    owned.push_back(std::make_unique<uint8_t[]>(bytes));
    job.out = owned.back().get();
    before += job.src.nbytes();
    after += bytes;
  }
  // Work in chunks of rows (a model's few large matrices, the LM head, split as well as its many
  // experts); each thread widens one row at a time into its own buffer.
  struct Chunk {
    size_t job;
    int64_t row0, row1;
  };
  std::vector<Chunk> chunks;
  constexpr int64_t kRows = 256;
  for (size_t j = 0; j < jobs.size(); ++j)
    for (int64_t r = 0; r < jobs[j].src.shape[0]; r += kRows)
      chunks.push_back({j, r, std::min(r + kRows, jobs[j].src.shape[0])});
  std::atomic<size_t> next{0};
  auto work = [&] {
    std::vector<float> row;
    for (size_t c = next++; c < chunks.size(); c = next++) {
      const Job& job = jobs[chunks[c].job];
      const int64_t cols = job.src.shape[1];
      const size_t in_row = dtype_bytes(job.src.dtype, cols), out_row = dtype_bytes(DType::Q8_0, cols);
      row.resize(size_t(cols));
      for (int64_t r = chunks[c].row0; r < chunks[c].row1; ++r) {
        to_f32(job.src.dtype, static_cast<const uint8_t*>(job.src.data) + size_t(r) * in_row, row.data(), cols);
        quantize_q8_0(row.data(), job.out + size_t(r) * out_row, cols / 32);
      }
    }
  };
  const size_t n_threads = std::min<size_t>(std::max(1u, std::thread::hardware_concurrency()), chunks.size());
  std::vector<std::thread> threads;
  for (size_t i = 1; i < n_threads; ++i) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
  int views = 0;
  for (Job& job : jobs)
    for (TensorView* v : job.views) {
      *v = TensorView{DType::Q8_0, job.src.shape, job.out};
      ++views;
    }
  spdlog::info("quantised {} matrices to Q8_0 at load time ({} threads): {:.1f} MB as stored, {:.1f} MB in Q8_0",
               jobs.size(), n_threads, double(before) / 1e6, double(after) / 1e6);
  return views;
}

namespace {

// Applies LoadOptions::weights to a freshly bound model.
void apply_load_options(Model& m, const LoadOptions& options) {
  if (options.weights != WeightsMode::Q8_0) return;
  if (quantize_weights_q8_0(m.weights, m.owned) > 0) {
    m.weights_mode = WeightsMode::Q8_0;
    return;
  }
  spdlog::warn("--weights q8_0 changes nothing for {}: none of its matrices is F32, BF16 or F16 with rows a multiple "
               "of 32 (a quantised file stays as it is)",
               m.dir.filename().string());
}

// llama.cpp's llama_ftype (general.file_type) by value; null for an unknown one.
const char* file_type_name(int64_t t) {
  static const std::map<int64_t, const char*> names = {
      {0, "F32"},      {1, "F16"},      {2, "Q4_0"},     {3, "Q4_1"},     {7, "Q8_0"},       {8, "Q5_0"},
      {9, "Q5_1"},     {10, "Q2_K"},    {11, "Q3_K_S"},  {12, "Q3_K_M"},  {13, "Q3_K_L"},    {14, "Q4_K_S"},
      {15, "Q4_K_M"},  {16, "Q5_K_S"},  {17, "Q5_K_M"},  {18, "Q6_K"},    {19, "IQ2_XXS"},   {20, "IQ2_XS"},
      {21, "Q2_K_S"},  {22, "IQ3_XS"},  {23, "IQ3_XXS"}, {24, "IQ1_S"},   {25, "IQ4_NL"},    {26, "IQ3_S"},
      {27, "IQ3_M"},   {28, "IQ2_S"},   {29, "IQ2_M"},   {30, "IQ4_XS"},  {31, "IQ1_M"},     {32, "BF16"},
      {36, "TQ1_0"},   {37, "TQ2_0"},   {38, "MXFP4_MOE"}};
  auto it = names.find(t);
  return it == names.end() ? nullptr : it->second;
}

}  // namespace

std::string weights_label(const Model& m) {
  if (m.weights_mode == WeightsMode::Q8_0) return "Q8_0 (quantised on load)";
  if (m.gguf)
    if (const GgufValue* v = m.gguf->find("general.file_type"); v && v->is_integer())
      if (const char* name = file_type_name(v->i)) return name;
  std::map<std::string, int> count;
  for_each_weight(m.weights, [&](WeightPart, bool matrix, const TensorView& t) {
    if (matrix && t.data) ++count[dtype_name(t.dtype)];
  });
  if (count.empty()) return dtype_name(m.weights.dtype);
  std::vector<std::pair<std::string, int>> order(count.begin(), count.end());
  std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.second > b.second; });
  std::string label;
  for (const auto& entry : order) {
    if (!label.empty()) label += '/';
    label += entry.first;
  }
  return label;
}

std::shared_ptr<const Model> load_model(const std::filesystem::path& dir, const LoadOptions& options) {
  if (is_gguf_path(dir)) {
    auto m = std::make_shared<Model>();
    m->dir = dir;
    m->gguf = GgufFile::open(dir);
    m->spec = spec_from_gguf(*m->gguf);
    m->weights = bind_gguf_weights(m->spec, *m->gguf, m->owned);
    dequantize_weights_for_backends(m->weights, m->owned);
    apply_load_options(*m, options);
    spdlog::info("loaded {} ({}, {} layers, {} MoE, weights {}) from {}", m->spec.name, m->spec.architecture,
                 m->spec.n_layers, m->spec.n_moe_layers(), weights_label(*m), m->gguf->describe());
    return m;
  }
  auto m = std::make_shared<Model>();
  m->dir = dir;
  m->spec = load_model_spec(dir);
  m->checkpoint = Checkpoint::open(dir);
  m->weights = bind_weights(m->spec, *m->checkpoint);
  // gpt-oss' MXFP4 experts (repacked into GGUF's MXFP4 blocks by the binder): read in place by the
  // CPU kernels, as GGUF's block types are; what else is quantised is widened.
  bool mxfp4 = false;
  for (const auto& L : m->weights.layers)
    for (const auto& x : L.experts) mxfp4 = mxfp4 || x.gate.dtype == DType::MXFP4;
  if (mxfp4) dequantize_weights_for_backends(m->weights, m->owned);
  apply_load_options(*m, options);
  if (m->spec.vision_unused)
    spdlog::warn("{}: {} holds a vision tower; moescope runs only its language model (the vision part is not used)",
                 m->spec.name, m->spec.architecture);
  spdlog::info("loaded {} ({}, {} layers, {} MoE, weights {}) from {}", m->spec.name, m->spec.architecture,
               m->spec.n_layers, m->spec.n_moe_layers(), weights_label(*m), dir.string());
  return m;
}

namespace {
// What identifies a checkpoint's contents cheaply: its directory and the sizes and modification
// times of config.json and the safetensors files.
std::string checkpoint_key(const std::filesystem::path& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::path canonical = fs::weakly_canonical(dir, ec);
  std::map<std::string, std::string> files;
  for (const auto& entry : fs::directory_iterator(ec ? dir : canonical, ec)) {
    const std::string name = entry.path().filename().string();
    if (name != "config.json" && !name.ends_with(".safetensors") && !name.ends_with(".safetensors.index.json")) continue;
    std::error_code e1, e2;
    const auto size = entry.file_size(e1);
    const auto time = entry.last_write_time(e2).time_since_epoch().count();
    files[name] = std::to_string(e1 ? 0 : size) + "@" + std::to_string(e2 ? 0 : time);
  }
  std::string key = (ec ? dir : canonical).string();
  if (std::error_code e1, e2; fs::is_regular_file(dir, e1)) {  // a GGUF file
    key.append("=").append(std::to_string(fs::file_size(dir, e1))).append("@");
    key.append(std::to_string(fs::last_write_time(dir, e2).time_since_epoch().count()));
    return key;
  }
  for (const auto& [name, stamp] : files) key.append("|").append(name).append("=").append(stamp);
  return key;
}
}  // namespace

std::shared_ptr<const Model> load_model_shared(const std::filesystem::path& dir, const LoadOptions& options) {
  static std::mutex mu;
  static std::map<std::string, std::weak_ptr<const Model>> cache;
  std::string key = checkpoint_key(dir);
  key.append("#weights=").append(weights_mode_name(options.weights));
  std::lock_guard<std::mutex> lock(mu);  // one load at a time: a second caller waits for the first
  for (auto it = cache.begin(); it != cache.end();) it = it->second.expired() ? cache.erase(it) : std::next(it);
  if (auto it = cache.find(key); it != cache.end())
    if (auto model = it->second.lock()) {
      spdlog::info("sharing the loaded model of {}", dir.string());
      return model;
    }
  auto model = load_model(dir, options);
  cache[key] = model;
  return model;
}

}  // namespace moescope
