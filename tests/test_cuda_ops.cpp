// Every CUDA kernel beside its CPU reference (STYLE.md item 5): each op runs on the device and on
// moescope::cpu::* / route_token with the same random inputs, over several shapes including
// non-multiples of the tile sizes, compared with |got - ref| <= tol + |ref|·eps (eps per dtype
// and path). Routing is compared as sets, and in order where the selection scores differ by
// more than the tolerance. Without a CUDA device every case skips with the reason.
#include <QtTest>

#include <algorithm>
#include <cmath>
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
    qWarning("%s: %zu values, reference %zu", what, got.size(), ref.size());
    return false;
  }
  float worst = 0.0f, worst_err = 0.0f;
  size_t at = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    const float err = std::fabs(got[i] - ref[i]);
    const float excess = err - (tol + std::fabs(ref[i]) * eps);
    if (i == 0 || excess > worst) worst = excess, worst_err = err, at = i;
  }
  qInfo("%s: worst |err| %.3g at %zu (ref %.5g), bound tol %.1g + |ref|·%.1g", what, worst_err, at,
        ref.empty() ? 0.0 : ref[at], tol, eps);
  return worst <= 0.0f;
}

[[maybe_unused]] std::vector<uint16_t> to_bf16(const std::vector<float>& v) {
  std::vector<uint16_t> b(v.size());
  std::transform(v.begin(), v.end(), b.begin(), f32_to_bf16);
  return b;
}

}  // namespace

class CudaOpsTest : public QObject {
  Q_OBJECT

private slots:
  void rmsnorm_data() {
    QTest::addColumn<int>("rows");
    QTest::addColumn<int>("d");
    QTest::addColumn<float>("eps");
    QTest::newRow("1x48") << 1 << 48 << 1e-6f;
    QTest::newRow("3x100") << 3 << 100 << 1e-5f;
    QTest::newRow("7x2048") << 7 << 2048 << 1e-6f;
    QTest::newRow("2x7168") << 2 << 7168 << 1e-6f;
    QTest::newRow("5x1001") << 5 << 1001 << 1e-5f;
  }
  void rmsnorm() {
    REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
    QFETCH(int, rows);
    QFETCH(int, d);
    QFETCH(float, eps);
    auto x = random_vec(size_t(rows) * d, 1, -3.0f, 3.0f), w = random_vec(size_t(d), 2, 0.5f, 1.5f);
    std::vector<float> ref(x.size());
    cpu::rmsnorm(x.data(), TensorView{DType::F32, {d}, w.data()}, eps, ref.data(), rows, d);
    QVERIFY(close("rmsnorm", cuda_ops::rmsnorm(x, w, eps, rows, d), ref, 1e-6f, 1e-5f));
#endif
  }

  // GEMV (n <= 4, fp32 activations: only summation order differs) and cuBLAS (n > 4,
  // activations rounded to BF16: eps 1e-2). Weights are BF16-rounded on both sides.
  void matmul_data() {
    QTest::addColumn<int>("n");
    QTest::addColumn<int>("out");
    QTest::addColumn<int>("in");
    QTest::addColumn<int>("dtype");
    QTest::addColumn<bool>("bias");
    QTest::newRow("gemv 1x64x48 f32") << 1 << 64 << 48 << int(DType::F32) << false;
    QTest::newRow("gemv 1x257x2048 bf16") << 1 << 257 << 2048 << int(DType::BF16) << false;
    QTest::newRow("gemv 3x37x100 f16 bias") << 3 << 37 << 100 << int(DType::F16) << true;
    QTest::newRow("gemv 4x129x1000 bf16") << 4 << 129 << 1000 << int(DType::BF16) << true;
    QTest::newRow("cublas 5x64x48 f32") << 5 << 64 << 48 << int(DType::F32) << false;
    QTest::newRow("cublas 17x300x512 bf16 bias") << 17 << 300 << 512 << int(DType::BF16) << true;
    QTest::newRow("cublas 129x1001x2048 bf16") << 129 << 1001 << 2048 << int(DType::BF16) << false;
  }
  void matmul() {
    REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
    QFETCH(int, n);
    QFETCH(int, out);
    QFETCH(int, in);
    QFETCH(int, dtype);
    QFETCH(bool, bias);
    auto x = random_vec(size_t(n) * in, 3);
    auto wf = random_vec(size_t(out) * in, 4, -0.5f / std::sqrt(float(in)), 0.5f / std::sqrt(float(in)));
    auto b = random_vec(size_t(out), 5, -0.2f, 0.2f);
    // The checkpoint's dtype as given to the device; the reference reads its BF16 rounding.
    std::vector<uint16_t> w16(wf.size());
    TensorView w{DType(dtype), {out, in}, wf.data()};
    if (DType(dtype) == DType::BF16) w16 = to_bf16(wf), w.data = w16.data();
    if (DType(dtype) == DType::F16) {
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
    QVERIFY(close("matmul", cuda_ops::matmul(x, n, w, bias ? &b : nullptr), ref, gemv ? 1e-5f : 5e-3f,
                  gemv ? 1e-5f : 1e-2f));
#endif
  }

  void rope_data() {
    QTest::addColumn<int>("tokens");
    QTest::addColumn<int>("heads");
    QTest::addColumn<int>("dim");
    QTest::addColumn<bool>("interleaved");
    QTest::addColumn<bool>("yarn");
    QTest::addColumn<int>("pos0");
    QTest::newRow("halves 1x4x16 @0") << 1 << 4 << 16 << false << false << 0;
    QTest::newRow("halves 5x8x128 @4000") << 5 << 8 << 128 << false << false << 4000;
    QTest::newRow("pairs 3x16x64 @17 yarn") << 3 << 16 << 64 << true << true << 17;
    QTest::newRow("halves 2x2x12 @100") << 2 << 2 << 12 << false << false << 100;
    QTest::newRow("pairs 7x1x8 @3 yarn") << 7 << 1 << 8 << true << true << 3;
  }
  void rope() {
    REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
    QFETCH(int, tokens);
    QFETCH(int, heads);
    QFETCH(int, dim);
    QFETCH(bool, interleaved);
    QFETCH(bool, yarn);
    QFETCH(int, pos0);
    RopeSpec r;
    r.dim = dim;
    r.theta = 10000.0f;
    if (yarn) r.yarn = true, r.factor = 4.0f, r.original_max_position = 4096, r.attention_factor = 1.1386f;
    const auto inv = r.inverse_frequencies();
    auto x = random_vec(size_t(tokens) * heads * dim, 6);
    auto ref = x;
    std::vector<float> c(size_t(tokens) * dim / 2), s(c.size());
    std::vector<int> pos(static_cast<size_t>(tokens));
    for (int t = 0; t < tokens; ++t) pos[size_t(t)] = pos0 + t;
    cpu::rope_tables(pos.data(), tokens, inv.data(), dim / 2, r.attention_factor, c.data(), s.data());
    for (int t = 0; t < tokens; ++t)
      for (int h = 0; h < heads; ++h)
        cpu::rope(ref.data() + (size_t(t) * heads + h) * dim, c.data() + size_t(t) * dim / 2,
                  s.data() + size_t(t) * dim / 2, dim, interleaved);
    QVERIFY(close("rope", cuda_ops::rope(x, tokens, heads, dim, interleaved, inv, r.attention_factor, pos0), ref,
                  1e-5f, 1e-5f));
#endif
  }

  void swiglu_data() {
    QTest::addColumn<int>("n");
    QTest::addColumn<int>("width");
    QTest::newRow("1x16") << 1 << 16;
    QTest::newRow("5x1408") << 5 << 1408;
    QTest::newRow("33x100") << 33 << 100;
  }
  void swiglu() {
    REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
    QFETCH(int, n);
    QFETCH(int, width);
    auto gu = random_vec(size_t(n) * 2 * width, 7, -6.0f, 6.0f);
    std::vector<float> ref(size_t(n) * width), up(ref.size());
    for (int t = 0; t < n; ++t) {
      std::copy_n(gu.data() + size_t(t) * 2 * width, width, ref.data() + size_t(t) * width);
      std::copy_n(gu.data() + size_t(t) * 2 * width + width, width, up.data() + size_t(t) * width);
    }
    cpu::silu_mul(ref.data(), up.data(), int(ref.size()));
    QVERIFY(close("swiglu", cuda_ops::swiglu(gu, n, width), ref, 1e-6f, 1e-5f));
#endif
  }

  void embed() {
    REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
    const int V = 1000, H = 72;
    auto table = to_bf16(random_vec(size_t(V) * H, 8));
    TensorView tv{DType::BF16, {V, H}, table.data()};
    const std::vector<int32_t> ids = {0, 999, 17, 17, 512};
    std::vector<float> ref(ids.size() * H);
    for (size_t i = 0; i < ids.size(); ++i) cpu::embed(tv, ids[i], ref.data() + i * H);
    QVERIFY(close("embed", cuda_ops::embed(tv, ids), ref, 0.0f, 0.0f));
#endif
  }

  void route_data() {
    QTest::addColumn<QString>("kind");
    QTest::addColumn<QString>("control");
    for (const char* kind : {"mixtral", "qwen-norenorm", "deepseek-v2-group", "deepseek-v3", "wide-k"})
      for (const char* ctl : {"none", "disabled", "forced", "top_k", "ignore_bias"})
        QTest::newRow(qPrintable(QString("%1 %2").arg(kind, ctl))) << QString(kind) << QString(ctl);
  }
  void route() {
    REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
    QFETCH(QString, kind);
    QFETCH(QString, control);
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
    QVERIFY(close("router probs", got.probs, probs, 1e-7f, 1e-5f));
    QVERIFY(close("router weights", got.weights, w, 1e-6f, 1e-5f));
    const bool use_bias = with_bias && !c.ignore_bias;
    for (int t = 0; t < T; ++t) {
      std::vector<int32_t> a(got.ids.begin() + t * K, got.ids.begin() + (t + 1) * K), b(ids.begin() + t * K,
                                                                                      ids.begin() + (t + 1) * K);
      for (int k = 0; k < K; ++k) {  // order: equal, or tied within tolerance
        if (a[size_t(k)] == b[size_t(k)]) continue;
        auto sel = [&](int e) { return probs[size_t(t) * E + e] + (use_bias ? bias[size_t(e)] : 0.0f); };
        QVERIFY2(std::fabs(sel(a[size_t(k)]) - sel(b[size_t(k)])) < 1e-5f,
                 qPrintable(QString("token %1 slot %2: expert %3, CPU %4").arg(t).arg(k).arg(a[size_t(k)]).arg(b[size_t(k)])));
      }
      std::sort(a.begin(), a.end()), std::sort(b.begin(), b.end());
      QVERIFY2(a == b, qPrintable(QString("token %1: different expert sets").arg(t)));
    }
#endif
  }

  // Causal GQA attention over a paged cache (blocks stored out of order): decode (one token,
  // many spans), prefill (many tokens), sliding window, head dims that are not multiples of 32.
  void attention_data() {
    QTest::addColumn<int>("tokens");
    QTest::addColumn<int>("pos0");
    QTest::addColumn<int>("heads");
    QTest::addColumn<int>("kv_heads");
    QTest::addColumn<int>("head_dim");
    QTest::addColumn<int>("window");
    QTest::addColumn<int>("span");
    QTest::newRow("decode 8/2x64 len 300") << 1 << 299 << 8 << 2 << 64 << 0 << 64;
    QTest::newRow("decode 4/4x128 len 1") << 1 << 0 << 4 << 4 << 128 << 0 << 64;
    QTest::newRow("decode 32/4x128 len 1000 window 257") << 1 << 999 << 32 << 4 << 128 << 257 << 64;
    QTest::newRow("prefill 20 @7 4/2x12") << 20 << 7 << 4 << 2 << 12 << 0 << 256;
    QTest::newRow("prefill 70 @0 16/16x64 window 33") << 70 << 0 << 16 << 16 << 64 << 33 << 32;
    QTest::newRow("prefill 300 @5 8/1x128") << 300 << 5 << 8 << 1 << 128 << 0 << 256;
  }
  void attention() {
    REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
    QFETCH(int, tokens);
    QFETCH(int, pos0);
    QFETCH(int, heads);
    QFETCH(int, kv_heads);
    QFETCH(int, head_dim);
    QFETCH(int, window);
    QFETCH(int, span);
    const int len = pos0 + tokens, hd = head_dim, kd = kv_heads * hd, group = heads / kv_heads;
    const float scale = 1.0f / std::sqrt(float(hd));
    auto q = random_vec(size_t(tokens) * heads * hd, 11), k = random_vec(size_t(len) * kd, 12),
         v = random_vec(size_t(len) * kd, 13);
    std::vector<float> ref(size_t(tokens) * heads * hd, 0.0f), scores(static_cast<size_t>(len));
    for (int t = 0; t < tokens; ++t)
      for (int h = 0; h < heads; ++h) {
        const int p = pos0 + t, lo = window > 0 ? std::max(0, p - window + 1) : 0, g = h / group;
        for (int j = lo; j <= p; ++j)
          scores[size_t(j - lo)] =
              cpu::dot(q.data() + (size_t(t) * heads + h) * hd, k.data() + size_t(j) * kd + g * hd, DType::F32, hd) * scale;
        cpu::softmax(scores.data(), p - lo + 1);
        for (int j = lo; j <= p; ++j)
          cpu::axpy(scores[size_t(j - lo)], v.data() + size_t(j) * kd + g * hd, DType::F32,
                    ref.data() + (size_t(t) * heads + h) * hd, hd);
      }
    QVERIFY(close("attention",
                  cuda_ops::attention(q, k, v, tokens, pos0, heads, kv_heads, head_dim, scale, window, span), ref,
                  1e-5f, 1e-4f));
#endif
  }

  void argmax() {
    REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
    for (int V : {7, 1000, 151936}) {
      auto logits = random_vec(size_t(3) * V, 14);
      logits[size_t(V) + V / 2] = 5.0f, logits[size_t(V) + V / 3] = 5.0f;  // a tie: the lower index wins
      auto got = cuda_ops::argmax(logits, 3, V);
      for (int r = 0; r < 3; ++r) QCOMPARE(got[size_t(r)], moescope::argmax(logits.data() + size_t(r) * V, V));
    }
#endif
  }
};

QTEST_GUILESS_MAIN(CudaOpsTest)
#include "test_cuda_ops.moc"
