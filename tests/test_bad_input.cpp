// Bad checkpoints and configs: every case must end in one clear moescope::Error naming the
// problem (and, through the CLI, a non-zero exit with one line on stderr) — never a crash or a
// giant allocation.
#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "moescope/checkpoint.h"
#include "moescope/error.h"
#include "moescope/model_weights.h"
#include "moescope/npy.h"
#include "safetensors_edit.h"

using namespace moescope;
using namespace moescope::test;
namespace fs = std::filesystem;

namespace {

const fs::path kSource = fs::path(MOESCOPE_TEST_DATA) / "models/mixtral";

// A writable copy of the mixtral test model (or of another one in tests/data/models).
fs::path copy_model(const QTemporaryDir& tmp, const fs::path& source = kSource) {
  fs::path dst = fs::path(tmp.path().toStdString()) / "model";
  fs::create_directories(dst);
  for (const auto& e : fs::directory_iterator(source)) fs::copy_file(e.path(), dst / e.path().filename());
  return dst;
}

nlohmann::json config_of(const fs::path& dir) { return nlohmann::json::parse(read_file(dir / "config.json")); }
void set_config(const fs::path& dir, const nlohmann::json& j) { write_file(dir / "config.json", j.dump(2)); }

// A copy of golden model `model` whose config.json has `field` set to the JSON `value` ("<delete>":
// removed; an empty field: the config as it is).
fs::path golden_with_field(const QTemporaryDir& tmp, const QString& model, const QString& field, const QString& value) {
  const fs::path dir = copy_model(tmp, fs::path(MOESCOPE_TEST_DATA) / "models" / model.toStdString());
  if (field.isEmpty()) return dir;
  auto j = config_of(dir);
  if (value == "<delete>") j.erase(field.toStdString());
  else j[field.toStdString()] = nlohmann::json::parse(value.toStdString());
  set_config(dir, j);
  return dir;
}

// Expects load_model to throw an Error whose message contains `needle`.
void expect_error(const fs::path& dir, const char* needle) {
  try {
    load_model(dir);
  } catch (const Error& e) {
    const std::string msg = e.what();
    QVERIFY2(msg.find(needle) != std::string::npos, qPrintable(QString::fromStdString("unexpected message: " + msg)));
    QVERIFY2(msg.find('\n') == std::string::npos, "message must be one line");
    return;
  }
  QFAIL(qPrintable(QString("no error; expected one containing '%1'").arg(needle)));
}

}  // namespace

class BadInputTest : public QObject {
  Q_OBJECT

private slots:
  void config_errors_data() {
    QTest::addColumn<QString>("field");
    QTest::addColumn<QString>("value");  // JSON, or "<delete>"
    QTest::addColumn<QString>("needle");
    QTest::newRow("no architectures") << "architectures" << "<delete>" << "'architectures' is missing";
    QTest::newRow("unknown architecture") << "architectures" << R"(["GPT2LMHeadModel"])"
                                          << "architecture 'GPT2LMHeadModel' is not supported (supported: ";
    QTest::newRow("missing hidden_size") << "hidden_size" << "<delete>" << "field 'hidden_size' is missing";
    QTest::newRow("negative hidden_size") << "hidden_size" << "-48" << "field 'hidden_size' is -48, outside";
    QTest::newRow("enormous vocab") << "vocab_size" << "1000000000000" << "field 'vocab_size'";
    QTest::newRow("string layers") << "num_hidden_layers" << R"("three")" << "must be an integer";
    QTest::newRow("top-k above experts") << "num_experts_per_tok" << "9" << "exceeds the number of experts";
    QTest::newRow("heads not dividing") << "num_attention_heads" << "5" << "not divisible by num_attention_heads";
    QTest::newRow("kv heads not dividing") << "num_key_value_heads" << "3" << "not a multiple of num_key_value_heads";
    QTest::newRow("zero experts") << "num_local_experts" << "0" << "field 'num_local_experts' is 0";
    QTest::newRow("unknown rope") << "rope_scaling" << R"({"type": "dynamic", "factor": 2})"
                                  << "rope scaling type 'dynamic' is not supported";
    QTest::newRow("llama3 rope bands reversed")
        << "rope_scaling"
        << R"({"type": "llama3", "factor": 8, "low_freq_factor": 4, "high_freq_factor": 1, "original_max_position_embeddings": 64})"
        << "rope scaling: high_freq_factor must exceed low_freq_factor";
    QTest::newRow("bad activation") << "hidden_act" << R"("gelu")" << "hidden_act 'gelu' is not supported";
    QTest::newRow("eos outside vocab") << "eos_token_id" << "99999" << "eos_token_id 99999 is outside";
  }
  void config_errors() {
    QFETCH(QString, field);
    QFETCH(QString, value);
    QFETCH(QString, needle);
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    auto j = config_of(dir);
    if (value == "<delete>") j.erase(field.toStdString());
    else j[field.toStdString()] = nlohmann::json::parse(value.toStdString());
    set_config(dir, j);
    expect_error(dir, needle.toUtf8().constData());
  }

  void not_json() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    write_file(dir / "config.json", "{\"architectures\": [");
    expect_error(dir, "config.json: invalid JSON");
  }

  void truncated_file() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    std::string all = read_file(dir / "model.safetensors");
    write_file(dir / "model.safetensors", all.substr(0, all.size() / 2));
    expect_error(dir, "(truncated file?)");
  }

  void tiny_file() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    write_file(dir / "model.safetensors", "abc");
    expect_error(dir, "truncated safetensors file (3 bytes)");
  }

  void header_past_end() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    std::string all = read_file(dir / "model.safetensors");
    uint64_t huge = uint64_t(1) << 40;
    std::memcpy(all.data(), &huge, 8);
    write_file(dir / "model.safetensors", all);
    expect_error(dir, "runs past the end of the file");
  }

  void header_not_json() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    std::string all = read_file(dir / "model.safetensors");
    all[8] = '#';
    write_file(dir / "model.safetensors", all);
    expect_error(dir, "header is not valid JSON");
  }

  void offsets_out_of_range() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    auto st = Safetensors::read(dir / "model.safetensors");
    st.header["model.norm.weight"]["data_offsets"] = {st.data.size() - 4, st.data.size() + 188};
    st.write(dir / "model.safetensors");
    expect_error(dir, "tensor 'model.norm.weight' has data offsets");
  }

  void overlapping_tensors() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    auto st = Safetensors::read(dir / "model.safetensors");
    auto a = st.header["model.norm.weight"]["data_offsets"];
    st.header["model.layers.0.input_layernorm.weight"]["data_offsets"] = a;
    st.write(dir / "model.safetensors");
    expect_error(dir, "overlap");
  }

  void unsupported_dtype() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    auto st = Safetensors::read(dir / "model.safetensors");
    st.header["model.norm.weight"]["dtype"] = "I8";
    st.write(dir / "model.safetensors");
    expect_error(dir, "dtype I8 is not supported");
  }

  void size_mismatch() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    auto st = Safetensors::read(dir / "model.safetensors");
    st.header["model.norm.weight"]["dtype"] = "F16";  // half the bytes the offsets span
    st.write(dir / "model.safetensors");
    expect_error(dir, "holds 192 bytes but its shape [48] and dtype F16 need 96");
  }

  void wrong_shape() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    auto st = Safetensors::read(dir / "model.safetensors");
    st.header["model.norm.weight"]["shape"] = {4, 12};
    st.write(dir / "model.safetensors");
    expect_error(dir, "tensor 'model.norm.weight' has shape [4, 12], expected [48]");
  }

  // gpt-oss fields mixed up: layer_types not one per layer, an unknown layer type, sinks of the
  // wrong shape (the 4-layer, 4-head gpt-oss golden model).
  void gpt_oss_errors_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("layer_types");  // JSON, or empty to break a tensor's shape instead
    QTest::addColumn<QString>("tensor");
    QTest::addColumn<QString>("shape");
    QTest::addColumn<QString>("needle");
    QTest::newRow("layer_types too short")
        << "gpt-oss" << R"(["sliding_attention", "full_attention", "full_attention"])" << "" << ""
        << "layer_types has 3 entries but num_hidden_layers is 4";
    QTest::newRow("unknown layer type")
        << "gpt-oss" << R"(["sliding_attention", "full_attention", "linear_attention", "full_attention"])" << ""
        << "" << "layer_types[2] is 'linear_attention' (supported: sliding_attention, full_attention)";
    QTest::newRow("sinks shape") << "gpt-oss" << "" << "model.layers.0.self_attn.sinks" << "[2, 2]"
                                 << "tensor 'model.layers.0.self_attn.sinks' has shape [2, 2], expected [4]";
    QTest::newRow("quant method") << "gpt-oss-mxfp4" << "" << "" << ""
                                  << "quantization_config.quant_method 'awq' is not supported for gpt-oss (supported: mxfp4)";
    // MXFP4 blocks whose sizes disagree with hidden_size (same bytes, other block split)
    QTest::newRow("mxfp4 blocks shape")
        << "gpt-oss-mxfp4" << "" << "model.layers.0.mlp.experts.gate_up_proj_blocks" << "[8, 64, 1, 32]"
        << "tensor 'model.layers.0.mlp.experts.gate_up_proj_blocks' has shape [8, 64, 1, 32], expected [8, 64, 2, 16]";
  }
  void gpt_oss_errors() {
    QFETCH(QString, model);
    QFETCH(QString, layer_types);
    QFETCH(QString, tensor);
    QFETCH(QString, shape);
    QFETCH(QString, needle);
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp, fs::path(MOESCOPE_TEST_DATA) / "models" / model.toStdString());
    if (!layer_types.isEmpty()) {
      auto j = config_of(dir);
      j["layer_types"] = nlohmann::json::parse(layer_types.toStdString());
      set_config(dir, j);
    } else if (tensor.isEmpty()) {
      auto j = config_of(dir);
      j["quantization_config"]["quant_method"] = "awq";
      set_config(dir, j);
    } else {
      auto st = Safetensors::read(dir / "model.safetensors");
      st.header[tensor.toStdString()]["shape"] = nlohmann::json::parse(shape.toStdString());
      st.write(dir / "model.safetensors");
    }
    expect_error(dir, needle.toUtf8().constData());
  }

  // Qwen3.5 fields mixed up (the 3-layer qwen3.5-moe / qwen3.5-moe-vl golden models): layer_types
  // not one per layer, a layer type it does not have, value heads not shared evenly by key heads,
  // a convolution of the wrong kernel, the multimodal layout without its text config.
  void qwen3_5_errors_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("field");  // config field to set (empty: break a tensor's shape)
    QTest::addColumn<QString>("value");  // JSON, or "<delete>"; a shape for a tensor
    QTest::addColumn<QString>("needle");
    QTest::newRow("layer_types too long")
        << "qwen3.5-moe" << "layer_types"
        << R"(["linear_attention", "full_attention", "linear_attention", "full_attention"])"
        << "layer_types has 4 entries but num_hidden_layers is 3";
    QTest::newRow("layer_types not a list") << "qwen3.5-moe" << "layer_types" << R"("linear_attention")"
                                            << "layer_types must be a list of one layer type per layer (num_hidden_layers 3)";
    QTest::newRow("unknown layer type")
        << "qwen3.5-moe" << "layer_types" << R"(["linear_attention", "sliding_attention", "linear_attention"])"
        << "layer_types[1] is 'sliding_attention' (supported: linear_attention, full_attention)";
    QTest::newRow("value heads not shared by key heads")
        << "qwen3.5-moe" << "linear_num_value_heads" << "3"
        << "linear_num_value_heads 3 is not a multiple of linear_num_key_heads 2";
    QTest::newRow("zero conv kernel") << "qwen3.5-moe" << "linear_conv_kernel_dim" << "0"
                                      << "field 'linear_conv_kernel_dim' is 0";
    // same bytes, another split of the kernel
    QTest::newRow("conv1d shape") << "qwen3.5-moe" << "" << "[80, 2, 2]"
                                  << "tensor 'model.layers.0.linear_attn.conv1d.weight' has shape [80, 2, 2], expected [80, 1, 4]";
    QTest::newRow("no text_config") << "qwen3.5-moe-vl" << "text_config" << "<delete>"
                                    << "Qwen3_5MoeForConditionalGeneration needs a text_config object";
  }
  void qwen3_5_errors() {
    QFETCH(QString, model);
    QFETCH(QString, field);
    QFETCH(QString, value);
    QFETCH(QString, needle);
    QTemporaryDir tmp;
    const fs::path dir = golden_with_field(tmp, model, field, value);
    if (field.isEmpty()) {
      auto st = Safetensors::read(dir / "model.safetensors");
      st.header["model.layers.0.linear_attn.conv1d.weight"]["shape"] = nlohmann::json::parse(value.toStdString());
      st.write(dir / "model.safetensors");
    }
    expect_error(dir, needle.toUtf8().constData());
  }

  // Fields an architecture reads that moescope does not run or that are malformed (the golden
  // models of llama, deepseek-v2-lite, glm4-moe-lite and gpt-oss-mxfp4): MLP biases, the per-layer
  // dense/sparse list of GLM-4.7-Flash, MXFP4 experts whose widths are not whole 32-weight blocks.
  void architecture_field_errors_data() {
    QTest::addColumn<QString>("model");
    QTest::addColumn<QString>("field");
    QTest::addColumn<QString>("value");  // JSON
    QTest::addColumn<QString>("needle");
    QTest::newRow("llama mlp_bias") << "llama" << "mlp_bias" << "true" << "mlp_bias=true is not supported";
    QTest::newRow("deepseek-v2 mlp_bias") << "deepseek-v2-lite" << "mlp_bias" << "true"
                                          << "mlp_bias=true is not supported for DeepSeek-V2";
    QTest::newRow("mlp_layer_types too short") << "glm4-moe-lite" << "mlp_layer_types" << R"(["dense", "sparse"])"
                                               << "mlp_layer_types has 2 entries but num_hidden_layers is 3";
    QTest::newRow("mlp_layer_types not a list")
        << "glm4-moe-lite" << "mlp_layer_types" << R"("sparse")"
        << R"(mlp_layer_types must be a list of "dense" or "sparse" per layer (num_hidden_layers 3))";
    QTest::newRow("mlp_layer_types unknown value")
        << "glm4-moe-lite" << "mlp_layer_types" << R"(["dense", "moe", "sparse"])"
        << "mlp_layer_types[1] is 'moe' (supported: dense, sparse)";
    QTest::newRow("mlp_layer_types number") << "glm4-moe-lite" << "mlp_layer_types" << R"([0, 1, 1])"
                                            << "mlp_layer_types[0] is '0' (supported: dense, sparse)";
    QTest::newRow("mxfp4 width not whole blocks")
        << "gpt-oss-mxfp4" << "intermediate_size" << "48"
        << "MXFP4 experts need hidden_size and intermediate_size to be multiples of 32 (got 64 and 48)";
  }
  void architecture_field_errors() {
    QFETCH(QString, model);
    QFETCH(QString, field);
    QFETCH(QString, value);
    QFETCH(QString, needle);
    QTemporaryDir tmp;
    expect_error(golden_with_field(tmp, model, field, value), needle.toUtf8().constData());
  }

  // U8 is the dtype of MXFP4 blocks and scales only: any other tensor in U8 (right shape, right
  // byte count) is refused by name.
  void u8_outside_mxfp4() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    auto st = Safetensors::read(dir / "model.safetensors");
    auto& t = st.header["model.norm.weight"];
    const uint64_t begin = t["data_offsets"][0].get<uint64_t>();
    t["dtype"] = "U8";
    t["data_offsets"] = {begin, begin + 48};  // [48] U8: 48 bytes
    st.write(dir / "model.safetensors");
    expect_error(dir, "tensor 'model.norm.weight' has dtype U8, which only MXFP4 blocks and scales may have");
  }

  void missing_tensor() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    auto st = Safetensors::read(dir / "model.safetensors");
    st.header.erase("model.layers.1.block_sparse_moe.experts.3.w2.weight");
    st.write(dir / "model.safetensors");
    expect_error(dir, "missing tensor 'model.layers.1.block_sparse_moe.experts.3.w2.weight'");
  }

  void no_weights() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    fs::remove(dir / "model.safetensors");
    expect_error(dir, "no .safetensors files");
  }

  void malformed_index() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    write_file(dir / "model.safetensors.index.json", "{\"weight_map\": [1, 2");
    expect_error(dir, "model.safetensors.index.json: invalid JSON");
    write_file(dir / "model.safetensors.index.json", R"({"weight_map": {"model.norm.weight": "other.safetensors"}})");
    expect_error(dir, "names other.safetensors, which does not exist");
    write_file(dir / "model.safetensors.index.json", R"({"weight_map": {"model.norm.weight": "../x.safetensors"}})");
    expect_error(dir, "must be a plain name");
    write_file(dir / "model.safetensors.index.json", R"({"metadata": {}})");
    expect_error(dir, "no 'weight_map' object");
  }

  // Through the CLI: non-zero exit and exactly one line on stderr.
  void cli_reports_one_line() {
    QTemporaryDir tmp;
    fs::path dir = copy_model(tmp);
    auto j = config_of(dir);
    j["num_experts_per_tok"] = 100;
    set_config(dir, j);
    QProcess p;
    p.start(MOESCOPE_CLI, {"forward", "--model", QString::fromStdString(dir.string()), "--ids", "1,2", "--logits",
                           QString::fromStdString((dir / "x.npy").string())});
    QVERIFY(p.waitForFinished(30000));
    QCOMPARE(p.exitStatus(), QProcess::NormalExit);
    QCOMPARE(p.exitCode(), 1);
    const QString err = QString::fromUtf8(p.readAllStandardError()).trimmed();
    QCOMPARE(err.count('\n'), 0);
    QVERIFY2(err.contains("num_experts_per_tok 100 exceeds the number of experts 8"), qPrintable(err));
  }

  // Numeric options take finite numbers only: nan and inf are one clear line, not a garbage answer.
  void cli_rejects_non_finite_numbers() {
    for (const char* v : {"nan", "inf", "-inf", "1e999"}) {
      QProcess p;
      p.start(MOESCOPE_CLI, {"generate", "--model", QString::fromStdString(kSource.string()), "--ids", "1,2",
                             "--max-tokens", "2", "--temperature", v});
      QVERIFY(p.waitForFinished(30000));
      QCOMPARE(p.exitCode(), 1);
      const QString err = QString::fromUtf8(p.readAllStandardError()).trimmed();
      QVERIFY2(err.endsWith(QString("option --temperature expects a finite number, got '%1'").arg(v)), qPrintable(err));
      QCOMPARE(err.count('\n'), 0);
    }
  }

  // Interventions that leave nothing to route are one clear line: top-k 0, or every routed expert
  // of a layer disabled in a model without a shared expert (mixtral); with a shared expert the CLI
  // says that only it runs there (qwen2-moe).
  // inspect and compare print readable reports by default and JSON with --json; compare says
  // "none" (null) rather than -1, and numbers layers as the model does.
  void cli_reports_and_json() {
    auto run = [](QStringList args) {
      QProcess p;
      p.start(MOESCOPE_CLI, args);
      p.waitForFinished(60000);
      return std::pair(p.exitCode(), QString::fromUtf8(p.readAllStandardOutput()));
    };
    auto [rc, out] = run({"inspect", "--preset", "deepseek-r1"});
    QCOMPARE(rc, 0);
    QVERIFY2(out.contains("671.0B total / 37.6B active parameters per token"), qPrintable(out));
    QVERIFY2(out.contains("memory at 163840 tokens of context"), qPrintable(out));
    QVERIFY(!out.trimmed().startsWith('{'));
    std::tie(rc, out) = run({"inspect", "--preset", "deepseek-r1", "--json"});
    QCOMPARE(rc, 0);
    const auto j = nlohmann::json::parse(out.toStdString());
    QCOMPARE(j["total_params"].get<int64_t>() / 100000000, int64_t(6710));
    QCOMPARE(j["memory_context_tokens"].get<int64_t>(), int64_t(163840));
    const fs::path tiny = fs::path(MOESCOPE_TEST_DATA) / "models/chat-tiny";
    const int first_moe = moescope::load_model_spec(tiny).moe_layer_indices().at(0);
    QCOMPARE(first_moe, 1);
    const QString model = QString::fromStdString(tiny.string());
    const QStringList cmp = {"compare", "--model", model, "--prompt", "Hello", "--max-tokens", "4", "--top-k-experts", "1"};
    std::tie(rc, out) = run(cmp);
    QCOMPARE(rc, 0);
    QVERIFY2(out.contains("first differing answer token: ") && out.contains("first routing change: position 0 (prompt), layer 1"),
             qPrintable(out));  // one expert instead of top-k at once; layer 0 is dense, so model layer 1
    std::tie(rc, out) = run(cmp + QStringList{"--json"});
    QCOMPARE(rc, 0);
    const auto c = nlohmann::json::parse(out.toStdString());
    QCOMPARE(c["first_route_divergence"]["layer"].get<int>(), 1);
    QVERIFY(c["first_token_divergence"].is_null() || c["first_token_divergence"].get<int>() >= 0);
  }

  void cli_empty_expert_sets() {
    auto run = [](const fs::path& model, QStringList extra) {
      QProcess p;
      p.start(MOESCOPE_CLI, QStringList{"generate", "--model", QString::fromStdString(model.string()), "--ids", "1,2",
                                        "--max-tokens", "2"} + extra);
      p.waitForFinished(30000);
      return std::pair(p.exitCode(), QString::fromUtf8(p.readAllStandardError()).trimmed());
    };
    auto [rc, err] = run(kSource, {"--top-k-experts", "0"});
    QCOMPARE(rc, 1);
    QVERIFY2(err.endsWith("--top-k-experts must be between 1 and 8 (the model routes each token to 2; leave the option "
                          "out to keep that)"), qPrintable(err));
    QCOMPARE(err.count('\n'), 0);
    std::tie(rc, err) = run(kSource, {"--disable-experts", "*:0,1,2,3,4,5,6,7"});
    QCOMPARE(rc, 1);
    QVERIFY2(err.endsWith("--disable-experts: every routed expert of layer 0 is disabled and the model has no shared "
                          "expert: that layer's MoE block would add nothing"), qPrintable(err));
    QCOMPARE(err.count('\n'), 0);
    const fs::path shared = fs::path(MOESCOPE_TEST_DATA) / "models/qwen2-moe";
    const moescope::ModelSpec spec = moescope::load_model_spec(shared);
    QVERIFY(spec.moe.shared != moescope::SharedExperts::None);
    QString all;
    for (int e = 0; e < spec.moe.router.n_experts; ++e) all += (e ? "," : "") + QString::number(e);
    const int layer = spec.moe_layer_indices().front();
    std::tie(rc, err) = run(shared, {"--disable-experts", QString("%1:%2").arg(layer).arg(all)});
    QCOMPARE(rc, 0);
    QVERIFY2(err.contains(QString("note: --disable-experts: every routed expert of layer %1 is disabled: only the "
                                  "shared expert runs there").arg(layer)), qPrintable(err));
  }

  // tokenize without --model uses the bundled model, as --help says every command does.
  void cli_tokenize_uses_the_bundled_model() {
    auto run = [](QStringList args) {
      QProcess p;
      p.start(MOESCOPE_CLI, args);
      p.waitForFinished(30000);
      return std::pair(p.exitCode(), QString::fromUtf8(p.readAllStandardOutput()).trimmed());
    };
    const auto [rc, ids] = run({"tokenize", "--text", "What is 23+58?"});
    const auto [rc2, ids2] = run({"tokenize", "--model", QString(MOESCOPE_SOURCE_DIR) + "/resources/models/moescope-tiny",
                                  "--text", "What is 23+58?"});
    QCOMPARE(rc, 0);
    QCOMPARE(rc2, 0);
    QVERIFY(!ids.isEmpty());
    QCOMPARE(ids, ids2);
  }

  void cli_bad_ids() {
    QProcess p;
    p.start(MOESCOPE_CLI, {"forward", "--model", QString::fromStdString(kSource.string()), "--ids", "1,99999",
                           "--logits", "/dev/null"});
    QVERIFY(p.waitForFinished(30000));
    QCOMPARE(p.exitCode(), 1);
    QVERIFY(QString::fromUtf8(p.readAllStandardError()).contains("token id 99999 is outside the vocabulary"));
  }

  // --weights as-stored|q8_0 on every command that loads a model: a bad value is one line and
  // status 1; q8_0 moves the teaching model's logits a little (test_load_options measures it).
  void cli_weights_option() {
    const QString tiny = QString(MOESCOPE_SOURCE_DIR) + "/resources/models/moescope-tiny";
    QTemporaryDir tmp;
    const QString out = tmp.filePath("x.npy");
    auto run = [](const QStringList& args) {
      QProcess p;
      p.start(MOESCOPE_CLI, args);
      p.waitForFinished(60000);
      return std::pair(p.exitCode(), QString::fromUtf8(p.readAllStandardError()).trimmed());
    };
    const QStringList bad = {"--model", tiny, "--weights", "q4"};
    for (const QStringList& cmd :
         {QStringList{"forward", "--ids", "1,2", "--logits", out}, QStringList{"generate", "--ids", "1,2", "--max-tokens", "1"},
          QStringList{"compare", "--prompt", "Hi", "--max-tokens", "1", "--top-k-experts", "1"},
          QStringList{"bench", "--prompt-tokens", "2", "--decode-tokens", "1"}, QStringList{"serve", "--port", "0"}}) {
      const auto [rc, err] = run(cmd + bad);
      QCOMPARE(rc, 1);
      QVERIFY2(err.endsWith("--weights must be as-stored or q8_0 (got 'q4')"), qPrintable(cmd[0] + ": " + err));
      QCOMPARE(err.count('\n'), 0);
    }
    auto [rc, err] = run({"bench", "--shape", "olmoe-1b-7b", "--layers", "1", "--weights", "q8_0"});
    QCOMPARE(rc, 1);
    QVERIFY2(err.endsWith("--weights applies to --model only (--shape builds random BF16 weights)"), qPrintable(err));
    const QStringList fwd = {"forward", "--model", tiny, "--ids", "1,17,305,42,999", "--logits", out};
    std::tie(rc, err) = run(fwd + QStringList{"--weights", "as-stored"});
    QCOMPARE(rc, 0);
    const moescope::NpyArray stored = moescope::read_npy(out.toStdString());
    std::tie(rc, err) = run(fwd + QStringList{"--weights", "q8_0"});
    QCOMPARE(rc, 0);
    const moescope::NpyArray q8 = moescope::read_npy(out.toStdString());
    QCOMPARE(q8.shape, stored.shape);
    float diff = 0.0f, peak = 0.0f;
    for (size_t i = 0; i < q8.data.size(); ++i)
      diff = std::max(diff, std::fabs(q8.data[i] - stored.data[i])), peak = std::max(peak, std::fabs(stored.data[i]));
    QVERIFY2(diff > 0.0f && diff <= 0.03f * peak, qPrintable(QString("max |Δlogit| %1 of max |logit| %2").arg(diff).arg(peak)));
  }
};

QTEST_GUILESS_MAIN(BadInputTest)
#include "test_bad_input.moc"
