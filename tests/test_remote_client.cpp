// The remote backend (ui/remote_client.cpp) through the engine host, as the app drives it:
//   - against `moescope-cli serve` started here on a free loopback port (the bundled teaching
//     model): a chat streams, and the routing the app holds equals the routing a local load of the
//     same model records for the same greedy request; stop mid-answer; the server killed
//     mid-answer (the partial answer is kept); a wrong API key; a model the server does not have;
//   - against a scripted HTTP server on a loopback QTcpServer that plays the wire shapes vLLM and
//     SGLang document (tests/data/remote/*_stream.txt): routing at the end of the stream, layer axis
//     of all layers (SGLang), no routing at all (the notice names the flag), a server that never
//     answers (timeout), a stream cut mid-event, an HTTP error with a JSON body.
#include <QProcess>
#include <QSignalSpy>
#include <QSslConfiguration>
#include <QSslSocket>
#include <QTcpServer>
#include <QTcpSocket>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "moescope/routing_trace.h"
#include "ui/engine_feed.h"
#include "ui/engine_host.h"
#include "ui/remote_client.h"
#include "remote_test_util.h"

using namespace moescope;
using namespace moescope::ui;
namespace fs = std::filesystem;

namespace {

using namespace moescope::test;

SamplingSettings greedy(int max_tokens) {
  SamplingSettings s;
  s.temperature = 0.0;
  s.top_p = 1.0;
  s.top_k = 0;
  s.min_p = 0.0;
  s.repetition_penalty = 1.0;
  s.max_tokens = max_tokens;
  return s;
}

nlohmann::ordered_json question(const char* text) {
  return nlohmann::ordered_json::array({{{"role", "user"}, {"content", text}}});
}

// Connects `host` and waits for the outcome; returns the load-failure message (empty: connected).
QString connect_host(EngineHost& host, const RemoteServer& server) {
  QSignalSpy ok(&host, &EngineHost::modelLoaded), bad(&host, &EngineHost::modelLoadFailed);
  host.connectServer(server);
  if (!QTest::qWaitFor([&] { return ok.count() + bad.count() > 0; }, 30000)) return QStringLiteral("no answer in 30 s");
  return bad.isEmpty() ? QString() : bad.front().at(1).toString();
}

struct Answer {
  GenerationSummary summary;
  QString failure;
  QString streamed_text;
  int chunks = 0;
  int chunks_with_routing = 0;
  RoutingTrace fed;  // what the views were fed: the chunks' segments appended
};

Answer ask(EngineHost& host, const nlohmann::ordered_json& messages, const SamplingSettings& s,
           const std::function<void(EngineHost&, const StreamChunk&)>& on_chunk = {}, bool stop_at_eos = true) {
  Answer a;
  a.fed = RoutingTrace(host.model().name.toStdString(), host.model().n_experts, host.model().top_k, host.model().moe_layers);
  QMetaObject::Connection c1 = QObject::connect(&host, &EngineHost::streamed, [&](const StreamChunk& chunk) {
    ++a.chunks;
    a.streamed_text += chunk.text;
    if (chunk.trace && chunk.trace->size() > 0) {
      ++a.chunks_with_routing;
      if (chunk.trace->same_shape(a.fed)) a.fed.append(*chunk.trace);
    }
    if (on_chunk) on_chunk(host, chunk);
  });
  bool done = false;
  QMetaObject::Connection c2 = QObject::connect(&host, &EngineHost::generationFinished, [&](const GenerationSummary& s) {
    a.summary = s;
    done = true;
  });
  QMetaObject::Connection c3 = QObject::connect(&host, &EngineHost::generationFailed, [&](const QString& m) {
    a.failure = m;
    done = true;
  });
  QMetaObject::Connection c4 = QObject::connect(&host, &EngineHost::contextOverflow, [&](int prompt, int context, int) {
    a.failure = QStringLiteral("context overflow: %1 of %2").arg(prompt).arg(context);
    done = true;
  });
  GenerationRequest r;
  r.messages_json = messages.dump();
  r.sampling = s;
  r.seed = 7;
  r.stop_at_eos = stop_at_eos;
  if (!host.generate(std::move(r))) a.failure = QStringLiteral("the host refused to generate");
  else if (!QTest::qWaitFor([&] { return done; }, 60000)) a.failure = QStringLiteral("no answer in 60 s");
  QObject::disconnect(c1);
  QObject::disconnect(c2);
  QObject::disconnect(c3);
  QObject::disconnect(c4);
  return a;
}

// phases: compare them too (a later turn's prompt holds the earlier answers, which the local
// session decoded and a server takes as prompt).
void same_routing(const RoutingTrace& got, const RoutingTrace& want, bool weights, bool phases = true) {
  QCOMPARE(got.size(), want.size());
  QCOMPARE(got.moe_layers(), want.moe_layers());
  QCOMPARE(got.n_experts(), want.n_experts());
  QCOMPARE(got.has_weights(), weights);
  for (size_t t = 0; t < want.size(); ++t) {
    QCOMPARE(got.token(t).pos, want.token(t).pos);
    QCOMPARE(got.token(t).id, want.token(t).id);
    if (phases) QVERIFY2(got.token(t).phase == want.token(t).phase, qPrintable(QString("token %1 of %2: phase %3, locally %4").arg(t).arg(want.size()).arg(int(got.token(t).phase)).arg(int(want.token(t).phase))));
    for (int m = 0; m < want.n_moe_layers(); ++m)
      for (int k = 0; k < want.top_k(); ++k) {
        if (got.expert(t, m, k) != want.expert(t, m, k))
          QFAIL(qPrintable(QString("token %1 layer %2 slot %3: expert %4 from the server, %5 locally").arg(t).arg(m).arg(k)
                               .arg(got.expert(t, m, k)).arg(want.expert(t, m, k))));
        if (weights) QVERIFY(std::abs(got.weight(t, m, k) - want.weight(t, m, k)) < 2e-3f);
      }
  }
}

RemoteServer server_at(const QString& url, const QString& key = {}, int timeout_ms = 20000) {
  RemoteServer s;
  s.url = url;
  s.api_key = key;
  s.timeout_ms = timeout_ms;
  return s;
}

}  // namespace

class TestRemoteClient : public QObject {
  Q_OBJECT
private slots:
  void endpoints_and_error_bodies() {
    QCOMPARE(remote_endpoint("http://h:8000", "/v1/models").toString(), QString("http://h:8000/v1/models"));
    QCOMPARE(remote_endpoint("http://h:8000/v1/", "/v1/models").toString(), QString("http://h:8000/v1/models"));
    QCOMPARE(remote_endpoint("https://h", "/v1/chat/completions").toString(), QString("https://h/v1/chat/completions"));
    for (const char* bad : {"h:8000", "ftp://h", "http://", ""}) {
      bool threw = false;
      try {
        remote_endpoint(bad, "/v1/models");
      } catch (const std::exception& e) {
        threw = QString(e.what()).contains("http://host:port");
      }
      QVERIFY2(threw, bad);
    }
    QCOMPARE(remote_error_message("{\"error\":{\"message\":\"bad key\",\"type\":\"auth\"}}"), QString("bad key"));
    QCOMPARE(remote_error_message("{\"object\":\"error\",\"message\":\"too long\"}"), QString("too long"));
    QCOMPARE(remote_error_message("{\"detail\":\"Not Found\"}"), QString("Not Found"));
    QCOMPARE(remote_error_message("plain text"), QString("plain text"));
    QCOMPARE(inferred_expert_count(5), 8);
    QCOMPARE(inferred_expert_count(63), 64);
    QCOMPARE(inferred_expert_count(200), 256);
    QCOMPARE(inferred_expert_count(700), 701);
  }

  // The chat streams from the server and the routing equals a local run of the same request.
  void streams_routing_equal_to_local() {
    Serve serve;
    EngineHost remote_host(nullptr), local_host(nullptr);
    QCOMPARE(connect_host(remote_host, server_at(serve.url(), kKey)), QString());
    QVERIFY(remote_host.isRemote());
    const ModelInfo& info = remote_host.model();
    QCOMPARE(info.name, QString("moescope-tiny"));
    QVERIFY(info.backend.startsWith("server http://127.0.0.1:"));
    QVERIFY(info.shape_source.contains("server"));

    QSignalSpy loaded(&local_host, &EngineHost::modelLoaded);
    local_host.loadModel(kServeModel, "cpu", 1);
    QVERIFY(QTest::qWaitFor([&] { return loaded.count() == 1; }, 60000));
    QCOMPARE(info.n_experts, local_host.model().n_experts);
    QCOMPARE(info.top_k, local_host.model().top_k);
    QCOMPARE(info.moe_layers, local_host.model().moe_layers);

    const auto messages = question("What is 23+58?");
    const Answer got = ask(remote_host, messages, greedy(24));
    const Answer want = ask(local_host, messages, greedy(24));
    QCOMPARE(got.failure, QString());
    QCOMPARE(got.summary.error, QString());
    QCOMPARE(got.summary.notice, QString());
    QVERIFY(!got.summary.text.isEmpty());
    QCOMPARE(got.summary.text, want.summary.text);
    QCOMPARE(got.streamed_text, got.summary.text);
    QCOMPARE(got.summary.stop_reason, want.summary.stop_reason);
    QCOMPARE(got.summary.generated_tokens, want.summary.generated_tokens);
    QVERIFY(got.summary.prefill_seconds > 0);  // time to the first token
    QVERIFY(got.chunks_with_routing > 0);       // routing arrived while streaming, not only at the end
    QVERIFY(got.summary.trace && want.summary.trace);
    same_routing(*got.summary.trace, *want.summary.trace, /*weights=*/true);
    same_routing(got.fed, *want.summary.trace, /*weights=*/true);  // what the views were fed live

    // A second turn (the server re-runs the whole conversation; the trace starts at position 0).
    auto turn2 = messages;
    turn2.push_back({{"role", "assistant"}, {"content", got.summary.text.toStdString()}});
    turn2.push_back({{"role", "user"}, {"content", "What is 791-126?"}});
    const Answer got2 = ask(remote_host, turn2, greedy(16));
    const Answer want2 = ask(local_host, turn2, greedy(16));
    QCOMPARE(got2.summary.text, want2.summary.text);
    same_routing(*got2.summary.trace, *want2.summary.trace, true, /*phases=*/false);

    // Experiments need a local model: one clear message.
    QSignalSpy compared(&remote_host, &EngineHost::compared);
    CompareRequest cr;
    cr.prompt = "hi";
    remote_host.compare(cr);
    QVERIFY(QTest::qWaitFor([&] { return compared.count() == 1; }, 10000));
    QVERIFY(compared.front().at(0).value<CompareOutcome>().error.contains("open a local model"));
  }

  void stop_and_server_killed_mid_answer() {
    Serve serve;
    EngineHost host(nullptr);
    QCOMPARE(connect_host(host, server_at(serve.url(), kKey)), QString());
    // Stop after the first chunk: the request is closed, the answer is what arrived.
    // ignore_eos (stop_at_eos = false): an answer of the full 400 tokens unless stopped.
    const Answer stopped =
        ask(host, question("What is an expert?"), greedy(400), [](EngineHost& h, const StreamChunk&) { h.stop(); }, false);
    QCOMPARE(stopped.failure, QString());
    QVERIFY(stopped.summary.cancelled);
    QCOMPARE(stopped.summary.stop_reason, QString("cancelled"));
    QVERIFY2(stopped.summary.generated_tokens < 400, qPrintable(QString::number(stopped.summary.generated_tokens)));
    // The host takes the next answer at once.
    const Answer after = ask(host, question("What is 23+58?"), greedy(8));
    QCOMPARE(after.failure, QString());
    QVERIFY(!after.summary.text.isEmpty());

    // The server killed mid-answer: the answer ends with an error and keeps what arrived.
    bool killed = false;
    const Answer cut = ask(host, question("Reverse the word 'apple'."), greedy(400), [&](EngineHost&, const StreamChunk& c) {
      if (!killed && !c.text.isEmpty()) {
        serve.kill();
        killed = true;
      }
    }, false);
    QVERIFY(killed);
    if (cut.failure.isEmpty()) {
      QVERIFY2(!cut.summary.error.isEmpty(), qPrintable(cut.summary.stop_reason));
      QVERIFY(!cut.summary.text.isEmpty());
      QCOMPARE(cut.summary.stop_reason, QString("error"));
    } else {
      QVERIFY2(cut.failure.contains("closed") || cut.failure.contains("mid-answer"), qPrintable(cut.failure));
    }
    // Connecting to the dead server now says so.
    EngineHost again(nullptr);
    QVERIFY(connect_host(again, server_at(serve.url(), kKey)).contains("connection refused"));
  }

  // More tokens asked than the server's context holds: asked again with the room there is; a
  // conversation that does not fit at all is the host's contextOverflow (the chat offers a new one).
  void answers_within_the_servers_context() {
    Serve serve;
    EngineHost host(nullptr);
    QCOMPARE(connect_host(host, server_at(serve.url(), kKey)), QString());
    const Answer a = ask(host, question("What is 23+58?"), greedy(512));  // 18 prompt tokens + 512 > 512
    QCOMPARE(a.failure, QString());
    QVERIFY(!a.summary.text.isEmpty());
    QSignalSpy overflow(&host, &EngineHost::contextOverflow);
    std::string long_text;
    for (int i = 0; i < 300; ++i) long_text += "expert router token ";
    const Answer b = ask(host, question(long_text.c_str()), greedy(8));
    QVERIFY2(overflow.count() == 1, qPrintable(b.failure));
    QCOMPARE(overflow.front().at(1).toInt(), 512);
    QVERIFY(overflow.front().at(0).toInt() > 512);
    QVERIFY(!host.isGenerating());
  }

  void wrong_key_and_unknown_model() {
    Serve serve;
    EngineHost host(nullptr);
    const QString wrong = connect_host(host, server_at(serve.url(), "not-the-key"));
    QVERIFY2(wrong.contains("refused the API key (HTTP 401)"), qPrintable(wrong));
    QVERIFY(!wrong.contains("not-the-key"));  // the key is never repeated in messages
    const QString none = connect_host(host, server_at(serve.url()));
    QVERIFY2(none.contains("HTTP 401"), qPrintable(none));
    RemoteServer s = server_at(serve.url(), kKey);
    s.model = "deepseek-r1";
    const QString unknown = connect_host(host, s);
    QVERIFY2(unknown.contains("has no model 'deepseek-r1' (it lists moescope-tiny)"), qPrintable(unknown));
    QVERIFY(!host.hasModel());

    QSignalSpy listed(&host, &EngineHost::modelsListed);
    const quint64 id = host.listModels(server_at(serve.url(), kKey));
    QVERIFY(QTest::qWaitFor([&] { return listed.count() == 1; }, 10000));
    const auto out = listed.front().at(0).value<ModelListOutcome>();
    QCOMPARE(out.id, id);
    QCOMPARE(out.models, QStringList{"moescope-tiny"});
  }

  // vLLM's documented stream: routing only in the last chunk, layer axis = MoE layers, no
  // weights; no config, so the expert count is inferred and the views get the learned shape.
  void vllm_stream_routing_at_the_end() {
    Scripted server;
    server.answer = Scripted::sse_response(QByteArray::fromStdString(read_file(fs::path(MOESCOPE_TEST_DATA) / "remote/vllm_chat_stream.txt")));
    EngineHost host(nullptr);
    QCOMPARE(connect_host(host, server_at(server.url())), QString());
    QCOMPARE(host.model().name, QString("Qwen/Qwen3-30B-A3B"));
    QCOMPARE(host.model().context_length, 40960);
    QSignalSpy shape(&host, &EngineHost::modelShapeChanged);
    const Answer a = ask(host, question("hi"), greedy(3));
    QCOMPARE(a.failure, QString());
    QCOMPARE(a.summary.text, QString("Hi there"));
    QCOMPARE(a.summary.stop_reason, QString("max_tokens"));
    QCOMPARE(a.summary.notice, QString());
    QCOMPARE(shape.count(), 1);
    QCOMPARE(host.model().top_k, 2);
    QCOMPARE(host.model().moe_layers, (std::vector<int>{0, 1}));
    QCOMPARE(host.model().n_experts, 8);  // largest id 7
    QVERIFY(a.summary.trace);
    const RoutingTrace& t = *a.summary.trace;
    QCOMPARE(t.size(), size_t(6));  // 3 prompt rows + 3 generated
    QVERIFY(!t.has_weights());
    QVERIFY(t.token(3).phase == Phase::Decode);
    QCOMPARE(t.token(3).text, std::string("Hi"));
    QCOMPARE(t.expert(0, 0, 0), 0);
    QCOMPARE(t.expert(5, 1, 1), 2);
    // The request asked for routing (SGLang's switch) and streamed with usage.
    const QByteArray req = server.last_request;
    QVERIFY(req.contains("\"return_routed_experts\":true"));
    QVERIFY(req.contains("\"stream\":true"));
    QVERIFY(!req.contains("Authorization"));  // no key given, none sent
  }

  // SGLang: one base64 array of prompt + output rows over every layer, in a chunk with no
  // choices. It carries no shape, so without a config the notice says to give one; with one (3
  // layers, the first dense) the dense layer's rows are left out.
  void sglang_stream_with_a_config() {
    Scripted server;
    server.answer = Scripted::sse_response(QByteArray::fromStdString(read_file(fs::path(MOESCOPE_TEST_DATA) / "remote/sglang_chat_stream.txt")));
    EngineHost host(nullptr);
    QCOMPARE(connect_host(host, server_at(server.url(), "sk-test")), QString());
    const Answer bare = ask(host, question("hi"), greedy(3));
    QCOMPARE(bare.failure, QString());
    QCOMPARE(bare.summary.text, QString("Hi there"));
    QVERIFY2(bare.summary.error.contains("give the model's config.json"), qPrintable(bare.summary.error));
    QVERIFY(server.last_request.contains("Authorization: Bearer sk-test"));

    QTemporaryDir dir;
    {
      std::ofstream f(dir.filePath("config.json").toStdString());
      f << nlohmann::json{{"architectures", {"Qwen3MoeForCausalLM"}}, {"model_type", "qwen3_moe"}, {"num_hidden_layers", 3},
                          {"num_experts", 8}, {"num_experts_per_tok", 2}, {"mlp_only_layers", {0}}, {"decoder_sparse_step", 1},
                          {"hidden_size", 64}, {"intermediate_size", 128}, {"moe_intermediate_size", 32},
                          {"num_attention_heads", 4}, {"num_key_value_heads", 2}, {"head_dim", 16}, {"vocab_size", 1000},
                          {"max_position_embeddings", 4096}, {"rms_norm_eps", 1e-6}, {"rope_theta", 1000000.0},
                          {"norm_topk_prob", true}}
                .dump();
    }
    RemoteServer s = server_at(server.url(), "sk-test");
    s.config = dir.path();
    QCOMPARE(connect_host(host, s), QString());
    QCOMPARE(host.model().moe_layers, (std::vector<int>{1, 2}));
    QCOMPARE(host.model().context_length, 40960);  // the server's max_model_len
    const Answer a = ask(host, question("hi"), greedy(3));
    QCOMPARE(a.summary.notice, QString());
    QVERIFY(a.summary.trace);
    QCOMPARE(a.summary.trace->size(), size_t(5));  // 3 prompt + 3 output tokens, the last one never fed
    QCOMPARE(a.summary.trace->moe_layers(), (std::vector<int>{1, 2}));
  }

  void no_routing_says_which_flag() {
    Scripted server;
    server.answer = Scripted::sse_response(
        "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hello\"},\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n");
    EngineHost host(nullptr);
    QCOMPARE(connect_host(host, server_at(server.url())), QString());
    const Answer a = ask(host, question("hi"), greedy(8));
    QCOMPARE(a.failure, QString());
    QCOMPARE(a.summary.text, QString("Hello"));
    QCOMPARE(a.summary.stop_reason, QString("eos"));
    QVERIFY2(a.summary.notice.contains("--enable-return-routed-experts"), qPrintable(a.summary.notice));
    QVERIFY(!a.summary.trace);
  }

  // A reasoning model's thinking arrives apart (vLLM's reasoning parsers: reasoning_content;
  // newer vLLM: reasoning): the chat gets it inside <think>…</think>, folded by ui/thinking.h.
  void reasoning_arrives_as_thinking() {
    Scripted server;
    server.answer = Scripted::sse_response(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"reasoning_content\":\"Let me\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning\":\" add.\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"81\"}}]}\n\n"
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\ndata: [DONE]\n\n");
    EngineHost host(nullptr);
    QCOMPARE(connect_host(host, server_at(server.url())), QString());
    const Answer a = ask(host, question("What is 23+58?"), greedy(8));
    QCOMPARE(a.failure, QString());
    QCOMPARE(a.summary.text, QString("<think>Let me add.</think>\n\n81"));
    QCOMPARE(a.streamed_text, a.summary.text);
    QCOMPARE(a.summary.generated_tokens, 3);
  }

  void cut_stream_keeps_the_partial_answer() {
    Scripted server;
    const QByteArray full = Scripted::sse_response(QByteArray::fromStdString(read_file(fs::path(MOESCOPE_TEST_DATA) / "remote/vllm_chat_stream.txt")));
    server.answer = full;
    server.cut = full.indexOf("\"ere\"") + 20;  // inside the fourth event
    EngineHost host(nullptr);
    QCOMPARE(connect_host(host, server_at(server.url())), QString());
    const Answer a = ask(host, question("hi"), greedy(3));
    QCOMPARE(a.failure, QString());
    QCOMPARE(a.summary.text, QString("Hi th"));
    QVERIFY2(a.summary.error.contains("middle of an event") || a.summary.error.contains("[DONE]"), qPrintable(a.summary.error));
    QCOMPARE(a.summary.stop_reason, QString("error"));
  }

  void http_error_and_malformed_payload() {
    Scripted server;
    server.answer = Scripted::json_response(
        "{\"object\":\"error\",\"message\":\"This model's maximum context length is 40960 tokens.\",\"type\":\"BadRequestError\",\"code\":400}", 400,
        "Bad Request");
    EngineHost host(nullptr);
    QCOMPARE(connect_host(host, server_at(server.url())), QString());
    const Answer a = ask(host, question("hi"), greedy(3));
    QVERIFY2(a.failure.contains("HTTP 400") && a.failure.contains("maximum context length is 40960"), qPrintable(a.failure));

    server.answer = Scripted::sse_response("data: {\"choices\": [{\"index\": 0, \"delta\": {\"content\": \"Hi\"}}]}\n\ndata: {not json\n\n");
    const Answer b = ask(host, question("hi"), greedy(3));
    QCOMPARE(b.failure, QString());
    QCOMPARE(b.summary.text, QString("Hi"));
    QVERIFY2(b.summary.error.contains("invalid JSON"), qPrintable(b.summary.error));
  }

  // HTTPS through Qt's TLS: a chat with a server whose certificate is trusted (here: added to the
  // default configuration's CAs, as a system store would hold it).
  void https_with_a_trusted_certificate() {
    if (!QSslSocket::supportsSsl()) QSKIP("no TLS backend in this Qt");
    QTemporaryDir dir;
    Scripted server(dir.path());
    if (!server.listening()) QSKIP("openssl could not make a certificate here");
    server.answer = Scripted::sse_response(QByteArray::fromStdString(read_file(fs::path(MOESCOPE_TEST_DATA) / "remote/vllm_chat_stream.txt")));
    QVERIFY(server.url().startsWith("https://"));
    EngineHost host(nullptr);
    const QString untrusted = connect_host(host, server_at(server.url()));
    QVERIFY2(untrusted.contains("TLS handshake"), qPrintable(untrusted));
    const QSslConfiguration before = QSslConfiguration::defaultConfiguration();
    QSslConfiguration trusting = before;
    trusting.addCaCertificate(server.certificate());
    QSslConfiguration::setDefaultConfiguration(trusting);
    EngineHost fresh(nullptr);  // a new network manager, with the trusting configuration
    const QString m = connect_host(fresh, server_at(server.url()));
    const Answer a = ask(fresh, question("hi"), greedy(3));
    QSslConfiguration::setDefaultConfiguration(before);
    QCOMPARE(m, QString());
    QCOMPARE(a.failure, QString());
    QCOMPARE(a.summary.text, QString("Hi there"));
    QVERIFY(a.summary.trace && a.summary.trace->size() == 6);
  }

  void timeouts() {
    Scripted server;
    server.hang_models = true;
    EngineHost host(nullptr);
    QElapsedTimer clock;
    clock.start();
    const QString m = connect_host(host, server_at(server.url(), {}, 1000));
    QVERIFY2(m.contains("sent nothing for 1 s"), qPrintable(m));
    QVERIFY(clock.elapsed() < 10000);

    server.hang_models = false;
    server.hang = true;
    QCOMPARE(connect_host(host, server_at(server.url(), {}, 1000)), QString());
    const Answer a = ask(host, question("hi"), greedy(3));
    QVERIFY2(a.failure.contains("timed out"), qPrintable(a.failure));

    QCOMPARE(connect_host(host, server_at("http://127.0.0.1:1")).contains("connection refused"), true);
  }
};

QTEST_GUILESS_MAIN(TestRemoteClient)
#include "test_remote_client.moc"
