#include "cuda/cuda_weights.h"

#include <spdlog/spdlog.h>

#include <chrono>
#include <cmath>
#include <cstring>

#include "convert.cuh"
#include "moescope/error.h"
#include "quant_dequant.cuh"
#include "quant_gemv.cuh"
#include "random_init.cuh"

namespace moescope::cuda {
namespace {

enum class Init { Random, One, Zero };  // synthetic models: what a tensor is filled with

// The block type that parts (rows of one matrix, or one family of experts) can stay in on the
// device: their common block type when the kernels read it, every part has host data and rows of
// whole blocks; BF16 (widened at upload) otherwise.
DType common_block_type(const std::vector<const TensorView*>& parts) {
  if (parts.empty()) return DType::BF16;
  const DType t = parts.front()->dtype;
  if (!dtype_is_quantized(t) || !kernels::quant_supported(t)) return DType::BF16;
  for (const TensorView* v : parts)
    if (!v->data || v->dtype != t || v->shape.size() != 2 || v->dim(1) % dtype_block_elems(t) != 0)
      return DType::BF16;
  return t;
}

// A layer's routed experts' gate and up matrices (one after the other, expert by expert), or their
// down matrices.
std::vector<const TensorView*> expert_parts(const std::vector<MlpWeights>& experts, bool gate_up) {
  std::vector<const TensorView*> parts;
  for (const auto& e : experts) {
    parts.push_back(gate_up ? &e.gate : &e.down);
    if (gate_up) parts.push_back(&e.up);
  }
  return parts;
}

// The type a layer's routed experts are stacked in (gate and up together, or down).
DType expert_stack_type(const std::vector<MlpWeights>& experts, bool gate_up) {
  return common_block_type(expert_parts(experts, gate_up));
}

kernels::SrcType src_type(DType t) {
  switch (t) {
    case DType::F32: return kernels::SrcType::F32;
    case DType::F16: return kernels::SrcType::F16;
    case DType::BF16: return kernels::SrcType::BF16;
    default: break;
  }
  throw Error(std::string("the CUDA backend does not read ") + dtype_name(t) + " tensors yet");
}

// Walks the model once, placing every tensor in the arena; with upload set it also copies or
// generates the data. Plan and upload run the same code, so sizes agree by construction.
class Placer {
public:
  Placer(const Context* ctx, const Model& model, void* base, size_t total)
      : ctx_(ctx), model_(model), arena_(base), total_(total) {}

  size_t used() const { return arena_.used(); }

  // Concatenates views along their first dimension into one tensor of dtype BF16 or fp32.
  const void* place(std::initializer_list<const TensorView*> parts, bool f32, Init init = Init::Random) {
    return place(std::vector<const TensorView*>(parts), f32, init);
  }
  const void* place(const std::vector<const TensorView*>& parts, bool f32, Init init = Init::Random) {
    size_t n = 0;
    for (const TensorView* v : parts) n += size_t(v->numel());
    void* dst = f32 ? static_cast<void*>(arena_.take<float>(n)) : static_cast<void*>(arena_.take<uint16_t>(n));
    if (!ctx_) return nullptr;
    char* at = static_cast<char*>(dst);
    for (const TensorView* v : parts) {
      fill(*v, at, f32, init);
      at += size_t(v->numel()) * (f32 ? 4 : 2);
    }
    return dst;
  }
  const float* f32(const TensorView& v, Init init = Init::Random) {
    return v.shape.empty() ? nullptr : static_cast<const float*>(place({&v}, true, init));
  }
  // A norm weight used as offset + w (ModelSpec::norm_weight_offset): stored with the offset added.
  const float* norm(const TensorView& v, float offset) {
    float* d = const_cast<float*>(f32(v, Init::One));
    if (ctx_ && d && offset != 0.0f) {
      kernels::add_constant(d, v.numel(), offset, ctx_->stream());
      MOESCOPE_CUDA_LAUNCHED();
    }
    return d;
  }
  const uint16_t* bf16(std::initializer_list<const TensorView*> parts) {
    return static_cast<const uint16_t*>(place(parts, false));
  }
  // A matrix of fused parts (concatenated rows). blocks: kept in the parts' block type when they
  // share one the kernels read (common_block_type), else BF16 (or fp32).
  DeviceMatrix matrix(std::initializer_list<const TensorView*> parts, bool f32 = false, bool blocks = true) {
    DeviceMatrix m;
    m.in = int((*parts.begin())->dim(1));
    for (const TensorView* v : parts) m.out += int(v->dim(0));
    m.f32 = f32;
    const std::vector<const TensorView*> list(parts);
    const DType bt = f32 || !blocks ? DType::BF16 : common_block_type(list);
    if (bt != DType::BF16) {
      m.type = bt;
      m.w = raw(list);
      return m;
    }
    m.w = place(parts, f32);
    return m;
  }
  // The largest matrix kept in blocks (elements): prefill widens one at a time into scratch.
  size_t max_block_elems() const { return max_block_elems_; }
  // Bytes and weights of everything kept in blocks so far.
  size_t block_bytes() const { return block_bytes_; }
  size_t block_elems() const { return block_elems_; }
  // Stacks a family of equally shaped tensors (experts) one after the other, in `type`
  // (expert_stack_type): a block type's bytes are copied as they are.
  const void* stack(const std::vector<MlpWeights>& experts, bool gate_up, DType type) {
    if (type != DType::BF16) {
      const MlpWeights& e0 = experts[0];
      const int64_t one = gate_up ? e0.gate.numel() + e0.up.numel() : e0.down.numel();  // one expert's matrix
      max_block_elems_ = std::max(max_block_elems_, size_t(one));
      return raw(expert_parts(experts, gate_up), /*count=*/false);
    }
    size_t n = 0;
    for (const auto& e : experts) n += gate_up ? size_t(e.gate.numel() + e.up.numel()) : size_t(e.down.numel());
    uint16_t* dst = arena_.take<uint16_t>(n);
    if (!ctx_) return nullptr;
    char* at = reinterpret_cast<char*>(dst);
    for (const auto& e : experts) {
      const TensorView* parts[2] = {gate_up ? &e.gate : &e.down, gate_up ? &e.up : nullptr};
      for (const TensorView* v : parts) {
        if (!v) continue;
        fill(*v, at, false, Init::Random);
        at += size_t(v->numel()) * 2;
      }
    }
    return dst;
  }

private:
  // The parts' bytes one after the other, as they are (block types). count: the result is one
  // matrix that prefill widens whole (max_block_elems).
  const void* raw(const std::vector<const TensorView*>& parts, bool count = true) {
    size_t bytes = 0, elems = 0;
    for (const TensorView* v : parts) bytes += v->nbytes(), elems += size_t(v->numel());
    if (count) max_block_elems_ = std::max(max_block_elems_, elems);
    block_bytes_ += bytes;
    block_elems_ += elems;
    uint8_t* dst = arena_.take<uint8_t>(bytes);
    if (!ctx_) return nullptr;
    uint8_t* at = dst;
    for (const TensorView* v : parts) {
      MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(at, v->data, v->nbytes(), cudaMemcpyHostToDevice, ctx_->stream()));
      at += v->nbytes();
      progress(v->nbytes());
    }
    return dst;
  }

  void fill(const TensorView& v, void* dst, bool f32, Init init) {
    const long long n = v.numel();
    cudaStream_t s = ctx_->stream();
    if (!v.data) {  // synthetic: generated on the device from the model's seed
      if (init == Init::Random)
        kernels::fill_uniform(dst, f32, n, model_.seed * 0x9E3779B97F4A7C15ull + ++tensor_index_ * 0xD1B54A32D192ED03ull,
                              0.5f / std::sqrt(float(v.shape.back())), s);
      else
        kernels::fill_constant(dst, f32, n, init == Init::One ? 1.0f : 0.0f, s);
      MOESCOPE_CUDA_LAUNCHED();
    } else if ((v.dtype == DType::BF16 && !f32) || (v.dtype == DType::F32 && f32)) {
      MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(dst, v.data, v.nbytes(), cudaMemcpyHostToDevice, s));
    } else if (dtype_is_quantized(v.dtype) && kernels::quant_supported(v.dtype)) {
      // Block types widened here (matrices other than the routed experts): whole blocks through
      // the staging buffer, dequantised on the device (bit-exact with dequantize_blocks, then the
      // same BF16 rounding as the host's).
      if (!staging_.get()) staging_ = DeviceBuffer(kStaging);
      const int64_t be = dtype_block_elems(v.dtype);
      const size_t bb = dtype_block_bytes(v.dtype);
      const long long n_blocks = n / be, per = static_cast<long long>(kStaging / bb);
      for (long long i = 0; i < n_blocks; i += per) {
        const long long m = std::min<long long>(per, n_blocks - i);
        MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(staging_.get(), static_cast<const char*>(v.data) + size_t(i) * bb,
                                            size_t(m) * bb, cudaMemcpyHostToDevice, s));
        kernels::quant_dequantize(staging_.get(), v.dtype, m,
                                  static_cast<char*>(dst) + size_t(i * be) * (f32 ? 4 : 2), f32, s);
        MOESCOPE_CUDA_LAUNCHED();
        ctx_->sync();  // the staging buffer is reused by the next chunk
      }
    } else {  // convert through a device staging buffer, in chunks
      if (!staging_.get()) staging_ = DeviceBuffer(kStaging);
      const size_t elt = dtype_size(v.dtype), per = kStaging / elt;
      for (long long i = 0; i < n; i += static_cast<long long>(per)) {
        const long long m = std::min<long long>(static_cast<long long>(per), n - i);
        MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(staging_.get(), static_cast<const char*>(v.data) + size_t(i) * elt,
                                            size_t(m) * elt, cudaMemcpyHostToDevice, s));
        kernels::convert(staging_.get(), src_type(v.dtype), static_cast<char*>(dst) + size_t(i) * (f32 ? 4 : 2), f32, m,
                         s);
        MOESCOPE_CUDA_LAUNCHED();
        ctx_->sync();  // the staging buffer is reused by the next chunk
      }
    }
    progress(size_t(n) * (f32 ? 4 : 2));
  }

  void progress(size_t bytes) {
    done_ += bytes;
    if (total_ && done_ * 10 / total_ > reported_) {
      reported_ = done_ * 10 / total_;
      spdlog::info("CUDA: weights {}% ({:.2f} of {:.2f} GiB)", reported_ * 10, double(done_) / (1 << 30),
                   double(total_) / (1 << 30));
    }
  }

  static constexpr size_t kStaging = size_t(64) << 20;
  const Context* ctx_;
  const Model& model_;
  Arena arena_;
  size_t total_ = 0, done_ = 0, reported_ = 0;
  uint64_t tensor_index_ = 0;
  size_t max_block_elems_ = 0, block_bytes_ = 0, block_elems_ = 0;
  DeviceBuffer staging_;
};

DeviceWeights place_all(Placer& p, const Model& model) {
  const ModelSpec& s = model.spec;
  const ModelWeights& w = model.weights;
  const auto& a = s.attn;
  DeviceWeights d;
  // Synthetic models (no host data) generate a BF16 table; a BF16 checkpoint's is exact in BF16.
  const bool embed_f32 = w.embed.data && w.embed.dtype != DType::BF16;
  if (embed_f32) d.embed_f32 = p.f32(w.embed);
  else d.embed = p.bf16({&w.embed});
  const float off = s.norm_weight_offset;
  d.final_norm = p.norm(w.final_norm, off);
  if (s.tie_embeddings && !embed_f32) {
    d.lm_head.w = d.embed;
    d.lm_head.out = int(w.embed.dim(0));
    d.lm_head.in = int(w.embed.dim(1));
  } else {
    // Widened even from blocks: a block LM head would need a vocabulary-sized BF16 scratch in prefill.
    d.lm_head = p.matrix({s.tie_embeddings ? &w.embed : &w.lm_head}, false, /*blocks=*/false);
  }
  for (int l = 0; l < s.n_layers; ++l) {
    const LayerWeights& L = w.layers[size_t(l)];
    DeviceLayer dl;
    dl.attn_norm = p.norm(L.attn_norm, off);
    dl.ffn_norm = p.norm(L.ffn_norm, off);
    if (s.is_linear(l)) {  // Gated DeltaNet: [qkv; z] BF16; the gates [b; a], the constants fp32
      dl.lin_in = p.matrix({&L.lin_qkv.w, &L.lin_z.w});
      dl.lin_ba = p.matrix({&L.lin_b.w, &L.lin_a.w}, /*f32=*/true);
      dl.lin_out = p.matrix({&L.lin_out.w});
      dl.lin_conv = p.f32(L.conv);
      dl.a_log = p.f32(L.a_log, Init::Zero);
      dl.dt_bias = p.f32(L.dt_bias, Init::Zero);
      dl.lin_norm = p.f32(L.lin_norm, Init::One);  // plain w: no offset (CpuBackend::linear_attention)
    } else if (a.kind == AttentionKind::GQA) {
      // q_proj rows are [query; gate] per head with AttentionSpec::output_gate (twice as many).
      dl.in_proj = p.matrix({&L.q.w, &L.k.w, &L.v.w});
      if (!L.q.b.shape.empty())
        dl.in_proj.bias = static_cast<const float*>(p.place({&L.q.b, &L.k.b, &L.v.b}, true));
      if (a.qk_norm != QKNorm::None) {
        dl.q_norm = p.norm(L.q_norm, off);
        dl.k_norm = p.norm(L.k_norm, off);
      }
      if (a.sinks) dl.sinks = p.f32(L.sinks);
    } else {
      if (a.q_lora_rank > 0) {
        dl.in_proj = p.matrix({&L.q_a.w, &L.kv_a.w});
        dl.q_a_norm = p.f32(L.q_a_norm, Init::One);
        dl.q_b = p.matrix({&L.q_b.w});
      } else {
        dl.in_proj = p.matrix({&L.q.w, &L.kv_a.w});
      }
      dl.kv_a_norm = p.f32(L.kv_a_norm, Init::One);
      dl.kv_b = p.bf16({&L.kv_b.w});
    }
    if (!s.is_linear(l)) {
      dl.o = p.matrix({&L.o.w});
      if (!L.o.b.shape.empty()) dl.o.bias = p.f32(L.o.b);  // gpt-oss, Llama with attention_bias
    }
    if (!s.moe_layer[size_t(l)]) {
      dl.dense_gate_up = p.matrix({&L.dense.gate, &L.dense.up});
      dl.dense_down = p.matrix({&L.dense.down});
    } else {
      dl.router = p.matrix({&L.router}, /*f32=*/true);
      if (s.moe.router.logit_bias) dl.router.bias = p.f32(L.router_logit_bias, Init::Zero);  // gpt-oss
      if (!L.router_bias.shape.empty()) dl.router_bias = p.f32(L.router_bias, Init::Zero);
      dl.experts_gate_up_type = expert_stack_type(L.experts, true);
      dl.experts_down_type = expert_stack_type(L.experts, false);
      dl.experts_gate_up = p.stack(L.experts, true, dl.experts_gate_up_type);
      dl.experts_down = p.stack(L.experts, false, dl.experts_down_type);
      if (s.moe.expert_bias) {  // gpt-oss: fp32 [E][2W] (gate, then up, per expert) and [E][H]
        std::vector<const TensorView*> gu, dn;
        for (const MlpWeights& e : L.experts) gu.push_back(&e.gate_b), gu.push_back(&e.up_b), dn.push_back(&e.down_b);
        dl.experts_gate_up_bias = static_cast<const float*>(p.place(gu, true));
        dl.experts_down_bias = static_cast<const float*>(p.place(dn, true));
      }
      if (s.moe.shared != SharedExperts::None) {
        dl.shared_gate_up = p.matrix({&L.shared.gate, &L.shared.up});
        dl.shared_down = p.matrix({&L.shared.down});
        if (s.moe.shared == SharedExperts::SigmoidGated) dl.shared_gate = p.f32(L.shared_gate);
      }
    }
    d.layers.push_back(dl);
  }
  return d;
}

}  // namespace

size_t expert_bytes(DType type, int rows, int cols) { return dtype_bytes(type, int64_t(rows) * cols); }

size_t dequant_scratch_elems(const Model& model) {
  Placer p(nullptr, model, nullptr, 0);
  place_all(p, model);
  return p.max_block_elems();
}

size_t device_weight_bytes(const Model& model) {
  Placer p(nullptr, model, nullptr, 0);
  place_all(p, model);
  return p.used();
}

DeviceWeights upload_weights(const Context& ctx, const Model& model) {
  const size_t total = device_weight_bytes(model);
  const auto t0 = std::chrono::steady_clock::now();
  DeviceBuffer arena(total);
  Placer p(&ctx, model, arena.get(), total);
  DeviceWeights d = place_all(p, model);
  ctx.sync();
  if (p.block_bytes())
    spdlog::info("CUDA: {:.2f} GiB of block-quantised matrices kept in their blocks ({:.2f} GiB in BF16)",
                 double(p.block_bytes()) / (1 << 30), double(p.block_elems()) * 2 / (1 << 30));
  d.arena = std::move(arena);
  const double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  spdlog::info("CUDA: {} {:.2f} GiB of weights in {:.1f} s", model.synthetic && !model.weights.embed.data ? "generated"
                                                                                                        : "uploaded",
               double(total) / (1 << 30), sec);
  return d;
}

}  // namespace moescope::cuda
