// The CUDA backend: the CPU reference forward (engine/src/cpu/cpu_backend.cpp) on an NVIDIA GPU.
// Same stages in the same order, driven by ModelSpec: embedding → per layer (attention, FFN or
// MoE) → norm → head, with the kernels in kernels/ and cuBLAS for the prefill matmuls.
//
// What runs where:
//   - everything of a forward runs on one stream; activations are fp32, weights BF16 or, for a
//     block-quantised checkpoint, its blocks (see cuda_weights.h), matmuls accumulate in fp32;
//   - up to 4 tokens (decode) use the GEMV kernels (quant_gemv.cuh straight from the blocks) and
//     read only the selected experts' weights through the expert ids in device memory: no host
//     synchronisation, so a one-token step is captured once as a CUDA graph and replayed
//     (position and token id live in device memory);
//   - more tokens (prefill, in chunks of kMaxT) use cuBLAS, a block-type matrix or expert widened
//     to BF16 scratch first (quant_dequant.cuh); MoE layers group the tokens by expert on the
//     device and read the per-expert counts back once per layer;
//   - routing decisions (ids, weights, optional scores) are written on the device straight into
//     a [T][moe layer][K] trace buffer and copied to pinned host memory once per forward.
//
// Shape legend: T = tokens in this chunk, H = hidden, E = routed experts, K = experts per token,
// W = FFN width, V = vocabulary, nh/nkv = query/key-value heads, hd = head dim,
// C = kv_lora_rank (MLA latent), R = qk_rope_head_dim, N = qk_nope_head_dim, Dv = v_head_dim.
// Linear attention (Gated DeltaNet): nk/nv = key/value heads, dk/dv = their dims,
// Cc = conv channels (2·nk·dk + nv·dv), Kc = conv kernel, VD = nv·dv.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "add_bias.cuh"
#include "attention.cuh"
#include "clamp.cuh"
#include "cuda/cuda_context.h"
#include "cuda/cuda_weights.h"
#include "delta_net.cuh"
#include "embed.cuh"
#include "gemv.cuh"
#include "kv_store.cuh"
#include "mla.cuh"
#include "moe_gemv.cuh"
#include "moe_group.cuh"
#include "quant_dequant.cuh"
#include "quant_gemv.cuh"
#include "moescope/backend.h"
#include "moescope/error.h"
#include "output_gate.cuh"
#include "random_init.cuh"
#include "rmsnorm.cuh"
#include "rope.cuh"
#include "router.cuh"
#include "shared_expert.cuh"
#include "swiglu.cuh"

namespace moescope {
namespace {

using cuda::Arena;
using cuda::Context;
using cuda::DeviceBuffer;
using cuda::DeviceMatrix;
using cuda::PinnedBuffer;

constexpr int kMaxT = 256;          // tokens per prefill chunk (bounds scratch memory)
constexpr int kLogitRows = 32;      // LM-head rows per pass when every token's logits are wanted
constexpr int kBlockTokens = 16;    // positions per KV block
constexpr int kPrefillChunk = 256;  // positions per attention span in prefill
constexpr size_t kHeadroom = size_t(256) << 20;  // CUDA context, cuBLAS internals, graphs

bool graphs_enabled() {
  const char* v = std::getenv("MOESCOPE_CUDA_GRAPHS");
  return !(v && std::string(v) == "0");
}

double gib(size_t b) { return double(b) / double(size_t(1) << 30); }

std::string fmt_gib(size_t b) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f GiB", gib(b));
  return buf;
}

// Every device buffer a forward needs besides weights and KV cache, carved from one allocation.
struct Scratch {
  int32_t* io = nullptr;  // [1 + kMaxT]: position of the first token, then the token ids
  float* inv_freq = nullptr;
  float *x = nullptr, *xn = nullptr, *delta = nullptr;        // [T, H]
  float* proj = nullptr;                                      // [T, A] fused input projection
  float* q = nullptr;                                         // MLA q_b output [T, nh·(N+R)]
  float* qcat = nullptr;                                      // MLA [T, nh, C+R]
  float* att = nullptr;                                       // [T, nh·Dv_att] (MLA: latent)
  float* heads = nullptr;                                     // MLA [T, nh·Dv]
  float* gu = nullptr;                                        // [rows, 2W]
  float* h = nullptr;                                         // [rows, W] fp32 or BF16
  uint16_t* xg = nullptr;                                     // [rows, H] gathered, BF16
  float* eo = nullptr;                                        // [rows, H] expert outputs
  float* shared_out = nullptr;                                // [T, H]
  float* shared_gates = nullptr;                              // [T][n_moe] sigmoid gates (trace)
  float* lin_conv = nullptr;                                  // [T, Cc] DeltaNet conv output
  float* router_logits = nullptr;                             // [T, E]
  int32_t* ids = nullptr;                                     // [T][n_moe][K]
  float* wts = nullptr;                                       // [T][n_moe][K]
  float* probs = nullptr;                                     // [T][n_moe][E]
  int32_t *counts = nullptr, *offsets = nullptr, *rows = nullptr, *slot_row = nullptr;
  uint16_t* xbf = nullptr;                                    // [max(T, rows), max_in]
  uint16_t* wq = nullptr;  // BF16: one block-quantised matrix (or expert) widened for prefill's matmul
  float* partial = nullptr;
  long long partial_floats = 0;
  float* logits = nullptr;                                    // [kLogitRows, V]
  uint8_t* disabled = nullptr;                                // [n_layers, E]
  int32_t* block_table = nullptr;
};

class CudaBackend final : public Backend {
public:
  // shared: the device weights of another backend on the same model (a sibling); null: upload.
  CudaBackend(std::shared_ptr<const Model> model, const BackendOptions& opt,
              std::shared_ptr<const cuda::DeviceWeights> shared = nullptr)
      : model_(std::move(model)), s_(model_->spec), opt_(opt),
        capacity_(opt.context > 0 ? std::min(opt.context, s_.max_position) : std::min(s_.max_position, 8192)) {
    const auto& a = s_.attn;
    // What the kernels below do not cover (the CPU backend runs all of it).
    for (const LayerWeights& L : model_->weights.layers)
      if (L.dense.gate_b.data || L.shared.gate_b.data)
        throw Error("the CUDA backend does not run " + s_.architecture +
                    " (biases on a dense or shared FFN); use --backend cpu");
    if (a.output_gate && (a.kind != AttentionKind::GQA || a.qk_norm == QKNorm::Full || a.clip_qkv > 0.0f))
      throw Error("the CUDA backend runs gated attention only with GQA and per-head or no q/k norm (use --backend cpu)");
    if (s_.n_linear_layers() > 0) {
      const auto& la = s_.linear;
      if (la.n_k_heads <= 0 || la.n_v_heads % la.n_k_heads != 0 || la.conv_kernel < 1 ||
          2 * la.k_head_dim + la.v_head_dim > kernels::kDeltaRuleMaxSmemFloats)
        throw Error("linear-attention heads too wide (or value heads not a multiple of key heads) for the CUDA "
                    "kernels (use --backend cpu)");
    }
    if (s_.n_moe_layers() > 0 &&
        s_.moe.router.n_experts > kernels::kRouterMaxExperts)
      throw Error("the CUDA backend routes at most " + std::to_string(kernels::kRouterMaxExperts) +
                  " experts (use --backend cpu)");
    if (a.q_head_dim() > 4096 || a.kv_lora_rank + a.qk_rope_head_dim > 4096)
      throw Error("attention head too wide for the CUDA kernels (use --backend cpu)");
    n_moe_ = s_.n_moe_layers();
    values_ = s_.kv_values_per_token();
    n_blocks_ = (capacity_ + kBlockTokens - 1) / kBlockTokens;
    // Layer l's slot: in the KV cache (attention layers) or in the recurrent state (linear ones).
    for (int l = 0, na = 0, nl = 0; l < s_.n_layers; ++l) slot_.push_back(s_.is_linear(l) ? nl++ : na++);
    kv_bytes_ = size_t(s_.n_attention_layers()) * n_blocks_ * kBlockTokens * values_ * sizeof(float);
    state_bytes_ = size_t(s_.n_linear_layers()) * size_t(s_.linear.state_values()) * sizeof(float);

    // Attention spans for decode: at most 64, so the graph's fixed grid covers the capacity, or
    // the sliding window when every attention layer has one (gpt-oss alternates: full).
    bool all_windowed = a.sliding_window > 0;
    for (int l = 0; l < s_.n_layers; ++l)
      if (!s_.is_linear(l) && s_.window(l) == 0) all_windowed = false;
    const int visible = all_windowed ? std::min(capacity_, a.sliding_window) : capacity_;
    decode_chunk_ = std::min(8192, std::max(64, (visible + 63) / 64 + 31) / 32 * 32);
    decode_splits_ = (visible + decode_chunk_ - 1) / decode_chunk_;

    // ---- memory check before any allocation ----
    const size_t weight_bytes = shared ? 0 : cuda::device_weight_bytes(*model_);
    Arena plan;
    carve(plan);
    scratch_bytes_ = plan.used();
    size_t free_b = 0, total_b = 0;
    MOESCOPE_CUDA_CHECK(cudaMemGetInfo(&free_b, &total_b));
    const size_t need = weight_bytes + kv_bytes_ + state_bytes_ + scratch_bytes_ + kHeadroom;
    if (need > free_b)
      throw Error("not enough GPU memory on " + ctx_.device_name() + ": " + s_.name + " needs " + fmt_gib(need) +
                  " (weights " + fmt_gib(weight_bytes) + ", KV cache " + fmt_gib(kv_bytes_ + state_bytes_) + " for " +
                  std::to_string(capacity_) + " tokens, scratch " + fmt_gib(scratch_bytes_ + kHeadroom) +
                  ") but only " + fmt_gib(free_b) + " of " + fmt_gib(total_b) +
                  " are free; use --backend cpu or a smaller --context");

    w_ = shared ? std::move(shared) : std::make_shared<const cuda::DeviceWeights>(cuda::upload_weights(ctx_, *model_));
    kv_ = DeviceBuffer(kv_bytes_);
    if (state_bytes_) {  // linear-attention state, zero: the empty sequence
      state_ = DeviceBuffer(state_bytes_);
      MOESCOPE_CUDA_CHECK(cudaMemsetAsync(state_.get(), 0, state_bytes_, ctx_.stream()));
    }
    scratch_buf_ = DeviceBuffer(scratch_bytes_);
    Arena arena(scratch_buf_.get());
    carve(arena);

    const auto inv_freq = s_.rope.inverse_frequencies();
    MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(sc_.inv_freq, inv_freq.data(), inv_freq.size() * sizeof(float),
                                        cudaMemcpyHostToDevice, ctx_.stream()));
    std::vector<int32_t> table(static_cast<size_t>(n_blocks_));
    for (int i = 0; i < n_blocks_; ++i) table[size_t(i)] = i;  // reserved up front: identity
    MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(sc_.block_table, table.data(), table.size() * sizeof(int32_t),
                                        cudaMemcpyHostToDevice, ctx_.stream()));
    const size_t mask_bytes = size_t(s_.n_layers) * std::max(1, s_.moe.router.n_experts);
    MOESCOPE_CUDA_CHECK(cudaMemsetAsync(sc_.disabled, 0, mask_bytes, ctx_.stream()));
    disabled_host_.assign(mask_bytes, 0);

    const int E = std::max(1, s_.moe.router.n_experts);
    h_io_ = PinnedBuffer(sizeof(int32_t) * (1 + kMaxT));
    h_logits_ = PinnedBuffer(sizeof(float) * s_.vocab_size);
    h_ids_ = PinnedBuffer(sizeof(int32_t) * size_t(kMaxT) * std::max(1, n_moe_) * E);
    h_wts_ = PinnedBuffer(sizeof(float) * size_t(kMaxT) * std::max(1, n_moe_) * E);
    h_probs_ = PinnedBuffer(sizeof(float) * size_t(kMaxT) * std::max(1, n_moe_) * E);
    h_counts_ = PinnedBuffer(sizeof(int32_t) * E);
    h_gates_ = PinnedBuffer(sizeof(float) * size_t(kMaxT) * std::max(1, n_moe_));
    ctx_.sync();
    name_ = "CUDA: " + ctx_.device_name();
    spdlog::info("{}: {} layers, KV cache {} for {} tokens (F32, {} blocks of {}), scratch {}, graphs {}", name_,
                 s_.n_layers, fmt_gib(kv_bytes_), capacity_, n_blocks_, kBlockTokens, fmt_gib(scratch_bytes_),
                 graphs_enabled() ? "on" : "off (MOESCOPE_CUDA_GRAPHS=0)");
  }

  ~CudaBackend() override {
    cudaStreamSynchronize(ctx_.stream());
    if (graph_) cudaGraphExecDestroy(graph_);
  }

  std::string name() const override { return name_; }
  const ModelSpec& spec() const override { return s_; }
  int context_length() const override { return capacity_; }
  int n_cached() const override { return n_cached_; }
  // The linear-attention state sums up the whole sequence: it can be kept or cleared, not
  // rewound (as CpuBackend).
  int reusable_prefix(int n) const override {
    return state_bytes_ == 0 || n >= n_cached_ ? std::min(n, n_cached_) : 0;
  }
  void truncate(int n) override {
    n = std::max(0, n);
    if (state_bytes_ && n < n_cached_) {
      if (n > 0)
        throw Error("the linear-attention state holds all " + std::to_string(n_cached_) +
                    " tokens and cannot be rewound to " + std::to_string(n) + " (only cleared)");
      clear_state();
    }
    n_cached_ = std::min(n_cached_, n);
  }
  std::unique_ptr<Backend> sibling(int context) const override {
    BackendOptions o = opt_;
    if (context > 0) o.context = context;
    return std::make_unique<CudaBackend>(model_, o, w_);
  }
  int64_t device_memory_used() const override {
    return int64_t(w_->arena.size() + kv_.size() + state_.size() + scratch_buf_.size() + ctx_.workspace_bytes());
  }

  KvStats kv_stats() const override {
    KvStats k;
    k.tokens = n_cached_;
    k.capacity = capacity_;
    k.block_tokens = kBlockTokens;
    k.blocks_used = (n_cached_ + kBlockTokens - 1) / kBlockTokens;
    k.blocks_total = n_blocks_;
    k.bytes_per_token_layer = int64_t(values_) * 4;
    k.bytes_used = k.bytes_per_token_layer * s_.n_attention_layers() * n_cached_;
    k.bytes_reserved = int64_t(kv_bytes_);
    k.mha_bytes_per_token_layer = int64_t(s_.mha_kv_values_per_token()) * 4;
    k.n_layers = s_.n_attention_layers();
    k.element_type = "F32";
    k.state_layers = s_.n_linear_layers();
    k.state_bytes = int64_t(state_bytes_);
    return k;
  }

  Calibration calibrate() override;

  void forward(std::span<const int32_t> tokens, const ForwardOptions& opt, ForwardResult& out) override {
    const int n = int(tokens.size());
    const int start = n_cached_;
    control_ = &begin_forward(s_, tokens, start, capacity_, opt, out);
    const int K = out.top_k;
    upload_disabled();

    // Fewer tokens per chunk when a top-k override asks for more experts than the buffers hold.
    const int chunk = K > s_.moe.router.top_k && s_.moe.router.top_k > 0
                          ? std::max(1, kMaxT * s_.moe.router.top_k / K)
                          : kMaxT;
    try {
      for (int c0 = 0; c0 < n; c0 += chunk) {
        const int T = std::min(chunk, n - c0);
        run_chunk(tokens.subspan(size_t(c0), size_t(T)), start + c0, c0, K, opt, out);
        n_cached_ = start + c0 + T;
      }
    } catch (...) {
      n_cached_ = start;  // a failed forward leaves the cache as it was
      if (state_bytes_) {  // but a recurrent state has moved on: start again
        clear_state();
        n_cached_ = 0;
        spdlog::warn("a failed forward cleared the linear-attention state; the next one starts from position 0");
      }
      throw;
    }
  }

private:
  // ---- scratch layout (planned with a null arena, then assigned) -----------------------------
  void carve(Arena& ar) {
    const auto& a = s_.attn;
    const int H = s_.hidden, T = kMaxT, E = std::max(1, s_.moe.router.n_experts);
    const int k_model = std::max(1, s_.moe.router.top_k);
    const int We = s_.moe.expert_width, Wmax = std::max({s_.dense_width, We, s_.moe.shared_width, 1});
    // MoE (token, slot) pairs: a prefill chunk, or up to 4 decode tokens with top-k raised to E.
    const int rows = std::max(T * k_model, kernels::kGemvMaxTokens * E);
    const int C = a.kv_lora_rank, R = a.qk_rope_head_dim;
    const int nh = a.n_heads;
    int A, att_w;
    if (a.kind == AttentionKind::GQA) {
      A = (a.output_gate ? 2 : 1) * nh * a.head_dim + 2 * a.n_kv_heads * a.head_dim;
      att_w = nh * a.head_dim;
    } else {
      A = (a.q_lora_rank > 0 ? a.q_lora_rank : nh * a.q_head_dim()) + C + R;
      att_w = nh * C;
    }
    const auto& la = s_.linear;
    if (s_.n_linear_layers() > 0) {  // DeltaNet layers: [qkv | z | b | a] in proj, their output in att
      A = std::max(A, la.conv_dim() + la.value_dim() + 2 * la.n_v_heads);
      att_w = std::max(att_w, la.value_dim());
    }
    const int max_in = std::max({H, A, att_w, nh * a.out_head_dim(), Wmax, a.q_lora_rank, 1});
    const int n_moe = std::max(1, n_moe_);
    sc_.io = ar.take<int32_t>(1 + kMaxT);
    sc_.inv_freq = ar.take<float>(std::max(1, s_.rope.dim / 2));
    sc_.x = ar.take<float>(size_t(T) * H);
    sc_.xn = ar.take<float>(size_t(T) * H);
    sc_.delta = ar.take<float>(size_t(T) * H);
    sc_.proj = ar.take<float>(size_t(T) * A);
    if (a.kind == AttentionKind::MLA) {
      sc_.q = ar.take<float>(size_t(T) * nh * a.q_head_dim());
      sc_.qcat = ar.take<float>(size_t(T) * nh * (C + R));
      sc_.heads = ar.take<float>(size_t(T) * nh * a.v_head_dim);
    }
    sc_.att = ar.take<float>(size_t(T) * att_w);
    const size_t ffn_rows = size_t(std::max(T, rows));
    sc_.gu = ar.take<float>(ffn_rows * 2 * Wmax);
    sc_.h = ar.take<float>(ffn_rows * Wmax);
    if (n_moe_) {
      sc_.xg = ar.take<uint16_t>(size_t(rows) * H);
      sc_.eo = ar.take<float>(size_t(rows) * H);
      sc_.router_logits = ar.take<float>(size_t(T) * E);
      sc_.counts = ar.take<int32_t>(E);
      sc_.offsets = ar.take<int32_t>(E);
      sc_.rows = ar.take<int32_t>(rows);
      sc_.slot_row = ar.take<int32_t>(rows);
    }
    sc_.shared_out = ar.take<float>(size_t(T) * H);
    sc_.shared_gates = ar.take<float>(size_t(T) * n_moe);
    if (s_.n_linear_layers() > 0) sc_.lin_conv = ar.take<float>(size_t(T) * la.conv_dim());
    sc_.ids = ar.take<int32_t>(size_t(T) * n_moe * E);
    sc_.wts = ar.take<float>(size_t(T) * n_moe * E);
    sc_.probs = ar.take<float>(size_t(T) * n_moe * E);
    sc_.xbf = ar.take<uint16_t>(ffn_rows * max_in);
    if (const size_t wq = cuda::dequant_scratch_elems(*model_)) sc_.wq = ar.take<uint16_t>(wq);
    // Attention partials: the decode grid, and prefill in token groups that fit.
    kernels::AttentionArgs probe = attention_args(0, nullptr, 0, 0, nullptr, 0, 1);
    const int prefill_splits = (capacity_ + kPrefillChunk - 1) / kPrefillChunk;
    const long long one_token = kernels::attention_partial_floats(probe, std::max(prefill_splits, decode_splits_));
    sc_.partial_floats =
        std::max(one_token * kernels::kGemvMaxTokens, std::min<long long>(one_token * T, 16ll << 20));
    sc_.partial = ar.take<float>(size_t(sc_.partial_floats));
    sc_.logits = ar.take<float>(size_t(kLogitRows) * s_.vocab_size);
    sc_.disabled = ar.take<uint8_t>(size_t(s_.n_layers) * E);
    sc_.block_table = ar.take<int32_t>(size_t(n_blocks_));
  }

  // The KV cache of (attention) layer l, at its slot among the attention layers.
  kernels::KvLayer kv_layer(int l) const {
    kernels::KvLayer k;
    const long long per_layer = (long long)n_blocks_ * kBlockTokens * values_;
    k.base = kv_.as<float>() ? kv_.as<float>() + slot_[size_t(l)] * per_layer : nullptr;
    k.block_table = sc_.block_table;
    k.block_tokens = kBlockTokens;
    k.values = values_;
    k.block_stride = (long long)kBlockTokens * values_;
    return k;
  }

  // Attention over layer l's cache for T tokens whose queries sit at q (see attention.cuh).
  kernels::AttentionArgs attention_args(int l, const float* q, int q_stride, int q_head_stride, float* out,
                                        int out_stride, int T) const {
    const auto& a = s_.attn;
    kernels::AttentionArgs g{};
    g.q = q, g.q_stride = q_stride, g.q_head_stride = q_head_stride;
    g.kv = kv_layer(l);
    g.n_heads = a.n_heads;
    g.scale = a.softmax_scale;
    g.window = s_.window(l);
    g.pos0 = sc_.io;
    g.n_tokens = T;
    g.out = out, g.out_stride = out_stride;
    if (a.kind == AttentionKind::GQA) {
      const int kd = a.n_kv_heads * a.head_dim;
      g.k_offset = 0, g.k_head_stride = a.head_dim, g.dk = a.head_dim;
      g.v_offset = kd, g.v_head_stride = a.head_dim, g.dv = a.head_dim;
      g.group = a.n_heads / a.n_kv_heads;
    } else {  // one shared latent "kv head" for all query heads
      g.k_offset = 0, g.k_head_stride = 0, g.dk = a.kv_lora_rank + a.qk_rope_head_dim;
      g.v_offset = 0, g.v_head_stride = 0, g.dv = a.kv_lora_rank;
      g.group = a.n_heads;
    }
    return g;
  }

  void attend(kernels::AttentionArgs g, int T, bool decode) {
    cudaStream_t st = ctx_.stream();
    if (decode) {
      kernels::attention(g, decode_chunk_, decode_splits_, sc_.partial, st);
      MOESCOPE_CUDA_LAUNCHED();
      return;
    }
    const int longest = pos_host_ + T;
    const int visible = g.window > 0 ? std::min(longest, g.window) : longest;
    const int splits = (visible + kPrefillChunk - 1) / kPrefillChunk;
    g.n_tokens = 1;
    const long long per_token = kernels::attention_partial_floats(g, splits);
    const int group = int(std::max(1ll, sc_.partial_floats / per_token));
    // Token groups take turns with the partial buffer.
    for (int t0 = 0; t0 < T; t0 += group) {
      kernels::AttentionArgs sub = g;
      sub.n_tokens = std::min(group, T - t0);
      sub.first = t0;
      sub.q = g.q + size_t(t0) * g.q_stride;
      sub.out = g.out + size_t(t0) * g.out_stride;
      kernels::attention(sub, kPrefillChunk, splits, sc_.partial, st);
      MOESCOPE_CUDA_LAUNCHED();
    }
  }

  // ---- one chunk of T tokens at positions [pos0, pos0 + T) --------------------------------
  void run_chunk(std::span<const int32_t> tokens, int pos0, int out_row0, int K, const ForwardOptions& opt,
                 ForwardResult& out) {
    const int T = int(tokens.size()), E = s_.moe.router.n_experts, V = s_.vocab_size;
    const bool last_chunk = out_row0 + T == out.n_tokens;
    const bool probs = opt.router_probs && n_moe_ > 0;
    cudaStream_t st = ctx_.stream();

    int32_t* io = h_io_.as<int32_t>();
    io[0] = pos0;
    std::copy(tokens.begin(), tokens.end(), io + 1);
    MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(sc_.io, io, sizeof(int32_t) * (1 + T), cudaMemcpyHostToDevice, st));
    pos_host_ = pos0;

    const bool decode = T == 1;
    if (decode && graphs_enabled()) {
      const GraphKey key{K, probs, control_->forced_expert, control_->forced_layer, control_->ignore_bias};
      if (!graph_ || !(key == graph_key_)) capture_step(K, probs, key);
      MOESCOPE_CUDA_CHECK(cudaGraphLaunch(graph_, st));
    } else {
      enqueue(T, K, probs, !opt.all_logits && last_chunk);
    }

    if (opt.all_logits) {  // every row through the LM head, kLogitRows at a time
      for (int r0 = 0; r0 < T; r0 += kLogitRows) {
        const int rows = std::min(kLogitRows, T - r0);
        cuda::linear(ctx_, w_->lm_head, sc_.xn + size_t(r0) * s_.hidden, s_.hidden, rows, sc_.logits, V, sc_.xbf,
                     sc_.wq);
        MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(out.logits.data() + size_t(out_row0 + r0) * V, sc_.logits,
                                            sizeof(float) * rows * V, cudaMemcpyDeviceToHost, st));
      }
    }
    ctx_.sync();
    if (!opt.all_logits && last_chunk) std::memcpy(out.logits.data(), h_logits_.get(), sizeof(float) * V);
    const size_t route_n = size_t(T) * n_moe_ * K;
    std::memcpy(out.expert_ids.data() + size_t(out_row0) * n_moe_ * K, h_ids_.get(), sizeof(int32_t) * route_n);
    std::memcpy(out.expert_weights.data() + size_t(out_row0) * n_moe_ * K, h_wts_.get(), sizeof(float) * route_n);
    if (probs)
      std::memcpy(out.probs.data() + size_t(out_row0) * n_moe_ * E, h_probs_.get(),
                  sizeof(float) * size_t(T) * n_moe_ * E);
    if (gated_shared()) {  // the shared-expert gates into the trace, as CpuBackend::moe records them
      const size_t all = size_t(out.n_tokens) * size_t(n_moe_);
      if (out.shared_gates.size() != all) out.shared_gates.assign(all, 0.0f);
      std::memcpy(out.shared_gates.data() + size_t(out_row0) * n_moe_, h_gates_.get(), sizeof(float) * size_t(T) * n_moe_);
    }
  }

  bool gated_shared() const { return n_moe_ > 0 && s_.moe.shared == SharedExperts::SigmoidGated; }

  // Layer l's linear-attention state: recurrent [nv][dk][dv], then the conv inputs [Kc - 1][Cc].
  float* recurrent_state(int l) const {
    return state_.as<float>() + size_t(slot_[size_t(l)]) * size_t(s_.linear.state_values());
  }
  float* conv_state(int l) const {
    const auto& la = s_.linear;
    return recurrent_state(l) + size_t(la.n_v_heads) * la.k_head_dim * la.v_head_dim;
  }
  void clear_state() {
    if (!state_bytes_) return;
    MOESCOPE_CUDA_CHECK(cudaMemsetAsync(state_.get(), 0, state_bytes_, ctx_.stream()));
    ctx_.sync();
  }

  // The whole forward of T tokens on the stream, ending with the asynchronous copies of the
  // routing trace and (when last_logits) the last token's logits to pinned memory. For T <= 4
  // it synchronises nothing, so it can be captured.
  void enqueue(int T, int K, bool probs, bool last_logits) {
    cudaStream_t st = ctx_.stream();
    const int H = s_.hidden, V = s_.vocab_size, E = s_.moe.router.n_experts;
    if (w_->embed_f32) kernels::embed(w_->embed_f32, sc_.io + 1, sc_.x, T, H, st);
    else kernels::embed(w_->embed, sc_.io + 1, sc_.x, T, H, st);
    MOESCOPE_CUDA_LAUNCHED();
    int moe_index = 0;
    for (int l = 0; l < s_.n_layers; ++l) {
      const cuda::DeviceLayer& L = w_->layers[size_t(l)];
      // ---- attention block: x += attn(rmsnorm(x)); the residual add of the previous block is
      // fused into this norm ----
      kernels::add_rmsnorm(sc_.x, l == 0 ? nullptr : sc_.delta, L.attn_norm, s_.rms_eps, sc_.xn, T, H, st);
      MOESCOPE_CUDA_LAUNCHED();
      if (s_.is_linear(l)) linear_attention(l, L, T);
      else if (s_.attn.kind == AttentionKind::GQA) attention_gqa(l, L, T);
      else attention_mla(l, L, T);
      // ---- feed-forward block: x += ffn(rmsnorm(x)) ----
      kernels::add_rmsnorm(sc_.x, sc_.delta, L.ffn_norm, s_.rms_eps, sc_.xn, T, H, st);
      MOESCOPE_CUDA_LAUNCHED();
      if (s_.moe_layer[size_t(l)]) moe(l, L, T, K, moe_index++, probs);
      else mlp(L.dense_gate_up, L.dense_down, sc_.xn, T, sc_.delta);
    }
    // ---- final norm (all rows: all_logits reads them) and LM head of the last token ----
    kernels::add_rmsnorm(sc_.x, sc_.delta, w_->final_norm, s_.rms_eps, sc_.xn, T, H, st);
    MOESCOPE_CUDA_LAUNCHED();
    if (last_logits) {
      cuda::linear(ctx_, w_->lm_head, sc_.xn + size_t(T - 1) * H, H, 1, sc_.logits, V, sc_.xbf, sc_.wq);
      MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(h_logits_.get(), sc_.logits, sizeof(float) * V, cudaMemcpyDeviceToHost, st));
    }
    const size_t route_n = size_t(T) * n_moe_ * K;
    if (route_n) {
      MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(h_ids_.get(), sc_.ids, sizeof(int32_t) * route_n, cudaMemcpyDeviceToHost, st));
      MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(h_wts_.get(), sc_.wts, sizeof(float) * route_n, cudaMemcpyDeviceToHost, st));
    }
    if (probs)
      MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(h_probs_.get(), sc_.probs, sizeof(float) * size_t(T) * n_moe_ * E,
                                          cudaMemcpyDeviceToHost, st));
    if (gated_shared())
      MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(h_gates_.get(), sc_.shared_gates, sizeof(float) * size_t(T) * n_moe_,
                                          cudaMemcpyDeviceToHost, st));
  }

  // ---- grouped-query attention (Mixtral, Qwen, OLMoE) ---------------------------------------
  void attention_gqa(int l, const cuda::DeviceLayer& L, int T) {
    const auto& a = s_.attn;
    cudaStream_t st = ctx_.stream();
    const int nh = a.n_heads, nkv = a.n_kv_heads, hd = a.head_dim, qd = nh * hd, kd = nkv * hd;
    // With output_gate (Qwen3.5) q_proj's rows per head are [query (hd), gate (hd)]: the queries
    // are read in place at a head stride of 2·hd and the gates stay where they are.
    const int qhs = a.output_gate ? 2 * hd : hd, qrows = nh * qhs;
    const int A = qrows + 2 * kd;
    float* p = sc_.proj;  // [T, q (nh·qhs) | k (nkv·hd) | v (nkv·hd)]
    cuda::linear(ctx_, L.in_proj, sc_.xn, s_.hidden, T, p, A, sc_.xbf, sc_.wq);
    if (a.qk_norm == QKNorm::Full) {  // OLMoE: over all heads at once (never with output_gate)
      kernels::rmsnorm(p, A, 0, 1, L.q_norm, s_.rms_eps, p, A, T, qd, st);
      kernels::rmsnorm(p + qd, A, 0, 1, L.k_norm, s_.rms_eps, p + qd, A, T, kd, st);
    } else if (a.qk_norm == QKNorm::PerHead) {  // Qwen3: each head on its own, before RoPE
      kernels::rmsnorm(p, A, qhs, nh, L.q_norm, s_.rms_eps, p, A, T, hd, st);
      kernels::rmsnorm(p + qrows, A, hd, nkv, L.k_norm, s_.rms_eps, p + qrows, A, T, hd, st);
    }
    // OLMoE's clip_qkv: q and k are clamped after their norms (transformers' OlmoeAttention).
    if (a.clip_qkv > 0.0f) kernels::clamp(p, (long long)T * A, a.clip_qkv, st);
    const auto& r = s_.rope;
    kernels::rope(p, A, 0, qhs, nh, r.dim, r.interleaved, sc_.inv_freq, r.attention_factor, sc_.io, T, st);
    kernels::rope(p, A, qrows, hd, nkv, r.dim, r.interleaved, sc_.inv_freq, r.attention_factor, sc_.io, T, st);
    kernels::kv_store(kv_layer(l), p + qrows, A, sc_.io, T, st);  // cache row: [K | V]
    MOESCOPE_CUDA_LAUNCHED();
    kernels::AttentionArgs g = attention_args(l, p, A, qhs, sc_.att, qd, T);
    g.sinks = L.sinks;  // gpt-oss (null otherwise)
    attend(g, T, T <= kernels::kGemvMaxTokens);
    if (a.output_gate) {  // Qwen3.5: attn_output · sigmoid(gate), before o_proj
      kernels::output_gate(sc_.att, qd, p + hd, A, qhs, nh, hd, T, st);
      MOESCOPE_CUDA_LAUNCHED();
    }
    cuda::linear(ctx_, L.o, sc_.att, qd, T, sc_.delta, s_.hidden, sc_.xbf, sc_.wq);
  }

  // ---- Gated DeltaNet linear attention (Qwen3.5), CpuBackend::linear_attention ---------------
  // No KV cache: the layer's state (recurrent_state, conv_state) is updated in place, the
  // tokens one after the other (delta_net.cuh).
  void linear_attention(int l, const cuda::DeviceLayer& L, int T) {
    const auto& la = s_.linear;
    cudaStream_t st = ctx_.stream();
    const int nv = la.n_v_heads, Cc = la.conv_dim(), VD = la.value_dim();
    const int A = Cc + VD + 2 * nv;
    float* p = sc_.proj;  // [T, qkv (Cc) | z (VD) | b (nv) | a (nv)]
    cuda::linear(ctx_, L.lin_in, sc_.xn, s_.hidden, T, p, A, sc_.xbf, sc_.wq);
    cuda::linear(ctx_, L.lin_ba, sc_.xn, s_.hidden, T, p + Cc + VD, A, sc_.xbf, sc_.wq);  // fp32 weights
    kernels::delta_conv(p, A, L.lin_conv, conv_state(l), sc_.lin_conv, Cc, T, Cc, la.conv_kernel, st);
    MOESCOPE_CUDA_LAUNCHED();
    kernels::DeltaRuleArgs d{};
    d.conv = sc_.lin_conv, d.conv_stride = Cc;
    d.z = p + Cc, d.z_stride = A;
    d.beta = p + Cc + VD, d.a = p + Cc + VD + nv, d.gate_stride = A;
    d.a_log = L.a_log, d.dt_bias = L.dt_bias, d.norm = L.lin_norm, d.eps = s_.rms_eps;
    d.state = recurrent_state(l);
    d.out = sc_.att, d.out_stride = VD;
    d.nk = la.n_k_heads, d.nv = nv, d.dk = la.k_head_dim, d.dv = la.v_head_dim;
    d.n_tokens = T;
    kernels::delta_rule(d, st);
    MOESCOPE_CUDA_LAUNCHED();
    cuda::linear(ctx_, L.lin_out, sc_.att, VD, T, sc_.delta, s_.hidden, sc_.xbf, sc_.wq);
  }

  // ---- multi-head latent attention (DeepSeek-V2/V3), absorbed form --------------------------
  // Cache row per token: [latent c (C, after kv_a_layernorm) | k_rope (R, rotated)].
  void attention_mla(int l, const cuda::DeviceLayer& L, int T) {
    const auto& a = s_.attn;
    cudaStream_t st = ctx_.stream();
    const int nh = a.n_heads, C = a.kv_lora_rank, R = a.qk_rope_head_dim, N = a.qk_nope_head_dim;
    const int qh = N + R, Aq = a.q_lora_rank > 0 ? a.q_lora_rank : nh * qh, A = Aq + C + R;
    float* p = sc_.proj;  // [T, q_a (q_lora) or q (nh·(N+R)) | c (C) | k_rope (R)]
    cuda::linear(ctx_, L.in_proj, sc_.xn, s_.hidden, T, p, A, sc_.xbf, sc_.wq);
    const float* q = p;  // [T, nh·(N+R)] at stride q_stride
    int q_stride = A;
    if (a.q_lora_rank > 0) {
      kernels::rmsnorm(p, A, 0, 1, L.q_a_norm, a.latent_norm_eps, p, A, T, a.q_lora_rank, st);
      MOESCOPE_CUDA_LAUNCHED();
      cuda::linear(ctx_, L.q_b, p, A, T, sc_.q, nh * qh, sc_.xbf, sc_.wq);
      q = sc_.q;
      q_stride = nh * qh;
    }
    const auto& r = s_.rope;
    kernels::rmsnorm(p + Aq, A, 0, 1, L.kv_a_norm, a.latent_norm_eps, p + Aq, A, T, C, st);
    kernels::rope(p, A, Aq + C, 0, 1, R, r.interleaved, sc_.inv_freq, r.attention_factor, sc_.io, T, st);
    kernels::kv_store(kv_layer(l), p + Aq, A, sc_.io, T, st);
    kernels::rope(const_cast<float*>(q), q_stride, N, qh, nh, R, r.interleaved, sc_.inv_freq, r.attention_factor,
                  sc_.io, T, st);
    const kernels::MlaDims d{nh, N, R, a.v_head_dim, C};
    kernels::mla_q_absorb(d, q, q_stride, L.kv_b, sc_.qcat, T, st);  // [T, nh, C+R]
    MOESCOPE_CUDA_LAUNCHED();
    attend(attention_args(l, sc_.qcat, nh * (C + R), C + R, sc_.att, nh * C, T), T, T <= kernels::kGemvMaxTokens);
    kernels::mla_v_up(d, sc_.att, L.kv_b, sc_.heads, T, st);  // [T, nh·Dv]
    MOESCOPE_CUDA_LAUNCHED();
    cuda::linear(ctx_, L.o, sc_.heads, nh * a.v_head_dim, T, sc_.delta, s_.hidden, sc_.xbf, sc_.wq);
  }

  // ---- dense SwiGLU: y = down(silu(gate(x)) * up(x)) ---------------------------------------
  void mlp(const DeviceMatrix& gate_up, const DeviceMatrix& down, const float* x, int T, float* y) {
    cudaStream_t st = ctx_.stream();
    const int W = gate_up.out / 2;
    cuda::linear(ctx_, gate_up, x, s_.hidden, T, sc_.gu, 2 * W, sc_.xbf, sc_.wq);  // [T, 2W]
    if (T <= kernels::kGemvMaxTokens) {
      kernels::swiglu(sc_.gu, sc_.h, false, T, W, st);  // [T, W] fp32
      MOESCOPE_CUDA_LAUNCHED();
      cuda::linear(ctx_, down, sc_.h, W, T, y, s_.hidden, sc_.xbf, sc_.wq);
    } else {
      auto* hb = reinterpret_cast<uint16_t*>(sc_.h);  // [T, W] BF16
      kernels::swiglu(sc_.gu, hb, true, T, W, st);
      MOESCOPE_CUDA_LAUNCHED();
      cuda::gemm_bf16(ctx_, cuda::bf16_weights(ctx_, down, sc_.wq), s_.hidden, W, hb, W, T, y, s_.hidden);
    }
  }

  // Expert e of a stack as a BF16 [rows, cols] matrix for cuBLAS: in place, or (block types)
  // widened into sc_.wq, which the stream's order keeps until the matmul that reads it is done.
  const void* expert_bf16(const void* stack, DType type, int e, int rows, int cols) {
    const char* at = static_cast<const char*>(stack) + size_t(e) * cuda::expert_bytes(type, rows, cols);
    if (type == DType::BF16) return at;
    kernels::quant_dequantize(at, type, int64_t(rows) * cols / dtype_block_elems(type), sc_.wq, false,
                              ctx_.stream());
    MOESCOPE_CUDA_LAUNCHED();
    return sc_.wq;
  }

  // ---- MoE: router → top-k → weights → experts → combine ------------------------------------
  void moe(int l, const cuda::DeviceLayer& L, int T, int K, int m, bool probs) {
    cudaStream_t st = ctx_.stream();
    const auto& r = s_.moe.router;
    const int H = s_.hidden, E = r.n_experts, We = s_.moe.expert_width;
    float* y = sc_.delta;  // [T, H]

    // ffn_moe_logits [T, E] in fp32
    cuda::linear(ctx_, L.router, sc_.xn, H, T, sc_.router_logits, E, sc_.xbf, sc_.wq);
    // ffn_moe_topk / ffn_moe_weights, written straight into the trace buffer [T][n_moe][K]
    const rules::RouterRule rule = make_router_rule(r, *control_, l, L.router_bias != nullptr);
    const uint8_t* disabled = sc_.disabled + size_t(l) * E;
    int32_t* ids = sc_.ids + size_t(m) * K;
    float* wts = sc_.wts + size_t(m) * K;
    const int stride = n_moe_ * K;
    kernels::route(rule, disabled, sc_.router_logits, L.router_bias, T, ids, wts, stride,
                   probs ? sc_.probs + size_t(m) * E : nullptr, n_moe_ * E, st);
    MOESCOPE_CUDA_LAUNCHED();

    // gpt-oss: expert biases and the clamped SwiGLU (null and false elsewhere)
    kernels::ExpertExtras ex;
    ex.gate_up_bias = L.experts_gate_up_bias, ex.down_bias = L.experts_down_bias;
    ex.clamped = s_.moe.activation == ExpertActivation::ClampedSwiGLU;
    ex.alpha = s_.moe.swiglu_alpha, ex.limit = s_.moe.swiglu_limit;
    if (T <= kernels::kGemvMaxTokens) {  // decode: only the selected experts' rows are read
      // [T, K, W], then y: BF16 experts, or block-quantised ones read in place
      if (L.experts_gate_up_type == DType::BF16)
        kernels::moe_gate_up(sc_.xn, H, static_cast<const uint16_t*>(L.experts_gate_up), We, ids, wts, stride, K,
                             sc_.h, T, st, ex);
      else
        kernels::quant_moe_gate_up(sc_.xn, H, L.experts_gate_up, L.experts_gate_up_type, We, ids, wts, stride, K,
                                   sc_.h, T, st, ex);
      if (L.experts_down_type == DType::BF16)
        kernels::moe_down(sc_.h, We, static_cast<const uint16_t*>(L.experts_down), H, ids, wts, stride, K, y, T,
                          false, st, ex);
      else
        kernels::quant_moe_down(sc_.h, We, L.experts_down, L.experts_down_type, H, ids, wts, stride, K, y, T, false,
                                st, ex);
      MOESCOPE_CUDA_LAUNCHED();
    } else {  // prefill: group (token, slot) pairs by expert, one matmul per expert
      kernels::moe_group(ids, wts, stride, T, K, E, sc_.counts, sc_.offsets, sc_.rows, sc_.slot_row, st);
      MOESCOPE_CUDA_LAUNCHED();
      MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(h_counts_.get(), sc_.counts, sizeof(int32_t) * E, cudaMemcpyDeviceToHost, st));
      ctx_.sync();  // the one host round trip per MoE layer in prefill
      const int32_t* counts = h_counts_.as<int32_t>();
      int total = 0;
      for (int e = 0; e < E; ++e) total += counts[e];
      if (total > 0) {
        kernels::moe_gather(sc_.xn, H, sc_.rows, total, K, sc_.xg, st);  // [total, H] BF16
        MOESCOPE_CUDA_LAUNCHED();
        for (int e = 0, off = 0; e < E; off += counts[e++]) {
          if (!counts[e]) continue;
          cuda::gemm_bf16(ctx_, expert_bf16(L.experts_gate_up, L.experts_gate_up_type, e, 2 * We, H), 2 * We, H,
                          sc_.xg + size_t(off) * H, H,
                          counts[e], sc_.gu + size_t(off) * 2 * We, 2 * We);
          if (ex.gate_up_bias) {  // expert e's rows: [gate | up] + its [gate_b | up_b]
            kernels::add_bias(sc_.gu + size_t(off) * 2 * We, 2 * We, ex.gate_up_bias + size_t(e) * 2 * We, counts[e],
                              2 * We, st);
            MOESCOPE_CUDA_LAUNCHED();
          }
        }
        auto* hb = reinterpret_cast<uint16_t*>(sc_.h);  // [total, W] BF16
        if (ex.clamped) kernels::swiglu_clamped(sc_.gu, hb, true, total, We, ex.alpha, ex.limit, st);
        else kernels::swiglu(sc_.gu, hb, true, total, We, st);
        MOESCOPE_CUDA_LAUNCHED();
        for (int e = 0, off = 0; e < E; off += counts[e++]) {
          if (!counts[e]) continue;
          cuda::gemm_bf16(ctx_, expert_bf16(L.experts_down, L.experts_down_type, e, H, We), H, We,
                          hb + size_t(off) * We, We, counts[e],
                          sc_.eo + size_t(off) * H, H);
          if (ex.down_bias) {
            kernels::add_bias(sc_.eo + size_t(off) * H, H, ex.down_bias + size_t(e) * H, counts[e], H, st);
            MOESCOPE_CUDA_LAUNCHED();
          }
        }
      }
      kernels::moe_combine(sc_.eo, sc_.slot_row, wts, stride, K, y, H, T, false, st);  // weighted scatter back
      MOESCOPE_CUDA_LAUNCHED();
    }

    // Shared expert(s): every token, plain (DeepSeek) or behind a sigmoid gate (Qwen2-MoE).
    if (s_.moe.shared != SharedExperts::None) {
      mlp(L.shared_gate_up, L.shared_down, sc_.xn, T, sc_.shared_out);
      // the gates also go into the trace buffer [T][n_moe] (moe layer m)
      kernels::shared_expert_add(sc_.xn, L.shared_gate, sc_.shared_out, y, H, T, st, sc_.shared_gates + m, n_moe_);
      MOESCOPE_CUDA_LAUNCHED();
    }
  }

  // ---- decode graph -----------------------------------------------------------------------
  struct GraphKey {
    int k = 0;
    bool probs = false;
    int forced = -1, forced_layer = -1;
    bool ignore_bias = false;
    bool operator==(const GraphKey&) const = default;
  };

  // Everything a step launches is baked into the graph; interventions that change kernel
  // arguments (k, forced expert, bias use, probs) give a new key and a new capture. Disabled
  // experts live in device memory and need none.
  void capture_step(int K, bool probs, const GraphKey& key) {
    if (graph_) {
      cudaGraphExecDestroy(graph_);
      graph_ = nullptr;
    }
    cudaStream_t st = ctx_.stream();
    cudaGraph_t graph = nullptr;
    MOESCOPE_CUDA_CHECK(cudaStreamBeginCapture(st, cudaStreamCaptureModeThreadLocal));
    try {
      enqueue(1, K, probs, true);
    } catch (...) {
      cudaStreamEndCapture(st, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    MOESCOPE_CUDA_CHECK(cudaStreamEndCapture(st, &graph));
    const cudaError_t err = cudaGraphInstantiate(&graph_, graph, 0);
    cudaGraphDestroy(graph);
    MOESCOPE_CUDA_CHECK(err);
    graph_key_ = key;
    spdlog::debug("CUDA: captured the decode step (k={}, probs={})", K, probs);
  }

  void upload_disabled() {
    const int E = std::max(1, s_.moe.router.n_experts);
    std::vector<uint8_t> mask = control_->disabled_mask(s_.n_layers, E);
    if (mask.empty()) mask.assign(size_t(s_.n_layers) * E, 0);
    if (mask == disabled_host_) return;
    disabled_host_ = mask;
    MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(sc_.disabled, disabled_host_.data(), mask.size(), cudaMemcpyHostToDevice,
                                        ctx_.stream()));
  }

  std::shared_ptr<const Model> model_;
  const ModelSpec& s_;
  BackendOptions opt_;
  int capacity_;
  Context ctx_;  // before every buffer: destroyed after them
  std::shared_ptr<const cuda::DeviceWeights> w_;  // shared with siblings (one device copy)
  DeviceBuffer kv_, state_, scratch_buf_;  // state_: linear-attention layers, by slot_
  Scratch sc_;
  PinnedBuffer h_io_, h_logits_, h_ids_, h_wts_, h_probs_, h_counts_, h_gates_;
  std::vector<uint8_t> disabled_host_;
  int n_moe_ = 0, values_ = 0, n_blocks_ = 0;
  std::vector<int> slot_;  // [n_layers] the layer's index among its kind (attention or linear)
  size_t kv_bytes_ = 0, state_bytes_ = 0, scratch_bytes_ = 0;
  int decode_chunk_ = 0, decode_splits_ = 0;
  int n_cached_ = 0;
  int pos_host_ = 0;
  const RoutingControl* control_ = nullptr;
  cudaGraphExec_t graph_ = nullptr;
  GraphKey graph_key_;
  std::string name_;
};

}  // namespace
}  // namespace moescope

namespace moescope {
namespace {

// Device-to-device copy of 1 GiB (best of 5; a copy reads and writes every byte, so bandwidth =
// 2 · bytes / time) and a BF16 cuBLAS GEMM 8192³ with fp32 accumulation (best of 5) on random
// operands: on zeros the tensor cores draw less power and run faster (on an H200 about 894
// against 788 TFLOP/s, /work/.library/device/KINDS.md), which would overstate the ceiling.
Backend::Calibration CudaBackend::calibrate() {
  Calibration c;
  cudaStream_t st = ctx_.stream();
  cudaEvent_t e0 = nullptr, e1 = nullptr;
  MOESCOPE_CUDA_CHECK(cudaEventCreate(&e0));
  MOESCOPE_CUDA_CHECK(cudaEventCreate(&e1));
  struct Events {
    cudaEvent_t a, b;
    ~Events() { cudaEventDestroy(a), cudaEventDestroy(b); }
  } events{e0, e1};
  auto timed = [&](auto&& body) {
    float best_ms = 1e30f;
    body();  // warm-up
    for (int i = 0; i < 5; ++i) {
      MOESCOPE_CUDA_CHECK(cudaEventRecord(e0, st));
      body();
      MOESCOPE_CUDA_CHECK(cudaEventRecord(e1, st));
      MOESCOPE_CUDA_CHECK(cudaEventSynchronize(e1));
      float ms = 0.0f;
      MOESCOPE_CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
      best_ms = std::min(best_ms, ms);
    }
    return double(best_ms) / 1e3;
  };
  {
    const size_t bytes = size_t(1) << 30;
    DeviceBuffer a(bytes), b(bytes);
    MOESCOPE_CUDA_CHECK(cudaMemsetAsync(a.get(), 0, bytes, st));
    const double sec = timed([&] {
      MOESCOPE_CUDA_CHECK(cudaMemcpyAsync(b.get(), a.get(), bytes, cudaMemcpyDeviceToDevice, st));
    });
    c.bandwidth_gbs = 2.0 * double(bytes) / sec / 1e9;
  }
  {
    const int n = 8192;
    const size_t elems = size_t(n) * n;
    DeviceBuffer a(elems * 2), b(elems * 2), y(elems * 2);
    kernels::fill_uniform(a.get(), false, (long long)elems, 0x5eed0001ull, 1.0f, st);
    kernels::fill_uniform(b.get(), false, (long long)elems, 0x5eed0002ull, 1.0f, st);
    MOESCOPE_CUDA_LAUNCHED();
    const float one = 1.0f, zero = 0.0f;
    const double sec = timed([&] {
      MOESCOPE_CUBLAS_CHECK(cublasGemmEx(ctx_.cublas(), CUBLAS_OP_T, CUBLAS_OP_N, n, n, n, &one, a.get(), CUDA_R_16BF,
                                         n, b.get(), CUDA_R_16BF, n, &zero, y.get(), CUDA_R_16BF, n,
                                         CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT));
    });
    c.matmul_tflops = 2.0 * double(n) * n * n / sec / 1e12;
  }
  c.method = "cudaMemcpy device-to-device of 1 GiB, 2·bytes/time (best of 5); cublasGemmEx BF16 8192³ on random "
             "operands, fp32 accumulation (best of 5), on " + ctx_.device_name();
  return c;
}

}  // namespace

std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const Model> model, const BackendOptions& options) {
  return std::make_unique<CudaBackend>(std::move(model), options);
}

bool cuda_device_usable(std::string* reason) {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    if (reason) *reason = std::string(cudaGetErrorString(err)) + " (" + cudaGetErrorName(err) + ")";
    return false;
  }
  if (count == 0) {
    if (reason) *reason = "no CUDA device found";
    return false;
  }
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    cudaGetLastError();
    if (reason) *reason = "cannot query CUDA device 0";
    return false;
  }
  if (prop.major < 8) {
    if (reason)
      *reason = std::string(prop.name) + " has compute capability " + std::to_string(prop.major) + "." +
                std::to_string(prop.minor) + "; the CUDA backend needs 8.0 or newer (BF16 matmuls)";
    return false;
  }
  return true;
}

}  // namespace moescope
