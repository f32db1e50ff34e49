// Routed experts from remote servers (engine/include/moescope/remote_routing.h): the stored
// responses in tests/data/remote/ (written by tests/tools/gen_remote_samples.py in the shapes vLLM
// and SGLang document, see there for the versions followed) parsed into a RoutingTrace, streams
// split at every byte, and each malformed payload ending in one clear error.
#include <QtTest>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "moescope/error.h"
#include "expect_error.h"
#include "remote_samples.h"
#include "moescope/remote_routing.h"
#include "moescope/routing_dump.h"
#include "moescope/routing_stats.h"

#include <QProcess>

using namespace moescope;
using namespace moescope::remote;
namespace fs = std::filesystem;

namespace {

const fs::path kData = fs::path(MOESCOPE_TEST_DATA) / "remote";

std::string slurp(const std::string& name) {
  std::ifstream in(kData / name, std::ios::binary);
  if (!in) throw std::runtime_error("missing test file " + name);
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

using moescope::test::sample_shape;
const RoutingGeometry kSglangGeometry{3, 2};  // SGLang's layer axis counts every layer

int expected(int t, int m, int k, int c = 0) { return (3 * t + 2 * m + k + 5 * c) % 8; }

// Every routed slot of the trace equals the samples' formula (except rows marked none).
void check_formula(const RoutingTrace& tr, int choice, int none_token = -1) {
  for (size_t t = 0; t < tr.size(); ++t)
    for (int m = 0; m < tr.n_moe_layers(); ++m)
      for (int k = 0; k < tr.top_k(); ++k) {
        const int c = tr.token(t).phase == Phase::Decode ? choice : 0;
        const int want = int(t) == none_token ? -1 : expected(int(t), m, k, c);
        if (tr.expert(t, m, k) != want)
          QFAIL(qPrintable(QString("token %1 layer %2 slot %3: %4, expected %5").arg(t).arg(m).arg(k).arg(tr.expert(t, m, k)).arg(want)));
      }
}

// Phase and expert of every slot, in order.
std::vector<int> routes_of(const RoutingTrace& tr) {
  std::vector<int> out;
  for (size_t t = 0; t < tr.size(); ++t) {
    out.push_back(int(tr.token(t).phase) * 1000 + tr.token(t).pos);
    for (int m = 0; m < tr.n_moe_layers(); ++m)
      for (int k = 0; k < tr.top_k(); ++k) out.push_back(tr.expert(t, m, k));
  }
  return out;
}

RoutingTrace stream_trace(const std::string& text, const RoutingGeometry& g, size_t split, std::string* answer) {
  StreamAssembler a(g);
  a.on_text = [&](int, const std::string& s) { *answer += s; };
  a.feed(std::string_view(text).substr(0, split));
  a.feed(std::string_view(text).substr(split));
  a.finish();
  return to_trace(a.result(), 0, sample_shape());
}

using moescope::test::expect_error;

}  // namespace

class RemoteRoutingTest : public QObject {
  Q_OBJECT

private slots:
  void base64_round_trip_and_splits() {
    std::vector<uint8_t> bytes;
    for (int i = 0; i < 23; ++i) bytes.push_back(uint8_t(i * 37 + 5));
    for (size_t n = 0; n <= bytes.size(); ++n) {
      const std::string text = base64_encode(bytes.data(), n);
      QCOMPARE(base64_decode(text), std::vector<uint8_t>(bytes.begin(), bytes.begin() + std::ptrdiff_t(n)));
      for (size_t cut = 0; cut <= text.size(); ++cut) {  // the same bytes for every split of the text
        Base64Decoder d;
        d.push(std::string_view(text).substr(0, cut));
        d.push(std::string_view(text).substr(cut));
        QCOMPARE(d.finish(), std::vector<uint8_t>(bytes.begin(), bytes.begin() + std::ptrdiff_t(n)));
      }
    }
    QCOMPARE(base64_decode("AAECAw"), (std::vector<uint8_t>{0, 1, 2, 3}));  // padding optional
    expect_error([] { base64_decode("AAE*"); }, "not in the alphabet");
    expect_error([] { base64_decode("AAECA"); }, "truncated");
    expect_error([] { base64_decode("AA==AA"); }, "after '=' padding");
    expect_error([] { base64_decode("A==="); }, "padding");
  }

  void sse_events_split_anywhere() {
    const std::string text = ": comment\r\ndata: one\r\n\r\ndata:two\ndata: lines\n\nevent: x\nid: 3\n\ndata: {\"a\": 1}\r\r";
    const std::vector<std::string> want = {"one", "two\nlines", "{\"a\": 1}"};
    for (size_t cut = 0; cut <= text.size(); ++cut) {
      SseParser p;
      std::vector<std::string> got;
      auto on = [&](const std::string& d) { got.push_back(d); };
      p.feed(std::string_view(text).substr(0, cut), on);
      p.feed(std::string_view(text).substr(cut), on);
      QCOMPARE(got, want);
      QVERIFY(!p.mid_event());
    }
    SseParser small(1024);
    expect_error([&] { small.feed(std::string(2000, 'x'), [](const std::string&) {}); }, "larger than");
  }

  void vllm_chat() {
    const ResponseRouting r = parse_response_text(slurp("vllm_chat.json"));
    QCOMPARE(int(r.server), int(Server::Vllm));
    QCOMPARE(r.choices.size(), size_t(1));
    QCOMPARE(r.choices[0].text, std::string("Hi there"));
    QVERIFY(r.missing_routing_message().empty());
    const RoutingTrace tr = to_trace(r, 0, sample_shape());
    QCOMPARE(tr.size(), size_t(6));  // 3 prompt rows + 3 generated rows
    QCOMPARE(tr.moe_layers(), (std::vector<int>{1, 2}));
    QVERIFY(!tr.has_weights());
    QCOMPARE(tr.token(0).id, 101);
    QCOMPARE(tr.token(3).id, 201);
    QCOMPARE(int(tr.token(2).phase), int(Phase::Prefill));
    QCOMPARE(int(tr.token(3).phase), int(Phase::Decode));
    check_formula(tr, 0);
    // Without a config the shape comes from the payload: layers 0..1, experts up to the largest id.
    const RoutingTrace bare = to_trace(r, 0, {});
    QCOMPARE(bare.moe_layers(), (std::vector<int>{0, 1}));
    QCOMPARE(bare.top_k(), 2);
    QVERIFY(bare.n_experts() >= 7);
    check_formula(bare, 0);
  }

  void vllm_multi_choice_and_prefix_cache() {
    const ResponseRouting r = parse_response_text(slurp("vllm_completions_n2.json"));
    QCOMPARE(r.choices.size(), size_t(2));
    QCOMPARE(r.choices[1].text, std::string("Hello"));
    const RoutingTrace tr = to_trace(r, 1, sample_shape());
    QCOMPARE(tr.size(), size_t(6));
    check_formula(tr, 1, /*none_token=*/0);  // token 0 was a prefix-cache hit: -1 = none
    expect_error([&] { to_trace(r, 2, sample_shape()); }, "no choice 2");
  }

  void vllm_stream_split_anywhere() {
    const std::string text = slurp("vllm_chat_stream.txt");
    const RoutingTrace whole = to_trace(parse_response_text(slurp("vllm_chat.json")), 0, sample_shape());
    for (size_t cut = 0; cut <= text.size(); ++cut) {
      std::string answer;
      const RoutingTrace tr = stream_trace(text, {}, cut, &answer);
      QCOMPARE(answer, std::string("Hi there"));
      QCOMPARE(routes_of(tr), routes_of(whole));  // the stream carries no token ids: compare the routing
    }
  }

  void sglang_chat() {
    expect_error([&] { parse_response_text(slurp("sglang_chat.json")); }, "give the model's config.json");
    const ResponseRouting r = parse_response_text(slurp("sglang_chat.json"), kSglangGeometry);
    QCOMPARE(int(r.server), int(Server::Sglang));
    const RoutingTrace tr = to_trace(r, 0, sample_shape());
    // seqlen - 1 rows: the last sampled token was never fed; all layers in the payload, MoE ones kept
    QCOMPARE(tr.size(), size_t(5));
    QCOMPARE(tr.moe_layers(), (std::vector<int>{1, 2}));
    QCOMPARE(int(tr.token(2).phase), int(Phase::Prefill));
    QCOMPARE(int(tr.token(3).phase), int(Phase::Decode));
    check_formula(tr, 0);
    // Another model's config: the payload's 3 layers fit neither its MoE layers nor its layers.
    TraceShape other = sample_shape();
    other.n_layers = 5;
    other.moe_layers = {1, 2, 3, 4};
    expect_error([&] { to_trace(r, 0, other); }, "layers a token; the model has 5 layers, 4 of them MoE");
    expect_error([&] { parse_response_text(slurp("sglang_chat.json"), {4, 2}); }, "do not split into tokens of 4 layers");
  }

  void sglang_stream_split_anywhere() {
    const std::string text = slurp("sglang_chat_stream.txt");
    const std::vector<int> whole = routes_of(to_trace(parse_response_text(slurp("sglang_chat.json"), kSglangGeometry), 0, sample_shape()));
    for (size_t cut = 0; cut <= text.size(); ++cut) {
      std::string answer;
      const RoutingTrace tr = stream_trace(text, kSglangGeometry, cut, &answer);
      QCOMPARE(answer, std::string("Hi there"));
      QCOMPARE(routes_of(tr), whole);
    }
  }

  void sglang_generate() {
    const ResponseRouting one = parse_response_text(slurp("sglang_generate.json"), kSglangGeometry);
    const RoutingTrace tr = to_trace(one, 0, sample_shape());
    QCOMPARE(tr.size(), size_t(5));
    QCOMPARE(tr.token(3).id, 201);
    check_formula(tr, 0);
    const ResponseRouting two = parse_response_text(slurp("sglang_generate_n2.json"), kSglangGeometry);
    QCOMPARE(two.choices.size(), size_t(2));
    QCOMPARE(two.choices[1].text, std::string("Hello"));
    const RoutingTrace tr1 = to_trace(two, 1, sample_shape());
    QCOMPARE(tr1.size(), size_t(5));
    check_formula(tr1, 1);
  }

  void no_routing_says_which_flag() {
    const ResponseRouting r = parse_response_text(slurp("vllm_chat_no_routing.json"));
    QVERIFY(!r.has_routing());
    QVERIFY(r.missing_routing_message().find("--enable-return-routed-experts") != std::string::npos);
    expect_error([&] { to_trace(r, 0, sample_shape()); }, "start vLLM with --enable-return-routed-experts");
    const ResponseRouting s = parse_response_text(R"({"choices": [{"index": 0, "message": {"content": "x"}}], "metadata": {"weight_version": "default"}})");
    expect_error([&] { to_trace(s, 0, sample_shape()); }, "\"return_routed_experts\": true");
  }

  // A reasoning model behind vLLM (gpt-oss' harmony channels, or a <think> parser): the thinking
  // comes apart from the answer, as message.reasoning_content (newer vLLM: reasoning) or, when
  // streaming, delta.reasoning_content; moescope-cli serve sends the same for gpt-oss.
  void reasoning_content_apart_from_text() {
    ResponseRouting r = parse_response_text(
        R"({"choices": [{"index": 0, "message": {"role": "assistant", "content": "4.", "reasoning_content": "2+2 is 4."}}]})");
    QCOMPARE(r.choices[0].text, std::string("4."));
    QCOMPARE(r.choices[0].reasoning, std::string("2+2 is 4."));
    r = parse_response_text(R"({"choices": [{"index": 0, "message": {"content": null, "reasoning": "still"}}]})");
    QCOMPARE(r.choices[0].text, std::string());
    QCOMPARE(r.choices[0].reasoning, std::string("still"));
    StreamAssembler a;
    a.feed("data: {\"choices\": [{\"index\": 0, \"delta\": {\"role\": \"assistant\", \"content\": \"\"}}]}\n\n"
           "data: {\"choices\": [{\"index\": 0, \"delta\": {\"reasoning_content\": \"2+2\"}}]}\n\n"
           "data: {\"choices\": [{\"index\": 0, \"delta\": {\"reasoning_content\": \" is 4.\"}}]}\n\n"
           "data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"4.\"}, \"finish_reason\": \"stop\"}]}\n\n"
           "data: [DONE]\n\n");
    a.finish();
    QCOMPARE(a.result().choices[0].reasoning, std::string("2+2 is 4."));
    QCOMPARE(a.result().choices[0].text, std::string("4."));
  }

  void malformed_data() {
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("needle");
    QTest::newRow("base64 cut inside a value") << "bad_base64_truncated.json" << "base64: truncated text";
    QTest::newRow("base64 short of a value") << "bad_base64_short.json" << "117 bytes is not a whole number of int32 values";
    QTest::newRow("base64 bad character") << "bad_base64_char.json" << "not in the alphabet";
    QTest::newRow("ragged nested list") << "bad_ragged.json" << "token 1 has 1 layers, token 0 has 2";
    QTest::newRow("expert id beyond the model") << "bad_expert_id.json" << "is not below the model's 8 experts";
    QTest::newRow("truncated body") << "bad_truncated_body.json" << "invalid JSON";
    QTest::newRow("error body") << "error_body.json" << "server error: The model `nope` does not exist.";
    QTest::newRow("stream without [DONE]") << "bad_stream_no_done.txt" << "ended before \"data: [DONE]\"";
    QTest::newRow("stream cut mid-event") << "bad_stream_cut.txt" << "stream ended";
    QTest::newRow("error event in a stream") << "bad_stream_error.txt" << "server error: out of KV cache";
  }
  void malformed() {
    QFETCH(QString, file);
    QFETCH(QString, needle);
    const std::string name = file.toStdString();
    const std::string text = slurp(name);
    expect_error(
        [&] {
          if (name.size() > 4 && name.substr(name.size() - 4) == ".txt") {
            StreamAssembler a(kSglangGeometry);
            a.feed(text);
            a.finish();
            to_trace(a.result(), 0, sample_shape());
          } else {
            to_trace(parse_response_text(text, name.find("base64") != std::string::npos ? kSglangGeometry : RoutingGeometry{}), 0,
                     sample_shape());
          }
        },
        needle.toStdString().c_str());
  }

  void weights_unknown_trace() {
    const RoutingTrace tr = to_trace(parse_response_text(slurp("vllm_chat.json")), 0, sample_shape());
    const nlohmann::json j = tr.to_json();
    QCOMPARE(j["weights_known"], nlohmann::json(false));
    QVERIFY(!j["tokens"][0]["routes"][0].contains("weights"));
    const RoutingTrace back = RoutingTrace::from_json(j);
    QVERIFY(!back.has_weights());
    QCOMPARE(back.to_json(), j);
    RoutingStats st = RoutingStats::for_trace(back);
    st.add_all(back);
    QCOMPARE(st.tokens(), int64_t(6));
    int64_t total = 0;
    for (int64_t v : st.load(0)) total += v;
    QCOMPARE(total, int64_t(6 * 2));  // statistics from the ids alone
    // A trace with weights stays as it was.
    RoutingTrace w("m", 4, 1, {0});
    const int32_t id = 2;
    const float wt = 0.5f;
    w.append(TraceToken{}, &id, &wt, 1);
    QVERIFY(w.has_weights());
    QVERIFY(w.to_json()["tokens"][0]["routes"][0].contains("weights"));
    QVERIFY(!w.to_json().contains("weights_known"));
  }

  // ---- routing dumps (moescope/routing_dump.h) against the loads the generator counted ----
  void dumps_data() {
    QTest::addColumn<QString>("file");
    QTest::addColumn<QString>("token_ids");
    QTest::addColumn<bool>("with_model");
    QTest::newRow("vLLM JSON lines, model known") << "dump_vllm.jsonl" << "" << true;
    QTest::newRow("vLLM JSON lines, shape from the payload") << "dump_vllm.jsonl" << "" << false;
    QTest::newRow("SGLang JSON lines (base64, all layers)") << "dump_sglang.jsonl" << "" << true;
    QTest::newRow("npy [seqs, tokens, layers, top_k] with token ids") << "dump_routing.npy" << "dump_token_ids.npy" << true;
  }
  void dumps() {
    QFETCH(QString, file);
    QFETCH(QString, token_ids);
    QFETCH(bool, with_model);
    const nlohmann::json want = nlohmann::json::parse(slurp("dump_expected.json"))[file.toStdString()];
    const fs::path ids = token_ids.isEmpty() ? fs::path() : kData / token_ids.toStdString();
    const RoutingStats st = dump_stats(kData / file.toStdString(), with_model ? sample_shape() : TraceShape{}, ids);
    QCOMPARE(st.tokens(), want["tokens"].get<int64_t>());
    QCOMPARE(st.n_experts(), 8);
    QCOMPARE(st.moe_layers(), (with_model ? std::vector<int>{1, 2} : std::vector<int>{0, 1}));
    for (int m = 0; m < 2; ++m) QCOMPARE(st.load(m), want["load"][size_t(m)].get<std::vector<int64_t>>());
  }

  void bad_dumps() {
    const TraceShape s = sample_shape();
    expect_error([&] { dump_stats(kData / "bad_dump_float.npy", s); }, "dtype '<f4' is not a little-endian integer");
    expect_error([&] { dump_stats(kData / "bad_dump_truncated.npy", s); }, "truncated .npy data");
    expect_error([&] { dump_stats(kData / "dump_routing.npy", s, kData / "dump_routing.npy"); },
                 "token ids [2, 5, 3, 2] must have the shape of the routing's leading dimensions [2, 5]");
    expect_error([&] { dump_stats(kData / "dump_sglang.jsonl", {}); }, "dump_sglang.jsonl line 1: sglext.routed_experts: a base64 array carries no shape");
    expect_error([&] { dump_stats(kData / "dump_vllm.jsonl", s, kData / "dump_token_ids.npy"); }, "apply to .npy and .safetensors dumps only");
    expect_error([&] { dump_stats(kData / "nowhere.jsonl", s); }, "cannot open");
  }

  void cli_stats_reads_dumps() {
    QProcess p;
    p.start(MOESCOPE_CLI, {"stats", "--trace", QString::fromStdString((kData / "dump_vllm.jsonl").string())});
    QVERIFY(p.waitForFinished(60000));
    QCOMPARE(p.exitCode(), 0);
    const QStringList rows = QString::fromUtf8(p.readAllStandardOutput()).trimmed().split('\n');
    QCOMPARE(rows.size(), 5);  // header, layers 0 and 1, "mean", "worst"
    QCOMPARE(rows[0], QString("layer,tokens,cv,maxvio,entropy,dead,distinct"));
    QVERIFY2(rows[1].startsWith("0,21,"), qPrintable(rows[1]));
    QVERIFY2(rows[3].startsWith("mean,21,") && rows[4].startsWith("worst,21,"), qPrintable(rows.join(' ')));
    p.start(MOESCOPE_CLI, {"stats", "--trace", QString::fromStdString((kData / "bad_dump_float.npy").string())});
    QVERIFY(p.waitForFinished(60000));
    QCOMPARE(p.exitCode(), 1);
    QVERIFY(QString::fromUtf8(p.readAllStandardError()).trimmed().endsWith("(expert ids: int16, int32, ...)"));
  }
};

QTEST_GUILESS_MAIN(RemoteRoutingTest)
#include "test_remote_routing.moc"
