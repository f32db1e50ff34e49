// moescope-cli serve (app/cli/cmd_serve.cpp) started on the bundled teaching model on a free
// loopback port and driven with cpp-httplib's client: answers and routing equal what
// `moescope-cli generate --trace` records for the same greedy request (non-streaming and
// streaming, read back with the engine's remote parsers), concurrent clients get the answer they
// get alone (also under a load of 8 streaming clients for 5 s, 60 s in the `slow` case
// test_serve_load, with the server's memory flat), hostile requests (wrong key, invalid JSON, wrong
// types, huge body, a client that trickles its bytes, a storm of 10,000 connections) are refused
// while the server keeps serving, a gpt-oss-shaped (harmony) model's answer comes split into
// reasoning_content and content with no special token in either, and bench-serve reads the
// server's timing.
#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <QProcess>
#include <QTemporaryDir>
#include <QtTest>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "moescope/error.h"
#include "moescope/harmony.h"
#include "moescope/remote_routing.h"
#include "serve_process.h"
#include "moescope/routing_trace.h"
#include "moescope/tokenizer.h"

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
  std::string finish;  // finish_reason (server answers only)
};

using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// A number from /proc/PID/status ("VmRSS" in kB, "Threads"); -1 when unreadable.
long proc_status(qint64 pid, const char* key) {
  std::ifstream f("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  const std::string k = std::string(key) + ":";
  while (std::getline(f, line))
    if (line.rfind(k, 0) == 0) return std::stol(line.substr(k.size()));
  return -1;
}

// Open descriptors of a process.
long open_fds(qint64 pid) {
  long n = 0;
  std::error_code ec;
  for (auto it = fs::directory_iterator("/proc/" + std::to_string(pid) + "/fd", ec); !ec && it != fs::directory_iterator();
       it.increment(ec))
    ++n;
  return ec ? -1 : n;
}

int connect_loopback(int port, bool nonblocking) {
  const int fd = ::socket(AF_INET, SOCK_STREAM | (nonblocking ? SOCK_NONBLOCK : 0), 0);
  if (fd < 0) return -1;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(uint16_t(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 && errno != EINPROGRESS) {
    ::close(fd);
    return -1;
  }
  return fd;
}

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
  explicit Server(const QStringList& extra, const QString& model = kModel)
      : port_(moescope::test::start_serve(p_, QStringList{"serve", "--model", model, "--port", "0", "--api-key", kKey} + extra)) {}
  ~Server() {
    p_.terminate();
    if (!p_.waitForFinished(10000)) p_.kill();
  }
  int port() const { return port_; }
  qint64 pid() const { return p_.processId(); }
  // SIGTERM, then the exit status (-1: still running after 20 s, -2: killed by a signal) and stderr.
  std::pair<int, QString> terminate_and_wait() {
    p_.terminate();
    if (!p_.waitForFinished(20000)) {
      p_.kill();
      p_.waitForFinished(5000);
      return {-1, QString()};
    }
    return {p_.exitStatus() == QProcess::NormalExit ? p_.exitCode() : -2, QString::fromUtf8(p_.readAllStandardError())};
  }
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
  return {r.choices[0].text, remote::to_trace(r, 0, shape), r.choices[0].finish_reason};
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

  // 8 streaming clients at once, each asking again as soon as its answer is in, for
  // MOESCOPE_SERVE_LOAD_SECONDS (5 by default; the `slow` CTest case test_serve_load sets 60):
  // every answer is complete (a finish_reason and data: [DONE]) and equal, text and routing, to the
  // same greedy request alone; the server stays up and its resident memory stays flat (VmRSS after
  // a warm-up round against the end, growth below 16 MiB).
  void load_of_streaming_clients() {
    const int env = qEnvironmentVariableIntValue("MOESCOPE_SERVE_LOAD_SECONDS");
    const double seconds = env > 0 ? env : 5;
    constexpr int kClients = 8;
    constexpr long kMaxGrowthKiB = 16 * 1024;
    const json plain = {{"prompt", "The expert"}, {"temperature", 0}, {"max_tokens", 24}, {"stream", true},
                        {"return_routed_experts", true}};
    std::atomic<bool> stop{false};
    std::vector<std::string> problems(kClients);
    std::vector<int> answers(kClients, 0);
    auto client = [&](int i, bool once) {
      try {
        do {
          const bool chat = i % 2 == 0;
          const Reference got = chat ? ask(*server_, "/v1/chat/completions", chat_body(true), shape_)
                                     : ask(*server_, "/v1/completions", plain, shape_);
          const Reference& want = chat ? chat_ref_ : plain_ref_;
          if (got.finish.empty()) throw std::runtime_error("an answer without a finish_reason");
          if (got.text != want.text) throw std::runtime_error("text '" + got.text + "' != '" + want.text + "'");
          if (got.trace.size() != want.trace.size()) throw std::runtime_error("routing rows differ");
          for (size_t t = 0; t < want.trace.size(); ++t)
            for (int m = 0; m < want.trace.n_moe_layers(); ++m)
              for (int k = 0; k < want.trace.top_k(); ++k)
                if (got.trace.expert(t, m, k) != want.trace.expert(t, m, k))
                  throw std::runtime_error("routing differs at token " + std::to_string(t));
          ++answers[size_t(i)];
        } while (!once && !stop);
      } catch (const std::exception& e) {
        problems[size_t(i)] = e.what();
      }
    };
    auto round = [&](bool once) {
      std::vector<std::thread> threads;
      for (int i = 0; i < kClients; ++i) threads.emplace_back(client, i, once);
      return threads;
    };
    for (auto& t : round(true)) t.join();  // warm-up: every connection thread and buffer in use once
    for (int i = 0; i < kClients; ++i) QVERIFY2(problems[size_t(i)].empty(), problems[size_t(i)].c_str());
    const long rss0 = proc_status(server_->pid(), "VmRSS");
    QVERIFY(rss0 > 0);
    const auto t0 = Clock::now();
    auto threads = round(false);
    while (since(t0) < seconds && server_->running()) QTest::qWait(100);
    stop = true;
    for (auto& t : threads) t.join();
    const double took = since(t0);
    const long rss1 = proc_status(server_->pid(), "VmRSS");
    int total = 0;
    for (int i = 0; i < kClients; ++i) {
      QVERIFY2(problems[size_t(i)].empty(), qPrintable(QString("client %1: %2").arg(i).arg(problems[size_t(i)].c_str())));
      QVERIFY(answers[size_t(i)] > 1);
      total += answers[size_t(i)];
    }
    QVERIFY(server_->running());
    qInfo("load: %d clients, %.1f s, %d streamed answers (%.1f/s), all equal to the answer alone; server VmRSS %ld -> %ld kB "
          "(%+ld kB)",
          kClients, took, total, total / took, rss0, rss1, rss1 - rss0);
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    // ASan keeps freed memory in quarantine (up to 256 MiB) and TSan its shadow: the resident size
    // of a sanitized server grows by design, so only the uninstrumented build checks it.
    qInfo("load: built with a sanitizer: VmRSS growth not checked");
#else
    QVERIFY2(rss1 - rss0 < kMaxGrowthKiB, qPrintable(QString("VmRSS grew by %1 kB").arg(rss1 - rss0)));
#endif
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
    QTest::newRow("prompt + max_tokens beyond the context")
        << R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 510})" << 400
        << "maximum context length is";
    QTest::newRow("n above 1") << R"({"messages": [{"role": "user", "content": "hi"}], "n": 2})" << 400 << "'n' must be 1";
    QTest::newRow("unknown model") << R"({"model": "gpt-9", "messages": [{"role": "user", "content": "hi"}]})" << 404
                                   << "The model `gpt-9` does not exist";
    QTest::newRow("unknown fields are ignored") << R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "frobnicate": {"x": [1]}})"
                                                << 200 << "";
    QTest::newRow("empty body") << "" << 400 << "not valid JSON";
    QTest::newRow("messages an object") << R"({"messages": {"role": "user", "content": "hi"}})" << 400
                                        << "'messages' must be a non-empty list";
    QTest::newRow("messages empty") << R"({"messages": []})" << 400 << "'messages' must be a non-empty list";
    QTest::newRow("content a number") << R"({"messages": [{"role": "user", "content": 5}]})" << 400
                                      << "content must be a string or a list of text parts";
    QTest::newRow("max_tokens a float") << R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2.5})" << 400
                                        << "'max_tokens' must be an integer";
    QTest::newRow("temperature hot") << R"({"messages": [{"role": "user", "content": "hi"}], "temperature": "hot"})" << 400
                                     << "'temperature' must be a number";
    QTest::newRow("n 1e9") << R"({"messages": [{"role": "user", "content": "hi"}], "n": 1e9})" << 400
                           << "'n' must be an integer";
    QTest::newRow("n 1000000000") << R"({"messages": [{"role": "user", "content": "hi"}], "n": 1000000000})" << 400
                                  << "'n' must be 1";
    QTest::newRow("seed beyond int64") << R"({"messages": [{"role": "user", "content": "hi"}], "seed": 1e30})" << 400
                                       << "'seed' must be an integer";
    QTest::newRow("stream_options a list") << R"({"messages": [{"role": "user", "content": "hi"}], "stream_options": [1]})"
                                           << 400 << "'stream_options' must be an object";
    QTest::newRow("ignore_eos a string") << R"({"messages": [{"role": "user", "content": "hi"}], "ignore_eos": "y"})" << 400
                                         << "'ignore_eos' must be true or false";
    // 500,000 levels of nesting in 1 MB: nlohmann's parser and destructor are iterative, no stack overflow.
    QTest::newRow("nested 500000 deep") << QString(500000, '[') + QString(500000, ']') << 400 << "must be a JSON object";
    QTest::newRow("messages nested deep") << "{\"messages\": " + QString(200000, '[') + QString(200000, ']') + "}" << 400
                                          << "messages[0] must be an object";
    QTest::newRow("NUL in JSON") << QString::fromLatin1("{\"messages\": [\0]}", 16) << 400 << "not valid JSON";
  }
  void bad_requests() {
    QFETCH(QString, body);
    QFETCH(int, status);
    QFETCH(QString, needle);
    const QByteArray raw = body.toLatin1();
    auto res = server_->client().Post("/v1/chat/completions", std::string(raw.constData(), size_t(raw.size())),
                                      "application/json");
    if (status == 200) {
      QVERIFY(res && res->status == 200);
    } else {
      auto [got, msg] = status_and_message(res);
      QCOMPARE(got, status);
      QVERIFY2(msg.find(needle.toStdString()) != std::string::npos, msg.c_str());
    }
    // ... and the server keeps serving: a normal request right after is answered.
    auto ok = server_->client().Post("/v1/chat/completions",
                                     R"({"messages": [{"role": "user", "content": "hi"}], "max_tokens": 2, "temperature": 0})",
                                     "application/json");
    QVERIFY(ok && ok->status == 200);
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

  // Three requests in one write (HTTP/1.1 pipelining): the front keeps what it read past the
  // first one and answers all three, in order, then closes as the last asked.
  void pipelined_requests_answered_in_order() {
    const std::string body = R"({"prompt": "The expert", "max_tokens": 3, "temperature": 0})";
    const std::string auth = std::string("Authorization: Bearer ") + kKey + "\r\n";
    const std::string reqs = "GET /v1/models HTTP/1.1\r\nHost: x\r\n" + auth + "\r\n" +
                             "POST /v1/completions HTTP/1.1\r\nHost: x\r\n" + auth + "Content-Length: " +
                             std::to_string(body.size()) + "\r\n\r\n" + body +
                             "GET /v1/nothing HTTP/1.1\r\nHost: x\r\n" + auth + "Connection: close\r\n\r\n";
    const int fd = connect_loopback(server_->port(), false);
    QVERIFY(fd >= 0);
    QCOMPARE(::send(fd, reqs.data(), reqs.size(), MSG_NOSIGNAL), ssize_t(reqs.size()));
    timeval tv{10, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string got;
    char buf[4096];
    for (ssize_t n; (n = ::recv(fd, buf, sizeof buf, 0)) > 0;) got.append(buf, size_t(n));
    ::close(fd);
    const size_t a = got.find("HTTP/1.1 200"), b = got.find("HTTP/1.1 200", a + 1), c = got.find("HTTP/1.1 404", b + 1);
    QVERIFY2(a == 0 && b != std::string::npos && c != std::string::npos, got.c_str());
    QVERIFY(got.find("\"object\":\"list\"") < b);
    QVERIFY(got.find("text_completion", b) < c);
  }

  // Slowloris proper: bytes that keep coming, one every 300 ms, so that no single read waits longer
  // than the --timeout (2 s), from more clients than there are connection threads (8). Each is cut
  // off about 2 s after its first byte (a whole request must arrive within --timeout), and a normal
  // request sent while they trickle is answered within 2 s + its own time.
  void trickling_bytes_are_cut_off() {
    constexpr int kTricklers = 12;
    std::vector<double> lasted(kTricklers, -1);
    std::vector<std::thread> threads;
    for (int i = 0; i < kTricklers; ++i)
      threads.emplace_back([&, i] {
        const int fd = connect_loopback(server_->port(), false);
        if (fd < 0) return;
        const std::string req = "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Length: 400\r\nX-Pad: " +
                                std::string(200, 'a');
        const auto t0 = Clock::now();
        for (size_t b = 0; b < req.size() && since(t0) < 12; ++b) {
          if (::send(fd, &req[b], 1, MSG_NOSIGNAL) != 1) break;
          pollfd p{fd, POLLIN, 0};
          if (::poll(&p, 1, 300) > 0) {  // the server answered (408/400) or closed
            char buf[512];
            if (::recv(fd, buf, sizeof buf, 0) <= 0) break;
          }
        }
        lasted[size_t(i)] = since(t0);
        ::close(fd);
      });
    QTest::qWait(500);  // every trickler has begun
    const auto t0 = Clock::now();
    const Reference got = ask(*server_, "/v1/chat/completions", chat_body(false), shape_);
    const double answered = since(t0);
    for (auto& t : threads) t.join();
    QCOMPARE(got.text, chat_ref_.text);
    double longest = 0;
    for (double l : lasted) {
      QVERIFY(l >= 0);
      longest = std::max(longest, l);
    }
    qInfo("trickle: %d clients sending a byte every 300 ms cut off after at most %.2f s; a request beside them answered in %.2f s",
          kTricklers, longest, answered);
    QVERIFY2(longest < 4.0, "a trickling client was kept longer than --timeout (2 s) + 2 s");
    QVERIFY2(answered < 6.0, "a normal request waited behind the tricklers");
  }

  // 10,000 connection attempts at once (non-blocking connects, held open for 1 s without a byte,
  // then closed). The server must stay bounded: no thread per connection (its thread count does
  // not grow), descriptors bounded by --max-connections (default 256; more are answered 503 and
  // closed), and a request after the storm is answered within 5 s.
  void connection_storm_is_bounded() {
    rlimit lim{};
    QCOMPARE(::getrlimit(RLIMIT_NOFILE, &lim), 0);
    const rlim_t want = 10000 + 256;
    if (lim.rlim_cur < want) {
      lim.rlim_cur = std::min(want, lim.rlim_max);
      ::setrlimit(RLIMIT_NOFILE, &lim);
    }
    const int n = int(std::min<rlim_t>(10000, lim.rlim_cur > 256 ? lim.rlim_cur - 256 : 0));
    QVERIFY2(n >= 1000, "not even 1000 descriptors for the storm");
    const qint64 pid = server_->pid();
    const long threads0 = proc_status(pid, "Threads"), fds0 = open_fds(pid);
    long max_threads = threads0, max_fds = fds0;
    auto sample = [&] {
      max_threads = std::max(max_threads, proc_status(pid, "Threads"));
      max_fds = std::max(max_fds, open_fds(pid));
    };
    std::vector<int> fds;
    fds.reserve(size_t(n));
    const auto t0 = Clock::now();
    int failed = 0;
    for (int i = 0; i < n && since(t0) < 20; ++i) {
      const int fd = connect_loopback(server_->port(), true);
      if (fd < 0) ++failed;
      else fds.push_back(fd);
      if (i % 500 == 0) sample();
    }
    const double opened = since(t0);
    for (int w = 0; w < 10; ++w) {
      sample();
      QTest::qWait(100);
    }
    // What the clients got: a 503 (refused at once), a close, or nothing yet (held by the server).
    int busy = 0;
    for (int fd : fds) {
      char buf[64];
      const ssize_t r = ::recv(fd, buf, sizeof buf, MSG_DONTWAIT);
      if (r > 0 && std::string(buf, size_t(r)).rfind("HTTP/1.1 503", 0) == 0) ++busy;
    }
    for (int fd : fds) ::close(fd);
    const double storm = since(t0);
    const auto t1 = Clock::now();
    const Reference got = ask(*server_, "/v1/chat/completions", chat_body(false), shape_);
    const double after = since(t1);
    // Connections the kernel completed after the client had gone, or whose close is still on its
    // way, are idle ones: closed within the keep-alive time (2 s here).
    long fds_after = open_fds(pid);
    const auto t2 = Clock::now();
    while (fds_after > fds0 + 8 && since(t2) < 6) {
      QTest::qWait(100);
      fds_after = open_fds(pid);
    }
    const double drained = since(t2);
    qInfo("storm: %d connects (%d failed) in %.2f s, closed after %.2f s; %d answered 503; server threads %ld -> max %ld, "
          "descriptors %ld -> max %ld -> %ld %.1f s after; the next request answered in %.2f s",
          n, failed, opened, storm, busy, threads0, max_threads, fds0, max_fds, fds_after, drained, after);
    QCOMPARE(got.text, chat_ref_.text);
    QVERIFY2(max_threads <= threads0 + 2, "the server started threads for connections");
    QVERIFY2(max_fds <= fds0 + 256 + 16, "more descriptors open than --max-connections");
    QVERIFY2(fds_after <= fds0 + 8, "descriptors left open 6 s after the storm");
    QVERIFY(drained < 4.0);  // the keep-alive time (2 s) and some
    QVERIFY2(after < 5.0, "the request after the storm waited more than 5 s");
    QVERIFY(storm < 30.0);
  }

  // A gpt-oss-shaped checkpoint: chat-tiny's weights, its tokenizer with the role tokens renamed to
  // harmony's (<|start|>, <|channel|>, <|message|>, <|return|>; <|end|> it has), gpt-oss' chat
  // template. tests/data has no real gpt-oss tokenizer and no gpt-oss model that writes harmony
  // channels, so the model's sampled answers put the markers wherever chance does; what is checked
  // on them holds for any id sequence: the message's content and reasoning_content are exactly the
  // channel split of the answer's token ids (HarmonyParser, tested on well-formed answers in
  // test_template), streaming gives the same deltas, and no harmony token's text is in either.
  void harmony_answer_split_into_reasoning_and_content() {
    QTemporaryDir dir;
    const fs::path d = dir.path().toStdString(), tiny = fs::path(MOESCOPE_TEST_DATA) / "models" / "chat-tiny";
    for (const char* f : {"config.json", "model.safetensors", "generation_config.json"}) fs::copy_file(tiny / f, d / f);
    std::ifstream in(tiny / "tokenizer.json", std::ios::binary);
    std::string vocab((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (auto [from, to] : {std::pair{"\"<|system|>\"", "\"<|start|>\""}, std::pair{"\"<|user|>\"", "\"<|channel|>\""},
                            std::pair{"\"<|assistant|>\"", "\"<|message|>\""}, std::pair{"\"<|begin|>\"", "\"<|return|>\""}})
      for (size_t at = vocab.find(from); at != std::string::npos; at = vocab.find(from, at)) vocab.replace(at, std::string(from).size(), to);
    std::ofstream(d / "tokenizer.json", std::ios::binary) << vocab;
    std::ofstream(d / "tokenizer_config.json") << R"({"bos_token": "<|startoftext|>", "eos_token": "<|return|>"})";
    fs::copy_file(fs::path(MOESCOPE_TEST_DATA) / "templates" / "gpt-oss.jinja", d / "chat_template.jinja");
    const Tokenizer tok = Tokenizer::from_file(d / "tokenizer.json");

    Server s({"--timeout", "5"}, QString::fromStdString(d.string()));
    int with_markers = 0, with_message = 0;
    for (int seed = 1; seed <= 12; ++seed) {
      json body = {{"messages", {{{"role", "user"}, {"content", "hi"}}}}, {"temperature", 100}, {"seed", seed},
                   {"max_tokens", 96}, {"return_token_ids", true}};
      auto res = s.client().Post("/v1/chat/completions", body.dump(), "application/json");
      QVERIFY(res && res->status == 200);
      const json j = json::parse(res->body);
      const json& msg = j["choices"][0]["message"];
      const std::vector<int32_t> ids = j["choices"][0]["token_ids"].get<std::vector<int32_t>>();
      const HarmonyText want = HarmonyParser::parse(tok, ids);
      const std::string content = msg["content"].is_string() ? msg["content"].get<std::string>() : "";
      const std::string reasoning = msg["reasoning_content"].is_string() ? msg["reasoning_content"].get<std::string>() : "";
      QCOMPARE(content, want.content);
      QCOMPARE(reasoning, want.reasoning);
      QCOMPARE(msg["content"].is_null(), !want.has_final && want.content.empty());
      for (const char* t : {"<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|return|>"}) {
        QVERIFY2(content.find(t) == std::string::npos, t);
        QVERIFY2(reasoning.find(t) == std::string::npos, t);
      }
      for (const char* t : {"<|channel|>", "<|message|>", "<|end|>", "<|start|>"})
        if (std::find(ids.begin(), ids.end(), *tok.token_to_id(t)) != ids.end()) {
          ++with_markers;
          break;
        }
      if (std::find(ids.begin(), ids.end(), *tok.token_to_id("<|message|>")) != ids.end()) ++with_message;

      // Streaming: delta.reasoning_content and delta.content add up to the same.
      body["stream"] = true;
      res = s.client().Post("/v1/chat/completions", body.dump(), "application/json");
      QVERIFY(res && res->status == 200);
      remote::StreamAssembler a;
      a.feed(res->body);
      a.finish();
      QCOMPARE(a.result().choices[0].text, content);
      QCOMPARE(a.result().choices[0].reasoning, reasoning);
      QCOMPARE(a.result().choices[0].token_ids, ids);
    }
    qInfo("harmony: 12 sampled answers, %d with harmony markers among their ids, %d opening a message body", with_markers,
          with_message);
    QVERIFY(with_markers > 0);  // the markers were there to be taken out

    // /v1/completions is not chat: its text is the plain decode (special tokens skipped), as vLLM's.
    auto res = s.client().Post("/v1/completions", R"({"prompt": "hi", "max_tokens": 4, "temperature": 0})", "application/json");
    QVERIFY(res && res->status == 200);
    QVERIFY(!json::parse(res->body)["choices"][0].contains("reasoning_content"));
  }

  // bench-serve against this server: both rates and their ratio (figures, not a timing check).
  void bench_serve_reports_both_rates() {
    QProcess p;
    p.start(MOESCOPE_CLI, {"bench-serve", "--url", QString("http://127.0.0.1:%1/v1").arg(server_->port()), "--tokens", "16",
                           "--requests", "2", "--api-key", kKey, "--json"});
    QVERIFY(p.waitForFinished(120000));
    QVERIFY2(p.exitCode() == 0, p.readAllStandardError().constData());
    const json j = json::parse(p.readAllStandardOutput().toStdString());
    qInfo("bench-serve: %s", j.dump().c_str());
    QCOMPARE(j["tokens"].get<int>(), 16);  // ignore_eos: all of them
    QVERIFY(j["ttft_ms"].get<double>() > 0);
    QVERIFY(j["client_decode_tokens_per_s"].get<double>() > 0);
    QVERIFY(j["server_decode_tokens_per_s"].get<double>() > 0);
    QVERIFY(j["client_over_server"].get<double>() > 0);
    // A server that is not there: one line, status 1.
    QProcess q;
    q.start(MOESCOPE_CLI, {"bench-serve", "--url", "http://127.0.0.1:1", "--tokens", "4"});
    QVERIFY(q.waitForFinished(60000));
    QCOMPARE(q.exitCode(), 1);
    QVERIFY(QString::fromUtf8(q.readAllStandardError()).trimmed().startsWith("moescope-cli bench-serve: cannot reach"));
  }

  // SIGTERM stops the server cleanly (status 0, "stopped") and lets an answer under way finish:
  // the signal is masked before the engine's compute threads start, so none of them can take it
  // (its default action would kill the process mid-answer).
  void sigterm_stops_cleanly() {
    Server s({"--timeout", "5"});
    int status = 0;
    std::string body;
    std::thread t([&] {
      auto c = s.client();
      auto res = c.Post("/v1/completions",
                        R"({"prompt": "The expert", "max_tokens": 500, "temperature": 0, "ignore_eos": true, "stream": true})",
                        "application/json");
      if (res) {
        status = res->status;
        body = res->body;
      }
    });
    QTest::qWait(50);
    const auto [code, err] = s.terminate_and_wait();
    t.join();
    QCOMPARE(code, 0);
    QVERIFY2(err.trimmed().endsWith("moescope-cli serve: stopped"), qPrintable(err));
    if (status == 200) {  // the request got in before the signal: its answer is whole
      QVERIFY(body.ends_with("data: [DONE]\n\n"));
      remote::StreamAssembler a;
      a.feed(body);
      a.finish();
      QCOMPARE(a.result().choices[0].token_ids.size(), size_t(0));  // not asked for
    }
    qInfo("sigterm: status 0; the request under way %s", status == 200 ? "finished whole" : "was not yet in");
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
