// moescope-cli serve (app/cli/cmd_serve.cpp) started on the bundled teaching model on a free
// loopback port and driven with cpp-httplib's client: answers and routing equal what
// `moescope-cli generate --trace` records for the same greedy request (non-streaming and
// streaming, read back with the engine's remote parsers), concurrent clients get the answer they
// get alone, and hostile requests (wrong key, invalid JSON, wrong types, huge body, a client that
// trickles its headers) are refused with a JSON error while the server keeps serving.
#include <arpa/inet.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <cmath>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "moescope/remote_routing.h"
#include "moescope/routing_trace.h"

using namespace moescope;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

const QString kModel = QString::fromStdString((fs::path(MOESCOPE_SOURCE_DIR) / "resources/models/moescope-tiny").string());
const char* kKey = "test-key-123";
const char* kQuestion = "What is 23+58?";

struct Reference {
  std::string text;
  RoutingTrace trace;
};

// `moescope-cli generate` for the same request: its text and its trace.
Reference generate_alone(const QStringList& how, const QTemporaryDir& tmp) {
  const QString trace = tmp.filePath("trace.json");
  QProcess p;
  p.start(MOESCOPE_CLI, QStringList{"generate", "--model", kModel, "--max-tokens", "24", "--trace", trace} + how);
  if (!p.waitForFinished(120000) || p.exitCode() != 0) qFatal("generate failed: %s", p.readAllStandardError().constData());
  std::string out = p.readAllStandardOutput().toStdString();
  if (!out.empty() && out.back() == '\n') out.pop_back();  // generate ends the answer with a newline
  return {out, RoutingTrace::load(trace.toStdString())};
}

// Every slot of both traces: the same experts, weights within half precision.
void same_routing(const RoutingTrace& got, const RoutingTrace& want) {
  QCOMPARE(got.size(), want.size());
  QCOMPARE(got.moe_layers(), want.moe_layers());
  QVERIFY(got.has_weights());
  for (size_t t = 0; t < want.size(); ++t) {
    QCOMPARE(got.token(t).id, want.token(t).id);
    for (int m = 0; m < want.n_moe_layers(); ++m)
      for (int k = 0; k < want.top_k(); ++k) {
        if (got.expert(t, m, k) != want.expert(t, m, k))
          QFAIL(qPrintable(QString("token %1 layer %2 slot %3: expert %4, generate recorded %5").arg(t).arg(m).arg(k)
                               .arg(got.expert(t, m, k)).arg(want.expert(t, m, k))));
        QVERIFY(std::abs(got.weight(t, m, k) - want.weight(t, m, k)) < 2e-3f);
      }
  }
}

class Server {
public:
  explicit Server(const QStringList& extra) {
    p_.setProcessChannelMode(QProcess::SeparateChannels);
    p_.start(MOESCOPE_CLI, QStringList{"serve", "--model", kModel, "--port", "0", "--api-key", kKey} + extra);
    if (!p_.waitForStarted(10000)) qFatal("serve did not start");
    QByteArray line;
    while (!line.contains('\n') && p_.waitForReadyRead(60000)) line += p_.readAllStandardOutput();
    const int colon = line.lastIndexOf(':'), slash = line.indexOf("/v1");
    port_ = line.mid(colon + 1, slash - colon - 1).toInt();
    if (port_ <= 0) qFatal("serve printed no port: %s / %s", line.constData(), p_.readAllStandardError().constData());
  }
  ~Server() {
    p_.terminate();
    if (!p_.waitForFinished(10000)) p_.kill();
  }
  int port() const { return port_; }
  bool running() const { return p_.state() == QProcess::Running; }
  httplib::Client client(const std::string& key = kKey) const {
    httplib::Client c("127.0.0.1", port_);
    c.set_read_timeout(120, 0);
    if (!key.empty()) c.set_default_headers({{"Authorization", "Bearer " + key}});
    return c;
  }

private:
  QProcess p_;
  int port_ = 0;
};

json chat_body(bool stream) {
  return {{"messages", {{{"role", "user"}, {"content", kQuestion}}}}, {"temperature", 0}, {"max_tokens", 24},
          {"stream", stream}, {"return_routed_experts", true}};
}

// The answer and trace of one request, through the engine's parsers for remote responses.
Reference ask(const Server& s, const std::string& path, const json& body, const remote::TraceShape& shape) {
  auto c = s.client();
  auto res = c.Post(path.c_str(), body.dump(), "application/json");
  if (!res || res->status != 200) throw std::runtime_error("request failed: " + (res ? res->body : std::string("no answer")));
  remote::ResponseRouting r;
  if (body.value("stream", false)) {
    remote::StreamAssembler a;
    a.feed(res->body);
    a.finish();
    r = a.result();
  } else {
    r = remote::parse_response_text(res->body);
  }
  if (r.choices.empty()) throw std::runtime_error("no choices");
  return {r.choices[0].text, remote::to_trace(r, 0, shape)};
}

std::pair<int, std::string> status_and_message(const httplib::Result& res) {
  if (!res) return {0, "no answer"};
  const json j = json::parse(res->body, nullptr, false);
  const std::string msg = j.is_object() && j.contains("error") ? j["error"].value("message", "") : "(not a JSON error) " + res->body;
  return {res->status, msg};
}

}  // namespace

class ServeTest : public QObject {
  Q_OBJECT

  QTemporaryDir tmp_;
  std::unique_ptr<Server> server_;
  remote::TraceShape shape_;
  Reference chat_ref_, plain_ref_;

private slots:
  void initTestCase() {
    chat_ref_ = generate_alone({"--prompt", kQuestion, "--chat"}, tmp_);
    plain_ref_ = generate_alone({"--prompt", "The expert"}, tmp_);
    QVERIFY(!chat_ref_.text.empty());
    qInfo("reference: '%s' (%zu trace rows), '%s' (%zu rows)", chat_ref_.text.c_str(), chat_ref_.trace.size(),
          plain_ref_.text.c_str(), plain_ref_.trace.size());
    QVERIFY(chat_ref_.trace.size() > 10 && plain_ref_.trace.size() >= 5);
    server_ = std::make_unique<Server>(QStringList{"--timeout", "2", "--max-body", "1048576"});
    auto res = server_->client().Get("/v1/models");
    QVERIFY(res && res->status == 200);
    const json m = json::parse(res->body)["data"][0];
    QCOMPARE(m["id"].get<std::string>(), std::string("moescope-tiny"));
    shape_.model = m["id"];
    shape_.n_layers = m["moescope"]["n_layers"];
    shape_.moe_layers = m["moescope"]["moe_layers"].get<std::vector<int>>();
    shape_.n_experts = m["moescope"]["n_experts"];
    shape_.top_k = m["moescope"]["top_k"];
  }

  void chat_equals_generate() {
    const Reference got = ask(*server_, "/v1/chat/completions", chat_body(false), shape_);
    QCOMPARE(got.text, chat_ref_.text);
    same_routing(got.trace, chat_ref_.trace);
  }

  void chat_stream_equals_generate() {
    const Reference got = ask(*server_, "/v1/chat/completions", chat_body(true), shape_);
    QCOMPARE(got.text, chat_ref_.text);
    same_routing(got.trace, chat_ref_.trace);
  }

  void completions_equal_generate() {
    for (bool stream : {false, true}) {
      const json body = {{"prompt", "The expert"}, {"temperature", 0}, {"max_tokens", 24}, {"stream", stream},
                         {"return_routed_experts", true}};
      const Reference got = ask(*server_, "/v1/completions", body, shape_);
      QCOMPARE(got.text, plain_ref_.text);
      same_routing(got.trace, plain_ref_.trace);
    }
  }

  void without_the_flag_no_routing() {
    json body = chat_body(false);
    body.erase("return_routed_experts");
    auto res = server_->client().Post("/v1/chat/completions", body.dump(), "application/json");
    QVERIFY(res && res->status == 200);
    const remote::ResponseRouting r = remote::parse_response_text(res->body);
    QVERIFY(!r.has_routing());
    QCOMPARE(r.choices[0].text, chat_ref_.text);
    QVERIFY(r.missing_routing_message().find("\"return_routed_experts\": true") != std::string::npos);
  }

  void concurrent_clients_get_their_own_answer() {
    constexpr int kClients = 4;
    std::vector<std::string> problems(kClients);
    std::vector<std::thread> threads;
    for (int i = 0; i < kClients; ++i)
      threads.emplace_back([&, i] {
        try {
          for (int round = 0; round < 2; ++round) {
            const bool stream = (i + round) % 2 == 1;
            const Reference got = i == 3 ? ask(*server_, "/v1/completions",
                                               {{"prompt", "The expert"}, {"temperature", 0}, {"max_tokens", 24},
                                                {"stream", stream}, {"return_routed_experts", true}},
                                               shape_)
                                         : ask(*server_, "/v1/chat/completions", chat_body(stream), shape_);
            const Reference& want = i == 3 ? plain_ref_ : chat_ref_;
            if (got.text != want.text) problems[size_t(i)] = "text '" + got.text + "' != '" + want.text + "'";
            else if (got.trace.size() != want.trace.size())
              problems[size_t(i)] = "routing has " + std::to_string(got.trace.size()) + " rows, generate recorded " +
                                    std::to_string(want.trace.size());
            else
              for (size_t t = 0; t < want.trace.size(); ++t)
                for (int m = 0; m < want.trace.n_moe_layers(); ++m)
                  for (int k = 0; k < want.trace.top_k(); ++k)
                    if (got.trace.expert(t, m, k) != want.trace.expert(t, m, k)) problems[size_t(i)] = "routing differs";
          }
        } catch (const std::exception& e) {
          problems[size_t(i)] = e.what();
        }
      });
    for (auto& t : threads) t.join();
    for (int i = 0; i < kClients; ++i) QVERIFY2(problems[size_t(i)].empty(), problems[size_t(i)].c_str());
  }

  void api_key_required() {
    auto wrong = server_->client("wrong-key").Post("/v1/chat/completions", chat_body(false).dump(), "application/json");
    auto [status, msg] = status_and_message(wrong);
    QCOMPARE(status, 401);
    QCOMPARE(msg, std::string("invalid API key"));
    auto none = server_->client("").Get("/v1/models");
    std::tie(status, msg) = status_and_message(none);
    QCOMPARE(status, 401);
    QVERIFY(msg.find("missing API key") != std::string::npos);
  }

  void bad_requests_data() {
    QTest::addColumn<QString>("body");
    QTest::addColumn<int>("status");
    QTest::addColumn<QString>("needle");
    QTest::newRow("invalid JSON") << R"({"messages": [)" << 400 << "not valid JSON";
    QTest::newRow("not an object") << R"([1, 2])" << 400 << "must be a JSON object";
    QTest::newRow("messages a string") << R"({"messages": "hi"})" << 400 << "'messages' must be a non-empty list";
    QTest::newRow("role missing") << R"({"messages": [{"content": "hi"}]})" << 400 << "string 'role'";
    QTest::newRow("max_tokens a string") << R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": "ten"})" << 400
                                         << "'max_tokens' must be an integer";
    QTest::newRow("max_tokens too many") << R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 100000})" << 400
                                         << "'max_tokens' must be between 1 and";
    QTest::newRow("temperature negative") << R"({"messages": [{"role": "user", "content": "hi"}], "temperature": -1})" << 400
                                          << "'temperature' must be between";
    QTest::newRow("stream not a bool") << R"({"messages": [{"role": "user", "content": "hi"}], "stream": "yes"})" << 400
                                       << "'stream' must be true or false";
    QTest::newRow("n above 1") << R"({"messages": [{"role": "user", "content": "hi"}], "n": 2})" << 400 << "'n' must be 1";
    QTest::newRow("unknown model") << R"({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]})" << 404
                                   << "The model `gpt-9` does not exist";
    QTest::newRow("unknown fields are ignored") << R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "frobnicate": {"x": [1]}})"
                                                << 200 << "";
  }
  void bad_requests() {
    QFETCH(QString, body);
    QFETCH(int, status);
    QFETCH(QString, needle);
    auto res = server_->client().Post("/v1/chat/completions", body.toStdString(), "application/json");
    if (status == 200) {
      QVERIFY(res && res->status == 200);
      return;
    }
    auto [got, msg] = status_and_message(res);
    QCOMPARE(got, status);
    QVERIFY2(msg.find(needle.toStdString()) != std::string::npos, msg.c_str());
  }

  void huge_body_refused() {
    const std::string big = "{\"messages\": [{\"role\": \"user\", \"content\": \"" + std::string(2 << 20, 'a') + "\"}]}";
    auto [status, msg] = status_and_message(server_->client().Post("/v1/chat/completions", big, "application/json"));
    QCOMPARE(status, 413);
    QCOMPARE(msg, std::string("request body too large"));
    QVERIFY(server_->client().Get("/v1/models"));  // still serving
  }

  void trickling_client_is_cut_off() {
    // Slowloris: a request whose headers never end. The server (--timeout 2) must drop it.
    const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    QVERIFY(fd >= 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(uint16_t(server_->port()));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    QCOMPARE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    const char part[] = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n";
    QVERIFY(::send(fd, part, sizeof part - 1, 0) > 0);
    timeval tv{8, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    const auto t0 = std::chrono::steady_clock::now();
    char buf[256];
    const ssize_t n = ::recv(fd, buf, sizeof buf, 0);  // 0: closed by the server
    const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    ::close(fd);
    QVERIFY2(n == 0 || (n > 0 && std::string(buf, size_t(n)).find("HTTP/1.1 4") == 0), "the connection stayed open");
    QVERIFY2(waited < 7.0, "the server waited longer than its timeout");
    const Reference got = ask(*server_, "/v1/chat/completions", chat_body(false), shape_);  // still serving
    QCOMPARE(got.text, chat_ref_.text);
  }

  void non_loopback_needs_a_key() {
    QProcess p;
    p.start(MOESCOPE_CLI, {"serve", "--model", kModel, "--host", "0.0.0.0", "--port", "0"});
    QVERIFY(p.waitForFinished(60000));
    QCOMPARE(p.exitCode(), 1);
    const QString err = QString::fromUtf8(p.readAllStandardError()).trimmed();
    QCOMPARE(err, QString("moescope-cli serve: --host 0.0.0.0 listens beyond this machine: give --api-key KEY as well"));
  }

  void cleanupTestCase() {
    QVERIFY(server_->running());  // no crash through all of the above
    server_.reset();
  }
};

QTEST_GUILESS_MAIN(ServeTest)
#include "test_serve.moc"
