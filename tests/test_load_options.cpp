// Load options (moescope/model_weights.h): the Q8_0 quantiser against the PyPI gguf package
// (tests/data/quant/Q8_0-quantize.*, tests/tools/gen_quant_goldens.py), `--weights q8_0` on
// safetensors and GGUF models (which matrices it quantises, how far the logits move), the shared
// model cache keyed on the options, and weights_label.
#include <QtTest>

#include <bit>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpu/gemm.h"
#include "moescope/backend.h"
#include "moescope/error.h"
#include "moescope/model_weights.h"
#include "moescope/npy.h"
#include "moescope/session.h"
#include "moescope/tensor.h"

using namespace moescope;
namespace fs = std::filesystem;

namespace {

const fs::path kData = MOESCOPE_TEST_DATA;
const fs::path kTiny = fs::path(MOESCOPE_SOURCE_DIR) / "resources" / "models" / "moescope-tiny";

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

// Every matrix view --weights q8_0 may quantise, by a readable name.
void for_each_matrix(const ModelWeights& w, const std::function<void(const std::string&, const TensorView&)>& f) {
  f("lm_head", w.lm_head);
  for (size_t i = 0; i < w.layers.size(); ++i) {
    const LayerWeights& L = w.layers[i];
    const std::string p = "layer " + std::to_string(i) + " ";
    const std::pair<const char*, const Linear*> lin[] = {{"q", &L.q},     {"k", &L.k},     {"v", &L.v},
                                                         {"o", &L.o},     {"q_a", &L.q_a}, {"q_b", &L.q_b},
                                                         {"kv_a", &L.kv_a}};
    for (const auto& [name, l] : lin) f(p + name, l->w);
    for (const auto& [name, m] : {std::pair{"dense", &L.dense}, std::pair{"shared", &L.shared}})
      f(p + name + ".gate", m->gate), f(p + name + ".up", m->up), f(p + name + ".down", m->down);
    for (size_t e = 0; e < L.experts.size(); ++e) {
      const std::string x = p + "expert " + std::to_string(e);
      f(x + ".gate", L.experts[e].gate), f(x + ".up", L.experts[e].up), f(x + ".down", L.experts[e].down);
    }
  }
}

bool qualifies(const TensorView& t, const ModelWeights& w) {
  return t.data && t.shape.size() == 2 && t.shape[1] % 32 == 0 && t.data != w.embed.data &&
         (t.dtype == DType::F32 || t.dtype == DType::BF16 || t.dtype == DType::F16);
}

ForwardResult prefill(const std::shared_ptr<const Model>& model, const std::vector<int32_t>& ids,
                      cpu::QuantX x = cpu::QuantX::Int8) {
  cpu::set_quant_activations(x);
  Session session(model, make_backend(model, {"cpu", 256, 2}));
  ForwardResult r = session.prefill(ids, true);
  cpu::set_quant_activations(cpu::QuantX::Int8);
  return r;
}

// Token-layers whose selected experts are the same in both.
size_t same_experts(const ForwardResult& a, const ForwardResult& b) {
  size_t same = 0;
  const size_t k = size_t(a.top_k);
  for (size_t s = 0; s * k < a.expert_ids.size(); ++s)
    same += std::equal(a.expert_ids.begin() + ptrdiff_t(s * k), a.expert_ids.begin() + ptrdiff_t((s + 1) * k),
                       b.expert_ids.begin() + ptrdiff_t(s * k));
  return same;
}

// max |a - b| / max |a|
double relative_logit_error(const std::vector<float>& a, const std::vector<float>& b) {
  double err = 0.0, scale = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, double(std::fabs(a[i] - b[i])));
    scale = std::max(scale, double(std::fabs(a[i])));
  }
  return err / scale;
}

std::vector<int32_t> golden_ids(const std::string& model) {
  std::ifstream in(kData / "models" / model / "golden.json");
  return nlohmann::json::parse(in)["input_ids"].get<std::vector<int32_t>>();
}

}  // namespace

class LoadOptionsTest : public QObject {
  Q_OBJECT

private slots:
  // Byte for byte what gguf.quants.quantize(x, Q8_0) wrote (ties away from zero, a subnormal and
  // an infinite half-float scale among the blocks).
  void quantize_q8_0_matches_gguf_reference() {
    const NpyArray x = read_npy(kData / "quant" / "Q8_0-quantize.npy");
    const std::vector<uint8_t> ref = read_bytes(kData / "quant" / "Q8_0-quantize.blocks");
    QCOMPARE(x.shape.size(), size_t(2));
    QCOMPARE(x.shape[1], int64_t(32));
    const int64_t n = x.shape[0];
    QCOMPARE(ref.size(), size_t(n) * 34);
    std::vector<uint8_t> got(ref.size());
    quantize_q8_0(x.data.data(), got.data(), n);
    for (size_t i = 0; i < got.size(); ++i)
      if (got[i] != ref[i])
        QFAIL(qPrintable(QString("block %1 byte %2: %3, reference %4").arg(i / 34).arg(i % 34).arg(got[i]).arg(ref[i])));
    // Dequantised, every block with a finite scale is within half a step of its input.
    std::vector<float> back(x.data.size());
    dequantize_blocks(DType::Q8_0, got.data(), back.data(), n);
    for (int64_t b = 0; b < n; ++b) {
      float amax = 0.0f;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x.data[size_t(b * 32 + j)]));
      // half a step, plus the half float's rounding of the step times the largest code
      const float d = amax / 127.0f, dh = f16_to_f32(f32_to_f16(d));
      if (!std::isfinite(dh)) continue;
      const float bound = 0.5f * d + 127.0f * std::fabs(dh - d) + 1e-6f * amax;
      for (int j = 0; j < 32; ++j) {
        const size_t i = size_t(b * 32 + j);
        QVERIFY2(std::fabs(back[i] - x.data[i]) <= bound,
                 qPrintable(QString("block %1 element %2: %3 -> %4").arg(b).arg(j).arg(x.data[i]).arg(back[i])));
      }
    }
  }

  void weights_mode_names() {
    QCOMPARE(parse_weights_mode("q8_0"), WeightsMode::Q8_0);
    QCOMPARE(parse_weights_mode("Q8_0"), WeightsMode::Q8_0);
    QCOMPARE(parse_weights_mode("as-stored"), WeightsMode::AsStored);
    QCOMPARE(std::string(weights_mode_name(WeightsMode::Q8_0)), std::string("q8_0"));
    QCOMPARE(std::string(weights_mode_name(WeightsMode::AsStored)), std::string("as-stored"));
    try {
      parse_weights_mode("q4");
      QFAIL("parse_weights_mode accepted q4");
    } catch (const Error& e) {
      QVERIFY(std::string(e.what()).find("as-stored or q8_0") != std::string::npos);
    }
  }

  // A BF16 checkpoint with some matrices whose rows are whole blocks (q_b 32, o 64, the dense
  // down 64) and some whose are not (hidden 48, expert width 16): exactly the first are Q8_0, each
  // row quantised from the BF16 row; the rest are byte for byte as stored.
  void bf16_checkpoint_quantises_the_qualifying_matrices() {
    const fs::path dir = kData / "models" / "deepseek-v3-bf16";
    auto stored = load_model(dir);
    auto q8 = load_model(dir, {WeightsMode::Q8_0});
    QCOMPARE(stored->weights_mode, WeightsMode::AsStored);
    QCOMPARE(q8->weights_mode, WeightsMode::Q8_0);
    std::map<std::string, TensorView> after;
    for_each_matrix(q8->weights, [&](const std::string& n, const TensorView& t) { after[n] = t; });
    int quantised = 0, kept = 0;
    for_each_matrix(stored->weights, [&](const std::string& n, const TensorView& t) {
      if (!t.data) return;
      const TensorView& a = after.at(n);
      QCOMPARE(a.shape, t.shape);
      if (!qualifies(t, stored->weights)) {
        QVERIFY2(a.dtype == t.dtype, n.c_str());
        QVERIFY2(std::memcmp(a.data, t.data, t.nbytes()) == 0, n.c_str());
        ++kept;
        return;
      }
      QVERIFY2(a.dtype == DType::Q8_0, n.c_str());
      const int64_t cols = t.shape[1];
      std::vector<float> row(static_cast<size_t>(cols), 0.0f);
      std::vector<uint8_t> want(dtype_bytes(DType::Q8_0, cols));
      for (int64_t r = 0; r < t.shape[0]; ++r) {
        to_f32(t.dtype, static_cast<const uint8_t*>(t.data) + size_t(r) * dtype_bytes(t.dtype, cols), row.data(), cols);
        quantize_q8_0(row.data(), want.data(), cols / 32);
        QVERIFY2(std::memcmp(static_cast<const uint8_t*>(a.data) + size_t(r) * want.size(), want.data(), want.size()) == 0,
                 n.c_str());
      }
      ++quantised;
    });
    qInfo("deepseek-v3-bf16: %d matrices quantised to Q8_0, %d kept as stored", quantised, kept);
    QVERIFY(quantised > 0 && kept > 0);
    // The embedding and the rest of the weights are the checkpoint's.
    QCOMPARE(q8->weights.embed.dtype, DType::BF16);
    QVERIFY(std::memcmp(q8->weights.embed.data, stored->weights.embed.data, stored->weights.embed.nbytes()) == 0);
  }

  // --weights q8_0 against the weights as stored. The teaching model is trained, F32, and every
  // matrix's rows are whole blocks (all of them quantised): measured max |Δlogit| = 1.9 % of max
  // |logit| (2 of 48 token-layers route differently), bound 3 % (what test_gguf allows a whole
  // quantised model). The deepseek-v3-bf16 goldens have random weights whose router scores are
  // near ties: quantising 7 of their matrices moves 8 of 32 token-layers' experts and the logits
  // by 41 % of max |logit|; there only the in-place reading is held exact. In every case the
  // kernels must give what the F32 dequantisation of the same blocks gives.
  void q8_0_logits_near_the_stored_weights_data() {
    QTest::addColumn<QString>("path");
    QTest::addColumn<QString>("ids_of");
    QTest::addColumn<double>("tolerance");  // of max |logit|; 0: not checked
    QTest::newRow("moescope-tiny") << QString::fromStdString(kTiny.string()) << QString() << 0.03;
    QTest::newRow("deepseek-v3-bf16") << QString::fromStdString((kData / "models" / "deepseek-v3-bf16").string())
                                      << QString("deepseek-v3-bf16") << 0.0;
    QTest::newRow("deepseek-v3-bf16.gguf") << QString::fromStdString((kData / "gguf" / "deepseek-v3-bf16.gguf").string())
                                           << QString("deepseek-v3-bf16") << 0.0;
  }
  void q8_0_logits_near_the_stored_weights() {
    QFETCH(QString, path);
    QFETCH(QString, ids_of);
    QFETCH(double, tolerance);
    const fs::path p = path.toStdString();
    std::vector<int32_t> ids = {1, 17, 305, 42, 999, 7, 128, 64, 512, 3, 88, 201, 640, 19, 77, 400};
    if (!ids_of.isEmpty()) ids = golden_ids(ids_of.toStdString());
    auto stored = load_model(p);
    auto q8 = load_model(p, {WeightsMode::Q8_0});
    QCOMPARE(q8->weights_mode, WeightsMode::Q8_0);
    int quantised = 0, total = 0;
    for_each_matrix(q8->weights, [&](const std::string&, const TensorView& t) {
      if (!t.data) return;
      ++total;
      quantised += t.dtype == DType::Q8_0 ? 1 : 0;
    });
    if (p == kTiny) QCOMPARE(quantised, total);
    const ForwardResult a = prefill(stored, ids), b = prefill(q8, ids), w = prefill(q8, ids, cpu::QuantX::F32);
    QCOMPARE(b.logits.size(), a.logits.size());
    const double rel = relative_logit_error(a.logits, b.logits), rel_w = relative_logit_error(a.logits, w.logits);
    qInfo("%s: %d of %d matrices Q8_0, max |logit(Q8_0) - logit(as stored)| = %.3g of max |logit| (%.3g with fp32 "
          "activations) over %zu logits; same experts on %zu and %zu of %zu token-layers",
          qPrintable(path), quantised, total, rel, rel_w, a.logits.size(), same_experts(a, b), same_experts(a, w),
          a.expert_ids.size() / size_t(a.top_k));
    // The kernels read the blocks in place as their F32 dequantisation (the weights of `q8`
    // viewed again, each Q8_0 matrix widened).
    auto widened = std::make_shared<Model>();
    widened->spec = q8->spec, widened->dir = q8->dir, widened->weights = q8->weights;
    auto widen = [&](TensorView& t) {
      if (!t.data || t.dtype != DType::Q8_0) return;
      widened->owned.push_back(std::make_unique<uint8_t[]>(size_t(t.numel()) * 4));
      dequantize_blocks(DType::Q8_0, t.data, reinterpret_cast<float*>(widened->owned.back().get()), t.numel() / 32);
      t = TensorView{DType::F32, t.shape, widened->owned.back().get()};
    };
    ModelWeights& ww = widened->weights;
    widen(ww.lm_head);
    for (auto& L : ww.layers) {
      for (Linear* l : {&L.q, &L.k, &L.v, &L.o, &L.q_a, &L.q_b, &L.kv_a}) widen(l->w);
      for (MlpWeights* m : {&L.dense, &L.shared}) widen(m->gate), widen(m->up), widen(m->down);
      for (auto& m : L.experts) widen(m.gate), widen(m.up), widen(m.down);
    }
    const ForwardResult c = prefill(widened, ids, cpu::QuantX::F32);
    const double rel_c = relative_logit_error(c.logits, w.logits);
    qInfo("  in place vs its F32 dequantisation: %.3g of max |logit|", rel_c);
    QVERIFY(rel_c <= 1e-4);
    QVERIFY(c.expert_ids == w.expert_ids);
    QVERIFY(std::isfinite(rel) && rel > 0.0);
    if (tolerance > 0.0) QVERIFY2(rel <= tolerance, qPrintable(QString("relative logit error %1").arg(rel)));
  }

  // A GGUF file whose matrices are already block-quantised, or whose rows are no whole blocks,
  // is left as it is (with a warning) and keeps its label.
  void q8_0_leaves_a_model_without_qualifying_matrices() {
    const fs::path p = kData / "gguf" / "olmoe-f16.gguf";  // hidden 48, expert width 16
    auto q8 = load_model(p, {WeightsMode::Q8_0});
    QCOMPARE(q8->weights_mode, WeightsMode::AsStored);
    QCOMPARE(weights_label(*q8), std::string("F16"));
  }

  void shared_cache_keys_on_the_options() {
    auto a = load_model_shared(kTiny);
    auto b = load_model_shared(kTiny, {WeightsMode::AsStored});
    auto c = load_model_shared(kTiny, {WeightsMode::Q8_0});
    auto d = load_model_shared(kTiny, {WeightsMode::Q8_0});
    QCOMPARE(a.get(), b.get());
    QCOMPARE(c.get(), d.get());
    QVERIFY(a.get() != c.get());
    QCOMPARE(a->weights_mode, WeightsMode::AsStored);
    QCOMPARE(c->weights_mode, WeightsMode::Q8_0);
    QCOMPARE(c->weights.layers[1].experts[0].gate.dtype, DType::Q8_0);
  }

  void weights_labels() {
    QCOMPARE(weights_label(*load_model(kTiny)), std::string("F32"));
    QCOMPARE(weights_label(*load_model(kTiny, {WeightsMode::Q8_0})), std::string("Q8_0 (quantised on load)"));
    QCOMPARE(weights_label(*load_model(kData / "models" / "deepseek-v3-bf16")), std::string("BF16"));
    // GGUF: general.file_type's name (convert_hf_to_gguf writes it) ...
    QCOMPARE(weights_label(*load_model(kData / "gguf" / "deepseek-v3-bf16.gguf")), std::string("BF16"));
    QCOMPARE(weights_label(*load_model(kData / "gguf" / "qwen3-moe.gguf")), std::string("F32"));
    // ... else the types of the matrices, the most frequent first.
    Model m;
    const uint8_t byte = 0;
    m.weights.lm_head = TensorView{DType::Q6_K, {1, 256}, &byte};
    m.weights.layers.resize(1);
    m.weights.layers[0].o.w = TensorView{DType::Q6_K, {1, 256}, &byte};
    m.weights.layers[0].experts.resize(2);
    for (auto& x : m.weights.layers[0].experts)
      for (TensorView* t : {&x.gate, &x.up, &x.down}) *t = TensorView{DType::Q4_K, {1, 256}, &byte};
    QCOMPARE(weights_label(m), std::string("Q4_K/Q6_K"));
  }
};

QTEST_GUILESS_MAIN(LoadOptionsTest)
#include "test_load_options.moc"
