// GGUF support: the block types' reference dequantisers against the PyPI gguf package
// (tests/data/quant/, tests/tools/gen_quant_goldens.py), the GGUF reader on good and bad files,
// and GGUF models against the safetensors checkpoints they were converted from
// (tests/data/gguf/, tests/tools/gen_gguf_goldens.py).
#include <QtTest>

#include <set>
#include <QTemporaryDir>

#include <bit>
#include <map>
#include <random>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>

#include <nlohmann/json.hpp>

#include "cpu/gemm.h"
#include "moescope/backend.h"
#include "moescope/chat.h"
#include "moescope/tokenizer.h"
#include "moescope/error.h"
#include "moescope/gguf.h"
#include "moescope/model_weights.h"
#include "moescope/npy.h"
#include "moescope/session.h"
#include "moescope/tensor.h"
#include "moescope/weight_footprint.h"
#include "gguf_write.h"
#include "quant_test_blocks.h"

using namespace moescope;
using namespace moescope::test;
namespace fs = std::filesystem;

namespace {

const fs::path kData = MOESCOPE_TEST_DATA;

std::vector<uint8_t> read_bytes(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {});
}

std::vector<uint8_t> f32_bytes(const std::vector<float>& v) {
  std::vector<uint8_t> b(v.size() * 4);
  std::memcpy(b.data(), v.data(), b.size());
  return b;
}

using Kv = std::vector<std::pair<std::string, GgufValue>>;

// A small valid file: metadata of every type, an F32 matrix, a Q8_0 row and an F16 vector.
Kv sample_kv() {
  return {{"general.architecture", gv_str("test")},
          {"general.alignment", gv_u32(32)},
          {"test.u8s", gv_ints(GgufType::UInt8, {0, 255})},
          {"test.i8s", gv_ints(GgufType::Int8, {-128, 127})},
          {"test.u16s", gv_ints(GgufType::UInt16, {65535})},
          {"test.i16s", gv_ints(GgufType::Int16, {-32768})},
          {"test.i32", gv_i32(-7)},
          {"test.i64s", gv_ints(GgufType::Int64, {-(int64_t(1) << 40)})},
          {"test.u64s", gv_ints(GgufType::UInt64, {int64_t(1) << 50})},
          {"test.bools", gv_ints(GgufType::Bool, {1, 0})},
          {"test.f32", gv_f32(0.5f)},
          {"test.f32s", gv_floats({1.5, -2.0})},
          {"test.strings", gv_strs({"a", "", "ünïcode"})},
          {"test.empty", gv_strs({})}};
}
std::vector<GgufOut> sample_tensors() {
  std::vector<uint8_t> q8(34, 0);
  q8[0] = 0x00, q8[1] = 0x3c;  // d = 1.0
  for (int j = 0; j < 32; ++j) q8[2 + j] = uint8_t(int8_t(j - 16));
  std::vector<uint8_t> f16 = {0x00, 0x3c, 0x00, 0xc0, 0x00, 0x00, 0x00, 0x7c};  // 1, -2, 0, inf
  std::vector<float> a(16);
  for (int i = 0; i < 16; ++i) a[size_t(i)] = float(i);
  return {{"a", 0, {8, 2}, f32_bytes(a)}, {"b", 8, {32}, q8}, {"c", 1, {4}, f16}};
}

struct TempFile {
  QTemporaryDir dir;
  fs::path path(const std::string& name = "model.gguf") const { return fs::path(dir.path().toStdString()) / name; }
};

// Opening `bytes` fails with an Error whose message contains `expect`.
void expect_bad(const std::vector<uint8_t>& bytes, const std::string& expect) {
  TempFile t;
  write_file(t.path(), bytes);
  try {
    GgufFile::open(t.path());
  } catch (const Error& e) {
    const std::string msg = e.what();
    qInfo("  %s", msg.c_str());
    QVERIFY2(msg.find(expect) != std::string::npos && msg.find('\n') == std::string::npos,
             qPrintable(QString::fromStdString("message '" + msg + "' lacks '" + expect + "'")));
    return;
  }
  QFAIL(qPrintable(QString::fromStdString("no error, expected one containing '" + expect + "'")));
}

// Every ModelSpec field that differs between a and b, as "field: a vs b" (floats within 1e-6
// relative: GGUF stores them as float32, some as a product, e.g. 0.1·mscale_all_dim).
std::vector<std::string> spec_differences(const ModelSpec& a, const ModelSpec& b) {
  std::vector<std::string> d;
  auto cmp = [&](const char* name, auto x, auto y) {
    bool same;
    if constexpr (std::is_floating_point_v<decltype(x)>)
      same = std::fabs(double(x) - double(y)) <= 1e-6 * std::max(1.0, std::fabs(double(y)));
    else
      same = x == y;
    if (!same) {
      std::string sx, sy;
      if constexpr (std::is_enum_v<decltype(x)>) sx = std::to_string(int(x)), sy = std::to_string(int(y));
      else if constexpr (std::is_same_v<decltype(x), std::string>) sx = x, sy = y;
      else if constexpr (std::is_arithmetic_v<decltype(x)>) sx = std::to_string(x), sy = std::to_string(y);
      else sx = "(list)", sy = "(list)";
      d.push_back(std::string(name) + ": " + sx + " vs " + sy);
    }
  };
#define F(field) cmp(#field, a.field, b.field)
  F(architecture); F(model_type); F(name); F(naming); F(vocab_size); F(hidden); F(n_layers); F(max_position);
  F(rms_eps); F(tie_embeddings); F(dense_width); F(moe_layer); F(bos_ids); F(eos_ids);
  F(attn.kind); F(attn.n_heads); F(attn.n_kv_heads); F(attn.head_dim); F(attn.qk_norm); F(attn.qkv_bias);
  F(attn.clip_qkv); F(attn.sliding_window); F(attn.q_lora_rank); F(attn.kv_lora_rank); F(attn.qk_nope_head_dim);
  F(attn.qk_rope_head_dim); F(attn.v_head_dim); F(attn.softmax_scale);
  F(rope.theta); F(rope.dim); F(rope.interleaved); F(rope.yarn); F(rope.factor); F(rope.beta_fast);
  F(rope.beta_slow); F(rope.mscale); F(rope.mscale_all_dim); F(rope.original_max_position); F(rope.truncate);
  F(rope.attention_factor);
  F(moe.router.n_experts); F(moe.router.top_k); F(moe.router.scoring); F(moe.router.correction_bias);
  F(moe.router.group_score); F(moe.router.n_group); F(moe.router.topk_group); F(moe.router.renormalize);
  F(moe.router.scaling); F(moe.router.scale_after_renorm); F(moe.expert_width); F(moe.shared); F(moe.shared_width);
#undef F
  return d;
}

const char* kGoldenModels[] = {"mixtral", "qwen2-moe", "qwen3-moe", "olmoe", "olmoe-f16", "deepseek-v2-lite",
                               "deepseek-v2-group", "deepseek-v3", "deepseek-v3-bf16"};

// deepseek-v2-group has YaRN mscale 1.0 != mscale_all_dim 0.707; GGUF stores only the latter
// (yarn_log_multiplier) and llama.cpp takes mscale to equal it, so these two fields differ and the
// forward is not that of transformers (nor is llama.cpp's).
const std::vector<std::string> kUnrepresentable = {"rope.mscale", "rope.attention_factor"};

void model_rows() {
  QTest::addColumn<QString>("name");
  for (const char* m : kGoldenModels) QTest::newRow(m) << QString(m);
}

}  // namespace

class GgufTest : public QObject {
  Q_OBJECT

private slots:
  void block_sizes() {
    QCOMPARE(dtype_block_elems(DType::Q4_K), int64_t(256));
    QCOMPARE(dtype_block_bytes(DType::Q4_K), size_t(144));
    QCOMPARE(dtype_bytes(DType::Q8_0, 64), size_t(68));
    QCOMPARE(dtype_bytes(DType::BF16, 3), size_t(6));
    QVERIFY(!dtype_is_quantized(DType::F16));
    QVERIFY(dtype_is_quantized(DType::MXFP4));
    QVERIFY_THROWS_EXCEPTION(Error, dtype_bytes(DType::Q4_0, 33));
    QVERIFY_THROWS_EXCEPTION(Error, dtype_size(DType::Q6_K));  // element-wise code refuses blocks
    TensorView t{DType::Q6_K, {4, 512}, nullptr};
    QCOMPARE(t.nbytes(), size_t(4 * 2 * 210));
  }

  // Every block of every golden, every value, bit for bit (NaN scales give NaN on both sides).
  void dequantize_matches_gguf_reference_data() {
    QTest::addColumn<QString>("type");
    for (const char* t : {"Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "IQ4_NL",
                          "IQ4_XS", "MXFP4"})
      QTest::newRow(t) << QString(t);
  }
  void dequantize_matches_gguf_reference() {
    QFETCH(QString, type);
    const std::vector<DType> all = {DType::Q8_0, DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1,
                                    DType::Q2_K, DType::Q3_K, DType::Q4_K, DType::Q5_K, DType::Q6_K,
                                    DType::IQ4_NL, DType::IQ4_XS, DType::MXFP4};
    DType dt = DType::F32;
    for (DType d : all)
      if (type == dtype_name(d)) dt = d;
    QVERIFY(dtype_is_quantized(dt));
    const fs::path dir = kData / "quant";
    const std::vector<uint8_t> blocks = read_bytes(dir / (type.toStdString() + ".blocks"));
    const NpyArray ref = read_npy(dir / (type.toStdString() + ".npy"));
    QCOMPARE(ref.shape.size(), size_t(2));
    const int64_t n_blocks = ref.shape[0];
    QCOMPARE(ref.shape[1], dtype_block_elems(dt));
    QCOMPARE(blocks.size(), size_t(n_blocks) * dtype_block_bytes(dt));
    std::vector<float> got(ref.data.size());
    dequantize_blocks(dt, blocks.data(), got.data(), n_blocks);
    int finite = 0;
    for (size_t i = 0; i < got.size(); ++i) {
      const float a = got[i], b = ref.data[i];
      if (std::isnan(b)) {
        if (!std::isnan(a)) QFAIL(qPrintable(QString("%1 value %2: %3, reference NaN").arg(type).arg(i).arg(a)));
        continue;
      }
      ++finite;
      if (std::bit_cast<uint32_t>(a) != std::bit_cast<uint32_t>(b))
        QFAIL(qPrintable(QString("%1 block %2 element %3: %4, reference %5")
                             .arg(type).arg(i / size_t(ref.shape[1])).arg(i % size_t(ref.shape[1]))
                             .arg(double(a), 0, 'g', 9).arg(double(b), 0, 'g', 9)));
    }
    QVERIFY(finite > int(got.size()) / 2);
    // to_f32 takes the same path for whole blocks.
    std::vector<float> via(got.size());
    to_f32(dt, blocks.data(), via.data(), int64_t(via.size()));
    QVERIFY(std::memcmp(via.data(), got.data(), via.size() * 4) == 0);
  }

  // ---- the reader ------------------------------------------------------------------------------
  void reads_metadata_of_every_type_and_tensors() {
    for (uint32_t version : {2u, 3u}) {
      TempFile t;
      write_file(t.path(), gguf_file(sample_kv(), sample_tensors(), 32, version));
      auto g = GgufFile::open(t.path());
      QCOMPARE(g->version(), version);
      QCOMPARE(g->get_string("general.architecture"), std::string("test"));
      QCOMPARE(g->find("test.u8s")->ints, (std::vector<int64_t>{0, 255}));
      QCOMPARE(g->find("test.i8s")->ints, (std::vector<int64_t>{-128, 127}));
      QCOMPARE(g->find("test.u16s")->ints, (std::vector<int64_t>{65535}));
      QCOMPARE(g->find("test.i16s")->ints, (std::vector<int64_t>{-32768}));
      QCOMPARE(g->get_int("test.i32", -10, 10), int64_t(-7));
      QCOMPARE(g->find("test.i64s")->ints, (std::vector<int64_t>{-(int64_t(1) << 40)}));
      QCOMPARE(g->find("test.u64s")->ints, (std::vector<int64_t>{int64_t(1) << 50}));
      QCOMPARE(g->find("test.bools")->ints, (std::vector<int64_t>{1, 0}));
      QCOMPARE(g->get_float_or("test.f32", 0, -1, 1), 0.5);
      QCOMPARE(g->find("test.f32s")->floats, (std::vector<double>{1.5, -2.0}));
      QCOMPARE(g->find("test.strings")->strings, (std::vector<std::string>{"a", "", "ünïcode"}));
      QCOMPARE(g->find("test.empty")->size(), size_t(0));
      QVERIFY_THROWS_EXCEPTION(Error, g->get_int("test.i32", 0, 10));      // out of range
      QVERIFY_THROWS_EXCEPTION(Error, g->get_string("test.i32"));          // wrong type
      QVERIFY_THROWS_EXCEPTION(Error, g->get_int("no.such.key", 0, 10));   // missing
      const TensorView a = g->tensor("a").view();
      QCOMPARE(a.shape, (std::vector<int64_t>{2, 8}));  // ne [8, 2] is 2 rows of 8
      QCOMPARE(static_cast<const float*>(a.data)[9], 9.0f);
      QCOMPARE(g->tensor("b").view().dtype, DType::Q8_0);
      float row[32];
      to_f32(DType::Q8_0, g->tensor("b").data, row, 32);
      QCOMPARE(row[0], -16.0f);
      QCOMPARE(row[31], 15.0f);
      float c[4];
      to_f32(DType::F16, g->tensor("c").data, c, 4);
      QCOMPARE(c[1], -2.0f);
      QVERIFY(std::isinf(c[3]));
      QCOMPARE(g->tensor_names(), (std::vector<std::string>{"a", "b", "c"}));
      QVERIFY_THROWS_EXCEPTION(Error, g->tensor("d"));
    }
  }

  // Alignment below 4 (legal): misaligned F32 data is copied, values intact.
  void small_alignment_is_read() {
    TempFile t;
    Kv kv = sample_kv();
    kv[1].second = gv_u32(1);
    std::vector<GgufOut> ts = sample_tensors();
    std::swap(ts[0], ts[1]);  // the 34-byte Q8_0 block first: the F32 tensor lands at offset 34
    write_file(t.path(), gguf_file(kv, ts, 1));
    auto g = GgufFile::open(t.path());
    QCOMPARE(static_cast<const float*>(g->tensor("a").data)[15], 15.0f);
    QVERIFY(reinterpret_cast<uintptr_t>(g->tensor("a").data) % 4 == 0);
  }

  // An Ollama blob: a GGUF file named by its digest, no extension.
  void ollama_blob_without_extension() {
    TempFile t;
    const fs::path blob = t.path("sha256-6a0746a1ec1aef3e7ec53868f220ff6e389f6f8ef87a01d77c96807de94ca2aa");
    write_file(blob, gguf_file(sample_kv(), sample_tensors()));
    QVERIFY(GgufFile::looks_like_gguf(blob));
    QVERIFY(is_gguf_path(blob));
    QCOMPARE(GgufFile::open(blob)->tensor_names().size(), size_t(3));
    write_file(t.path("notes"), {'n', 'o', 't', 'e'});
    QVERIFY(!is_gguf_path(t.path("notes")));
  }

  void split_sets() {
    TempFile t;
    auto part = [&](int no, int count, std::vector<GgufOut> ts) {
      Kv kv = no == 0 ? sample_kv() : Kv{};
      kv.emplace_back("split.no", GgufValue{GgufType::UInt16, GgufType::UInt8, no});
      kv.emplace_back("split.count", GgufValue{GgufType::UInt16, GgufType::UInt8, count});
      kv.emplace_back("split.tensors.count", gv_i32(3));
      return gguf_file(kv, ts);
    };
    auto ts = sample_tensors();
    write_file(t.path("m-00001-of-00003.gguf"), part(0, 3, {ts[0]}));
    write_file(t.path("m-00002-of-00003.gguf"), part(1, 3, {ts[1]}));
    write_file(t.path("m-00003-of-00003.gguf"), part(2, 3, {ts[2]}));
    for (const char* open_as : {"m-00001-of-00003.gguf", "m-00003-of-00003.gguf"}) {
      auto g = GgufFile::open(t.path(open_as));
      QCOMPARE(g->file_count(), size_t(3));
      QCOMPARE(g->tensor("c").file_index, size_t(2));
      QCOMPARE(g->get_string("general.architecture"), std::string("test"));
    }
    fs::remove(t.path("m-00002-of-00003.gguf"));
    try {
      GgufFile::open(t.path("m-00001-of-00003.gguf"));
      QFAIL("a split set with a missing part opened");
    } catch (const Error& e) {
      qInfo("  %s", e.what());
      QVERIFY(std::string(e.what()).find("part 2 of 3 (m-00002-of-00003.gguf) is missing") != std::string::npos);
    }
  }

  void bad_files_data() {
    QTest::addColumn<int>("which");
    const char* names[] = {"empty file", "bad magic", "GGUF v1", "unknown version", "big-endian", "absurd tensor count",
                           "absurd metadata count", "array longer than the file", "nested array", "duplicate key",
                           "unknown value type", "alignment not a power of two", "alignment of the wrong type",
                           "too many dimensions", "dimensions overflow", "unsupported type", "unknown type id",
                           "row not a whole block", "offset out of range", "overlapping tensors",
                           "misaligned offset", "duplicate tensor", "truncated data", "bool not 0/1"};
    for (int i = 0; i < int(std::size(names)); ++i) QTest::newRow(names[i]) << i;
  }
  void bad_files() {
    QFETCH(int, which);
    const Kv kv = sample_kv();
    std::vector<GgufOut> ts = sample_tensors();
    std::vector<uint8_t> good = gguf_file(kv, ts);
    auto with = [&](size_t at, auto value) {
      std::vector<uint8_t> b = good;
      std::memcpy(b.data() + at, &value, sizeof value);
      return b;
    };
    switch (which) {
      case 0: return expect_bad({}, "not a GGUF file (0 bytes)");
      case 1: return expect_bad(with(0, uint32_t(0x46554746)), "does not start with the bytes \"GGUF\"");
      case 2: return expect_bad(with(4, uint32_t(1)), "GGUF version 1 files are not supported");
      case 3: return expect_bad(with(4, uint32_t(7)), "unknown GGUF version 7 (supported: 2, 3)");
      case 4: return expect_bad(with(4, uint32_t(0x03000000)), "big-endian GGUF files are not supported");
      case 5: return expect_bad(with(8, uint64_t(1) << 60), "tensors, more than the file can hold");
      case 6: return expect_bad(with(16, uint64_t(1) << 60), "metadata entries, more than the file can hold");
      case 7: {
        GgufBytes o;
        o.put<uint32_t>(0x46554747), o.put<uint32_t>(3), o.put<uint64_t>(0), o.put<uint64_t>(1);
        o.str("x"), o.put<uint32_t>(9), o.put<uint32_t>(4), o.put<uint64_t>(uint64_t(1) << 40);
        return expect_bad(o.b, "metadata 'x' claims 1099511627776 elements");
      }
      case 8: {
        GgufBytes o;
        o.put<uint32_t>(0x46554747), o.put<uint32_t>(3), o.put<uint64_t>(0), o.put<uint64_t>(1);
        o.str("x"), o.put<uint32_t>(9), o.put<uint32_t>(9), o.put<uint64_t>(0);
        o.b.resize(o.b.size() + 16);
        return expect_bad(o.b, "metadata 'x' is an array of arrays");
      }
      case 9: {
        Kv k = kv;
        k.push_back(kv[0]);
        return expect_bad(gguf_file(k, ts), "metadata key 'general.architecture' appears twice");
      }
      case 10: {
        GgufBytes o;
        o.put<uint32_t>(0x46554747), o.put<uint32_t>(3), o.put<uint64_t>(0), o.put<uint64_t>(1);
        o.str("x"), o.put<uint32_t>(13), o.put<uint64_t>(0);
        return expect_bad(o.b, "metadata 'x' has unknown value type 13");
      }
      case 11: {
        Kv k = kv;
        k[1].second = gv_u32(24);
        return expect_bad(gguf_file(k, ts, 8), "metadata 'general.alignment' is 24, not a power of two");
      }
      case 12: {
        Kv k = kv;
        k[1].second = gv_i32(32);
        return expect_bad(gguf_file(k, ts), "metadata 'general.alignment' must be a uint32, is a int32");
      }
      case 13: ts[0].ne = {8, 1, 1, 1, 2}; return expect_bad(gguf_file(kv, ts), "tensor 'a' has 5 dimensions (1 to 4 allowed)");
      case 14: ts[0].ne = {int64_t(1) << 32, int64_t(1) << 32}; return expect_bad(gguf_file(kv, ts), "tensor 'a' has dimensions whose product overflows");
      case 15: ts[1].type = 16; return expect_bad(gguf_file(kv, ts), "tensor 'b' has type IQ2_XXS, which moescope does not read (supported: F32, F16, BF16, Q8_0");
      case 16: ts[1].type = 99; return expect_bad(gguf_file(kv, ts), "tensor 'b' has unknown type id 99 (supported: F32");
      case 17: ts[1].ne = {16}; return expect_bad(gguf_file(kv, ts), "tensor 'b' has rows of 16 elements, not a multiple of the Q8_0 block size 32");
      case 18: ts[2].offset = 1 << 20; return expect_bad(gguf_file(kv, ts), "tensor 'c' lies at data bytes [1048576, 1048584) beyond the file's");
      case 19: ts[2].offset = 32; return expect_bad(gguf_file(kv, ts), "tensors 'a' and 'c' overlap in the file");
      case 20: ts[2].offset = 100; return expect_bad(gguf_file(kv, ts), "tensor 'c' has data offset 100, not a multiple of the alignment 32");
      case 21: ts[2].name = "a"; return expect_bad(gguf_file(kv, ts), "tensor 'a' appears twice");
      case 22: good.resize(good.size() - 40); return expect_bad(good, "tensor 'c' lies at data bytes [128, 136) beyond the file's");
      case 23: {
        Kv k = kv;
        k.emplace_back("flag", gv_bool(true));
        std::vector<uint8_t> b = gguf_file(k, ts);
        // "flag" is the last key: its one value byte follows the key and the type.
        const std::string key = "flag";
        auto it = std::search(b.begin(), b.end(), key.begin(), key.end());
        *(it + 4 + 4) = 2;
        return expect_bad(b, "a boolean metadata value is 2, not 0 or 1");
      }
    }
  }

  // Every prefix of a valid file is a clean Error (or, cut only in the last padding, still opens),
  // never a crash or a read past the end (the fuzz target checks the same under ASan).
  void every_truncation_is_an_error() {
    const std::vector<uint8_t> good = gguf_file(sample_kv(), sample_tensors());
    TempFile t;
    int errors = 0;
    for (size_t n = 0; n < good.size(); ++n) {
      write_file(t.path(), std::vector<uint8_t>(good.begin(), good.begin() + long(n)));
      try {
        GgufFile::open(t.path());
        QVERIFY2(n >= good.size() - 32 + 8, qPrintable(QString("a %1-byte prefix opened").arg(n)));
      } catch (const Error&) {
        ++errors;
      }
    }
    QVERIFY(errors >= int(good.size()) - 32);
  }

  // Model-level checks: metadata that contradicts the tensors, an unknown architecture, a type
  // rejected before any weight is touched.
  void bad_models() {
    auto g = GgufFile::open(kData / "gguf" / "mixtral.gguf");
    std::vector<GgufOut> ts;
    for (const auto& n : g->tensor_names()) {
      const GgufTensor& t = g->tensor(n);
      const auto* p = static_cast<const uint8_t*>(t.data);
      ts.push_back({n, t.ggml_type, t.ne, std::vector<uint8_t>(p, p + t.nbytes)});
    }
    auto expect = [&](Kv kv, const std::vector<GgufOut>& tensors, const std::string& want) {
      TempFile t;
      write_file(t.path("bad.gguf"), gguf_file(kv, tensors));
      try {
        load_model(t.path("bad.gguf"));
      } catch (const Error& e) {
        qInfo("  %s", e.what());
        QVERIFY2(std::string(e.what()).find(want) != std::string::npos, e.what());
        return;
      }
      QFAIL("loaded");
    };
    auto set = [](Kv kv, const std::string& key, GgufValue v) {
      for (auto& [k, x] : kv)
        if (k == key) x = v;
      return kv;
    };
    const Kv kv = metadata_of(*g);
    expect(set(kv, "llama.embedding_length", gv_u32(64)), ts,
           "bad.gguf: tensor for 'model.embed_tokens.weight' has shape [256, 48], the metadata implies [256, 64]");
    expect(set(kv, "llama.expert_used_count", gv_u32(9)), ts, "bad.gguf: expert_used_count 9 exceeds expert_count 8");
    expect(set(kv, "general.architecture", gv_str("gpt2")), ts,
           "bad.gguf: GGUF architecture 'gpt2' is not supported (supported: deepseek2, qwen3moe, qwen2moe, olmoe, llama)");
    std::vector<GgufOut> missing = ts;
    missing.erase(std::find_if(missing.begin(), missing.end(), [](const GgufOut& t) { return t.name == "blk.1.attn_v.weight"; }));
    expect(kv, missing, "bad.gguf: no tensor for 'model.layers.1.self_attn.v_proj.weight' (the GGUF file lacks it)");
  }

  // A quantised file runs: Q8_0 blocks for every matrix whose rows allow it (the tiny models'
  // rows are mostly 48 wide; DeepSeek-V3's q_b, o_proj and dense down_proj rows are 32 or 64).
  // The CPU kernels read the Q8_0 projections in place (d · q widened in registers, the values the
  // dequantiser gives, summed in the same order, whatever the QuantX mode), so the forward equals,
  // bit for bit, that of an F32 file holding the dequantised values.
  void quantised_file_loads_and_runs() {
    auto g = GgufFile::open(kData / "gguf" / "deepseek-v3.gguf");
    std::vector<GgufOut> ts;
    int quantised = 0;
    for (const auto& n : g->tensor_names()) {
      const GgufTensor& t = g->tensor(n);
      const auto* p = static_cast<const uint8_t*>(t.data);
      GgufOut o{n, t.ggml_type, t.ne, std::vector<uint8_t>(p, p + t.nbytes)};
      if (t.ne.size() >= 2 && t.ne[0] % 32 == 0 && t.dtype == DType::F32) {  // plain Q8_0 rounding
        const auto* x = static_cast<const float*>(t.data);
        const size_t blocks = t.nbytes / 4 / 32;
        o.type = 8;
        o.data.assign(blocks * 34, 0);
        for (size_t b = 0; b < blocks; ++b) {
          float amax = 0;
          for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + size_t(j)]));
          const uint16_t dh = f32_to_f16(amax / 127.0f);
          const float d = f16_to_f32(dh);
          std::memcpy(&o.data[b * 34], &dh, 2);
          for (int j = 0; j < 32; ++j)
            o.data[b * 34 + 2 + size_t(j)] = uint8_t(int8_t(d > 0 ? std::clamp(std::lround(x[b * 32 + size_t(j)] / d), -127L, 127L) : 0));
        }
        ++quantised;
      }
      ts.push_back(std::move(o));
    }
    QVERIFY(quantised >= 6);
    std::vector<GgufOut> widened = ts;
    for (auto& o : widened)
      if (o.type == 8) {
        std::vector<float> x(o.data.size() / 34 * 32);
        dequantize_blocks(DType::Q8_0, o.data.data(), x.data(), int64_t(o.data.size() / 34));
        o.type = 0, o.data = f32_bytes(x);
      }
    TempFile t;
    write_file(t.path("q8.gguf"), gguf_file(metadata_of(*g), ts));
    write_file(t.path("q8-widened.gguf"), gguf_file(metadata_of(*g), widened));
    auto model = load_model(t.path("q8.gguf"));
    QCOMPARE(model->weights.layers[0].o.w.dtype, DType::Q8_0);  // read in place by the CPU kernels
    QCOMPARE(model->gguf->tensor("blk.0.attn_output.weight").dtype, DType::Q8_0);
    std::ifstream in(kData / "models" / "deepseek-v3" / "golden.json");
    const auto ids = nlohmann::json::parse(in)["input_ids"].get<std::vector<int32_t>>();
    auto run = [&](std::shared_ptr<const Model> m, cpu::QuantX mode = cpu::QuantX::F32) {
      cpu::set_quant_activations(mode);
      Session session(m, make_backend(m, {"cpu", 256, 2}));
      ForwardResult r = session.prefill(ids, true);
      cpu::set_quant_activations(cpu::QuantX::Int8);
      return r;
    };
    // With fp32 activations the Q8_0 forward is the widened file's, bit for bit.
    const ForwardResult q = run(model), w = run(load_model(t.path("q8-widened.gguf")));
    const ForwardResult f = run(load_model(kData / "gguf" / "deepseek-v3.gguf"));
    QVERIFY(q.logits == w.logits);
    QVERIFY(q.expert_ids == w.expert_ids);
    // Q8_0 meets exact x in either mode; under Int8 (the default) a prompt of 16 or more tokens at
    // the amx level takes AMX's tile products (x in three bf16 parts, exact; the sums in another
    // order): equal up to float rounding, the same experts.
    const ForwardResult i8 = run(model, cpu::QuantX::Int8);
    float peak = 0.0f, d8 = 0.0f;
    for (size_t i = 0; i < q.logits.size(); ++i)
      peak = std::max(peak, std::fabs(q.logits[i])), d8 = std::max(d8, std::fabs(i8.logits[i] - q.logits[i]));
    QVERIFY2(d8 <= 1e-5f * peak, qPrintable(QString("Int8 mode: %1 of max |logit| %2").arg(d8).arg(peak)));
    QVERIFY(i8.expert_ids == q.expert_ids);
    if (cpu::active_isa() != cpu::Isa::Amx || ids.size() < 16) QVERIFY(i8.logits == q.logits);
    float err = 0.0f;
    for (size_t i = 0; i < f.logits.size(); ++i) err = std::max(err, std::fabs(q.logits[i] - f.logits[i]));
    qInfo("Q8_0 (%d matrices) vs the F32 file: max |logit difference| = %.3g (random tiny model)", quantised, double(err));
    QVERIFY(err > 0.0f);  // the quantised weights were used
  }

  // Every block type read in place in a whole model: a Qwen3-MoE file of the golden's layout made
  // 256 wide (so that every matrix's rows are whole k-quant blocks), its matrices in a rotation of
  // the block types (the embedding, tied to the LM head, Q6_K; the router Q8_0, which the loader
  // widens) with random blocks, against an F32 file holding the same weights dequantised.
  // With fp32 activations (QuantX::F32) the forward equals the F32 file's up to fp32 rounding;
  // with the default 8-bit activations it stays within what their rounding explains (3 % of the
  // largest |logit|; 8-bit x moves a product by at most 1/254 of its block's largest |x|) and
  // selects the same experts on at least 90 % of token-layers.
  void block_types_in_a_whole_model() {
    auto g = GgufFile::open(kData / "gguf" / "qwen3-moe.gguf");
    Kv kv = metadata_of(*g);
    for (auto& [key, v] : kv) {
      const std::map<std::string, int64_t> wide = {{"qwen3moe.embedding_length", 256},
                                                   {"qwen3moe.feed_forward_length", 256},
                                                   {"qwen3moe.expert_feed_forward_length", 256},
                                                   {"qwen3moe.attention.key_length", 64},
                                                   {"qwen3moe.attention.value_length", 64}};
      if (auto it = wide.find(key); it != wide.end()) v.i = it->second, v.u = uint64_t(it->second);
    }
    const std::vector<std::pair<DType, uint32_t>> rotation = {
        {DType::Q4_K, 12}, {DType::Q6_K, 14}, {DType::Q5_K, 13}, {DType::Q3_K, 11},  {DType::Q2_K, 10},
        {DType::IQ4_XS, 23}, {DType::Q4_0, 2}, {DType::Q4_1, 3}, {DType::Q5_0, 6},  {DType::Q5_1, 7},
        {DType::IQ4_NL, 20}, {DType::MXFP4, 39}, {DType::Q8_0, 8}};
    std::mt19937 rng(5);
    std::normal_distribution<float> nd(0.0f, 0.1f);
    std::vector<GgufOut> ts, widened;
    std::set<DType> used;
    size_t next = 0;
    for (const auto& n : g->tensor_names()) {
      const GgufTensor& t = g->tensor(n);
      GgufOut o{n, 0, t.ne, {}};
      const bool experts = n.find("exps") != std::string::npos;
      for (auto& d : o.ne) {
        if (d == 48 || (d == 16 && experts) || (d == 64 && !experts)) d = 256;
        else if (d == 32) d = 128;
        else if (d == 16) d = 64;
      }
      int64_t numel = 1;
      for (int64_t d : o.ne) numel *= d;
      std::vector<float> f(static_cast<size_t>(numel), 0.0f);
      if (o.ne.size() == 1) {  // norms
        for (auto& v : f) v = 1.0f + nd(rng);
        o.data = f32_bytes(f);
      } else {
        const auto [dt, id] = n == "token_embd.weight"              ? std::pair{DType::Q6_K, 14u}
                              : n.find("ffn_gate_inp") != std::string::npos ? std::pair{DType::Q8_0, 8u}
                                                                       : rotation[next++ % rotation.size()];
        used.insert(dt);
        o.type = id;
        const size_t blocks = size_t(numel / dtype_block_elems(dt));
        o.data = test::random_blocks(dt, blocks, rng, 0.06f);
        dequantize_blocks(dt, o.data.data(), f.data(), int64_t(blocks));
      }
      GgufOut w = o;
      w.type = 0, w.data = f32_bytes(f);
      ts.push_back(std::move(o));
      widened.push_back(std::move(w));
    }
    QCOMPARE(used.size(), rotation.size());  // every type is in the model
    TempFile tmp;
    write_file(tmp.path("q.gguf"), gguf_file(kv, ts));
    write_file(tmp.path("f32.gguf"), gguf_file(kv, widened));
    auto q = load_model(tmp.path("q.gguf")), f = load_model(tmp.path("f32.gguf"));
    QCOMPARE(q->spec.hidden, 256);
    QCOMPARE(q->weights.embed.dtype, DType::Q6_K);  // read in place, rows dequantised per token
    QCOMPARE(q->weights.lm_head.data, q->weights.embed.data);
    QCOMPARE(q->weights.layers[1].router.dtype, DType::F32);  // widened
    std::set<DType> in_place;
    for (const auto& L : q->weights.layers) {
      for (const TensorView* v : {&L.q.w, &L.k.w, &L.v.w, &L.o.w, &L.dense.gate, &L.dense.up, &L.dense.down})
        if (v->data) in_place.insert(v->dtype);
      for (const auto& e : L.experts) in_place.insert(e.gate.dtype), in_place.insert(e.up.dtype), in_place.insert(e.down.dtype);
    }
    QCOMPARE(in_place.size(), rotation.size());
    // Its footprint as loaded: the file's bytes, with the widened routers at 4 bytes a weight.
    const WeightFootprint fp = weight_footprint(q->spec, q->weights);
    int64_t want = 0;
    for (const auto& o : ts)
      want += o.name.find("ffn_gate_inp") != std::string::npos ? int64_t(o.data.size() / 34 * 32 * 4) : int64_t(o.data.size());
    QCOMPARE(fp.total_bytes, want);
    const auto embd = std::find_if(ts.begin(), ts.end(), [](const GgufOut& o) { return o.name == "token_embd.weight"; });
    QCOMPARE(fp.parts.at("embedding").bytes_by_type.at("Q6_K"), int64_t(embd->data.size()));
    QVERIFY(fp.parts.at("router").bytes_by_type.count("F32") && !fp.parts.count("lm_head"));  // tied: counted once
    QVERIFY(fp.decode_bytes_per_token < fp.total_bytes && fp.decode_bytes_per_token > fp.parts.at("embedding").bytes);
    QVERIFY2(types_text(fp).find("Q6_K") != std::string::npos, types_text(fp).c_str());
    std::vector<int32_t> ids;
    for (int i = 0; i < 24; ++i) ids.push_back(int32_t((i * 37 + 11) % 256));
    auto run = [&](std::shared_ptr<const Model> m, cpu::QuantX mode) {
      cpu::set_quant_activations(mode);
      Session session(m, make_backend(m, {"cpu", 256, 2}));
      ForwardResult r = session.prefill(ids, true);
      cpu::set_quant_activations(cpu::QuantX::Int8);
      return r;
    };
    const ForwardResult ref = run(f, cpu::QuantX::Int8);  // F32 weights: the mode does not apply
    const ForwardResult exact = run(q, cpu::QuantX::F32), fast = run(q, cpu::QuantX::Int8);
    float peak = 0.0f, e_exact = 0.0f, e_fast = 0.0f;
    for (size_t i = 0; i < ref.logits.size(); ++i) {
      peak = std::max(peak, std::fabs(ref.logits[i]));
      e_exact = std::max(e_exact, std::fabs(exact.logits[i] - ref.logits[i]));
      e_fast = std::max(e_fast, std::fabs(fast.logits[i] - ref.logits[i]));
    }
    size_t same = 0;
    const size_t token_layers = ref.expert_ids.size() / size_t(ref.top_k);
    for (size_t s = 0; s < token_layers; ++s)
      same += std::equal(ref.expert_ids.begin() + ptrdiff_t(s) * ref.top_k, ref.expert_ids.begin() + ptrdiff_t(s + 1) * ref.top_k,
                         fast.expert_ids.begin() + ptrdiff_t(s) * ref.top_k);
    qInfo("13 block types in place vs the dequantised F32 file: max |logit| %.3g; fp32 activations %.3g; 8-bit "
          "activations %.3g (%.2f %%), same experts on %zu of %zu token-layers",
          double(peak), double(e_exact), double(e_fast), 100.0 * double(e_fast / peak), same, token_layers);
    QVERIFY(exact.expert_ids == ref.expert_ids);
    QVERIFY(e_exact <= 1e-4f * peak);
    QVERIFY(e_fast <= 0.03f * peak);
    QVERIFY(same * 10 >= token_layers * 9);
    QVERIFY(e_fast > 0.0f);  // the integer path ran
  }

  // A GGUF file without a tokenizer of its own (these goldens have placeholder vocabularies) takes
  // tokenizer.json / tokenizer_config.json from beside it; without them, one clear line.
  void tokenizer_beside_the_file() {
    TempFile t;
    fs::copy_file(kData / "gguf" / "mixtral.gguf", t.path("m.gguf"));
    try {
      ChatFormat::from_dir(t.path("m.gguf"));
      QFAIL("no error without tokenizer.json");
    } catch (const Error& e) {
      QVERIFY2(std::string(e.what()).find("m.gguf: the file carries no tokenizer (tokenizer.ggml.model 'none'); put the "
                                          "model's tokenizer.json") != std::string::npos, e.what());
    }
    for (const char* f : {"tokenizer.json", "tokenizer_config.json"})
      fs::copy_file(kData / "models" / "chat-tiny" / f, t.path(f));
    const ChatFormat chat = ChatFormat::from_dir(t.path("m.gguf"));
    const Tokenizer direct = Tokenizer::from_dir(kData / "models" / "chat-tiny");
    QVERIFY(chat.tokenizer().encode("What is 23+58?") == direct.encode("What is 23+58?"));
  }

  // A GGUF file's own tokenizer (tokenizer.ggml.* metadata written by llama.cpp's converter,
  // --vocab-only, from the real tokenizer files) encodes and decodes every tokenizer golden case
  // exactly as transformers' AutoTokenizer does with tokenizer.json, and carries the same chat
  // template. Decoding with skip_special_tokens may differ only where GGUF cannot say what
  // Hugging Face said: tokens the converter marked CONTROL because they look special
  // (<|fim_prefix|> in Qwen3) while tokenizer.json calls them not special.
  void tokenizer_from_metadata_data() {
    QTest::addColumn<QString>("vocab");
    QTest::addColumn<QString>("tokenizer");
    QTest::newRow("qwen3") << "vocab-qwen3" << "qwen3";
    QTest::newRow("deepseek-v3") << "vocab-deepseek-v3" << "deepseek-v3";
    QTest::newRow("llama2") << "vocab-llama2" << "llama2";
  }
  //
  // llama2 (SentencePiece): GGUF keeps scores, not merges, and the converter, given only
  // tokenizer.json (no tokenizer.model here), writes -1000 for every score. The file is therefore
  // given the scores a SentencePiece model has, each piece scored by the rank of the first merge
  // that makes it in tokenizer.json, and the merges rebuilt from them must tokenize as the file's.
  void tokenizer_from_metadata() {
    QFETCH(QString, vocab);
    QFETCH(QString, tokenizer);
    fs::path file = kData / "gguf" / (vocab.toStdString() + ".gguf");
    const fs::path dir = kData / "tokenizers" / tokenizer.toStdString();
    TempFile scored;
    if (tokenizer == "llama2") {
      std::ifstream tj(dir / "tokenizer.json");
      const nlohmann::json hf = nlohmann::json::parse(tj);
      const auto& hv = hf.at("model").at("vocab");
      std::vector<double> score(size_t(hv.size()), 0.0);
      std::vector<bool> seen(score.size(), false);
      const auto& merges = hf.at("model").at("merges");
      for (size_t r = 0; r < merges.size(); ++r) {
        const std::string m = merges[r].get<std::string>();
        const std::string piece = m.substr(0, m.find(' ')) + m.substr(m.find(' ') + 1);
        const size_t id = hv.at(piece).get<size_t>();
        if (!seen[id]) seen[id] = true, score[id] = -double(r);
      }
      auto g = GgufFile::open(file);
      Kv kv = metadata_of(*g);
      for (auto& [k, v] : kv)
        if (k == "tokenizer.ggml.scores") v = gv_floats(score);
      file = scored.path("llama2-scored.gguf");
      write_file(file, gguf_file(kv, {}));
    }
    const Tokenizer g = Tokenizer::from_gguf(file);
    const Tokenizer hf = Tokenizer::from_dir(dir);
    std::set<int32_t> flag_differs;  // special in one, not in the other
    for (int32_t id = 0; id < std::min(g.vocab_size(), hf.vocab_size()); ++id)
      if (g.is_special(id) != hf.is_special(id)) flag_differs.insert(id);
    qInfo("%d ids (tokenizer.json: %d); special flag differs for %zu", g.vocab_size(), hf.vocab_size(), flag_differs.size());
    std::ifstream golden_file(kData / "tokenizers" / "goldens" / (tokenizer.toStdString() + ".json"));
    const nlohmann::json goldens = nlohmann::json::parse(golden_file);
    int cases = 0, skip_compared = 0;
    for (const auto& c : goldens.at("cases")) {
      const std::string text = c.at("text");
      auto ids_of = [](const nlohmann::json& j) {
        const nlohmann::json a = j.is_string() ? nlohmann::json::parse(j.get<std::string>()) : j;
        return a.get<std::vector<int32_t>>();
      };
      const auto ids = ids_of(c.at("auto_ids")), ids_special = ids_of(c.at("auto_ids_special"));
      QVERIFY2(g.encode(text, false) == ids, text.c_str());
      QVERIFY2(g.encode(text, true) == ids_special, text.c_str());
      QCOMPARE(g.decode(ids_special, false), c.at("auto_decode").get<std::string>());
      if (std::none_of(ids_special.begin(), ids_special.end(), [&](int32_t id) { return flag_differs.count(id); })) {
        QCOMPARE(g.decode(ids_special, true), c.at("auto_decode_skip").get<std::string>());
        ++skip_compared;
      }
      ++cases;
    }
    qInfo("%d golden cases encode and decode as transformers (%d also with skip_special_tokens)", cases, skip_compared);
    QVERIFY(cases > 10 && skip_compared > cases / 2);

    // the chat template and its bos/eos: a conversation renders as from tokenizer_config.json
    const ChatFormat from_file = ChatFormat::from_dir(file), from_hf = ChatFormat::from_dir(dir);
    QCOMPARE(from_file.has_template(), from_hf.has_template());  // llama2's files have none
    const nlohmann::ordered_json messages = nlohmann::ordered_json::parse(
        R"([{"role":"system","content":"Be brief."},{"role":"user","content":"What is 23+58?"},)"
        R"({"role":"assistant","content":"81"},{"role":"user","content":"And 2+2?"}])");
    const ChatPrompt a = from_file.render(messages), b = from_hf.render(messages);
    QCOMPARE(a.text, b.text);
    QVERIFY(a.ids == b.ids);
  }

  // A GGUF tokenizer moescope cannot rebuild: one clear line naming the file and the key (and,
  // for an unsupported kind, the way out: a tokenizer.json beside the file).
  void tokenizer_metadata_unsupported() {
    auto g = GgufFile::open(kData / "gguf" / "vocab-qwen3.gguf");
    const Kv kv = metadata_of(*g);
    auto expect = [&](const std::string& key, GgufValue v, const std::string& want) {
      Kv changed = kv;
      for (auto& [k, x] : changed)
        if (k == key) x = v;
      TempFile t;
      write_file(t.path("v.gguf"), gguf_file(changed, {}));
      try {
        ChatFormat::from_dir(t.path("v.gguf"));
      } catch (const Error& e) {
        qInfo("  %s", e.what());
        QVERIFY2(std::string(e.what()).find(want) != std::string::npos, e.what());
        return;
      }
      QFAIL("no error");
    };
    expect("tokenizer.ggml.model", gv_str("bert"),
           "v.gguf: its tokenizer (tokenizer.ggml.model 'bert') cannot be read from GGUF metadata yet");
    expect("tokenizer.ggml.pre", gv_str("llama-bpe"),
           "v.gguf: its pre-tokenizer (tokenizer.ggml.pre 'llama-bpe') is not one moescope knows");
    expect("tokenizer.ggml.token_type", gv_ints(GgufType::Int32, {1, 1}),
           "v.gguf: metadata 'tokenizer.ggml.token_type' does not have one integer per token");
  }

  // ---- models: the golden checkpoints, converted by llama.cpp (tests/tools/gen_gguf_goldens.py)
  void spec_equals_config_json_data() { model_rows(); }
  void spec_equals_config_json() {
    QFETCH(QString, name);
    const std::string n = name.toStdString();
    const ModelSpec hf = load_model_spec(kData / "models" / n);
    const ModelSpec gg = load_model_spec(kData / "gguf" / (n + ".gguf"));
    std::vector<std::string> diff = spec_differences(gg, hf);
    for (const auto& d : diff) qInfo("%s: %s (GGUF vs config.json)", n.c_str(), d.c_str());
    if (n == "deepseek-v2-group") {
      QCOMPARE(int(diff.size()), int(kUnrepresentable.size()));
      for (size_t i = 0; i < diff.size(); ++i) QVERIFY(diff[i].starts_with(kUnrepresentable[i] + ":"));
    } else {
      QVERIFY2(diff.empty(), qPrintable(QString::fromStdString(diff.empty() ? "" : diff[0])));
    }
  }

  // The GGUF file's forward on the CPU backend equals the safetensors checkpoint's: logits within
  // 1e-5 and the same experts in the same order for every token and MoE layer. With fp32
  // activations (QuantX::F32): the two bind some tensors differently (GGUF's joined kv_b is widened
  // to F32), and rounded activations would differ where one is BF16 and the other not.
  void forward_matches_safetensors_data() { model_rows(); }
  void forward_matches_safetensors() {
    QFETCH(QString, name);
    const std::string n = name.toStdString();
    if (n == "deepseek-v2-group") QSKIP("YaRN mscale != mscale_all_dim cannot be stored in GGUF (see spec_equals_config_json)");
    std::ifstream in(kData / "models" / n / "golden.json");
    const auto g = nlohmann::json::parse(in);
    const auto ids = g["input_ids"].get<std::vector<int32_t>>();
    auto run = [&](const fs::path& p) {
      auto model = load_model(p);
      cpu::set_quant_activations(cpu::QuantX::F32);
      Session session(model, make_backend(model, {"cpu", 256, 2}));
      ForwardResult r = session.prefill(ids, true);
      cpu::set_quant_activations(cpu::QuantX::Int8);
      return r;
    };
    const ForwardResult st = run(kData / "models" / n);
    const ForwardResult gg = run(kData / "gguf" / (n + ".gguf"));
    QCOMPARE(gg.logits.size(), st.logits.size());
    float err = 0.0f;
    for (size_t i = 0; i < st.logits.size(); ++i) err = std::max(err, std::fabs(gg.logits[i] - st.logits[i]));
    qInfo("%s: max |logit(GGUF) - logit(safetensors)| = %.3g over %zu logits", n.c_str(), double(err), st.logits.size());
    QVERIFY2(err <= 1e-5f, qPrintable(QString("logit difference %1").arg(double(err))));
    QVERIFY(gg.expert_ids == st.expert_ids);
    float werr = 0.0f;
    for (size_t i = 0; i < st.expert_weights.size(); ++i)
      werr = std::max(werr, std::fabs(gg.expert_weights[i] - st.expert_weights[i]));
    QVERIFY(werr <= 1e-6f);
  }
};

QTEST_GUILESS_MAIN(GgufTest)
#include "test_gguf.moc"
