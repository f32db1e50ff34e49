// Whole-model parity of the CUDA backend on every golden model in tests/data/models: the same
// routing as the CPU backend, logits within a BF16 tolerance of the CPU backend and of the
// transformers goldens, identical greedy text, graph-captured decode equal to uncaptured, and
// the memory check's error. Without a CUDA device every case skips with the reason.
//
// The CUDA backend stores the big matrices in BF16, so an F32/F16 checkpoint runs on rounded
// weights there. The CPU comparison therefore runs the CPU backend on a copy of the model whose
// big matrices are rounded the same way (norms, biases and the router stay as they are, as on the
// device): what remains is summation order and, in prefill, BF16-rounded matmul inputs.
#include <QtTest>

#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "moescope/backend.h"
#ifdef MOESCOPE_HAVE_CUDA
#include "moescope/cuda_ops.h"
#endif
#include "moescope/error.h"
#include "moescope/npy.h"
#include "moescope/session.h"

#include "cuda_test_util.h"

using namespace moescope;


namespace {

const char* kModels[] = {"mixtral", "qwen2-moe", "qwen3-moe", "olmoe", "olmoe-f16", "deepseek-v2-lite",
                         "deepseek-v2-group", "deepseek-v3", "deepseek-v3-bf16"};

// Logit tolerances (max abs error), scaled by max(1, max |reference logit|):
//   vs the CPU backend on the same BF16 weights: 1e-2 (prefill rounds matmul inputs to BF16);
//   vs transformers' fp32 forward: 5e-2 (the weights themselves were rounded to BF16 unless the
//   checkpoint is BF16).
constexpr float kTolCpu = 1e-2f, kTolGolden = 5e-2f;
// Routing: identical wherever the CPU's k-th and (k+1)-th selection scores differ by more than this.
constexpr float kRouteMargin = 2e-3f;

[[maybe_unused]] std::string dir_of(const char* name) { return std::string(MOESCOPE_TEST_DATA) + "/models/" + name; }

[[maybe_unused]] nlohmann::json golden(const char* name) {
  std::ifstream in(dir_of(name) + "/golden.json");
  return nlohmann::json::parse(in);
}

// A copy of `m` whose big matrices are rounded to BF16, as the CUDA backend uploads them.
[[maybe_unused]] std::shared_ptr<const Model> bf16_twin(const std::shared_ptr<const Model>& m,
                                                        std::vector<std::shared_ptr<const Model>>& keep) {
  auto twin = std::make_shared<Model>();
  twin->spec = m->spec;
  twin->weights = m->weights;
  twin->dir = m->dir;
  auto round = [&](TensorView& v) {
    if (!v.data) return;
    const size_t n = size_t(v.numel());
    std::vector<float> f(n);
    to_f32(v.dtype, v.data, f.data(), int64_t(n));
    auto buf = std::make_unique<uint16_t[]>(n);
    for (size_t i = 0; i < n; ++i) buf[i] = f32_to_bf16(f[i]);
    v.dtype = DType::BF16;
    v.data = buf.get();
    twin->storage.push_back(std::move(buf));
  };
  ModelWeights& w = twin->weights;
  const bool tied = w.lm_head.data == w.embed.data;
  round(w.embed);
  if (tied) w.lm_head = w.embed;
  else round(w.lm_head);
  for (auto& L : w.layers) {
    for (Linear* l : {&L.q, &L.k, &L.v, &L.o, &L.q_a, &L.q_b, &L.kv_a, &L.kv_b}) round(l->w);
    for (MlpWeights* mw : {&L.dense, &L.shared}) round(mw->gate), round(mw->up), round(mw->down);
    for (auto& e : L.experts) round(e.gate), round(e.up), round(e.down);
  }
  keep.push_back(m);
  return twin;
}

float max_abs(const std::vector<float>& v) {
  float m = 0.0f;
  for (float x : v) m = std::max(m, std::fabs(x));
  return m;
}

float max_abs_diff(const float* a, const float* b, size_t n) {
  float m = 0.0f;
  for (size_t i = 0; i < n; ++i) m = std::max(m, std::fabs(a[i] - b[i]));
  return m;
}

}  // namespace

class CudaModelTest : public QObject {
  Q_OBJECT

private slots:
  void parity_data() { rows(); }
  void parity() {
    REQUIRE_CUDA();
    QFETCH(QString, name);
    const auto n = name.toStdString();
    auto g = golden(n.c_str());
    auto model = load_model(dir_of(n.c_str()));
    std::vector<std::shared_ptr<const Model>> keep;
    auto twin = bf16_twin(model, keep);
    auto ids = g["input_ids"].get<std::vector<int32_t>>();

    auto cuda = make_backend(model, {"cuda", 256, 0});
    auto cpu = make_backend(twin, {"cpu", 256, 2});
    QVERIFY(cuda->name().rfind("CUDA: ", 0) == 0);
    ForwardOptions opt;
    opt.all_logits = true;
    opt.router_probs = true;
    ForwardResult rc, rr;
    cuda->forward(ids, opt, rc);
    cpu->forward(ids, opt, rr);

    const float scale = std::max(1.0f, max_abs(rr.logits));
    const float err_cpu = max_abs_diff(rc.logits.data(), rr.logits.data(), rr.logits.size());
    NpyArray ref = read_npy(dir_of(n.c_str()) + "/logits.npy");
    QCOMPARE(ref.data.size(), rc.logits.size());
    const float err_golden = max_abs_diff(rc.logits.data(), ref.data.data(), ref.data.size());
    qInfo("%s: max |logit - CPU(BF16 weights)| = %.3g (tolerance %.3g), max |logit - transformers| = %.3g "
          "(tolerance %.3g)",
          n.c_str(), err_cpu, kTolCpu * scale, err_golden, kTolGolden * scale);
    QVERIFY(err_cpu <= kTolCpu * scale);
    QVERIFY(err_golden <= kTolGolden * scale);

    // Routing: identical experts in identical order, except at CPU near-ties (reported).
    QCOMPARE(rc.top_k, rr.top_k);
    QCOMPARE(rc.n_moe_layers, rr.n_moe_layers);
    const int K = rr.top_k, M = rr.n_moe_layers, E = model->spec.moe.router.n_experts;
    int near_ties = 0;
    float werr = 0.0f;
    for (size_t t = 0; t < ids.size(); ++t)
      for (int m = 0; m < M; ++m) {
        const size_t row = t * M + size_t(m);
        const int32_t* a = rc.expert_ids.data() + row * K;
        const int32_t* b = rr.expert_ids.data() + row * K;
        if (std::equal(a, a + K, b)) {
          werr = std::max(werr, max_abs_diff(rc.expert_weights.data() + row * K, rr.expert_weights.data() + row * K,
                                             size_t(K)));
          continue;
        }
        // Selection margin on the CPU side: scores + correction bias (group limits aside).
        std::vector<float> p(rr.probs.begin() + long(row * E), rr.probs.begin() + long((row + 1) * E));
        const TensorView& bias = model->weights.layers[size_t(model->spec.moe_layer_indices()[size_t(m)])].router_bias;
        if (bias.data && model->spec.moe.router.correction_bias) {
          std::vector<float> bv(static_cast<size_t>(E));
          to_f32(bias.dtype, bias.data, bv.data(), E);
          for (int e = 0; e < E; ++e) p[size_t(e)] += bv[size_t(e)];
        }
        std::sort(p.begin(), p.end(), std::greater<>());
        const float margin = p[size_t(K - 1)] - (K < E ? p[size_t(K)] : -1.0f);
        QVERIFY2(margin < kRouteMargin, qPrintable(QString("token %1 moe layer %2: routing differs from the CPU "
                                                           "backend at margin %3")
                                                       .arg(t).arg(m).arg(margin)));
        ++near_ties;
      }
    qInfo("%s: routing identical to the CPU backend (%d near-ties), max weight error %.3g", n.c_str(), near_ties, werr);
    QVERIFY(werr <= 1e-3f);
  }

  // Prefill half, then one token at a time: graph-captured steps equal uncaptured ones, and
  // both follow the full forward's rows.
  void decode_graph_data() { rows(); }
  void decode_graph() {
    REQUIRE_CUDA();
    QFETCH(QString, name);
    const auto n = name.toStdString();
    auto g = golden(n.c_str());
    auto model = load_model(dir_of(n.c_str()));
    auto ids = g["input_ids"].get<std::vector<int32_t>>();
    const int V = model->spec.vocab_size, half = int(ids.size()) / 2;
    auto run = [&](bool graphs) {
      qputenv("MOESCOPE_CUDA_GRAPHS", graphs ? "1" : "0");
      auto b = make_backend(model, {"cuda", 256, 0});
      ForwardResult r;
      ForwardOptions opt;
      std::vector<float> rows_out;
      b->forward(std::span<const int32_t>(ids.data(), size_t(half)), opt, r);
      for (size_t t = size_t(half); t < ids.size(); ++t) {
        b->forward(std::span<const int32_t>(ids.data() + t, 1), opt, r);
        rows_out.insert(rows_out.end(), r.logits.begin(), r.logits.end());
      }
      return rows_out;
    };
    const auto with = run(true), without = run(false);
    qunsetenv("MOESCOPE_CUDA_GRAPHS");
    const float gerr = max_abs_diff(with.data(), without.data(), with.size());
    NpyArray ref = read_npy(dir_of(n.c_str()) + "/logits.npy");
    const float scale = std::max(1.0f, max_abs(ref.data));
    const float derr = max_abs_diff(with.data(), ref.data.data() + size_t(half) * V, with.size());
    qInfo("%s: graph vs no graph %.3g, decode vs transformers %.3g (tolerance %.3g)", n.c_str(), gerr, derr,
          kTolGolden * scale);
    QVERIFY(gerr <= 1e-6f);
    QVERIFY(derr <= kTolGolden * scale);
  }

  // 32 greedy tokens: the CUDA session writes the same ids as the CPU session on the same weights.
  void greedy_data() { rows(); }
  void greedy() {
    REQUIRE_CUDA();
    QFETCH(QString, name);
    const auto n = name.toStdString();
    auto g = golden(n.c_str());
    auto model = load_model(dir_of(n.c_str()));
    std::vector<std::shared_ptr<const Model>> keep;
    auto twin = bf16_twin(model, keep);
    auto prompt = g["greedy"]["prompt"].get<std::vector<int32_t>>();
    GenerateParams p;
    p.max_tokens = 32;
    p.stop_at_eos = false;
    Session on_gpu(model, make_backend(model, {"cuda", 256, 0}));
    Session on_cpu(twin, make_backend(twin, {"cpu", 256, 2}));
    const auto a = on_gpu.generate(prompt, p).generated, b = on_cpu.generate(prompt, p).generated;
    QCOMPARE(a, b);
    // Prefix reuse (truncate) then the same continuation again.
    const auto again = on_gpu.generate(prompt, p);
    QCOMPARE(again.generated, a);
    QVERIFY(again.reused_tokens > 0);
    const KvStats kv = on_gpu.backend().kv_stats();
    QCOMPARE(kv.element_type, std::string("F32"));
    QCOMPARE(kv.bytes_per_token_layer, int64_t(model->spec.kv_values_per_token()) * 4);
    QVERIFY(on_gpu.backend().device_memory_used() > 0);
  }

  // A model far larger than any GPU: one clear error with both numbers.
  void memory_check() {
    REQUIRE_CUDA();
    ModelSpec spec = load_model_spec(std::string(MOESCOPE_SOURCE_DIR) + "/resources/presets/deepseek-r1.json");
    auto model = make_synthetic_model(spec, 0, 1, /*host_storage=*/false);
    std::string msg;
    try {
      BackendOptions o{"cuda", spec.max_position, 0};  // the whole context on top
      auto b = make_backend(model, o);
      QFAIL("a 671B-parameter model was accepted");
    } catch (const Error& e) {
      msg = e.what();
    }
    qInfo("memory check: %s", msg.c_str());
    QVERIFY(msg.find("not enough GPU memory") != std::string::npos);
    QVERIFY(msg.find("GiB are free") != std::string::npos || msg.find(" are free") != std::string::npos);
    QVERIFY(msg.find("--backend cpu") != std::string::npos);
  }

  // "Out of memory during a long generation" cannot happen by construction: the KV cache for the
  // whole context and every scratch buffer are reserved at load. A generation that runs the cache
  // full ends with ContextFull, and neither the backend's device memory nor the GPU's free memory
  // changes on the way.
  void long_generation_allocates_nothing() {
    REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
    ModelSpec spec = load_model_spec(std::string(MOESCOPE_SOURCE_DIR) + "/resources/presets/olmoe-1b-7b.json");
    auto model = make_synthetic_model(spec, 2, 3, /*host_storage=*/false);
    Session s(model, make_backend(model, {"cuda", 2048, 0}));
    const int64_t used0 = s.backend().device_memory_used();
    size_t free0 = 0, free1 = 0, total = 0;
    cuda_ops::memory_info(&free0, &total);
    GenerateParams p;
    p.max_tokens = 4096;  // more than the context holds
    p.stop_at_eos = false;
    p.sampling.temperature = 1.0f;
    p.sampling.top_k = 50;
    std::vector<int32_t> prompt(1000, 17);
    const GenerateResult r = s.generate(prompt, p);
    QCOMPARE(int(r.reason), int(StopReason::ContextFull));
    QCOMPARE(r.prompt_tokens + int(r.generated.size()), 2048 + 1);  // the last token sampled has no room
    QCOMPARE(s.backend().device_memory_used(), used0);
    cuda_ops::memory_info(&free1, &total);
    qInfo("device memory: %lld bytes for the backend; free before %zu, after %zu", (long long)used0, free0, free1);
    QCOMPARE(free1, free0);
#endif
  }

  // Synthetic weights generated on the device (bench --shape): a small cut of a real shape runs.
  void synthetic_on_device() {
    REQUIRE_CUDA();
    ModelSpec spec = load_model_spec(std::string(MOESCOPE_SOURCE_DIR) + "/resources/presets/olmoe-1b-7b.json");
    auto model = make_synthetic_model(spec, 2, 7, /*host_storage=*/false);
    auto b = make_backend(model, {"cuda", 64, 0});
    std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6, 7, 8};
    ForwardResult r;
    b->forward(ids, {}, r);
    for (float x : r.logits) QVERIFY(std::isfinite(x));
    QCOMPARE(int(r.expert_ids.size()), 8 * r.n_moe_layers * r.top_k);
  }

private:
  void rows() {
    QTest::addColumn<QString>("name");
    for (const char* m : kModels) QTest::newRow(m) << QString(m);
  }
};

QTEST_GUILESS_MAIN(CudaModelTest)
#include "test_cuda_model.moc"
