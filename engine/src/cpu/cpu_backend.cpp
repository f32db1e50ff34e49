// The CPU backend: the reference transformer forward that every model runs through, driven by
// ModelSpec. Reads top to bottom: embedding → per layer (attention, FFN or MoE) → norm → head.
// The CUDA backend is checked against this file.
//
// Shape legend: T = tokens in this chunk, H = hidden, E = routed experts, K = experts per token,
// W = FFN width, V = vocabulary, nh/nkv = query/key-value heads, hd = head dim,
// C = kv_lora_rank (MLA latent), R = qk_rope_head_dim, N = qk_nope_head_dim, Dv = v_head_dim.
// Linear attention (Gated DeltaNet): nk/nv = key/value heads, dk/dv = their dims,
// Cc = conv channels (2·nk·dk + nv·dv), Kc = conv kernel.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <limits>
#include <spdlog/spdlog.h>

#include "cpu/kv_cache.h"
#include "moescope/backend.h"
#include "cpu/attention.h"
#include "cpu/gemm.h"
#include "moescope/cpu_ops.h"
#include "moescope/error.h"

namespace moescope {
namespace {

using cpu::kGemmRowBlock;

// Element i of a small F32/BF16/F16 vector (biases, sinks).
float element(const TensorView& t, int64_t i) {
  const auto* p = static_cast<const uint8_t*>(t.data);
  switch (t.dtype) {
    case DType::F32: { float v; std::memcpy(&v, p + size_t(i) * 4, 4); return v; }
    case DType::BF16: return bf16_to_f32(uint16_t(p[2 * i] | (p[2 * i + 1] << 8)));
    case DType::F16: return f16_to_f32(uint16_t(p[2 * i] | (p[2 * i + 1] << 8)));
    default: throw Error("a bias or sink tensor must be F32, BF16 or F16");
  }
}

// Tokens per pass over the layers: a prompt's chunk reads each expert's weights once for all its
// tokens, so larger is faster up to where the scratch (sized for the largest chunk seen, grown on
// demand: decode never allocates) costs more memory than it saves time.
constexpr int kChunk = 512;
constexpr int kMlaHeads = 8;  // MLA heads per attention work item (they share the latent cache)
// MLA tokens whose absorbed queries and latent outputs are held at once (the W_uk / W_uv
// products run as matmuls over them: each head's weights read once for all of them).
constexpr int kMlaTokens = 64;
constexpr int kQTokens = 16;  // GQA tokens per attention work item

// One attention work item's queries, outputs, visible ranges and cached runs (cpu::attend).
struct AttnLists {
  std::vector<const float*> q;
  std::vector<float*> o;
  std::vector<int> lo, hi;
  std::vector<float> sink;  // empty, or one sink logit per query
  std::vector<cpu::KvRun> runs;
  void reserve(size_t n, size_t n_runs) {
    q.reserve(n), o.reserve(n), lo.reserve(n), hi.reserve(n), sink.reserve(n), runs.reserve(n_runs);
  }
  void clear() { q.clear(), o.clear(), lo.clear(), hi.clear(), sink.clear(), runs.clear(); }
  void add(const float* qi, float* oi, int l, int h) { q.push_back(qi), o.push_back(oi), lo.push_back(l), hi.push_back(h); }
  cpu::AttnQueries queries() const {
    return {q.data(), o.data(), lo.data(), hi.data(), int(q.size()), sink.empty() ? nullptr : sink.data()};
  }
};

class CpuBackend final : public Backend {
public:
  CpuBackend(std::shared_ptr<const Model> model, const BackendOptions& opt)
      : model_(std::move(model)), opt_(opt), s_(model_->spec), w_(model_->weights), pool_(opt.threads),
        capacity_(opt.context > 0 ? std::min(opt.context, s_.max_position) : std::min(s_.max_position, 8192)),
        kv_(s_.n_attention_layers(), s_.kv_values_per_token(), capacity_),
        state_(s_.n_linear_layers(), s_.linear) {
    inv_freq_ = s_.rope.inverse_frequencies();
    // Layer l's slot: in the KV cache (attention layers) or in the recurrent state (linear ones).
    for (int l = 0, na = 0, nl = 0; l < s_.n_layers; ++l) slot_.push_back(s_.is_linear(l) ? nl++ : na++);
    // Gated DeltaNet constants in fp32: conv weights [Cc][Kc], -exp(A_log) and dt_bias [nv], norm [dv].
    lin_.resize(size_t(s_.n_layers));
    for (int l = 0; l < s_.n_layers; ++l) {
      if (!s_.is_linear(l)) continue;
      const LayerWeights& L = w_.layers[size_t(l)];
      LinearConsts& c = lin_[size_t(l)];
      const int64_t nconv = int64_t(s_.linear.conv_dim()) * s_.linear.conv_kernel;
      for (int64_t i = 0; i < nconv; ++i) c.conv.push_back(element(L.conv, i));
      for (int h = 0; h < s_.linear.n_v_heads; ++h) {
        c.neg_a.push_back(-std::exp(element(L.a_log, h)));
        c.dt_bias.push_back(element(L.dt_bias, h));
      }
      for (int d = 0; d < s_.linear.v_head_dim; ++d) c.norm.push_back(element(L.lin_norm, d));
    }
    if (s_.attn.sinks) {  // [n_layers][n_heads] in fp32
      sinks_.resize(size_t(s_.n_layers));
      for (int l = 0; l < s_.n_layers; ++l)
        for (int h = 0; h < s_.attn.n_heads; ++h) sinks_[size_t(l)].push_back(element(w_.layers[size_t(l)].sinks, h));
    }
    route_scratch_.resize(size_t(3) * std::max(1, s_.moe.router.n_experts) + 1024);
    if (s_.attn.kind == AttentionKind::MLA) build_mla_uk_t();
    // Per-thread attention scratch (cpu/attention.h) and, for MLA, the latent queries and outputs.
    const auto& at = s_.attn;
    const int group = at.kind == AttentionKind::GQA ? at.n_heads / std::max(1, at.n_kv_heads) : kMlaHeads;
    const int C = std::max(at.kv_lora_rank, 1), R = at.qk_rope_head_dim;
    const size_t per_thread =
        at.kind == AttentionKind::GQA
            ? cpu::attend_scratch(kQTokens * group, at.head_dim)
            : cpu::attend_scratch(kMlaHeads, C + R);
    attn_lists_.resize(size_t(pool_.size()));
    for (auto& al : attn_lists_)  // runs: one per 16-position cache block
      al.reserve(size_t(kQTokens) * size_t(std::max(group, kMlaHeads)), size_t(capacity_) / 16 + 2);
    thread_scratch_.resize(size_t(pool_.size()) * per_thread);
    thread_stride_ = per_thread;
    name_ = "CPU (" + std::to_string(pool_.size()) + " threads)";
  }

  std::string name() const override { return name_; }
  const ModelSpec& spec() const override { return s_; }
  int context_length() const override { return capacity_; }
  int n_cached() const override { return kv_.size(); }
  int reusable_prefix(int n) const override {
    return state_.n_layers() == 0 || n >= kv_.size() ? std::min(n, kv_.size()) : 0;
  }
  double linear_state_seconds() const override { return linear_seconds_; }
  // The weights are the model's own (mapped from the file): a sibling shares them as they are.
  std::unique_ptr<Backend> sibling(int context) const override {
    BackendOptions o = opt_;
    if (context > 0) o.context = context;
    return std::make_unique<CpuBackend>(model_, o);
  }
  void truncate(int n) override {
    n = std::max(0, n);
    if (state_.n_layers() > 0 && n < kv_.size()) {
      if (n > 0)
        throw Error("the linear-attention state holds all " + std::to_string(kv_.size()) +
                    " tokens and cannot be rewound to " + std::to_string(n) + " (only cleared)");
      state_.clear();
    }
    kv_.truncate(n);
  }
  KvStats kv_stats() const override {
    KvStats k = kv_.stats(s_.mha_kv_values_per_token());
    k.state_layers = state_.n_layers();
    k.state_bytes = state_.bytes();
    return k;
  }

  Calibration calibrate() override {
    Calibration c;
    // Read bandwidth, the better of two readers over a 1 GiB buffer, best of five passes each:
    // every thread summing its contiguous 4 MiB slices with a vectorised loop (cpu::read_sum),
    // and the decode kernel itself (a one-token matmul over the buffer as BF16 rows, software
    // prefetch included). The decode loop then cannot read faster than the roofline says.
    const size_t n = (size_t(1) << 30) / sizeof(float);
    constexpr size_t kSlice = size_t(1) << 20;  // 4 MiB per work item
    std::vector<float> buf(n, 1.0f);
    std::vector<float> sums(size_t(pool_.size()));
    double best = 0.0;
    auto timed = [&](auto&& read) {
      for (int pass = 0; pass < 5; ++pass) {
        auto t0 = std::chrono::steady_clock::now();
        read();
        double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
        best = std::max(best, double(n * sizeof(float)) / sec / 1e9);
      }
    };
    timed([&] {
      pool_.parallel_for(int(n / kSlice), [&](int b, int e, int th) {
        sums[size_t(th)] += cpu::read_sum(buf.data() + size_t(b) * kSlice, size_t(e - b) * kSlice);
      });
    });
    {
      const int cols = 2048, rows = int(n * 2 / size_t(cols));
      const TensorView wv{DType::BF16, {rows, cols}, buf.data()};
      std::vector<float> xv(static_cast<size_t>(cols), 1e-3f), yv(static_cast<size_t>(rows));
      timed([&] { cpu::matmul(pool_, xv.data(), 1, wv, nullptr, yv.data()); });
      sums[0] += yv[0];
    }
    if (sums[0] < 0.0f) spdlog::debug("calibration sum {}", sums[0]);  // keeps the reads alive
    c.bandwidth_gbs = best;
    // Matmul throughput of this backend's own kernel on BF16 weights (what checkpoints hold):
    // 256 tokens x [2048, 2048].
    const int T = 256, D = 2048;
    std::vector<float> x(size_t(T) * D), y(size_t(T) * D);
    std::vector<uint16_t> w(size_t(D) * D);
    for (size_t i = 0; i < x.size(); ++i) x[i] = float(int(i * 2654435761u % 2001) - 1000) * 1e-3f;
    for (size_t i = 0; i < w.size(); ++i) w[i] = uint16_t(0x3c00 + (i * 40503u) % 512);  // ~0.008..0.03
    TensorView wv{DType::BF16, {D, D}, w.data()};
    for (int pass = 0; pass < 4; ++pass) {  // the first pass only warms up
      auto t0 = std::chrono::steady_clock::now();
      cpu::matmul(pool_, x.data(), T, wv, nullptr, y.data());
      double sec = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
      if (pass > 0) c.matmul_tflops = std::max(c.matmul_tflops, 2.0 * T * double(D) * D / sec / 1e12);
    }
    c.method = "host read of 1 GiB on " + std::to_string(pool_.size()) +
               " threads (vectorised sum and one-token BF16 matmul, best of 5 each); BF16-weight matmul 256x2048x2048 with the backend's kernel (" +
               cpu::isa_name(cpu::active_isa()) + ", best of 3)";
    return c;
  }

  void forward(std::span<const int32_t> tokens, const ForwardOptions& opt, ForwardResult& out) override {
    const int n = int(tokens.size());
    const int start = kv_.size();
    control_ = &begin_forward(s_, tokens, start, capacity_, opt, out);
    kv_.ensure(start + n);
    disabled_ = control_->disabled_mask(s_.n_layers, s_.moe.router.n_experts);

    try {
      for (int c0 = 0; c0 < n; c0 += kChunk) {
        const int T = std::min(kChunk, n - c0);
        run_chunk(tokens.subspan(size_t(c0), size_t(T)), start + c0, c0, opt, out);
        kv_.set_size(start + c0 + T);
      }
    } catch (...) {
      kv_.set_size(start);  // a failed forward leaves the KV cache as it was
      if (state_.n_layers() > 0) {  // but a recurrent state has moved on: start again
        state_.clear();
        kv_.set_size(0);
        spdlog::warn("a failed forward cleared the linear-attention state; the next one starts from position 0");
      }
      throw;
    }
  }

private:
  // MLA's W_uk (the first N rows of each head's block of kv_b, [N][C]) transposed to [C][N] per
  // head, so that W_ukᵀ q_nope is a matmul over the tokens like every other product; the bytes of
  // kv_b's dtype (F32/BF16/F16: the loader widens a block-quantised kv_b) are moved, not converted.
  void build_mla_uk_t() {
    const auto& a = s_.attn;
    const int nh = a.n_heads, C = a.kv_lora_rank, N = a.qk_nope_head_dim, Dv = a.v_head_dim;
    mla_.resize(size_t(s_.n_attention_layers()));
    size_t bytes = 0;
    for (int l = 0; l < s_.n_layers; ++l) {
      if (s_.is_linear(l)) continue;
      const TensorView& wkv = w_.layers[size_t(l)].kv_b.w;
      const size_t es = dtype_size(wkv.dtype);
      const auto* src = static_cast<const uint8_t*>(wkv.data);
      MlaHeads& m = mla_[size_t(slot_[size_t(l)])];
      m.bytes.resize(size_t(nh) * C * N * es);
      for (int h = 0; h < nh; ++h) {
        for (int d = 0; d < N; ++d)
          for (int c = 0; c < C; ++c)
            std::memcpy(m.bytes.data() + ((size_t(h) * C + c) * N + d) * es,
                        src + ((size_t(h) * (N + Dv) + d) * C + c) * es, es);
        m.uk_t.push_back({wkv.dtype, {C, N}, m.bytes.data() + size_t(h) * C * N * es});
        m.uv.push_back({wkv.dtype, {Dv, C}, src + (size_t(h) * (N + Dv) + N) * C * es});
      }
      bytes += m.bytes.size();
    }
    spdlog::debug("MLA: W_uk transposed for the prompt matmuls, {:.1f} MiB", double(bytes) / (1 << 20));
  }

  // Scratch for chunks of up to T tokens (grown, never shrunk).
  void reserve_chunk(int T) {
    if (T <= reserved_) return;
    const auto& a = s_.attn;
    const int H = s_.hidden, E = std::max(1, s_.moe.router.n_experts);
    const int W = std::max({s_.dense_width, s_.moe.expert_width, s_.moe.shared_width, 1});
    auto grow = [](auto& v, size_t n) { v.resize(n); };
    grow(x_, size_t(T) * H), grow(xn_, size_t(T) * H), grow(attn_out_, size_t(T) * H), grow(ffn_out_, size_t(T) * H);
    grow(q_, size_t(T) * a.n_heads * a.q_head_dim());
    grow(heads_out_, size_t(T) * a.n_heads * a.out_head_dim());
    if (a.kind == AttentionKind::GQA) {
      grow(k_, size_t(T) * a.n_kv_heads * a.head_dim), grow(v_, size_t(T) * a.n_kv_heads * a.head_dim);
    } else {
      grow(q_a_, size_t(T) * std::max(a.q_lora_rank, 1));
      grow(kv_a_, size_t(T) * (a.kv_lora_rank + a.qk_rope_head_dim));
      const size_t tb = size_t(std::min(T, kMlaTokens)) * size_t(a.n_heads);
      grow(mla_q_, tb * size_t(a.kv_lora_rank + a.qk_rope_head_dim)), grow(mla_o_, tb * size_t(a.kv_lora_rank));
    }
    if (a.output_gate) grow(q_gate_, size_t(T) * a.n_heads * 2 * a.head_dim);
    if (state_.n_layers() > 0) {
      const auto& la = s_.linear;
      grow(lin_qkv_, size_t(T) * la.conv_dim()), grow(lin_conv_, size_t(T) * la.conv_dim());
      grow(lin_z_, size_t(T) * la.value_dim()), grow(lin_o_, size_t(T) * la.value_dim());
      grow(lin_b_, size_t(T) * la.n_v_heads), grow(lin_g_, size_t(T) * la.n_v_heads);
      grow(lin_scratch_, size_t(la.n_v_heads) * (2 * la.k_head_dim + la.v_head_dim));
    }
    grow(cos_, size_t(T) * s_.rope.dim / 2), grow(sin_, size_t(T) * s_.rope.dim / 2);
    grow(router_logits_, size_t(T) * E), grow(route_ids_, size_t(T) * E), grow(route_w_, size_t(T) * E);
    grow(ffn_tmp_, size_t(pool_.size()) * 2 * size_t(T) * kGemmRowBlock);
    groups_.reserve(size_t(E) + 2);
    items_.reserve(size_t(E + 2) * size_t((std::max(W, H) + kGemmRowBlock - 1) / kGemmRowBlock));
    reserved_ = T;
  }

  // Room for n FFN pairs (grown, never shrunk): every (token, routed expert) of a chunk plus one
  // per token for the shared or dense FFN.
  void reserve_pairs(int n) {
    if (size_t(n) <= pair_tok_.size()) return;
    pair_tok_.resize(size_t(n)), pair_w_.resize(size_t(n)), pair_x_.resize(size_t(n)), pair_h_.resize(size_t(n));
  }

  // ---- one chunk of T tokens at positions [pos0, pos0 + T) --------------------------------
  void run_chunk(std::span<const int32_t> tokens, int pos0, int out_row0, const ForwardOptions& opt,
                 ForwardResult& out) {
    const int T = int(tokens.size()), H = s_.hidden;
    reserve_chunk(T);
    float* x = x_.data();  // [T, H] residual stream

    // Rotary tables for this chunk's positions: [T, rope_dim / 2].
    int pos[kChunk];
    for (int t = 0; t < T; ++t) pos[t] = pos0 + t;
    cpu::rope_tables(pos, T, inv_freq_.data(), s_.rope.dim / 2, s_.rope.attention_factor, cos_.data(), sin_.data());

    // ---- embedding ----
    for (int t = 0; t < T; ++t) cpu::embed(w_.embed, tokens[size_t(t)], x + size_t(t) * H);

    int moe_index = 0;
    for (int l = 0; l < s_.n_layers; ++l) {
      const LayerWeights& L = w_.layers[size_t(l)];
      // ---- attention block: x += attn(rmsnorm(x)) (or linear attention) ----
      cpu::rmsnorm(x, L.attn_norm, s_.rms_eps, xn_.data(), T, H, off_);
      if (s_.is_linear(l)) linear_attention(l, L, T);
      else if (s_.attn.kind == AttentionKind::GQA) attention_gqa(l, L, T, pos0);
      else attention_mla(l, L, T, pos0);
      for (size_t i = 0; i < size_t(T) * H; ++i) x[i] += attn_out_[i];

      // ---- feed-forward block: x += ffn(rmsnorm(x)) ----
      cpu::rmsnorm(x, L.ffn_norm, s_.rms_eps, xn_.data(), T, H, off_);
      if (s_.moe_layer[size_t(l)]) moe(l, L, T, moe_index++, out_row0, opt, out);
      else dense_ffn(L.dense, T);
      for (size_t i = 0; i < size_t(T) * H; ++i) x[i] += ffn_out_[i];
    }

    // ---- final norm and LM head (all rows, or only the sequence's last token) ----
    const bool last_chunk = out_row0 + T == out.n_tokens;
    if (opt.all_logits) {
      cpu::rmsnorm(x, w_.final_norm, s_.rms_eps, xn_.data(), T, H, off_);
      cpu::matmul(pool_, xn_.data(), T, w_.lm_head, nullptr, out.logits.data() + size_t(out_row0) * s_.vocab_size);
    } else if (last_chunk) {
      cpu::rmsnorm(x + size_t(T - 1) * H, w_.final_norm, s_.rms_eps, xn_.data(), 1, H, off_);
      cpu::matmul(pool_, xn_.data(), 1, w_.lm_head, nullptr, out.logits.data());
    }
  }

  // ---- grouped-query attention (Mixtral, Qwen, OLMoE) ---------------------------------------
  void attention_gqa(int l, const LayerWeights& L, int T, int pos0) {
    const auto& a = s_.attn;
    const int nh = a.n_heads, nkv = a.n_kv_heads, hd = a.head_dim;
    const int qd = nh * hd, kd = nkv * hd;
    float* q = q_.data();  // [T, nh·hd]
    float* k = k_.data();  // [T, nkv·hd]
    float* v = v_.data();  // [T, nkv·hd]
    if (a.output_gate) {  // q_proj rows per head: [query (hd), gate (hd)]; the gates stay in q_gate_
      float* qg = q_gate_.data();  // [T, nh, 2, hd]
      cpu::linear(pool_, xn_.data(), T, L.q, qg);
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < nh; ++h)
          std::memcpy(q + size_t(t) * qd + size_t(h) * hd, qg + (size_t(t) * nh + h) * 2 * hd, sizeof(float) * hd);
    } else {
      cpu::linear(pool_, xn_.data(), T, L.q, q);
    }
    cpu::linear(pool_, xn_.data(), T, L.k, k);
    cpu::linear(pool_, xn_.data(), T, L.v, v);
    if (a.qk_norm == QKNorm::Full) {  // OLMoE: over all heads at once
      cpu::rmsnorm(q, L.q_norm, s_.rms_eps, q, T, qd, off_);
      cpu::rmsnorm(k, L.k_norm, s_.rms_eps, k, T, kd, off_);
    } else if (a.qk_norm == QKNorm::PerHead) {  // Qwen3: each head on its own, before RoPE
      cpu::rmsnorm_rows(q, L.q_norm, s_.rms_eps, T * nh, hd, off_);
      cpu::rmsnorm_rows(k, L.k_norm, s_.rms_eps, T * nkv, hd, off_);
    }
    // OLMoE's clip_qkv clamps q and k after their norms (and v), as transformers' OlmoeAttention.
    if (a.clip_qkv > 0.0f) {
      auto clip = [&](float* p, size_t n) {
        for (size_t i = 0; i < n; ++i) p[i] = std::clamp(p[i], -a.clip_qkv, a.clip_qkv);
      };
      clip(q, size_t(T) * qd), clip(k, size_t(T) * kd), clip(v, size_t(T) * kd);
    }
    const int half = s_.rope.dim / 2;
    for (int t = 0; t < T; ++t) {
      const float* c = cos_.data() + size_t(t) * half;
      const float* sn = sin_.data() + size_t(t) * half;
      for (int h = 0; h < nh; ++h) cpu::rope(q + size_t(t) * qd + h * hd, c, sn, s_.rope.dim, s_.rope.interleaved);
      for (int h = 0; h < nkv; ++h) cpu::rope(k + size_t(t) * kd + h * hd, c, sn, s_.rope.dim, s_.rope.interleaved);
      // cache slot: [K (nkv·hd), V (nkv·hd)]
      float* slot = kv_.at(slot_[size_t(l)], pos0 + t);
      std::memcpy(slot, k + size_t(t) * kd, sizeof(float) * kd);
      std::memcpy(slot + kd, v + size_t(t) * kd, sizeof(float) * kd);
    }

    // One (block of kQTokens tokens, key-value head) per work item: every query head of the
    // group, for every token of the block, attends at once (cpu/attention.h), so each cached row
    // is read once per item.
    const int group = nh / nkv;
    const int nqb = (T + kQTokens - 1) / kQTokens;
    const size_t vpt = size_t(kv_.values_per_token());
    const int window = s_.window(l);
    const float* sinks = a.sinks ? sinks_[size_t(l)].data() : nullptr;  // [nh]
    pool_.parallel_for(nqb * nkv, [&](int b, int e, int thread) {
      float* scratch = thread_scratch_.data() + size_t(thread) * thread_stride_;
      AttnLists& al = attn_lists_[size_t(thread)];
      for (int item = b; item < e; ++item) {
        const int tb = item / nkv, g = item % nkv;
        const int t0 = tb * kQTokens, t1 = std::min(T, t0 + kQTokens);
        al.clear();
        int lo_all = pos0 + t0;
        for (int t = t0; t < t1; ++t) {
          const int p = pos0 + t;
          const int lo = window > 0 ? std::max(0, p - window + 1) : 0;
          lo_all = std::min(lo_all, lo);
          for (int i = 0; i < group; ++i) {
            const size_t off = size_t(t) * qd + size_t(g * group + i) * hd;
            al.add(q + off, heads_out_.data() + off, lo, p);
            if (sinks) al.sink.push_back(sinks[g * group + i]);
          }
        }
        // keys of head g at g·hd in each row, its values kd further on
        kv_.for_runs(slot_[size_t(l)], lo_all, pos0 + t1, [&](int j0, int n, const float* row) {
          al.runs.push_back({j0, n, row + size_t(g) * hd});
        });
        cpu::attend(al.queries(), hd, hd, size_t(kd), a.softmax_scale, al.runs.data(), int(al.runs.size()), vpt,
                    scratch);
      }
    });
    if (a.output_gate)  // Qwen3.5: attn_output * sigmoid(gate), before o_proj
      for (size_t th = 0; th < size_t(T) * nh; ++th)
        for (int d = 0; d < hd; ++d) {
          const float gate = q_gate_[th * 2 * hd + size_t(hd + d)];
          heads_out_[th * hd + size_t(d)] *= 1.0f / (1.0f + std::exp(-gate));
        }
    cpu::linear(pool_, heads_out_.data(), T, L.o, attn_out_.data());
  }

  // ---- Gated DeltaNet linear attention (Qwen3.5; transformers' Qwen3_5MoeGatedDeltaNet) ------
  // No KV cache: the layer's state (cpu/kv_cache.h RecurrentState) is a [dk, dv] matrix S per
  // value head and the last Kc - 1 inputs of its causal convolution. Tokens run one after the
  // other through the recurrence (transformers' torch_recurrent_gated_delta_rule; its chunked
  // prefill computes the same sums in another order), so a prompt and a token-by-token decode
  // give the same state.
  void linear_attention(int l, const LayerWeights& L, int T) {
    const auto& la = s_.linear;
    const int nk = la.n_k_heads, nv = la.n_v_heads, dk = la.k_head_dim, dv = la.v_head_dim;
    const int Cc = la.conv_dim(), Kc = la.conv_kernel, KD = la.key_dim(), VD = la.value_dim();
    const LinearConsts& P = lin_[size_t(l)];
    float* qkv = lin_qkv_.data();  // [T, Cc] q (nk·dk), k (nk·dk), v (nv·dv) before the convolution
    float* cv = lin_conv_.data();  // [T, Cc] after the convolution and silu
    float* z = lin_z_.data();      // [T, nv·dv] output gate
    float* beta = lin_b_.data();   // [T, nv]
    float* g = lin_g_.data();      // [T, nv] log decay
    cpu::linear(pool_, xn_.data(), T, L.lin_qkv, qkv);
    cpu::linear(pool_, xn_.data(), T, L.lin_z, z);
    cpu::linear(pool_, xn_.data(), T, L.lin_b, beta);
    cpu::linear(pool_, xn_.data(), T, L.lin_a, g);
    const auto t0 = std::chrono::steady_clock::now();

    // Causal depthwise convolution over [previous Kc - 1 inputs (the conv state), this chunk]:
    // cv[t, c] = silu(Σ_j w[c, j] · in[t - (Kc - 1) + j, c]).
    float* cs = state_.conv(slot_[size_t(l)]);  // [Kc - 1, Cc]
    auto in = [&](int u, int c) { return u >= 0 ? qkv[size_t(u) * Cc + c] : cs[size_t(Kc - 1 + u) * Cc + c]; };
    pool_.parallel_for((Cc + 255) / 256, [&](int b0, int b1, int) {
      for (int c = b0 * 256; c < std::min(Cc, b1 * 256); ++c) {
        const float* w = P.conv.data() + size_t(c) * Kc;
        for (int t = 0; t < T; ++t) {
          float acc = 0.0f;
          for (int j = 0; j < Kc; ++j) acc += w[j] * in(t - (Kc - 1) + j, c);
          cv[size_t(t) * Cc + c] = acc / (1.0f + std::exp(-acc));
        }
        // the new state: the last Kc - 1 inputs; row r reads row T + r (later) before it is overwritten
        for (int r = 0; r < Kc - 1; ++r) cs[size_t(r) * Cc + c] = in(T - (Kc - 1) + r, c);
      }
    });
    // beta = sigmoid(b), g = -exp(A_log) · softplus(a + dt_bias) (softplus linear above 20, as torch)
    for (int t = 0; t < T; ++t)
      for (int h = 0; h < nv; ++h) {
        float& b = beta[size_t(t) * nv + h];
        b = 1.0f / (1.0f + std::exp(-b));
        const float a = g[size_t(t) * nv + h] + P.dt_bias[size_t(h)];
        g[size_t(t) * nv + h] = P.neg_a[size_t(h)] * (a > 20.0f ? a : std::log1p(std::exp(a)));
      }

    // The recurrence, one value head per work item: key head h / (nv / nk) serves it.
    float* S_all = state_.recurrent(slot_[size_t(l)]);  // [nv, dk, dv]
    const float q_scale = 1.0f / std::sqrt(float(dk));
    pool_.parallel_for(nv, [&](int h0, int h1, int) {
      for (int h = h0; h < h1; ++h) {
        float* S = S_all + size_t(h) * dk * dv;                  // [dk, dv]
        float* qn = lin_scratch_.data() + size_t(h) * (2 * dk + dv);  // [dk]
        float* kn = qn + dk;                                     // [dk]
        float* mem = kn + dk;                                    // [dv]
        const int kh = h / (nv / nk);
        for (int t = 0; t < T; ++t) {
          const float* row = cv + size_t(t) * Cc;
          // q and k L2-normalised (x / sqrt(Σx² + 1e-6), FLA's l2norm), q also by 1/sqrt(dk)
          auto l2 = [&](const float* x, float* y, float scale) {
            float ss = 0.0f;
            for (int i = 0; i < dk; ++i) ss += x[i] * x[i];
            const float inv = scale / std::sqrt(ss + 1e-6f);
            for (int i = 0; i < dk; ++i) y[i] = x[i] * inv;
          };
          l2(row + size_t(kh) * dk, qn, q_scale);
          l2(row + KD + size_t(kh) * dk, kn, 1.0f);
          const float* v = row + 2 * KD + size_t(h) * dv;
          const float decay = std::exp(g[size_t(t) * nv + h]), b = beta[size_t(t) * nv + h];
          // S ← decay·S; mem = Sᵀk
          std::fill(mem, mem + dv, 0.0f);
          for (int i = 0; i < dk; ++i) {
            float* Si = S + size_t(i) * dv;
            const float ki = kn[i];
            for (int d = 0; d < dv; ++d) Si[d] *= decay, mem[d] += ki * Si[d];
          }
          // delta = beta·(v - mem); S ← S + k ⊗ delta; o = Sᵀq
          for (int d = 0; d < dv; ++d) mem[d] = b * (v[d] - mem[d]);
          float* o = lin_o_.data() + size_t(t) * VD + size_t(h) * dv;  // [dv]
          std::fill(o, o + dv, 0.0f);
          for (int i = 0; i < dk; ++i) {
            float* Si = S + size_t(i) * dv;
            const float ki = kn[i], qi = qn[i];
            for (int d = 0; d < dv; ++d) Si[d] += ki * mem[d], o[d] += qi * Si[d];
          }
          // gated RMSNorm over the head (plain weight): o / rms(o) · w · silu(z)
          float ss = 0.0f;
          for (int d = 0; d < dv; ++d) ss += o[d] * o[d];
          const float inv = 1.0f / std::sqrt(ss / float(dv) + s_.rms_eps);
          const float* zt = z + size_t(t) * VD + size_t(h) * dv;
          for (int d = 0; d < dv; ++d) o[d] = o[d] * inv * P.norm[size_t(d)] * (zt[d] / (1.0f + std::exp(-zt[d])));
        }
      }
    });
    linear_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    cpu::linear(pool_, lin_o_.data(), T, L.lin_out, attn_out_.data());
  }

  // ---- multi-head latent attention (DeepSeek-V2/V3), absorbed form --------------------------
  // The cache keeps per token only the normalised latent c [C] and the rotated shared key k_r
  // [R]. With kv_b_proj = [W_uk; W_uv] per head, q·k = (W_ukᵀ q_nope)·c + q_rope·k_r and
  // out = W_uv (Σ p c), so keys and values are never expanded.
  void attention_mla(int l, const LayerWeights& L, int T, int pos0) {
    const auto& a = s_.attn;
    const int nh = a.n_heads, C = a.kv_lora_rank, R = a.qk_rope_head_dim, N = a.qk_nope_head_dim;
    const int Dv = a.v_head_dim, qh = N + R;
    float* q = q_.data();  // [T, nh·(N+R)]
    if (a.q_lora_rank > 0) {
      cpu::linear(pool_, xn_.data(), T, L.q_a, q_a_.data());  // [T, q_lora]
      cpu::rmsnorm(q_a_.data(), L.q_a_norm, a.latent_norm_eps, q_a_.data(), T, a.q_lora_rank);
      cpu::linear(pool_, q_a_.data(), T, L.q_b, q);
    } else {
      cpu::linear(pool_, xn_.data(), T, L.q, q);
    }
    float* kv_a = kv_a_.data();  // [T, C + R]
    cpu::linear(pool_, xn_.data(), T, L.kv_a, kv_a);
    const int half = R / 2;
    for (int t = 0; t < T; ++t) {
      const float* c = cos_.data() + size_t(t) * half;
      const float* sn = sin_.data() + size_t(t) * half;
      for (int h = 0; h < nh; ++h) cpu::rope(q + size_t(t) * nh * qh + h * qh + N, c, sn, R, s_.rope.interleaved);
      // cache slot: [latent c (C, after kv_a_layernorm), k_rope (R, rotated)]
      float* slot = kv_.at(slot_[size_t(l)], pos0 + t);
      cpu::rmsnorm(kv_a + size_t(t) * (C + R), L.kv_a_norm, a.latent_norm_eps, slot, 1, C);
      std::memcpy(slot + C, kv_a + size_t(t) * (C + R) + C, sizeof(float) * R);
      cpu::rope(slot + C, c, sn, R, s_.rope.interleaved);
    }

    const MlaHeads& mh = mla_[size_t(slot_[size_t(l)])];
    const std::vector<TensorView>&uk = mh.uk_t, &uv = mh.uv;
    const int nhb = (nh + kMlaHeads - 1) / kMlaHeads;
    const size_t vpt = size_t(kv_.values_per_token());
    for (int t0 = 0; t0 < T; t0 += kMlaTokens) {
      const int tb = std::min(kMlaTokens, T - t0);
      float* mq = mla_q_.data();  // [tb][nh][C + R]: [W_ukᵀ q_nope ‖ q_rope]
      float* mo = mla_o_.data();  // [tb][nh][C]: Σ p · c
      // W_ukᵀ q_nope for every token and head.
      per_head_matmul(nh, tb, [&](int h) {
        return HeadProduct{&uk[size_t(h)], cpu::RowsIn{nullptr, q + size_t(t0) * nh * qh + size_t(h) * qh, size_t(nh) * qh},
                           mq + size_t(h) * (C + R), size_t(nh) * (C + R)};
      });
      for (int t = 0; t < tb; ++t)
        for (int h = 0; h < nh; ++h)
          std::memcpy(mq + (size_t(t) * nh + h) * (C + R) + C, q + size_t(t0 + t) * nh * qh + size_t(h) * qh + N,
                      sizeof(float) * R);
      // Attention: one (token, block of kMlaHeads heads) per work item; all heads share the latent
      // cache, which is the key ([latent ‖ rotated key], C + R) and the value (the latent, C) at once.
      pool_.parallel_for(tb * nhb, [&](int b, int e, int thread) {
        float* scratch = thread_scratch_.data() + size_t(thread) * thread_stride_;
        AttnLists& al = attn_lists_[size_t(thread)];
        for (int item = b; item < e; ++item) {
          const int t = item / nhb, h0 = (item % nhb) * kMlaHeads, p = pos0 + t0 + t;
          const int nb = std::min(kMlaHeads, nh - h0);
          al.clear();
          for (int i = 0; i < nb; ++i)
            al.add(mq + (size_t(t) * nh + h0 + i) * (C + R), mo + (size_t(t) * nh + h0 + i) * C, 0, p);
          kv_.for_runs(slot_[size_t(l)], 0, p + 1, [&](int j0, int n, const float* row) { al.runs.push_back({j0, n, row}); });
          cpu::attend(al.queries(), C + R, C, 0, a.softmax_scale, al.runs.data(), int(al.runs.size()), vpt, scratch);
        }
      });
      // out = W_uv (Σ p · c).
      per_head_matmul(nh, tb, [&](int h) {
        return HeadProduct{&uv[size_t(h)], cpu::RowsIn{nullptr, mo + size_t(h) * C, size_t(nh) * C},
                           heads_out_.data() + size_t(t0) * nh * Dv + size_t(h) * Dv, size_t(nh) * Dv};
      });
    }
    cpu::linear(pool_, heads_out_.data(), T, L.o, attn_out_.data());
  }

  // One matmul per head over the same tb x rows (MLA's W_uk and W_uv products): y_h = x_h · W_hᵀ
  // for h < nh, work items of a head × kGemmRowBlock rows of its W, x_h packed once per thread.
  struct HeadProduct {
    const TensorView* w;
    cpu::RowsIn x;
    float* y;
    size_t y_stride;
  };
  template <class Head>
  void per_head_matmul(int nh, int tb, Head&& head) {
    const int rows = int(head(0).w->shape[0]), rb = (rows + cpu::kGemmRowBlock - 1) / cpu::kGemmRowBlock;
    const uint64_t tags = cpu::new_pack_tags(nh);
    pool_.parallel_for(nh * rb, [&](int b, int e, int) {
      thread_local cpu::XPack pack;
      for (int item = b; item < e; ++item) {
        const int h = item / rb, r0 = (item % rb) * cpu::kGemmRowBlock;
        const HeadProduct p = head(h);
        pack.tag = tags + uint64_t(h);
        cpu::gemm_rows(p.x, tb, *p.w, r0, std::min(rows, r0 + cpu::kGemmRowBlock), p.y + r0, p.y_stride, &pack);
      }
    });
  }

  // ---- SwiGLU FFNs over groups of tokens: y[t] = Σ_groups w · down(silu(gate(x)) * up(x)) ----
  // A group is one FFN (a routed expert, the shared expert, a dense FFN) and the pairs (token,
  // weight) it runs over, numbered contiguously from `first`. Every group's gate and up
  // projections run in one parallel_for (a work item: one group, kGemmRowBlock rows of its width)
  // and every down projection in a second (a group, rows of H), each over its tokens' rows in
  // place (gemm.h reads them by pointer: nothing is gathered). So a layer wakes the threads
  // twice whatever its number of experts, and each expert's weights are read once per chunk.
  struct FfnGroup {
    const MlpWeights* m;
    int first, count;
    bool clamped = false;  // gpt-oss' clamped SwiGLU instead of silu(g)·u
  };

  // A group of FFN m over all T tokens with weights w(t) (a dense FFN, the shared expert).
  template <class Weight>
  void add_all_tokens(const MlpWeights& m, int T, Weight&& w) {
    for (int t = 0; t < T; ++t) pair_tok_[size_t(n_pairs_ + t)] = t, pair_w_[size_t(n_pairs_ + t)] = w(t);
    groups_.push_back({&m, n_pairs_, T});
    n_pairs_ += T;
  }

  void run_groups(int T, float* y) {
    const int H = s_.hidden;
    size_t h_size = 0;  // each pair's hidden row, as wide as its group's FFN
    for (const FfnGroup& g : groups_) h_size += size_t(g.count) * size_t(g.m->gate.shape[0]);
    if (h_.size() < h_size) h_.resize(h_size);
    if (pair_out_.size() < size_t(n_pairs_) * H) pair_out_.resize(size_t(n_pairs_) * H);
    size_t off = 0;
    for (const FfnGroup& g : groups_)
      for (int c = 0; c < g.count; ++c, off += size_t(g.m->gate.shape[0])) {
        const int p = g.first + c;
        pair_x_[size_t(p)] = xn_.data() + size_t(pair_tok_[size_t(p)]) * H;
        pair_h_[size_t(p)] = h_.data() + off;
      }
    auto blocks = [](int rows) { return (rows + kGemmRowBlock - 1) / kGemmRowBlock; };
    // gate and up: work items (group, row block of the group's width)
    items_.clear();
    for (int g = 0; g < int(groups_.size()); ++g)
      for (int b = 0; b < blocks(int(groups_[size_t(g)].m->gate.shape[0])); ++b) items_.push_back({g, b});
    // x rows packed once per thread and group (gemm.h XPack): tags [tag0, tag0 + groups) for the
    // gate/up inputs, [tag0 + groups, tag0 + 2·groups) for the down inputs.
    const int n_groups = int(groups_.size());
    const uint64_t tag0 = cpu::new_pack_tags(2 * n_groups);
    pool_.parallel_for(int(items_.size()), [&](int i0, int i1, int thread) {
      thread_local cpu::XPack pack;
      float* gt = ffn_tmp_.data() + size_t(thread) * 2 * size_t(reserved_) * kGemmRowBlock;
      float* ut = gt + size_t(reserved_) * kGemmRowBlock;
      for (int i = i0; i < i1; ++i) {
        const int gi = items_[size_t(i)].first;
        const FfnGroup& g = groups_[size_t(gi)];
        const int width = int(g.m->gate.shape[0]);
        const int r0 = items_[size_t(i)].second * kGemmRowBlock, r1 = std::min(width, r0 + kGemmRowBlock);
        const cpu::RowsIn x{pair_x_.data() + g.first};
        pack.tag = tag0 + uint64_t(gi);
        // The up rows come right after these gate rows but live elsewhere: fetch their first
        // rows into L2 now (the kernel prefetches each later strip during the one before).
        const size_t up_row = dtype_bytes(g.m->up.dtype, g.m->up.shape[1]);
        cpu::prefetch(static_cast<const uint8_t*>(g.m->up.data) + size_t(r0) * up_row,
                      size_t(std::min(r1 - r0, 8)) * up_row);
        cpu::gemm_rows(x, g.count, g.m->gate, r0, r1, gt, kGemmRowBlock, &pack);
        cpu::gemm_rows(x, g.count, g.m->up, r0, r1, ut, kGemmRowBlock, &pack);
        for (int c = 0; c < g.count; ++c) {
          float* gc = gt + size_t(c) * kGemmRowBlock;
          float* uc = ut + size_t(c) * kGemmRowBlock;
          if (g.m->gate_b.data)
            for (int r = r0; r < r1; ++r) gc[r - r0] += element(g.m->gate_b, r), uc[r - r0] += element(g.m->up_b, r);
          if (g.clamped) cpu::clamped_swiglu(gc, uc, r1 - r0, s_.moe.swiglu_alpha, s_.moe.swiglu_limit);
          else cpu::silu_mul(gc, uc, r1 - r0);
          std::memcpy(pair_h_[size_t(g.first + c)] + r0, gc, sizeof(float) * size_t(r1 - r0));
        }
      }
    });
    // down: work items (group, row block of H), into each pair's output row
    items_.clear();
    for (int g = 0; g < int(groups_.size()); ++g)
      for (int b = 0; b < blocks(H); ++b) items_.push_back({g, b});
    pool_.parallel_for(int(items_.size()), [&](int i0, int i1, int) {
      thread_local cpu::XPack pack;
      for (int i = i0; i < i1; ++i) {
        const int gi = items_[size_t(i)].first;
        const FfnGroup& g = groups_[size_t(gi)];
        const int r0 = items_[size_t(i)].second * kGemmRowBlock, r1 = std::min(H, r0 + kGemmRowBlock);
        pack.tag = tag0 + uint64_t(n_groups + gi);
        cpu::gemm_rows(cpu::RowsIn{pair_h_.data() + g.first}, g.count, g.m->down, r0, r1,
                       pair_out_.data() + size_t(g.first) * H + r0, size_t(H), &pack);
        if (g.m->down_b.data)
          for (int c = 0; c < g.count; ++c) {
            float* o = pair_out_.data() + size_t(g.first + c) * H;
            for (int r = r0; r < r1; ++r) o[r] += element(g.m->down_b, r);
          }
      }
    });
    // combine, in group order (the order transformers adds the experts in), split over columns
    std::fill(y, y + size_t(T) * H, 0.0f);
    auto combine = [&](int c0, int c1) {
      for (int p = 0; p < n_pairs_; ++p) {
        const float w = pair_w_[size_t(p)];
        const float* src = pair_out_.data() + size_t(p) * H;
        float* dst = y + size_t(pair_tok_[size_t(p)]) * H;
        for (int d = c0; d < c1; ++d) dst[d] += w * src[d];
      }
    };
    if (size_t(n_pairs_) * H < (size_t(1) << 18)) {
      combine(0, H);
    } else {
      pool_.parallel_for(blocks(H), [&](int b0, int b1, int) {
        combine(b0 * kGemmRowBlock, std::min(H, b1 * kGemmRowBlock));
      });
    }
    groups_.clear();
    n_pairs_ = 0;
  }

  void dense_ffn(const MlpWeights& m, int T) {
    reserve_pairs(T);
    add_all_tokens(m, T, [](int) { return 1.0f; });
    run_groups(T, ffn_out_.data());
  }

  // ---- MoE: router → top-k → weights → experts → combine ------------------------------------
  void moe(int l, const LayerWeights& L, int T, int moe_index, int out_row0, const ForwardOptions& opt,
           ForwardResult& out) {
    const auto& r = s_.moe.router;
    const int H = s_.hidden, E = r.n_experts, K = out.top_k, n_moe = out.n_moe_layers;
    float* y = ffn_out_.data();  // [T, H]

    // ffn_moe_logits [T, E]: the router in fp32, as transformers computes it.
    cpu::matmul(pool_, xn_.data(), T, L.router, r.logit_bias ? &L.router_logit_bias : nullptr, router_logits_.data());
    float bias_buf[4096];
    const float* bias = nullptr;
    if (L.router_bias.data) {
      cpu::embed(TensorView{L.router_bias.dtype, {1, E}, L.router_bias.data}, 0, bias_buf);
      bias = bias_buf;
    }
    // ffn_moe_topk [T, K] and ffn_moe_weights [T, K], also copied into the routing trace.
    const rules::RouterRule rule = make_router_rule(r, *control_, l, bias != nullptr);
    const uint8_t* disabled = disabled_.empty() ? nullptr : disabled_.data() + size_t(l) * E;
    int32_t* ids = route_ids_.data();
    float* wts = route_w_.data();
    for (int t = 0; t < T; ++t) {
      const size_t row = size_t(out_row0 + t) * n_moe + moe_index;
      float* probs = out.probs.empty() ? nullptr : out.probs.data() + row * E;
      route_token(rule, router_logits_.data() + size_t(t) * E, bias, disabled, ids + size_t(t) * K,
                  wts + size_t(t) * K, probs, route_scratch_.data());
      std::copy(ids + size_t(t) * K, ids + size_t(t + 1) * K, out.expert_ids.data() + row * K);
      std::copy(wts + size_t(t) * K, wts + size_t(t + 1) * K, out.expert_weights.data() + row * K);
    }

    // Group (token, slot) pairs by expert with a counting sort: experts in ascending order, each
    // over its tokens in order; slots an intervention zeroed are left out.
    reserve_pairs(T * (K + 1));
    std::vector<int>& start = expert_start_;  // [E + 1]: where each expert's pairs begin
    start.assign(size_t(E) + 1, 0);
    for (int i = 0; i < T * K; ++i)
      if (wts[i] != 0.0f) ++start[size_t(ids[i]) + 1];
    for (int e = 0; e < E; ++e) start[size_t(e) + 1] += start[size_t(e)];
    for (int i = 0; i < T * K; ++i)
      if (wts[i] != 0.0f) {
        const int at = start[size_t(ids[i])]++;  // start[e] walks to the end of expert e
        pair_tok_[size_t(at)] = i / K, pair_w_[size_t(at)] = wts[i];
      }
    for (int e = 0, first = 0; e < E; ++e) {  // start[e] is now where expert e + 1 begins
      if (start[size_t(e)] > first)
        groups_.push_back({&L.experts[size_t(e)], first, start[size_t(e)] - first,
                           s_.moe.activation == ExpertActivation::ClampedSwiGLU});
      first = start[size_t(e)];
    }
    n_pairs_ = start[size_t(E)];
    // Shared expert(s): every token, plain (DeepSeek) or behind a sigmoid gate (Qwen2-MoE), whose
    // value goes into the routing trace too.
    if (s_.moe.shared == SharedExperts::SigmoidGated && out.shared_gates.size() != size_t(out.n_tokens) * size_t(n_moe))
      out.shared_gates.assign(size_t(out.n_tokens) * size_t(n_moe), 0.0f);
    if (s_.moe.shared != SharedExperts::None)
      add_all_tokens(L.shared, T, [&](int t) {
        if (s_.moe.shared != SharedExperts::SigmoidGated) return 1.0f;
        const float z = cpu::dot(xn_.data() + size_t(t) * H, L.shared_gate.data, L.shared_gate.dtype, H);
        const float g = 1.0f / (1.0f + std::exp(-z));
        out.shared_gates[size_t(out_row0 + t) * size_t(n_moe) + size_t(moe_index)] = g;
        return g;
      });
    run_groups(T, y);
  }

  std::shared_ptr<const Model> model_;
  BackendOptions opt_;
  const ModelSpec& s_;
  const ModelWeights& w_;
  ThreadPool pool_;
  int capacity_;
  cpu::PagedKvCache kv_;       // attention layers, by slot_
  cpu::RecurrentState state_;  // linear-attention layers, by slot_
  std::vector<int> slot_;      // [n_layers] the layer's index among its kind
  float off_ = s_.norm_weight_offset;
  struct LinearConsts {
    std::vector<float> conv, neg_a, dt_bias, norm;  // [Cc·Kc], [nv], [nv], [dv]
  };
  std::vector<LinearConsts> lin_;  // [n_layers], empty for attention layers
  double linear_seconds_ = 0.0;
  std::vector<float> inv_freq_;
  std::vector<std::vector<float>> sinks_;  // [n_layers][n_heads] (gpt-oss)
  const RoutingControl* control_ = nullptr;
  std::vector<uint8_t> disabled_;  // this forward's disabled experts, [n_layers × E] (empty: none)
  std::string name_;

  // Scratch, sized for the largest chunk so far (reserve_chunk): no allocation per token.
  int reserved_ = 0;
  std::vector<float> x_, xn_, attn_out_, ffn_out_, q_, k_, v_, heads_out_, q_a_, kv_a_, cos_, sin_;
  std::vector<float> mla_q_, mla_o_;               // MLA: [kMlaTokens][nh][C + R], [kMlaTokens][nh][C]
  // MLA, per attention layer: each head's W_ukᵀ [C][N] (in `bytes`, kv_b's dtype) and W_uv [Dv][C]
  // (in kv_b), as matrices for gemm_rows.
  struct MlaHeads {
    std::vector<uint8_t> bytes;
    std::vector<TensorView> uk_t, uv;
  };
  std::vector<MlaHeads> mla_;
  std::vector<float> router_logits_, route_w_, route_scratch_;
  std::vector<float> q_gate_;  // [T, nh, 2, hd] q_proj's output with the gates (AttentionSpec::output_gate)
  std::vector<float> lin_qkv_, lin_conv_, lin_z_, lin_o_, lin_b_, lin_g_, lin_scratch_;  // linear attention
  std::vector<int32_t> route_ids_;
  // FFN groups and their pairs (run_groups).
  std::vector<FfnGroup> groups_;
  std::vector<std::pair<int, int>> items_;
  int n_pairs_ = 0;
  std::vector<int> expert_start_;  // moe(): the counting sort of pairs by expert
  std::vector<int> pair_tok_;
  std::vector<float> pair_w_;
  std::vector<const float*> pair_x_;
  std::vector<float*> pair_h_;
  std::vector<float> h_, pair_out_, ffn_tmp_;
  std::vector<float> thread_scratch_;
  size_t thread_stride_ = 0;
  std::vector<AttnLists> attn_lists_;  // one per thread
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(std::shared_ptr<const Model> model, const BackendOptions& options) {
  return std::make_unique<CpuBackend>(std::move(model), options);
}

}  // namespace moescope
