// Every CUDA kernel beside its CPU reference (STYLE.md item 5): each op runs on the device and on
// moescope::cpu::* / route_token with the same random inputs, over several shapes including
// non-multiples of the tile sizes, compared with |got - ref| <= tol + |ref|·eps (eps per dtype
// and path). Routing is compared as sets, and in order where the selection scores differ by
// more than the tolerance, with the near-ties printed. Without a CUDA device every case skips with
// the reason. Plain C++ (plain_test.h), no Qt: device machines have none.
//
// Performance mode: MOESCOPE_CUDA_PERF=1 adds the case perf_table, which runs each kernel on a
// real model's shapes (data several times the L2) and prints one line per kernel:
//   perf: kernel=NAME shape=... us=MEAN gbs=BYTES/TIME tflops=FLOPS/TIME
// (tools/gpu-check.sh collects them into results.json).
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <random>

#include "moescope/backend.h"
#include "moescope/cpu_ops.h"
#include "moescope/routing.h"
#include "moescope/sampler.h"
#include "moescope/thread_pool.h"
#ifdef MOESCOPE_HAVE_CUDA
#include "moescope/cuda_ops.h"
#endif

#include "cuda_test_util.h"
#include "quant_test_blocks.h"

using namespace moescope;


namespace {

std::vector<float> random_vec(size_t n, uint32_t seed, float lo = -1.0f, float hi = 1.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(lo, hi);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

// Worst violation of |got - ref| <= tol + |ref|·eps; prints the worst element.
bool close(const char* what, const std::vector<float>& got, const std::vector<float>& ref, float tol, float eps) {
  if (got.size() != ref.size()) {
    plaintest::info("{}: {} values, reference {}", what, got.size(), ref.size());
    return false;
  }
  float worst = 0.0f, worst_err = 0.0f;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const float err = std::fabs(got[i] - ref[i]);
    const float excess = err - (tol + std::fabs(ref[i]) * eps);
    if (i == 0 || excess > worst) worst = excess, worst_err = err, at = i;
  }
  plaintest::info("{}: worst |err| {:.3g} at {} (ref {:.5g}), bound tol {:.1g} + |ref|·{:.1g}", what, worst_err, at,
                  ref.empty() ? 0.0f : ref[at], tol, eps);
  return worst <= 0.0f;
}

[[maybe_unused]] std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> b(v.size());
  std::transform(v.begin(), v.end(), b.begin(), f32_to_bf16);
  return b;
}

}  // namespace

PT_CASE(rmsnorm) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Row { const char* name; int rows, d; float eps; };
  for (const Row& r : {Row{"1x48", 1, 48, 1e-6f}, Row{"3x100", 3, 100, 1e-5f}, Row{"7x2048", 7, 2048, 1e-6f},
                       Row{"2x7168", 2, 7168, 1e-6f}, Row{"5x1001", 5, 1001, 1e-5f}})
    PT_ROW(r.name, [&] {
      const int rows = r.rows, d = r.d;
      auto x = random_vec(size_t(rows) * d, 1, -3.0f, 3.0f), w = random_vec(size_t(d), 2, 0.5f, 1.5f);
      std::vector<float> ref(x.size());
      cpu::rmsnorm(x.data(), TensorView{DType::F32, {d}, w.data()}, r.eps, ref.data(), rows, d);
      PT_CHECK(close("rmsnorm", cuda_ops::rmsnorm(x, w, r.eps, rows, d), ref, 1e-6f, 1e-5f));
    });
#endif
}

#ifdef MOESCOPE_HAVE_CUDA
// The device's matmul and the CPU reference on the same BF16-rounded weights.
void check_matmul(int n, int out, int in, DType dtype, bool bias) {
  auto x = random_vec(size_t(n) * in, 3);
  auto wf = random_vec(size_t(out) * in, 4, -0.5f / std::sqrt(float(in)), 0.5f / std::sqrt(float(in)));
  auto b = random_vec(size_t(out), 5, -0.2f, 0.2f);
  // The checkpoint's dtype as given to the device; the reference reads its BF16 rounding.
  std::vector<uint16_t> w16(wf.size());
  TensorView w{dtype, {out, in}, wf.data()};
  if (dtype == DType::BF16) w16 = to_bf16(wf), w.data = w16.data();
  if (dtype == DType::F16) {
    std::transform(wf.begin(), wf.end(), w16.begin(), f32_to_f16);
    w.data = w16.data();
  }
  std::vector<float> wr(wf.size());
  to_f32(w.dtype, w.data, wr.data(), w.numel());
  auto wr16 = to_bf16(wr);
  ThreadPool pool(2);
  std::vector<float> ref(size_t(n) * out);
  TensorView bv{DType::F32, {out}, b.data()};
  cpu::matmul(pool, x.data(), n, TensorView{DType::BF16, {out, in}, wr16.data()}, bias ? &bv : nullptr, ref.data());
  const bool gemv = n <= 4;
  PT_CHECK(close("matmul", cuda_ops::matmul(x, n, w, bias ? &b : nullptr), ref, gemv ? 1e-5f : 5e-3f,
                 gemv ? 1e-5f : 1e-2f));
}
#endif

// GEMV (n <= 4, fp32 activations: only summation order differs) and cuBLAS (n > 4,
// activations rounded to BF16: eps 1e-2). Weights are BF16-rounded on both sides.
PT_CASE(matmul) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Row { const char* name; int n, out, in; DType dtype; bool bias; };
  for (const Row& r : {Row{"gemv 1x64x48 f32", 1, 64, 48, DType::F32, false},
                       Row{"gemv 1x257x2048 bf16", 1, 257, 2048, DType::BF16, false},
                       Row{"gemv 3x37x100 f16 bias", 3, 37, 100, DType::F16, true},
                       Row{"gemv 4x129x1000 bf16", 4, 129, 1000, DType::BF16, true},
                       Row{"cublas 5x64x48 f32", 5, 64, 48, DType::F32, false},
                       Row{"cublas 17x300x512 bf16 bias", 17, 300, 512, DType::BF16, true},
                       Row{"cublas 129x1001x2048 bf16", 129, 1001, 2048, DType::BF16, false}})
    PT_ROW(r.name, [&] { check_matmul(r.n, r.out, r.in, r.dtype, r.bias); });
#endif
}

#ifdef MOESCOPE_HAVE_CUDA
std::vector<float> rope_reference(const std::vector<float>& x, int tokens, int heads, int dim, bool interleaved,
                                  const RopeSpec& r, int pos0) {
  const auto inv = r.inverse_frequencies();
  auto ref = x;
  std::vector<float> c(size_t(tokens) * dim / 2), s(c.size());
  std::vector<int> pos(static_cast<size_t>(tokens));
  for (int t = 0; t < tokens; ++t) pos[size_t(t)] = pos0 + t;
  cpu::rope_tables(pos.data(), tokens, inv.data(), dim / 2, r.attention_factor, c.data(), s.data());
  for (int t = 0; t < tokens; ++t)
    for (int h = 0; h < heads; ++h)
      cpu::rope(ref.data() + (size_t(t) * heads + h) * dim, c.data() + size_t(t) * dim / 2,
                s.data() + size_t(t) * dim / 2, dim, interleaved);
  return ref;
}
#endif

PT_CASE(rope) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Row { const char* name; int tokens, heads, dim; bool interleaved, yarn; int pos0; };
  for (const Row& w : {Row{"halves 1x4x16 @0", 1, 4, 16, false, false, 0},
                       Row{"halves 5x8x128 @4000", 5, 8, 128, false, false, 4000},
                       Row{"pairs 3x16x64 @17 yarn", 3, 16, 64, true, true, 17},
                       Row{"halves 2x2x12 @100", 2, 2, 12, false, false, 100},
                       Row{"pairs 7x1x8 @3 yarn", 7, 1, 8, true, true, 3}})
    PT_ROW(w.name, [&] {
      RopeSpec r;
      r.dim = w.dim;
      r.theta = 10000.0f;
      if (w.yarn) r.yarn = true, r.factor = 4.0f, r.original_max_position = 4096, r.attention_factor = 1.1386f;
      auto x = random_vec(size_t(w.tokens) * w.heads * w.dim, 6);
      const auto ref = rope_reference(x, w.tokens, w.heads, w.dim, w.interleaved, r, w.pos0);
      PT_CHECK(close("rope",
                     cuda_ops::rope(x, w.tokens, w.heads, w.dim, w.interleaved, r.inverse_frequencies(),
                                    r.attention_factor, w.pos0),
                     ref, 1e-5f, 1e-5f));
    });
#endif
}

PT_CASE(swiglu) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Row { const char* name; int n, width; };
  for (const Row& r : {Row{"1x16", 1, 16}, Row{"5x1408", 5, 1408}, Row{"33x100", 33, 100}})
    PT_ROW(r.name, [&] {
      const int n = r.n, width = r.width;
      auto gu = random_vec(size_t(n) * 2 * width, 7, -6.0f, 6.0f);
      std::vector<float> ref(size_t(n) * width), up(ref.size());
      for (int t = 0; t < n; ++t) {
        std::copy_n(gu.data() + size_t(t) * 2 * width, width, ref.data() + size_t(t) * width);
        std::copy_n(gu.data() + size_t(t) * 2 * width + width, width, up.data() + size_t(t) * width);
      }
      cpu::silu_mul(ref.data(), up.data(), int(ref.size()));
      PT_CHECK(close("swiglu", cuda_ops::swiglu(gu, n, width), ref, 1e-6f, 1e-5f));
    });
#endif
}

// gpt-oss' clamped SwiGLU against cpu::clamped_swiglu: inputs in ±6 cross the limits 1.2 (the
// golden model's) and 7 (the released models') on both sides.
PT_CASE(swiglu_clamped) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Row { const char* name; int n, width; float alpha, limit; };
  for (const Row& r : {Row{"1x16 limit 1.2", 1, 16, 1.5f, 1.2f}, Row{"5x2880 limit 7", 5, 2880, 1.702f, 7.0f},
                       Row{"33x100 limit 1.2", 33, 100, 1.5f, 1.2f}})
    PT_ROW(r.name, [&] {
      const int n = r.n, width = r.width;
      auto gu = random_vec(size_t(n) * 2 * width, 8, -6.0f, 6.0f);
      std::vector<float> ref(size_t(n) * width), up(ref.size());
      for (int t = 0; t < n; ++t) {
        std::copy_n(gu.data() + size_t(t) * 2 * width, width, ref.data() + size_t(t) * width);
        std::copy_n(gu.data() + size_t(t) * 2 * width + width, width, up.data() + size_t(t) * width);
      }
      cpu::clamped_swiglu(ref.data(), up.data(), int(ref.size()), r.alpha, r.limit);
      PT_CHECK(close("swiglu_clamped", cuda_ops::swiglu_clamped(gu, n, width, r.alpha, r.limit), ref, 1e-6f, 1e-5f));
    });
#endif
}

// Qwen3.5's gated attention output: each head times sigmoid of the gate beside its query.
PT_CASE(output_gate) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Row { const char* name; int n, heads, d; };
  for (const Row& r : {Row{"1x4x16", 1, 4, 16}, Row{"7x32x256", 7, 32, 256}, Row{"300x3x12", 300, 3, 12}})
    PT_ROW(r.name, [&] {
      auto att = random_vec(size_t(r.n) * r.heads * r.d, 9), qg = random_vec(size_t(r.n) * r.heads * 2 * r.d, 10, -8.0f, 8.0f);
      auto ref = att;
      for (int t = 0; t < r.n; ++t)
        for (int h = 0; h < r.heads; ++h)
          for (int i = 0; i < r.d; ++i) {
            const float g = qg[(size_t(t) * r.heads + h) * 2 * r.d + size_t(r.d + i)];
            ref[(size_t(t) * r.heads + h) * r.d + i] *= 1.0f / (1.0f + std::exp(-g));
          }
      PT_CHECK(close("output_gate", cuda_ops::output_gate(att, qg, r.n, r.heads, r.d), ref, 1e-6f, 1e-5f));
    });
#endif
}

PT_CASE(embed) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  const int V = 1000, H = 72;
  auto table = to_bf16(random_vec(size_t(V) * H, 8));
  TensorView tv{DType::BF16, {V, H}, table.data()};
  const std::vector<int32_t> ids = {0, 999, 17, 17, 512};
  std::vector<float> ref(ids.size() * H);
  for (size_t i = 0; i < ids.size(); ++i) cpu::embed(tv, ids[i], ref.data() + i * H);
  PT_CHECK(close("embed", cuda_ops::embed(tv, ids), ref, 0.0f, 0.0f));
  // An F32 table (kept in fp32 on the device): exact too.
  auto table32 = random_vec(size_t(V) * H, 8);
  TensorView tv32{DType::F32, {V, H}, table32.data()};
  for (size_t i = 0; i < ids.size(); ++i) cpu::embed(tv32, ids[i], ref.data() + i * H);
  PT_CHECK(close("embed f32", cuda_ops::embed(tv32, ids), ref, 0.0f, 0.0f));
#endif
}

#ifdef MOESCOPE_HAVE_CUDA
RouterSpec router_of(const std::string& kind) {
  RouterSpec r;
  if (kind == "mixtral") r.n_experts = 8, r.top_k = 2, r.renormalize = true;
  if (kind == "qwen-norenorm") r.n_experts = 60, r.top_k = 4;
  if (kind == "deepseek-v2-group")
    r.n_experts = 160, r.top_k = 6, r.group_score = GroupScore::Max, r.n_group = 8, r.topk_group = 3,
    r.scaling = 16.0f, r.scale_after_renorm = false;
  if (kind == "deepseek-v3")
    r.n_experts = 256, r.top_k = 8, r.scoring = ScoreFunc::Sigmoid, r.correction_bias = true,
    r.group_score = GroupScore::SumTop2, r.n_group = 8, r.topk_group = 4, r.renormalize = true, r.scaling = 2.5f;
  if (kind == "wide-k") r.n_experts = 1000, r.top_k = 40, r.renormalize = true;
  if (kind == "qwen3-moe") r.n_experts = 128, r.top_k = 8, r.renormalize = true;
  if (kind == "gpt-oss") r.n_experts = 32, r.top_k = 4, r.scoring = ScoreFunc::TopKSoftmax;
  if (kind == "many-groups")  // 64 groups: the widest group mask
    r.n_experts = 256, r.top_k = 8, r.scoring = ScoreFunc::Sigmoid, r.correction_bias = true,
    r.group_score = GroupScore::SumTop2, r.n_group = 64, r.topk_group = 37, r.renormalize = true;
  return r;
}

void check_route(const std::string& kind, const std::string& control) {
  const RouterSpec r = router_of(kind);
  RoutingControl c;
  const int layer = 3;
  if (control == "disabled") {
    c.disabled.resize(size_t(layer + 1));
    c.disabled[size_t(layer)].assign(size_t(r.n_experts), 0);
    for (int e = 0; e < r.n_experts; e += 3) c.disabled[size_t(layer)][size_t(e)] = 1;
  }
  if (control == "forced") c.forced_expert = r.n_experts - 1, c.forced_layer = layer;
  if (control == "top_k") c.top_k = std::min(r.n_experts, r.top_k + 3);
  if (control == "ignore_bias") c.ignore_bias = true;
  const int T = 37, E = r.n_experts, K = c.effective_top_k(r);
  auto logits = random_vec(size_t(T) * E, 9, -4.0f, 4.0f);
  auto bias = random_vec(size_t(E), 10, -0.1f, 0.3f);  // negative values too: -inf masking matters
  const bool with_bias = r.correction_bias;
  auto got = cuda_ops::route(r, logits, T, with_bias ? &bias : nullptr, c, layer);
  std::vector<int32_t> ids(size_t(T) * K);
  std::vector<float> w(size_t(T) * K), probs(size_t(T) * E), scratch(size_t(3) * E);
  for (int t = 0; t < T; ++t)
    route_token(r, logits.data() + size_t(t) * E, with_bias ? bias.data() : nullptr, c, layer, ids.data() + t * K,
                w.data() + t * K, probs.data() + size_t(t) * E, scratch.data());
  PT_CHECK(close("router probs", got.probs, probs, 1e-7f, 1e-5f));
  const bool use_bias = with_bias && !c.ignore_bias;
  // Ids: identical, or differing only at near-ties of the CPU's selection scores (printed).
  int near_ties = 0;
  bool weights_ok = true;
  for (int t = 0; t < T; ++t) {
    std::vector<float> sel(static_cast<size_t>(E));
    for (int e = 0; e < E; ++e)
      sel[size_t(e)] = c.is_disabled(layer, e) ? -INFINITY
                       : (r.scoring == ScoreFunc::TopKSoftmax ? logits[size_t(t) * E + e] : probs[size_t(t) * E + e]) +
                             (use_bias ? bias[size_t(e)] : 0.0f);
    const RouteCheck rc = compare_route(got.ids.data() + t * K, ids.data() + t * K, K, sel, r, 1e-5f);
    if (!rc.identical) {
      plaintest::info("token {}: {}{}", t, rc.detail, rc.ok ? "a near-tie" : "NOT a near-tie");
      ++near_ties;
    }
    PT_CHECK2(rc.ok, fmt::format("token {}: the GPU's experts differ from the CPU's beyond a near-tie", t));
    // Weights where the ids agree (at a near-tie they belong to other experts).
    if (rc.identical)
      for (int k = 0; k < K; ++k) {
        const float a = got.weights[size_t(t) * K + k], b = w[size_t(t) * K + k];
        weights_ok = weights_ok && std::fabs(a - b) <= 1e-6f + std::fabs(b) * 1e-5f;
      }
  }
  plaintest::info("{} {}: {} of {} tokens at near-ties", kind, control, near_ties, T);
  PT_CHECK2(weights_ok, "router weights differ from the CPU's where the experts agree");
}
#endif

PT_CASE(route) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  for (const char* kind :
       {"mixtral", "qwen-norenorm", "deepseek-v2-group", "deepseek-v3", "wide-k", "gpt-oss", "many-groups"})
    for (const char* ctl : {"none", "disabled", "forced", "top_k", "ignore_bias"})
      PT_ROW(fmt::format("{} {}", kind, ctl), [&] { check_route(kind, ctl); });
#endif
}

#ifdef MOESCOPE_HAVE_CUDA
// sinks (gpt-oss; null: none): one logit per head joins each softmax's denominator only, as
// transformers appends it as a last softmax column and drops that column's output.
std::vector<float> attention_reference(const std::vector<float>& q, const std::vector<float>& k,
                                       const std::vector<float>& v, int tokens, int pos0, int heads, int kv_heads,
                                       int hd, int window, float scale, const std::vector<float>* sinks = nullptr) {
  const int len = pos0 + tokens, kd = kv_heads * hd, group = heads / kv_heads;
  std::vector<float> ref(size_t(tokens) * heads * hd, 0.0f), scores(static_cast<size_t>(len));
  for (int t = 0; t < tokens; ++t)
    for (int h = 0; h < heads; ++h) {
      const int p = pos0 + t, lo = window > 0 ? std::max(0, p - window + 1) : 0, g = h / group;
      for (int j = lo; j <= p; ++j)
        scores[size_t(j - lo)] =
            cpu::dot(q.data() + (size_t(t) * heads + h) * hd, k.data() + size_t(j) * kd + g * hd, DType::F32, hd) * scale;
      if (sinks) {
        const int n = p - lo + 1;
        float m = scores[0];
        for (int j = 1; j < n; ++j) m = std::max(m, scores[size_t(j)]);
        double sum = std::exp(double((*sinks)[size_t(h)]) - m);
        for (int j = 0; j < n; ++j) sum += std::exp(double(scores[size_t(j)]) - m);
        for (int j = 0; j < n; ++j) scores[size_t(j)] = float(std::exp(double(scores[size_t(j)]) - m) / sum);
      } else {
        cpu::softmax(scores.data(), p - lo + 1);
      }
      for (int j = lo; j <= p; ++j)
        cpu::axpy(scores[size_t(j - lo)], v.data() + size_t(j) * kd + g * hd, DType::F32,
                  ref.data() + (size_t(t) * heads + h) * hd, hd);
    }
  return ref;
}
#endif

// Causal GQA attention over a paged cache (blocks stored out of order): decode (one token,
// many spans), prefill (many tokens), sliding window, head dims that are not multiples of 32,
// gpt-oss' attention sinks (with and without a window; sinks from -3 to 3, some above every score).
PT_CASE(attention) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Row { const char* name; int tokens, pos0, heads, kv_heads, head_dim, window, span; bool sinks = false; };
  for (const Row& r : {Row{"decode 8/2x64 len 300", 1, 299, 8, 2, 64, 0, 64},
                       Row{"decode 4/4x128 len 1", 1, 0, 4, 4, 128, 0, 64},
                       Row{"decode 32/4x128 len 1000 window 257", 1, 999, 32, 4, 128, 257, 64},
                       Row{"prefill 20 @7 4/2x12", 20, 7, 4, 2, 12, 0, 256},
                       Row{"prefill 70 @0 16/16x64 window 33", 70, 0, 16, 16, 64, 33, 32},
                       Row{"prefill 300 @5 8/1x128", 300, 5, 8, 1, 128, 0, 256},
                       Row{"sinks decode 8/2x64 len 300", 1, 299, 8, 2, 64, 0, 64, true},
                       Row{"sinks decode 4/2x16 len 3 window 5 (gpt-oss test shape)", 1, 2, 4, 2, 16, 5, 64, true},
                       Row{"sinks prefill 16 @0 4/2x16 window 5", 16, 0, 4, 2, 16, 5, 256, true},
                       Row{"sinks prefill 70 @3 8/8x64 spans of 32", 70, 3, 8, 8, 64, 0, 32, true}})
    PT_ROW(r.name, [&] {
      const int len = r.pos0 + r.tokens, hd = r.head_dim, kd = r.kv_heads * hd;
      const float scale = 1.0f / std::sqrt(float(hd));
      auto q = random_vec(size_t(r.tokens) * r.heads * hd, 11), k = random_vec(size_t(len) * kd, 12),
           v = random_vec(size_t(len) * kd, 13);
      const auto sinks = random_vec(size_t(r.heads), 14, -3.0f, 3.0f);
      const std::vector<float>* sp = r.sinks ? &sinks : nullptr;
      const auto ref = attention_reference(q, k, v, r.tokens, r.pos0, r.heads, r.kv_heads, hd, r.window, scale, sp);
      PT_CHECK(close("attention",
                     cuda_ops::attention(q, k, v, r.tokens, r.pos0, r.heads, r.kv_heads, hd, scale, r.window, r.span,
                                         sp),
                     ref, 1e-5f, 1e-4f));
    });
#endif
}

PT_CASE(argmax) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  for (int V : {7, 1000, 151936}) {
    auto logits = random_vec(size_t(3) * V, 14);
    logits[size_t(V) + V / 2] = 5.0f, logits[size_t(V) + V / 3] = 5.0f;  // a tie: the lower index wins
    auto got = cuda_ops::argmax(logits, 3, V);
    for (int r = 0; r < 3; ++r) PT_COMPARE(got[size_t(r)], moescope::argmax(logits.data() + size_t(r) * V, V));
  }
#endif
}

// The kernel table's performance mode (MOESCOPE_CUDA_PERF=1): each op on a real model's shapes
// (OLMoE-1B-7B / Qwen3-30B-A3B / DeepSeek-V3 sizes), timed over 20 launches after a warm-up; the
// results are also checked against the CPU where that is cheap. Bytes count what the kernel must
// read and write at least; the ceiling is the copy bandwidth of `moescope-cli bench`.
// ---- the kernels below the model ops: each beside a host reference -----------------------

#ifdef MOESCOPE_HAVE_CUDA
// BF16-rounded copy of v as a view the device rounds the same way (the reference reads the bits).
struct Bf16Tensor {
  std::vector<uint16_t> bits;
  TensorView view;
  Bf16Tensor(const std::vector<float>& v, std::vector<int64_t> shape)
      : bits(to_bf16(v)), view{DType::BF16, std::move(shape), nullptr} {
    view.data = bits.data();
  }
  Bf16Tensor(const Bf16Tensor&) = delete;  // view.data points into bits
  float at(size_t i) const { return bf16_to_f32(bits[i]); }
};
#endif

PT_CASE(add_bias_and_clamp) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Row { const char* name; int n, out; };
  for (const Row& r : {Row{"1x7", 1, 7}, Row{"5x1001", 5, 1001}, Row{"129x64", 129, 64}})
    PT_ROW(r.name, [&] {
      auto y = random_vec(size_t(r.n) * r.out, 21), b = random_vec(size_t(r.out), 22);
      auto ref = y;
      for (int t = 0; t < r.n; ++t)
        for (int o = 0; o < r.out; ++o) ref[size_t(t) * r.out + o] += b[size_t(o)];
      PT_CHECK(close("add_bias", cuda_ops::add_bias(y, b, r.n, r.out), ref, 0.0f, 0.0f));
      auto c = random_vec(size_t(r.n) * r.out, 23, -3.0f, 3.0f), cref = c;
      for (auto& v : cref) v = std::clamp(v, -0.8f, 0.8f);
      PT_CHECK(close("clamp", cuda_ops::clamp(c, 0.8f), cref, 0.0f, 0.0f));
    });
#endif
}

// Weight upload conversions (every checkpoint dtype to BF16 and fp32) and the activations' BF16
// rows: exact, with round-to-nearest-even as f32_to_bf16 (sizes not multiples of a block).
PT_CASE(convert) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  for (int n : {1, 1000, 70001})
    for (DType dt : {DType::F32, DType::F16, DType::BF16})
      PT_ROW(fmt::format("{} {}", n, dtype_name(dt)), [&] {
        auto f = random_vec(size_t(n), 24, -40.0f, 40.0f);
        f[0] = 1.0f + 1.0f / 256.0f;  // a BF16 tie: rounds to even
        std::vector<uint16_t> h(f.size());
        TensorView src{dt, {n}, f.data()};
        if (dt == DType::F16) std::transform(f.begin(), f.end(), h.begin(), f32_to_f16), src.data = h.data();
        if (dt == DType::BF16) h = to_bf16(f), src.data = h.data();
        std::vector<float> wide(f.size()), narrow(f.size());
        to_f32(dt, src.data, wide.data(), n);
        std::transform(wide.begin(), wide.end(), narrow.begin(), [](float v) { return bf16_to_f32(f32_to_bf16(v)); });
        PT_CHECK(close("convert to f32", cuda_ops::convert(src, true), wide, 0.0f, 0.0f));
        PT_CHECK(close("convert to bf16", cuda_ops::convert(src, false), narrow, 0.0f, 0.0f));
      });
  PT_ROW("rows 37 of 100 from stride 130", [&] {
    const int rows = 37, cols = 100, stride = 130;
    auto x = random_vec(size_t(rows) * stride, 25, -5.0f, 5.0f);
    std::vector<float> ref(size_t(rows) * cols);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c) ref[size_t(r) * cols + c] = bf16_to_f32(f32_to_bf16(x[size_t(r) * stride + c]));
    PT_CHECK(close("to_bf16_rows", cuda_ops::to_bf16_rows(x, stride, rows, cols), ref, 0.0f, 0.0f));
  });
#endif
}

// Rows appended to a paged cache land at their positions through a reversed block table, rows
// before pos0 untouched (zeros), blocks cut mid-way.
PT_CASE(kv_store) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Row { const char* name; int n, values, pos0, block; };
  for (const Row& r : {Row{"decode 1 @0", 1, 48, 0, 16}, Row{"decode 1 @4095", 1, 576, 4095, 64},
                       Row{"prefill 70 @5 block 16", 70, 130, 5, 16}, Row{"prefill 300 @0 block 256", 300, 64, 0, 256}})
    PT_ROW(r.name, [&] {
      auto rows = random_vec(size_t(r.n) * r.values, 26);
      std::vector<float> ref(size_t(r.pos0 + r.n) * r.values, 0.0f);
      std::copy(rows.begin(), rows.end(), ref.begin() + ptrdiff_t(size_t(r.pos0) * r.values));
      PT_CHECK(close("kv_store", cuda_ops::kv_store(rows, r.n, r.values, r.pos0, r.block), ref, 0.0f, 0.0f));
    });
#endif
}

// Absorbed MLA: W_ukᵀ·q_nope per head (plus the rope part copied) and W_uv·o_lat per head, against
// plain loops over the same BF16 kv_b_proj (DeepSeek-V2-Lite's and odd shapes).
PT_CASE(mla_projections) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Row { const char* name; int n, heads, nope, rope, v_head, latent; };
  for (const Row& r : {Row{"decode V2-Lite 1x16", 1, 16, 128, 64, 128, 512},
                       Row{"prefill 9x3 odd", 9, 3, 24, 8, 20, 100}, Row{"prefill 33x2", 33, 2, 16, 16, 32, 64}})
    PT_ROW(r.name, [&] {
      const int C = r.latent, rows = r.heads * (r.nope + r.v_head);
      Bf16Tensor kv_b(random_vec(size_t(rows) * C, 27, -0.1f, 0.1f), {rows, C});
      auto q = random_vec(size_t(r.n) * r.heads * (r.nope + r.rope), 28);
      std::vector<float> ref(size_t(r.n) * r.heads * (C + r.rope));
      for (int t = 0; t < r.n; ++t)
        for (int h = 0; h < r.heads; ++h) {
          const float* qh = q.data() + (size_t(t) * r.heads + h) * (r.nope + r.rope);
          float* out = ref.data() + (size_t(t) * r.heads + h) * (C + r.rope);
          for (int c = 0; c < C; ++c) {
            double acc = 0.0;
            for (int i = 0; i < r.nope; ++i) acc += double(qh[i]) * kv_b.at((size_t(h) * (r.nope + r.v_head) + i) * C + c);
            out[c] = float(acc);
          }
          std::copy_n(qh + r.nope, r.rope, out + C);
        }
      PT_CHECK(close("mla_q_absorb", cuda_ops::mla_q_absorb(q, kv_b.view, r.n, r.heads, r.nope, r.rope, r.v_head), ref,
                     1e-5f, 1e-4f));
      auto o_lat = random_vec(size_t(r.n) * r.heads * C, 29);
      std::vector<float> vref(size_t(r.n) * r.heads * r.v_head);
      for (int t = 0; t < r.n; ++t)
        for (int h = 0; h < r.heads; ++h)
          for (int d = 0; d < r.v_head; ++d) {
            double acc = 0.0;
            for (int c = 0; c < C; ++c)
              acc += double(o_lat[(size_t(t) * r.heads + h) * C + c]) *
                     kv_b.at((size_t(h) * (r.nope + r.v_head) + r.nope + d) * C + c);
            vref[(size_t(t) * r.heads + h) * r.v_head + d] = float(acc);
          }
      PT_CHECK(close("mla_v_up", cuda_ops::mla_v_up(o_lat, kv_b.view, r.n, r.heads, r.nope, r.v_head), vref, 1e-5f,
                     1e-4f));
    });
#endif
}

#ifdef MOESCOPE_HAVE_CUDA
// Ids/weights for n tokens × k slots over E experts, repeats across tokens, and (padding) a
// zero-weight slot in every third token as an intervention leaves it.
// gpt-oss's extras for E experts of width W over hidden H: per-expert biases (from seed, seed + 1)
// and the clamped SwiGLU; x scaled so that gate/up values go beyond the limit.
cuda_ops::MoeExtras gpt_oss_extras(int E, int W, int H, uint32_t seed, float alpha, std::vector<float>& x) {
  cuda_ops::MoeExtras ex;
  ex.gate_up_bias = random_vec(size_t(E) * 2 * W, seed, -1.0f, 1.0f);
  ex.down_bias = random_vec(size_t(E) * H, seed + 1, -0.5f, 0.5f);
  ex.clamped = true, ex.alpha = alpha, ex.limit = 1.2f;
  for (auto& v : x) v *= 20.0f;
  return ex;
}

// An expert's [gate; up] row g (2W values) into its activation, as CpuBackend::run_groups does:
// gpt-oss's biases of expert e, then the clamped SwiGLU (ex), or silu(gate)·up (no ex).
void swiglu_ref(float* g, int W, int e, const cuda_ops::MoeExtras* ex) {
  if (!ex) return cpu::silu_mul(g, g + W, W);
  for (int i = 0; i < 2 * W; ++i) g[i] += ex->gate_up_bias[size_t(e) * 2 * W + size_t(i)];
  cpu::clamped_swiglu(g, g + W, W, ex->alpha, ex->limit);
}

void random_routes(int n, int k, int E, std::vector<int32_t>& ids, std::vector<float>& w) {
  std::mt19937 rng(30);
  ids.assign(size_t(n) * k, 0), w.assign(size_t(n) * k, 0.0f);
  for (int t = 0; t < n; ++t)
    for (int j = 0; j < k; ++j) {
      ids[size_t(t) * k + j] = int32_t((rng() % uint32_t(E)));
      w[size_t(t) * k + j] = (t % 3 == 2 && j == k - 1) ? 0.0f : 0.05f + float(rng() % 1000) / 1000.0f;
    }
}
#endif

// Decode's routed experts (only the chosen experts' rows read): h = silu(gate·x)·(up·x) per slot
// and y = Σ w·down·h, against cpu::matmul and cpu::silu_mul on the same BF16 weights.
PT_CASE(moe_experts_decode) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  // gpt_oss: per-expert biases and the clamped SwiGLU (limit 1.2: the values cross it).
  struct Row { const char* name; int n, hidden, width, E, k; bool gpt_oss = false; };
  for (const Row& r : {Row{"1 token Qwen3 8/128 2048x768", 1, 2048, 768, 128, 8}, Row{"3 tokens odd 100x37", 3, 100, 37, 7, 3},
                       Row{"4 tokens 72x40", 4, 72, 40, 16, 6}, Row{"gpt-oss 1 token 32/4 256x64", 1, 256, 64, 32, 4, true},
                       Row{"gpt-oss 3 tokens 8/3 100x37", 3, 100, 37, 8, 3, true}})
    PT_ROW(r.name, [&] {
      const int H = r.hidden, W = r.width, E = r.E, K = r.k;
      Bf16Tensor gu(random_vec(size_t(E) * 2 * W * H, 31, -0.05f, 0.05f), {int64_t(E) * 2 * W, H});
      Bf16Tensor dn(random_vec(size_t(E) * H * W, 32, -0.05f, 0.05f), {int64_t(E) * H, W});
      auto x = random_vec(size_t(r.n) * H, 33);
      std::vector<int32_t> ids;
      std::vector<float> w;
      random_routes(r.n, K, E, ids, w);
      const cuda_ops::MoeExtras ex = r.gpt_oss ? gpt_oss_extras(E, W, H, 40, 1.5f, x) : cuda_ops::MoeExtras{};
      ThreadPool pool(2);
      std::vector<float> href(size_t(r.n) * K * W, 0.0f), yref(size_t(r.n) * H, 0.0f), g(size_t(2) * W), o(static_cast<size_t>(H));
      for (int t = 0; t < r.n; ++t)
        for (int j = 0; j < K; ++j) {
          if (w[size_t(t) * K + j] == 0.0f) continue;
          const int e = ids[size_t(t) * K + j];
          TensorView ge{DType::BF16, {2 * W, H}, gu.bits.data() + size_t(e) * 2 * W * H};
          TensorView de{DType::BF16, {H, W}, dn.bits.data() + size_t(e) * H * W};
          cpu::matmul(pool, x.data() + size_t(t) * H, 1, ge, nullptr, g.data());
          swiglu_ref(g.data(), W, e, r.gpt_oss ? &ex : nullptr);
          float* h = href.data() + (size_t(t) * K + j) * W;
          std::copy_n(g.data(), W, h);
          cpu::matmul(pool, h, 1, de, nullptr, o.data());
          if (r.gpt_oss)
            for (int i = 0; i < H; ++i) o[size_t(i)] += ex.down_bias[size_t(e) * H + i];
          for (int i = 0; i < H; ++i) yref[size_t(t) * H + i] += w[size_t(t) * K + j] * o[size_t(i)];
        }
      auto got = cuda_ops::moe_experts(x, r.n, gu.view, dn.view, E, ids, w, K, r.gpt_oss ? &ex : nullptr);
      PT_CHECK(close("moe_gate_up", got.h, href, 1e-5f, 1e-4f));
      PT_CHECK(close("moe_down", got.y, yref, 1e-5f, 1e-4f));
    });
#endif
}

#ifdef MOESCOPE_HAVE_CUDA
// llama.cpp's block types the CUDA kernels read in place (quant_gemv.cuh, quant_dequant.cuh).
const DType kBlockTypes[] = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0,   DType::Q5_1,
                             DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K,   DType::Q6_K,
                             DType::IQ4_NL, DType::IQ4_XS, DType::MXFP4};

// rows × cols weights of block type dt (random codes, weights of rms ~0.05) and their reference
// dequantisation (dequantize_blocks, the CPU's).
struct QuantMatrix {
  std::vector<uint8_t> bytes;
  std::vector<float> ref;  // [rows, cols] fp32
  TensorView view;
  QuantMatrix(DType dt, int64_t rows, int64_t cols, uint32_t seed) {
    std::mt19937 rng(seed);
    const int64_t nb = rows * cols / dtype_block_elems(dt);
    bytes = test::random_blocks(dt, size_t(nb), rng, 0.05f);
    ref.resize(size_t(rows * cols));
    dequantize_blocks(dt, bytes.data(), ref.data(), nb);
    view = TensorView{dt, {rows, cols}, bytes.data()};
  }
  QuantMatrix(const QuantMatrix&) = delete;  // view.data points into bytes
};

// y[t, r] = Σ_i x[t, i]·w[r, i] (+ b[r]) in double, and the largest Σ|x·w| over the outputs (the
// scale of fp32 summation-order differences).
std::vector<float> matvec_ref(const std::vector<float>& x, int n, const std::vector<float>& w, int out, int in,
                              const std::vector<float>* bias, double* magnitude) {
  std::vector<float> y(size_t(n) * out);
  *magnitude = 0.0;
  for (int t = 0; t < n; ++t)
    for (int r = 0; r < out; ++r) {
      double acc = bias ? double((*bias)[size_t(r)]) : 0.0, mag = 0.0;
      for (int i = 0; i < in; ++i) {
        const double p = double(x[size_t(t) * in + i]) * double(w[size_t(r) * in + i]);
        acc += p, mag += std::fabs(p);
      }
      y[size_t(t) * out + r] = float(acc);
      *magnitude = std::max(*magnitude, mag);
    }
  return y;
}
#endif

// Block dequantisation on the device: bit-exact with the CPU's dequantize_blocks in fp32, and with
// f32_to_bf16 of it in BF16 (tolerance 0), every type, a count of blocks that fills no launch.
PT_CASE(quant_dequantize) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  for (DType dt : kBlockTypes)
    PT_ROW(fmt::format("{} 77 blocks", dtype_name(dt)), [&] {
      const QuantMatrix m(dt, 7, 11 * dtype_block_elems(dt), 50);
      std::vector<float> narrow(m.ref.size());
      std::transform(m.ref.begin(), m.ref.end(), narrow.begin(), [](float v) { return bf16_to_f32(f32_to_bf16(v)); });
      PT_CHECK(close("quant_dequantize f32", cuda_ops::quant_dequantize(m.view, true), m.ref, 0.0f, 0.0f));
      PT_CHECK(close("quant_dequantize bf16", cuda_ops::quant_dequantize(m.view, false), narrow, 0.0f, 0.0f));
    });
#endif
}

// The block matvec (n <= 4: fp32 activations, the blocks decoded in registers) against
// dequantize_blocks and a double matvec: only the fp32 summation order differs, so the bound is
// 2e-5 · Σ|x·w| (the largest of the case) + 1e-6. Prefill (n > 4): the device widens the blocks to
// BF16 and runs cuBLAS with BF16 activations, compared with the BF16 rounding of the reference
// weights as the matmul case (5e-3 + 1e-2·|ref|). Rows of one block (one lane per row, 32 rows a
// warp) up to 64 blocks (two per lane), row counts not a multiple of a warp's.
PT_CASE(quant_matmul) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Shape { int n, out, blocks; bool bias; };
  for (DType dt : kBlockTypes)
    for (const Shape& s : {Shape{1, 37, 1, false}, Shape{3, 129, 3, true}, Shape{4, 70, 8, false},
                           Shape{1, 33, 64, true}, Shape{2, 16, 9, false}, Shape{17, 45, 4, true}})
      PT_ROW(fmt::format("{} {}x{}x{} blocks{}", dtype_name(dt), s.n, s.out, s.blocks, s.bias ? " bias" : ""), [&] {
        const int in = s.blocks * int(dtype_block_elems(dt));
        const QuantMatrix m(dt, s.out, in, 51 + uint32_t(s.blocks));
        auto x = random_vec(size_t(s.n) * in, 52);
        auto b = random_vec(size_t(s.out), 53, -0.2f, 0.2f);
        const std::vector<float>* bias = s.bias ? &b : nullptr;
        auto got = cuda_ops::quant_matmul(x, s.n, m.view, bias);
        double mag = 0.0;
        if (s.n <= 4) {
          auto ref = matvec_ref(x, s.n, m.ref, s.out, in, bias, &mag);
          PT_CHECK(close("quant_gemv", got, ref, float(2e-5 * mag + 1e-6), 0.0f));
        } else {
          std::vector<float> wbf(m.ref.size());
          std::transform(m.ref.begin(), m.ref.end(), wbf.begin(), [](float v) { return bf16_to_f32(f32_to_bf16(v)); });
          auto ref = matvec_ref(x, s.n, wbf, s.out, in, bias, &mag);
          PT_CHECK(close("dequantize + cuBLAS", got, ref, 5e-3f, 1e-2f));
        }
      });
#endif
}

// Decode's routed experts with block-quantised stacks (gate_up of one type, down of another, as
// GGUF Q4_K_M files mix them), against dequantize_blocks and double matvecs per selected expert,
// silu(g)·u (gpt-oss: biases and the clamped SwiGLU) and the weighted sum. Bound: 2e-5 · Σ|x·w|
// + 1e-6 for h (the gate and up sums), the same with Σ|h·w| summed over the slots for y.
PT_CASE(quant_moe_experts_decode) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Row { const char* name; int n, hidden, width, E, k; DType gu, dn; bool gpt_oss = false; };
  for (const Row& r : {Row{"Q4_K/Q6_K 1 token 8 of 16 512x256", 1, 512, 256, 16, 8, DType::Q4_K, DType::Q6_K},
                       Row{"Q5_K/Q4_K 2 tokens 2048x768", 2, 2048, 768, 8, 4, DType::Q5_K, DType::Q4_K},
                       Row{"Q8_0/Q5_1 3 tokens 96x64", 3, 96, 64, 7, 3, DType::Q8_0, DType::Q5_1},
                       Row{"Q4_0/Q5_0 4 tokens 160x96", 4, 160, 96, 9, 5, DType::Q4_0, DType::Q5_0},
                       Row{"Q4_1/IQ4_NL 1 token 64x32", 1, 64, 32, 4, 2, DType::Q4_1, DType::IQ4_NL},
                       Row{"Q2_K/Q3_K 3 tokens 256x256", 3, 256, 256, 6, 3, DType::Q2_K, DType::Q3_K},
                       Row{"IQ4_XS/Q8_0 2 tokens 768x128", 2, 768, 128, 5, 2, DType::IQ4_XS, DType::Q8_0},
                       Row{"gpt-oss MXFP4 3 tokens 4 of 32 256x64", 3, 256, 64, 32, 4, DType::MXFP4, DType::MXFP4,
                           true}})
    PT_ROW(r.name, [&] {
      const int H = r.hidden, W = r.width, E = r.E, K = r.k;
      const QuantMatrix gu(r.gu, int64_t(E) * 2 * W, H, 60), dn(r.dn, int64_t(E) * H, W, 61);
      auto x = random_vec(size_t(r.n) * H, 62);
      std::vector<int32_t> ids;
      std::vector<float> w;
      random_routes(r.n, K, E, ids, w);
      const cuda_ops::MoeExtras ex = r.gpt_oss ? gpt_oss_extras(E, W, H, 63, 1.702f, x) : cuda_ops::MoeExtras{};
      std::vector<float> href(size_t(r.n) * K * W, 0.0f), yref(size_t(r.n) * H, 0.0f);
      double hmag = 0.0, ymag = 0.0;
      for (int t = 0; t < r.n; ++t) {
        std::vector<double> ymag_t(static_cast<size_t>(H), 0.0);
        for (int j = 0; j < K; ++j) {
          const float wt = w[size_t(t) * K + j];
          if (wt == 0.0f) continue;
          const int e = ids[size_t(t) * K + j];
          const std::vector<float> xt(x.begin() + ptrdiff_t(t) * H, x.begin() + ptrdiff_t(t + 1) * H);
          const std::vector<float> we(gu.ref.begin() + ptrdiff_t(e) * 2 * W * H,
                                      gu.ref.begin() + ptrdiff_t(e + 1) * 2 * W * H);
          double mag = 0.0;
          auto g = matvec_ref(xt, 1, we, 2 * W, H, nullptr, &mag);
          hmag = std::max(hmag, mag);
          swiglu_ref(g.data(), W, e, r.gpt_oss ? &ex : nullptr);
          float* h = href.data() + (size_t(t) * K + j) * W;
          std::copy_n(g.data(), W, h);
          const std::vector<float> hv(h, h + W);
          const std::vector<float> wd(dn.ref.begin() + ptrdiff_t(e) * H * W, dn.ref.begin() + ptrdiff_t(e + 1) * H * W);
          auto o = matvec_ref(hv, 1, wd, H, W, nullptr, &mag);
          for (int i = 0; i < H; ++i) {
            const float oi = r.gpt_oss ? o[size_t(i)] + ex.down_bias[size_t(e) * H + i] : o[size_t(i)];
            yref[size_t(t) * H + i] += wt * oi;
            ymag_t[size_t(i)] += std::fabs(double(wt)) * (mag + std::fabs(double(oi)));
          }
        }
        for (double v : ymag_t) ymag = std::max(ymag, v);
      }
      auto got = cuda_ops::moe_experts(x, r.n, gu.view, dn.view, E, ids, w, K, r.gpt_oss ? &ex : nullptr);
      // h is silu(g)·u: its error is that of g and u times values of order |g|, |u| (gpt-oss: the
      // clamp bounds them); the relative term covers it.
      PT_CHECK(close("quant_moe_gate_up", got.h, href, float(2e-5 * hmag + 1e-6), 2e-4f));
      PT_CHECK(close("quant_moe_down", got.y, yref, float(2e-5 * ymag + 1e-6), 2e-4f));
    });
#endif
}

// Prefill's grouping: counts and offsets per expert, the pairs in (expert, token, slot) order with
// zero-weight slots left out, their rows gathered as BF16, and the weighted combine back.
PT_CASE(moe_group) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Row { const char* name; int n, k, E, hidden; };
  for (const Row& r : {Row{"5x2 of 8", 5, 2, 8, 48}, Row{"512x8 of 128", 512, 8, 128, 256},
                       Row{"300x6 of 160", 300, 6, 160, 100}, Row{"1000x40 of 1000 wide-k", 1000, 40, 1000, 16}})
    PT_ROW(r.name, [&] {
      std::vector<int32_t> ids;
      std::vector<float> w;
      random_routes(r.n, r.k, r.E, ids, w);
      const size_t pairs = size_t(r.n) * r.k;
      // Host reference: a counting sort.
      std::vector<int32_t> counts(size_t(r.E), 0), offsets(size_t(r.E), 0), rows, slot_row(pairs, -1);
      for (size_t i = 0; i < pairs; ++i)
        if (w[i] != 0.0f) ++counts[size_t(ids[i])];
      for (int e = 1; e < r.E; ++e) offsets[size_t(e)] = offsets[size_t(e) - 1] + counts[size_t(e) - 1];
      for (int e = 0; e < r.E; ++e)
        for (size_t i = 0; i < pairs; ++i)
          if (w[i] != 0.0f && ids[i] == e) slot_row[i] = int32_t(rows.size()), rows.push_back(int32_t(i));
      auto x = random_vec(size_t(r.n) * r.hidden, 34);
      auto eo = random_vec(pairs * r.hidden, 35);  // expert outputs, row = index into rows
      std::vector<float> gathered(rows.size() * r.hidden), combined(size_t(r.n) * r.hidden, 0.0f);
      for (size_t i = 0; i < rows.size(); ++i)
        for (int c = 0; c < r.hidden; ++c)
          gathered[i * r.hidden + c] = bf16_to_f32(f32_to_bf16(x[size_t(rows[i] / r.k) * r.hidden + c]));
      for (size_t i = 0; i < pairs; ++i)
        if (slot_row[i] >= 0)
          for (int c = 0; c < r.hidden; ++c)
            combined[(i / size_t(r.k)) * r.hidden + c] += w[i] * eo[size_t(slot_row[i]) * r.hidden + c];
      auto got = cuda_ops::moe_group(ids, w, r.n, r.k, r.E, x, r.hidden, eo);
      PT_CHECK2(got.counts == counts, "per-expert counts differ");
      PT_CHECK2(got.offsets == offsets, "per-expert offsets differ");
      PT_CHECK2(got.rows == rows, "the grouped pairs differ (order: expert, then token and slot)");
      PT_CHECK2(got.slot_row == slot_row, "slot → row map differs (-1 for zero-weight slots)");
      PT_CHECK(close("moe_gather", got.gathered, gathered, 0.0f, 0.0f));
      PT_CHECK(close("moe_combine", got.combined, combined, 1e-6f, 1e-5f));
    });
#endif
}

// The shared expert's add: plain (DeepSeek) and behind Qwen2-MoE's sigmoid gate.
PT_CASE(shared_expert) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Row { const char* name; int n, hidden; bool gated; };
  for (const Row& r : {Row{"plain 1x2048", 1, 2048, false}, Row{"gated 1x2048", 1, 2048, true},
                       Row{"gated 37x100", 37, 100, true}, Row{"plain 129x72", 129, 72, false}})
    PT_ROW(r.name, [&] {
      const int H = r.hidden;
      auto x = random_vec(size_t(r.n) * H, 36), sh = random_vec(size_t(r.n) * H, 37), y = random_vec(size_t(r.n) * H, 38);
      auto gate = r.gated ? random_vec(size_t(H), 39, -0.1f, 0.1f) : std::vector<float>{};
      auto ref = y;
      std::vector<float> gref;
      for (int t = 0; t < r.n; ++t) {
        const float g = r.gated ? rules::sigmoid(cpu::dot(x.data() + size_t(t) * H, gate.data(), DType::F32, H)) : 1.0f;
        gref.push_back(g);
        for (int i = 0; i < H; ++i) ref[size_t(t) * H + i] += g * sh[size_t(t) * H + i];
      }
      std::vector<float> gates;
      PT_CHECK(close("shared_expert_add", cuda_ops::shared_expert_add(x, gate, sh, y, H, r.n, r.gated ? &gates : nullptr),
                     ref, 1e-6f, 1e-5f));
      if (r.gated) PT_CHECK(close("shared_expert_add gates (trace)", gates, gref, 1e-6f, 1e-5f));
    });
#endif
}

// The (1 + w) norms' offset, added to the weights at upload.
PT_CASE(add_constant) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  for (size_t n : {size_t(1), size_t(48), size_t(100003)}) {
    auto x = random_vec(n, 42);
    auto ref = x;
    for (auto& v : ref) v += 1.0f;
    PT_CHECK(close("add_constant", cuda_ops::add_constant(x, 1.0f), ref, 0.0f, 0.0f));
  }
#endif
}

#ifdef MOESCOPE_HAVE_CUDA
// Gated DeltaNet, written out plainly from CpuBackend::linear_attention's formulas (one token at
// a time, double accumulators): proj rows [qkv (Cc) | z (VD) | b (nv) | a (nv)], zero states.
cuda_ops::DeltaNetResult delta_net_reference(const std::vector<float>& proj, int T, const cuda_ops::DeltaNetDims& d,
                                             const std::vector<float>& conv_w, const std::vector<float>& a_log,
                                             const std::vector<float>& dt_bias, const std::vector<float>& norm,
                                             float eps) {
  const int KD = d.nk * d.dk, VD = d.nv * d.dv, Cc = 2 * KD + VD, A = Cc + VD + 2 * d.nv, Kc = d.kernel;
  cuda_ops::DeltaNetResult r;
  r.out.assign(size_t(T) * VD, 0.0f);
  r.recurrent.assign(size_t(d.nv) * d.dk * d.dv, 0.0f);
  std::vector<float> cv(size_t(T) * Cc);
  auto in = [&](int u, int c) { return u >= 0 ? proj[size_t(u) * A + c] : 0.0f; };  // zero initial conv state
  for (int c = 0; c < Cc; ++c)
    for (int t = 0; t < T; ++t) {
      double acc = 0.0;
      for (int j = 0; j < Kc; ++j) acc += double(conv_w[size_t(c) * Kc + j]) * in(t - (Kc - 1) + j, c);
      cv[size_t(t) * Cc + c] = float(acc / (1.0 + std::exp(-acc)));
    }
  r.conv.assign(size_t(Kc - 1) * Cc, 0.0f);
  for (int q = 0; q < Kc - 1; ++q)
    for (int c = 0; c < Cc; ++c) r.conv[size_t(q) * Cc + c] = in(T - (Kc - 1) + q, c);
  std::vector<double> qn(size_t(d.dk)), kn(size_t(d.dk)), mem(size_t(d.dv)), o(size_t(d.dv));
  for (int h = 0; h < d.nv; ++h) {
    float* S = r.recurrent.data() + size_t(h) * d.dk * d.dv;
    const int kh = h / (d.nv / d.nk);
    for (int t = 0; t < T; ++t) {
      const float* row = cv.data() + size_t(t) * Cc;
      auto l2 = [&](const float* x, std::vector<double>& y, double scale) {
        double ss = 0.0;
        for (int i = 0; i < d.dk; ++i) ss += double(x[i]) * x[i];
        for (int i = 0; i < d.dk; ++i) y[size_t(i)] = x[i] * scale / std::sqrt(ss + 1e-6);
      };
      l2(row + size_t(kh) * d.dk, qn, 1.0 / std::sqrt(double(d.dk)));
      l2(row + KD + size_t(kh) * d.dk, kn, 1.0);
      const float* v = row + 2 * KD + size_t(h) * d.dv;
      const float* p = proj.data() + size_t(t) * A;
      const double beta = 1.0 / (1.0 + std::exp(-double(p[Cc + VD + h])));
      const double a = double(p[Cc + VD + d.nv + h]) + dt_bias[size_t(h)];
      const double g = -std::exp(double(a_log[size_t(h)])) * (a > 20.0 ? a : std::log1p(std::exp(a)));
      const double decay = std::exp(g);
      for (int e = 0; e < d.dv; ++e) {
        double m = 0.0;
        for (int i = 0; i < d.dk; ++i) {
          S[size_t(i) * d.dv + e] = float(S[size_t(i) * d.dv + e] * decay);
          m += kn[size_t(i)] * S[size_t(i) * d.dv + e];
        }
        mem[size_t(e)] = beta * (v[e] - m);
      }
      double ss = 0.0;
      for (int e = 0; e < d.dv; ++e) {
        double acc = 0.0;
        for (int i = 0; i < d.dk; ++i) {
          S[size_t(i) * d.dv + e] = float(S[size_t(i) * d.dv + e] + kn[size_t(i)] * mem[size_t(e)]);
          acc += qn[size_t(i)] * S[size_t(i) * d.dv + e];
        }
        o[size_t(e)] = acc, ss += acc * acc;
      }
      const double inv = 1.0 / std::sqrt(ss / d.dv + eps);
      const float* z = p + Cc + size_t(h) * d.dv;
      for (int e = 0; e < d.dv; ++e)
        r.out[size_t(t) * VD + size_t(h) * d.dv + e] =
            float(o[size_t(e)] * inv * norm[size_t(e)] * (z[e] / (1.0 + std::exp(-double(z[e])))));
    }
  }
  return r;
}
#endif

// Gated DeltaNet's causal conv1d and gated delta rule (delta_net.cu) against the plain reference:
// the golden model's heads, Qwen3.5-35B-A3B's (16 key heads of 128 serving 32 value heads of 128,
// kernel 4), a single key head; one forward or several (5, 1, 7, 3 tokens: the conv and recurrent
// states carried between launches, decode's one-token path included), outputs and final states.
PT_CASE(delta_net) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  struct Row { const char* name; int T; cuda_ops::DeltaNetDims d; std::vector<int> chunks; };
  for (const Row& r : {Row{"golden 2x8 / 4x12 k4, 16 tokens at once", 16, {2, 4, 8, 12, 4}, {16}},
                       Row{"golden 2x8 / 4x12 k4, chunks 5 1 7 3", 16, {2, 4, 8, 12, 4}, {5, 1, 7, 3}},
                       Row{"Qwen3.5 16x128 / 32x128 k4, chunks 3 1 1", 5, {16, 32, 128, 128, 4}, {3, 1, 1}},
                       Row{"1x40 / 3x24 k2, 40 one at a time", 40, {1, 3, 40, 24, 2}, std::vector<int>(40, 1)}})
    PT_ROW(r.name, [&] {
      const auto& d = r.d;
      const int KD = d.nk * d.dk, VD = d.nv * d.dv, Cc = 2 * KD + VD, A = Cc + VD + 2 * d.nv;
      auto proj = random_vec(size_t(r.T) * A, 43, -2.0f, 2.0f);
      auto conv_w = random_vec(size_t(Cc) * d.kernel, 44, -0.7f, 0.7f);
      auto a_log = random_vec(size_t(d.nv), 45, -2.0f, 1.0f), dt_bias = random_vec(size_t(d.nv), 46, -1.0f, 1.0f);
      auto norm = random_vec(size_t(d.dv), 47, 0.5f, 1.5f);
      for (int t = 0; t < r.T; ++t) proj[size_t(t) * A + Cc + VD + d.nv] = 25.0f;  // softplus' linear branch
      const float eps = 1e-6f;
      const auto ref = delta_net_reference(proj, r.T, d, conv_w, a_log, dt_bias, norm, eps);
      const auto got = cuda_ops::delta_net(proj, r.T, d, conv_w, a_log, dt_bias, norm, eps, r.chunks);
      PT_CHECK(close("delta_net out", got.out, ref.out, 1e-5f, 1e-4f));
      PT_CHECK(close("delta_net recurrent state", got.recurrent, ref.recurrent, 1e-5f, 1e-4f));
      PT_CHECK(close("delta_net conv state", got.conv, ref.conv, 0.0f, 0.0f));
    });
#endif
}

// The benchmarks' synthetic weights: the same counter-based values as this host copy of the
// hash (splitmix64's finaliser over seed + i·golden ratio), BF16 their rounding, and constants.
PT_CASE(random_init) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  auto host = [](long long n, uint64_t seed, float scale) {
    std::vector<float> v(static_cast<size_t>(n));
    for (long long i = 0; i < n; ++i) {
      uint64_t z = seed + uint64_t(i) * 0x9E3779B97F4A7C15ull;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      z ^= z >> 31;
      v[size_t(i)] = (float(z >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * scale;
    }
    return v;
  };
  for (long long n : {1LL, 4097LL, 5000000LL})  // the last: more than one grid-stride pass
    PT_ROW(fmt::format("{} values", n), [&] {
      auto ref = host(n, 1234, 0.02f);
      PT_CHECK(close("fill_uniform f32", cuda_ops::fill_uniform(n, 1234, 0.02f, true), ref, 0.0f, 0.0f));
      for (auto& v : ref) v = bf16_to_f32(f32_to_bf16(v));
      PT_CHECK(close("fill_uniform bf16", cuda_ops::fill_uniform(n, 1234, 0.02f, false), ref, 0.0f, 0.0f));
      PT_CHECK(close("fill_constant", cuda_ops::fill_constant(n, 0.375f, false), std::vector<float>(size_t(n), 0.375f),
                     0.0f, 0.0f));
    });
#endif
}

PT_CASE(perf_table) {
  const char* on = std::getenv("MOESCOPE_CUDA_PERF");
  if (!on || std::string(on) == "0") PT_SKIP("the performance table runs with MOESCOPE_CUDA_PERF=1");
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  cuda_ops::set_timing_reps(20);
  struct Reset {
    ~Reset() { cuda_ops::set_timing_reps(0); }
  } reset;
  auto report = [](const char* kernel, const std::string& shape, double bytes, double flops) {
    const double ms = cuda_ops::last_kernel_ms(), s = ms / 1e3;
    plaintest::info("perf: kernel={} shape={} us={:.2f} gbs={:.1f} tflops={:.2f}", kernel, shape, ms * 1e3,
                    s > 0 ? bytes / s / 1e9 : 0.0, s > 0 ? flops / s / 1e12 : 0.0);
  };
  {
    const int rows = 512, d = 2048;
    auto x = random_vec(size_t(rows) * d, 1), w = random_vec(size_t(d), 2, 0.5f, 1.5f);
    cuda_ops::rmsnorm(x, w, 1e-6f, rows, d);
    report("rmsnorm", "512x2048", 2.0 * rows * d * 4, 0);
  }
  for (auto [n, out, in] : {std::tuple{1, 50304, 2048}, std::tuple{4, 50304, 2048}, std::tuple{1, 6144, 2048},
                            std::tuple{256, 8192, 8192}, std::tuple{512, 2048, 2048}}) {
    auto x = random_vec(size_t(n) * in, 3);
    auto w16 = to_bf16(random_vec(size_t(out) * in, 4, -0.02f, 0.02f));
    TensorView w{DType::BF16, {out, in}, w16.data()};
    cuda_ops::matmul(x, n, w, nullptr);
    report(n <= 4 ? "gemv" : "cublas_bf16", fmt::format("{}x{}x{}", n, out, in),
           double(out) * in * 2 + double(n) * (in + out) * 4, 2.0 * n * out * in);
  }
  {
    const int tokens = 512, heads = 16, dim = 128;
    RopeSpec r;
    r.dim = dim;
    auto x = random_vec(size_t(tokens) * heads * dim, 6);
    cuda_ops::rope(x, tokens, heads, dim, false, r.inverse_frequencies(), 1.0f, 0);
    report("rope", "512x16x128", 2.0 * x.size() * 4, 0);
  }
  {
    const int n = 512, width = 8192;
    auto gu = random_vec(size_t(n) * 2 * width, 7);
    cuda_ops::swiglu(gu, n, width);
    report("swiglu", "512x8192", double(n) * width * 3 * 4, 0);
  }
  {
    const int V = 50304, H = 2048;
    auto table = to_bf16(random_vec(size_t(V) * H, 8));
    std::vector<int32_t> ids(512);
    for (size_t i = 0; i < ids.size(); ++i) ids[i] = int32_t((i * 7919) % V);
    cuda_ops::embed(TensorView{DType::BF16, {V, H}, table.data()}, ids);
    report("embed", "512 of 50304x2048", double(ids.size()) * H * (2 + 4), 0);
  }
  for (const char* kind : {"qwen3-moe", "deepseek-v3"}) {
    const RouterSpec r = router_of(kind);
    const int T = 512, E = r.n_experts;
    auto logits = random_vec(size_t(T) * E, 9, -4.0f, 4.0f);
    auto bias = random_vec(size_t(E), 10, -0.1f, 0.3f);
    cuda_ops::route(r, logits, T, r.correction_bias ? &bias : nullptr, RoutingControl{}, 0);
    report("route", fmt::format("{} 512 tokens E={} k={}", kind, E, r.top_k),
           double(T) * E * 4 * 2 + double(T) * r.top_k * 8, 0);
  }
  for (auto [tokens, pos0, heads, kv_heads, span] : {std::tuple{1, 4095, 32, 4, 64}, std::tuple{512, 0, 32, 4, 256}}) {
    const int hd = 128, len = pos0 + tokens, kd = kv_heads * hd;
    auto q = random_vec(size_t(tokens) * heads * hd, 11), k = random_vec(size_t(len) * kd, 12),
         v = random_vec(size_t(len) * kd, 13);
    cuda_ops::attention(q, k, v, tokens, pos0, heads, kv_heads, hd, 1.0f / std::sqrt(float(hd)), 0, span);
    // At least: K and V once, the queries read and the outputs written once.
    const double kv = double(len) * kd * 2 * 4;
    report("attention", fmt::format("{} tokens @{} {}/{}x{}", tokens, pos0, heads, kv_heads, hd),
           kv + double(tokens) * heads * hd * 8, 4.0 * heads * hd * double(tokens) * (pos0 + (tokens + 1) / 2.0));
  }
  {
    const int V = 151936, rows = 4;
    auto logits = random_vec(size_t(rows) * V, 14);
    cuda_ops::argmax(logits, rows, V);
    report("argmax", "4x151936", double(rows) * V * 4, 0);
  }
  {
    const int n = 512, out = 8192;
    auto y = random_vec(size_t(n) * out, 15), b = random_vec(size_t(out), 16);
    cuda_ops::add_bias(y, b, n, out);
    report("add_bias", "512x8192", 2.0 * n * out * 4, 0);
    cuda_ops::clamp(y, 0.5f);
    report("clamp", "512x8192", 2.0 * n * out * 4, 0);
  }
  {
    const int n = 64 << 20;
    auto f = to_bf16(random_vec(size_t(n), 17));
    cuda_ops::convert(TensorView{DType::BF16, {n}, f.data()}, true);
    report("convert", "64M bf16->f32", double(n) * (2 + 4), 0);
    auto x = random_vec(size_t(512) * 7168, 18);
    cuda_ops::to_bf16_rows(x, 7168, 512, 7168);
    report("to_bf16_rows", "512x7168", 512.0 * 7168 * (4 + 2), 0);
  }
  {
    const int n = 512, values = 576;
    auto rows = random_vec(size_t(n) * values, 19);
    cuda_ops::kv_store(rows, n, values, 0, 64);
    report("kv_store", "512x576", 2.0 * n * values * 4, 0);
  }
  {  // DeepSeek-V3's MLA: 128 heads, N 128, R 64, Dv 128, C 512
    const int heads = 128, N = 128, R = 64, Dv = 128, C = 512, rows = heads * (N + Dv);
    auto kvb = to_bf16(random_vec(size_t(rows) * C, 20, -0.05f, 0.05f));
    TensorView kv_b{DType::BF16, {rows, C}, kvb.data()};
    for (int n : {1, 512}) {
      auto q = random_vec(size_t(n) * heads * (N + R), 21);
      cuda_ops::mla_q_absorb(q, kv_b, n, heads, N, R, Dv);
      report("mla_q_absorb", fmt::format("{} tokens 128 heads", n), double(heads) * N * C * 2 + double(n) * heads * (N + R + C + R) * 4,
             2.0 * n * heads * N * C);
      auto o = random_vec(size_t(n) * heads * C, 22);
      cuda_ops::mla_v_up(o, kv_b, n, heads, N, Dv);
      report("mla_v_up", fmt::format("{} tokens 128 heads", n), double(heads) * Dv * C * 2 + double(n) * heads * (C + Dv) * 4,
             2.0 * n * heads * Dv * C);
    }
  }
  {  // Qwen3-30B-A3B's experts at decode: 8 of 128, H 2048, W 768; one token reads 8 experts
    const int E = 128, H = 2048, W = 768, K = 8;
    auto gu = to_bf16(random_vec(size_t(E) * 2 * W * H, 23, -0.02f, 0.02f));
    auto dn = to_bf16(random_vec(size_t(E) * H * W, 24, -0.02f, 0.02f));
    TensorView guv{DType::BF16, {int64_t(E) * 2 * W, H}, gu.data()}, dnv{DType::BF16, {int64_t(E) * H, W}, dn.data()};
    std::vector<int32_t> ids;
    std::vector<float> w;
    random_routes(1, K, E, ids, w);
    for (auto& v : w) v = 0.125f;  // every slot live
    cuda_ops::moe_experts(random_vec(size_t(H), 25), 1, guv, dnv, E, ids, w, K);
    report("moe_gemv", "1 token 8 of 128 experts 2048x768", double(K) * 3 * W * H * 2, 2.0 * K * 3 * W * H);
  }
  // The same experts kept in blocks (Qwen3-30B-A3B Q4_K_M: Q4_K gate/up, Q6_K down; Q8_0), and
  // gpt-oss-20b's MXFP4 experts (4 of 32, 2880x2880): bytes are the blocks the slots read.
  struct QShape { const char* name; int E, H, W, K; DType gu, dn; };
  for (const QShape& q : {QShape{"Qwen3-30B-A3B Q4_K/Q6_K 1 token 8 of 128 2048x768", 128, 2048, 768, 8, DType::Q4_K,
                                 DType::Q6_K},
                          QShape{"Qwen3-30B-A3B Q8_0 1 token 8 of 128 2048x768", 128, 2048, 768, 8, DType::Q8_0,
                                 DType::Q8_0},
                          QShape{"gpt-oss-20b MXFP4 1 token 4 of 32 2880x2880", 32, 2880, 2880, 4, DType::MXFP4,
                                 DType::MXFP4}}) {
    std::mt19937 rng(70);
    auto blocks = [&](DType dt, int64_t rows, int64_t cols) {
      return test::random_blocks(dt, size_t(rows * cols / dtype_block_elems(dt)), rng, 0.02f);
    };
    auto gu = blocks(q.gu, int64_t(q.E) * 2 * q.W, q.H), dn = blocks(q.dn, int64_t(q.E) * q.H, q.W);
    TensorView guv{q.gu, {int64_t(q.E) * 2 * q.W, q.H}, gu.data()}, dnv{q.dn, {int64_t(q.E) * q.H, q.W}, dn.data()};
    std::vector<int32_t> ids;
    std::vector<float> w;
    random_routes(1, q.K, q.E, ids, w);
    for (auto& v : w) v = 1.0f / float(q.K);  // every slot live
    cuda_ops::moe_experts(random_vec(size_t(q.H), 25), 1, guv, dnv, q.E, ids, w, q.K);
    const double bytes = double(q.K) * (double(dtype_bytes(q.gu, int64_t(2) * q.W * q.H)) +
                                        double(dtype_bytes(q.dn, int64_t(q.H) * q.W)));
    report("quant_moe_gemv", q.name, bytes, 2.0 * q.K * 3 * q.W * q.H);
    if (q.gu == DType::MXFP4) continue;
    // One expert's gate_up widened for prefill, and the block matvec on a dense 6144x2048 matrix.
    TensorView one{q.gu, {int64_t(2) * q.W, q.H}, gu.data()};
    cuda_ops::quant_dequantize(one, false);
    report("quant_dequantize", fmt::format("{} {}x{} to bf16", dtype_name(q.gu), 2 * q.W, q.H),
           double(dtype_bytes(q.gu, one.numel())) + double(one.numel()) * 2, 0);
    for (int n : {1, 4}) {
      const int out = 6144, in = 2048;
      TensorView dense{q.gu, {out, in}, gu.data()};  // the first rows of the stack
      cuda_ops::quant_matmul(random_vec(size_t(n) * in, 3), n, dense, nullptr);
      report("quant_gemv", fmt::format("{} {}x{}x{}", dtype_name(q.gu), n, out, in),
             double(dtype_bytes(q.gu, int64_t(out) * in)) + double(n) * (in + out) * 4, 2.0 * n * out * in);
    }
  }
  {
    const int n = 512, K = 8, E = 128, H = 2048;
    std::vector<int32_t> ids;
    std::vector<float> w;
    random_routes(n, K, E, ids, w);
    cuda_ops::moe_group(ids, w, n, K, E, random_vec(size_t(n) * H, 26), H, random_vec(size_t(n) * K * H, 27));
    report("moe_group+gather+combine", "512x8 of 128, H 2048", double(n) * K * H * (4 + 2 + 4) + double(n) * H * 8, 0);
  }
  {
    const int n = 512, H = 2048;
    auto x = random_vec(size_t(n) * H, 28), sh = random_vec(size_t(n) * H, 29), y = random_vec(size_t(n) * H, 30);
    cuda_ops::shared_expert_add(x, random_vec(size_t(H), 31), sh, y, H, n);
    report("shared_expert", "512x2048 gated", 4.0 * n * H * 4, 2.0 * n * H);
  }
  {  // gpt-oss-20b's attention with sinks at decode (64 heads of 64, 8 kv heads)
    const int tokens = 1, pos0 = 4095, heads = 64, kv_heads = 8, hd = 64, len = pos0 + tokens, kd = kv_heads * hd;
    auto q = random_vec(size_t(tokens) * heads * hd, 11), k = random_vec(size_t(len) * kd, 12),
         v = random_vec(size_t(len) * kd, 13), sinks = random_vec(size_t(heads), 14);
    cuda_ops::attention(q, k, v, tokens, pos0, heads, kv_heads, hd, 0.125f, 0, 64, &sinks);
    report("attention_sinks", "1 token @4095 64/8x64", double(len) * kd * 2 * 4 + double(heads) * hd * 8,
           4.0 * heads * hd * double(len));
  }
  for (int T : {1, 256}) {  // Qwen3.5-35B-A3B's Gated DeltaNet layer: 16 key heads, 32 value heads of 128
    const cuda_ops::DeltaNetDims d{16, 32, 128, 128, 4};
    const int Cc = 2 * 16 * 128 + 32 * 128, VD = 32 * 128, A = Cc + VD + 2 * 32;
    auto proj = random_vec(size_t(T) * A, 43), conv_w = random_vec(size_t(Cc) * 4, 44, -0.5f, 0.5f);
    cuda_ops::delta_net(proj, T, d, conv_w, random_vec(32, 45), random_vec(32, 46), random_vec(128, 47, 0.5f, 1.5f),
                        1e-6f, {T});
    // the recurrent state read and written twice per token, the inputs read and outputs written once
    const double state = 32.0 * 128 * 128 * 4;
    report("delta_net", fmt::format("{} tokens 16/32 heads of 128", T), 4.0 * state * T + double(T) * (A + VD) * 4,
           6.0 * 32 * 128 * 128 * T);
  }
  {
    const long long n = 256LL << 20;
    cuda_ops::fill_uniform(n, 7, 0.02f, false);
    report("random_init", "256M bf16", double(n) * 2, 0);
  }
#endif
}

PT_MAIN()
