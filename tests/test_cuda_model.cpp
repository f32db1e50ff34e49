// Whole-model parity of the CUDA backend on every golden model in tests/data/models: the same
// routing as the CPU backend, logits within a BF16 tolerance of the CPU backend and of the
// transformers goldens, identical greedy text, graph-captured decode equal to uncaptured, and
// the memory check's error. Without a CUDA device every case skips with the reason.
//
// The CUDA backend stores the big matrices in BF16, so an F32/F16 checkpoint runs on rounded
// weights there. The CPU comparison therefore runs the CPU backend on a copy of the model whose
// big matrices are rounded the same way (norms, biases and the router stay as they are, as on the
// device): what remains is summation order and, in prefill, BF16-rounded matmul inputs. Where
// those move a decision across a near-tie (routing: two experts' scores within kRouteMargin;
// greedy text: two logits within the CPU tolerance), the test accepts it and prints the margin.
// Plain C++ (plain_test.h), no Qt: device machines have none.
#include <cmath>
#include <cstdlib>
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

const char* kModels[] = {"mixtral", "qwen2-moe", "qwen3-moe", "olmoe", "olmoe-f16", "olmoe-clip", "glm4-moe", "deepseek-v2-lite",
                         "deepseek-v2-group", "deepseek-v3", "deepseek-v3-bf16", "glm4-moe-lite",
                         // sinks, alternating sliding windows, biases, clamped SwiGLU; MXFP4 experts
                         "gpt-oss", "gpt-oss-mxfp4",
                         // Gated DeltaNet layers, gated attention, (1 + w) norms, gated shared expert
                         "qwen3.5-moe", "qwen3.5-moe-vl"};

// Logit tolerances (max abs error), scaled by max(1, max |reference logit|):
//   vs the CPU backend on the same BF16 weights: 1e-2 (prefill rounds matmul inputs to BF16);
//   vs transformers' fp32 forward: 5e-2 (the weights themselves were rounded to BF16 unless the
//   checkpoint is BF16).
constexpr float kTolCpu = 1e-2f, kTolGolden = 5e-2f;
// Routing: identical wherever the experts' selection scores (or, with group-limited routing, the
// groups' scores) differ by more than this (see compare_route in cuda_test_util.h).
constexpr float kRouteMargin = 2e-3f;

[[maybe_unused]] std::string dir_of(const char* name) { return std::string(MOESCOPE_TEST_DATA) + "/models/" + name; }

[[maybe_unused]] nlohmann::json golden(const char* name) {
  std::ifstream in(dir_of(name) + "/golden.json");
  return nlohmann::json::parse(in);
}

// A copy of `m` whose big matrices are rounded to BF16, as the CUDA backend uploads them
// (cuda_weights.h: not the embedding, the router or other small fp32 tensors).
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
  // The embedding stays as it is (the device keeps a non-BF16 table in fp32); the LM head, tied
  // or not, is a BF16 matrix there (round() gives a tied head storage of its own).
  round(w.lm_head);
  // Matrices of a block type stay in their blocks on the device (decode reads their exact values,
  // prefill widens them to BF16; not MLA's kv_b or the LM head). Q8_0 ones stay Q8_0 here too (the
  // CPU's exact fp32 path on the same values); the others are rounded to BF16 as before (exact
  // for MXFP4; the CPU's block kernels would round the activations to int8 instead).
  auto round_matrix = [&](TensorView& v) {
    if (v.dtype != DType::Q8_0) round(v);
  };
  for (auto& L : w.layers) {
    // (the DeltaNet gates' lin_b / lin_a stay fp32 on the device, as the router)
    for (Linear* l : {&L.q, &L.k, &L.v, &L.o, &L.q_a, &L.q_b, &L.kv_a, &L.lin_qkv, &L.lin_z, &L.lin_out})
      round_matrix(l->w);
    round(L.kv_b.w);
    for (MlpWeights* mw : {&L.dense, &L.shared}) round_matrix(mw->gate), round_matrix(mw->up), round_matrix(mw->down);
    for (auto& e : L.experts) round_matrix(e.gate), round_matrix(e.up), round_matrix(e.down);
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

#ifdef MOESCOPE_HAVE_CUDA
void set_graphs(bool on) { setenv("MOESCOPE_CUDA_GRAPHS", on ? "1" : "0", 1); }
#endif

// The model as the CUDA tests load it: as stored, or with --weights q8_0 (then every matrix with
// rows of whole blocks is Q8_0, and stays in its blocks on the device but for the LM head).
std::shared_ptr<const Model> load_for_test(const std::string& n, WeightsMode mode) {
  LoadOptions lo;
  lo.weights = mode;
  auto model = load_model(dir_of(n.c_str()), lo);
  if (mode == WeightsMode::Q8_0) {
    bool blocks = false;
    for (const LayerWeights& L : model->weights.layers)
      for (const MlpWeights& e : L.experts) blocks = blocks || e.gate.dtype == DType::Q8_0;
    if (!blocks) PT_SKIP(n + ": no expert matrix with rows of whole Q8_0 blocks");
  }
  return model;
}

// vs_golden: also against transformers' logits (the checkpoint's weights; not after Q8_0).
void check_parity(const std::string& n, WeightsMode mode = WeightsMode::AsStored) {
  auto g = golden(n.c_str());
  auto model = load_for_test(n, mode);
  const bool vs_golden = mode == WeightsMode::AsStored;
  std::vector<std::shared_ptr<const Model>> keep;
  auto twin = bf16_twin(model, keep);
  auto ids = g["input_ids"].get<std::vector<int32_t>>();

  auto cuda = make_backend(model, {"cuda", 256, 0});
  auto cpu = make_backend(twin, {"cpu", 256, 2});
  PT_CHECK(cuda->name().rfind("CUDA: ", 0) == 0);
  ForwardOptions opt;
  opt.all_logits = true;
  opt.router_probs = true;
  ForwardResult rc, rr;
  cuda->forward(ids, opt, rc);
  cpu->forward(ids, opt, rr);

  const float scale = std::max(1.0f, max_abs(rr.logits));
  const float err_cpu = max_abs_diff(rc.logits.data(), rr.logits.data(), rr.logits.size());
  NpyArray ref = read_npy(dir_of(n.c_str()) + "/logits.npy");
  PT_COMPARE(ref.data.size(), rc.logits.size());
  const float err_golden = max_abs_diff(rc.logits.data(), ref.data.data(), ref.data.size());
  plaintest::info("{}: max |logit - CPU(BF16 weights)| = {:.3g} (tolerance {:.3g}), max |logit - transformers| = {:.3g} "
                  "(tolerance {:.3g})",
                  n, err_cpu, kTolCpu * scale, err_golden, kTolGolden * scale);
  PT_CHECK(err_cpu <= kTolCpu * scale);
  if (vs_golden) PT_CHECK(err_golden <= kTolGolden * scale);

  // Routing: identical experts in identical order, except at CPU near-ties (printed).
  PT_COMPARE(rc.top_k, rr.top_k);
  PT_COMPARE(rc.n_moe_layers, rr.n_moe_layers);
  const int K = rr.top_k, M = rr.n_moe_layers;
  const RouterSpec& router = model->spec.moe.router;
  const int E = router.n_experts;
  int near_ties = 0;
  float werr = 0.0f, widest_tie = 0.0f;
  for (size_t t = 0; t < ids.size(); ++t)
    for (int m = 0; m < M; ++m) {
      const size_t row = t * M + size_t(m);
      const int32_t* a = rc.expert_ids.data() + row * K;
      const int32_t* b = rr.expert_ids.data() + row * K;
      // The CPU's selection scores: router scores + correction bias.
      std::vector<float> sel(rr.probs.begin() + long(row * E), rr.probs.begin() + long((row + 1) * E));
      const TensorView& bias = model->weights.layers[size_t(model->spec.moe_layer_indices()[size_t(m)])].router_bias;
      if (bias.data && router.correction_bias) {
        std::vector<float> bv(static_cast<size_t>(E));
        to_f32(bias.dtype, bias.data, bv.data(), E);
        for (int e = 0; e < E; ++e) sel[size_t(e)] += bv[size_t(e)];
      }
      const RouteCheck c = compare_route(a, b, K, sel, router, kRouteMargin);
      if (c.identical) {
        werr = std::max(werr, max_abs_diff(rc.expert_weights.data() + row * K, rr.expert_weights.data() + row * K,
                                           size_t(K)));
        continue;
      }
      plaintest::info("{}: token {} moe layer {}: {}{}", n, t, m, c.detail, c.ok ? "a near-tie" : "NOT a near-tie");
      PT_CHECK2(c.ok, fmt::format("token {} moe layer {}: routing differs from the CPU backend beyond a near-tie "
                                  "(gap {:.3g}, margin {:.3g})",
                                  t, m, c.gap, kRouteMargin));
      widest_tie = std::max(widest_tie, std::min(c.gap, c.group_margin > 0 ? c.group_margin : c.gap));
      ++near_ties;
    }
  plaintest::info("{}: routing identical to the CPU backend ({} near-ties, widest {:.3g}), max weight error {:.3g}", n,
                  near_ties, widest_tie, werr);
  PT_CHECK(werr <= 1e-3f);

  // The gated shared expert's sigmoid gates (Qwen2-MoE, Qwen3.5) reach the trace on CUDA too.
  PT_COMPARE(rc.shared_gates.size(), rr.shared_gates.size());
  if (!rr.shared_gates.empty() && rc.shared_gates.size() == rr.shared_gates.size()) {
    const float gerr = max_abs_diff(rc.shared_gates.data(), rr.shared_gates.data(), rr.shared_gates.size());
    plaintest::info("{}: shared-expert gates max error {:.3g} (tolerance {:.3g})", n, gerr, kTolCpu);
    PT_CHECK(gerr <= kTolCpu);
  }
}

// Prefill half, then one token at a time: graph-captured steps equal uncaptured ones, and
// both follow the full forward's rows.
void check_decode_graph(const std::string& n) {
#ifdef MOESCOPE_HAVE_CUDA
  auto g = golden(n.c_str());
  auto model = load_model(dir_of(n.c_str()));
  auto ids = g["input_ids"].get<std::vector<int32_t>>();
  const int V = model->spec.vocab_size, half = int(ids.size()) / 2;
  auto run = [&](bool graphs) {
    set_graphs(graphs);
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
  unsetenv("MOESCOPE_CUDA_GRAPHS");
  const float gerr = max_abs_diff(with.data(), without.data(), with.size());
  NpyArray ref = read_npy(dir_of(n.c_str()) + "/logits.npy");
  const float scale = std::max(1.0f, max_abs(ref.data));
  const float derr = max_abs_diff(with.data(), ref.data.data() + size_t(half) * V, with.size());
  plaintest::info("{}: graph vs no graph {:.3g}, decode vs transformers {:.3g} (tolerance {:.3g})", n, gerr, derr,
                  kTolGolden * scale);
  PT_CHECK(gerr <= 1e-6f);
  PT_CHECK(derr <= kTolGolden * scale);
#endif
}

// 32 greedy tokens: the CUDA session writes the same ids as the CPU session on the same weights,
// up to a step where the CPU's two candidates are within the logit tolerance (a near-tie: from
// there on the texts may part; the margin is printed).
void check_greedy(const std::string& n, WeightsMode mode = WeightsMode::AsStored) {
  auto g = golden(n.c_str());
  auto model = load_for_test(n, mode);
  std::vector<std::shared_ptr<const Model>> keep;
  auto twin = bf16_twin(model, keep);
  auto prompt = g["greedy"]["prompt"].get<std::vector<int32_t>>();
  GenerateParams p;
  p.max_tokens = 32;
  p.stop_at_eos = false;
  Session on_gpu(model, make_backend(model, {"cuda", 256, 0}));
  Session on_cpu(twin, make_backend(twin, {"cpu", 256, 2}));
  const auto a = on_gpu.generate(prompt, p).generated, b = on_cpu.generate(prompt, p).generated;
  PT_COMPARE(a.size(), b.size());
  size_t first = 0;
  while (first < a.size() && a[first] == b[first]) ++first;
  if (first < a.size()) {
    // The CPU's logits at the step where they part: how far apart were the two choices?
    std::vector<int32_t> ctx(prompt);
    ctx.insert(ctx.end(), b.begin(), b.begin() + long(first));
    auto cpu = make_backend(twin, {"cpu", 256, 2});
    ForwardResult r;
    cpu->forward(ctx, ForwardOptions{}, r);
    const float scale = std::max(1.0f, max_abs(r.logits));
    const float margin = r.logits[size_t(b[first])] - r.logits[size_t(a[first])];
    plaintest::info("{}: greedy texts part at token {} of {}: GPU {}, CPU {}, CPU logit margin {:.3g} (tolerance {:.3g})",
                    n, first, a.size(), a[first], b[first], margin, kTolCpu * scale);
    PT_CHECK2(margin <= kTolCpu * scale, fmt::format("greedy token {}: GPU {} vs CPU {} is not a near-tie", first,
                                                     a[first], b[first]));
  } else {
    plaintest::info("{}: {} greedy tokens identical to the CPU session", n, a.size());
  }
  // Prefix reuse (truncate) then the same continuation again. A linear-attention state cannot be
  // rewound to the prompt: it is cleared and the prompt runs again (CpuBackend does the same).
  const auto again = on_gpu.generate(prompt, p);
  PT_COMPARE(again.generated, a);
  if (model->spec.n_linear_layers() == 0) PT_CHECK(again.reused_tokens > 0);
  else PT_COMPARE(again.reused_tokens, 0);
  const KvStats kv = on_gpu.backend().kv_stats();
  PT_COMPARE(kv.n_layers, model->spec.n_attention_layers());
  PT_COMPARE(kv.state_layers, model->spec.n_linear_layers());
  PT_COMPARE(kv.element_type, std::string("F32"));
  PT_COMPARE(kv.bytes_per_token_layer, int64_t(model->spec.kv_values_per_token()) * 4);
  PT_CHECK(on_gpu.backend().device_memory_used() > 0);
}

}  // namespace

PT_CASE(parity) {
  REQUIRE_CUDA();
  for (const char* m : kModels) PT_ROW(m, [&] { check_parity(m); });
}

// Block-quantised matrices on the device (Q8_0 from --weights q8_0: routed experts, attention,
// dense and shared FFNs; decode's matvecs read the blocks, prefill widens one matrix or expert at
// a time): the CPU comparisons of parity and greedy, on models of each attention and routing kind
// (MLA, sinks and biases, Gated DeltaNet).
const char* kQ8Models[] = {"qwen3-moe", "mixtral", "deepseek-v3", "olmoe-f16", "gpt-oss", "qwen3.5-moe"};

PT_CASE(parity_q8_0) {
  REQUIRE_CUDA();
  for (const char* m : kQ8Models) PT_ROW(m, [&] { check_parity(m, WeightsMode::Q8_0); });
}

PT_CASE(greedy_q8_0) {
  REQUIRE_CUDA();
  for (const char* m : kQ8Models) PT_ROW(m, [&] { check_greedy(m, WeightsMode::Q8_0); });
}

PT_CASE(decode_graph) {
  REQUIRE_CUDA();
  for (const char* m : kModels) PT_ROW(m, [&] { check_decode_graph(m); });
}

PT_CASE(greedy) {
  REQUIRE_CUDA();
  for (const char* m : kModels) PT_ROW(m, [&] { check_greedy(m); });
}

// Qwen3.5's linear-attention state on the device: a prompt fed in chunks of 5, 1, 7 and 3 tokens
// (prefill and decode paths, the state carried between forwards) gives transformers' logits; the
// state can be cleared but not rewound; a session that edits its prompt reuses nothing, one that
// extends what is cached reuses all of it (as test_model_golden's recurrent_state_reuse on the CPU).
PT_CASE(linear_state) {
  REQUIRE_CUDA();
  const char* name = "qwen3.5-moe";
  auto g = golden(name);
  auto model = load_model(dir_of(name));
  PT_CHECK(model->spec.n_linear_layers() > 0);
  auto ids = g["input_ids"].get<std::vector<int32_t>>();
  NpyArray ref = read_npy(dir_of(name) + "/logits.npy");
  const int V = model->spec.vocab_size;
  const float scale = std::max(1.0f, max_abs(ref.data));
  auto backend = make_backend(model, {"cuda", 64, 0});
  ForwardOptions all;
  all.all_logits = true;
  float err = 0.0f;
  for (size_t t0 = 0; t0 < ids.size();) {
    static const size_t kSizes[] = {5, 1, 7, 3};
    const size_t n = std::min(ids.size() - t0, kSizes[t0 % 4]);
    ForwardResult r;
    backend->forward(std::span<const int32_t>(ids.data() + t0, n), all, r);
    err = std::max(err, max_abs_diff(r.logits.data(), ref.data.data() + t0 * V, n * V));
    t0 += n;
  }
  plaintest::info("{}: chunked prefill on CUDA, max |logit - transformers| = {:.3g} (tolerance {:.3g})", name, err,
                  kTolGolden * scale);
  PT_CHECK(err <= kTolGolden * scale);
  PT_COMPARE(backend->reusable_prefix(8), 0);
  PT_COMPARE(backend->reusable_prefix(int(ids.size())), int(ids.size()));
  bool threw = false;
  try {
    backend->truncate(8);
  } catch (const Error&) {
    threw = true;
  }
  PT_CHECK(threw);
  PT_COMPARE(backend->kv_stats().state_layers, model->spec.n_linear_layers());
  // Cleared, the same prompt in one forward gives the same last logits.
  backend->truncate(0);
  PT_COMPARE(backend->n_cached(), 0);
  ForwardResult whole;
  backend->forward(ids, ForwardOptions{}, whole);
  const float werr = max_abs_diff(whole.logits.data(), ref.data.data() + (ids.size() - 1) * V, size_t(V));
  plaintest::info("{}: after truncate(0), one forward: max |last logit - transformers| = {:.3g}", name, werr);
  PT_CHECK(werr <= kTolGolden * scale);

  GenerateParams p;
  p.max_tokens = 4;
  p.stop_at_eos = false;
  Session session(model, make_backend(model, {"cuda", 64, 0}));
  PT_COMPARE(session.generate(ids, p).reused_tokens, 0);
  std::vector<int32_t> edited(ids.begin(), ids.begin() + 10);
  edited.push_back(77), edited.push_back(78);
  GenerateResult second = session.generate(edited, p);
  PT_COMPARE(second.reused_tokens, 0);
  Session fresh(model, make_backend(model, {"cuda", 64, 0}));
  PT_COMPARE(second.generated, fresh.generate(edited, p).generated);
  std::vector<int32_t> longer = edited;
  longer.insert(longer.end(), second.generated.begin(), second.generated.end() - 1);
  const int cached = session.backend().n_cached();
  PT_COMPARE(cached, int(longer.size()));
  longer.push_back(second.generated.back());
  longer.push_back(5);
  GenerateResult third = session.generate(longer, p);
  PT_COMPARE(third.reused_tokens, cached);
  Session fresh2(model, make_backend(model, {"cuda", 64, 0}));
  PT_COMPARE(third.generated, fresh2.generate(longer, p).generated);
}

// A model far larger than any GPU: one clear error with both numbers.
PT_CASE(memory_check) {
  REQUIRE_CUDA();
  ModelSpec spec = load_model_spec(std::string(MOESCOPE_SOURCE_DIR) + "/resources/presets/deepseek-r1.json");
  auto model = make_synthetic_model(spec, 0, 1, /*host_storage=*/false);
  std::string msg;
  try {
    BackendOptions o{"cuda", spec.max_position, 0};  // the whole context on top
    auto b = make_backend(model, o);
    PT_FAIL("a 671B-parameter model was accepted");
  } catch (const Error& e) {
    msg = e.what();
  }
  plaintest::info("memory check: {}", msg);
  PT_CHECK(msg.find("not enough GPU memory") != std::string::npos);
  PT_CHECK(msg.find("GiB are free") != std::string::npos || msg.find(" are free") != std::string::npos);
  PT_CHECK(msg.find("--backend cpu") != std::string::npos);
}

// "Out of memory during a long generation" cannot happen by construction: the KV cache for the
// whole context and every scratch buffer are reserved at load. A generation that runs the cache
// full ends with ContextFull, and neither the backend's device memory nor the GPU's free memory
// changes on the way. A short generation first loads the kernels (CUDA loads modules lazily, on
// first launch, into device memory; CTest also sets CUDA_MODULE_LOADING=EAGER) and captures the
// decode graph; free memory is compared from there.
PT_CASE(long_generation_allocates_nothing) {
  REQUIRE_CUDA();
#ifdef MOESCOPE_HAVE_CUDA
  ModelSpec spec = load_model_spec(std::string(MOESCOPE_SOURCE_DIR) + "/resources/presets/olmoe-1b-7b.json");
  auto model = make_synthetic_model(spec, 2, 3, /*host_storage=*/false);
  Session s(model, make_backend(model, {"cuda", 2048, 0}));
  GenerateParams p;
  p.stop_at_eos = false;
  p.sampling.temperature = 1.0f;
  p.sampling.top_k = 50;
  p.max_tokens = 8;
  s.generate(std::vector<int32_t>(300, 5), p);  // warm-up: prefill (cuBLAS, grouped experts) and decode
  const int64_t used0 = s.backend().device_memory_used();
  size_t free0 = 0, free1 = 0, total = 0;
  cuda_ops::memory_info(&free0, &total);
  p.max_tokens = 4096;  // more than the context holds
  std::vector<int32_t> prompt(1000, 17);
  const GenerateResult r = s.generate(prompt, p);
  PT_COMPARE(int(r.reason), int(StopReason::ContextFull));
  PT_COMPARE(r.prompt_tokens + int(r.generated.size()), 2048 + 1);  // the last token sampled has no room
  PT_COMPARE(s.backend().device_memory_used(), used0);
  cuda_ops::memory_info(&free1, &total);
  plaintest::info("device memory: {} bytes for the backend; free before {}, after {} (difference {})", used0, free0,
                  free1, (long long)free0 - (long long)free1);
  PT_COMPARE(free1, free0);
#endif
}

// Synthetic weights generated on the device (bench --shape): a small cut of a real shape runs.
PT_CASE(synthetic_on_device) {
  REQUIRE_CUDA();
  ModelSpec spec = load_model_spec(std::string(MOESCOPE_SOURCE_DIR) + "/resources/presets/olmoe-1b-7b.json");
  auto model = make_synthetic_model(spec, 2, 7, /*host_storage=*/false);
  auto b = make_backend(model, {"cuda", 64, 0});
  std::vector<int32_t> ids = {1, 2, 3, 4, 5, 6, 7, 8};
  ForwardResult r;
  b->forward(ids, {}, r);
  for (float x : r.logits) PT_CHECK(std::isfinite(x));
  PT_COMPARE(int(r.expert_ids.size()), 8 * r.n_moe_layers * r.top_k);
}

PT_MAIN()
