// moescope-cli serve --model DIR|FILE [--host 127.0.0.1] [--port 8080] [--api-key KEY]
//     [--backend cpu|cuda] [--context N] [--threads N] [--max-body BYTES] [--max-request-tokens N]
//     [--http-threads N] [--timeout SECONDS] [--max-connections N]
// The local engine behind OpenAI-compatible endpoints (cpp-httplib, Debian's libcpp-httplib-dev):
//   GET  /v1/models             the one loaded model (with its MoE geometry in "moescope")
//   POST /v1/chat/completions   messages -> the checkpoint's chat template, applied here
//   POST /v1/completions        a prompt string (or token ids) as is
// both with "stream": true (Server-Sent Events, "data: [DONE]" at the end) or not.
// "return_routed_experts": true (SGLang's request field; vLLM has no per-request switch) adds the
// routing in vLLM's response format (docs/training/routed_experts_replay.md, vllm-project/vllm @
// 0087e005): response-level "prompt_routed_experts" [prompt_len][moe_layers][top_k] and per choice
// "routed_experts" [rows][moe_layers][top_k], plus the weights moescope has and vLLM does not:
// "prompt_routed_expert_weights" / "routed_expert_weights", same shapes. Rows are the tokens fed to
// the model, so the last generated token (never fed) has none. When streaming, the prompt rows come
// with the first token's chunk and each later chunk carries the rows recorded since the one before.
//
// Requests queue on the one engine (a mutex around the session) and each starts from an empty KV
// cache, so an answer does not depend on what was asked before or alongside it. Limits: body size
// (413), tokens per request (400), a fixed number of connection workers fed by an epoll front that
// holds idle connections without a thread, at most --max-connections open (503 beyond), a whole
// request within --timeout of its first byte (slowloris). Unknown request fields are ignored, as
// vLLM does. A gpt-oss (harmony) chat answer is split by channel: analysis -> reasoning_content,
// final -> content. Every answer carries "moescope_timing" (queue, prefill, decode seconds and
// rates). Loopback only unless --host says otherwise, and then --api-key is required
// ("Authorization: Bearer KEY", else 401).
#include "commands.h"
#include "moescope/error.h"

#if MOESCOPE_HAVE_HTTPLIB
#include <arpa/inet.h>
#include <fcntl.h>
#include <httplib.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <unordered_map>

#include "common.h"
#include "moescope/chat.h"
#include "moescope/harmony.h"
#include "moescope/session.h"

namespace moescope::cli {

namespace {

using nlohmann::json;
using nlohmann::ordered_json;

// An HTTP-level failure with the status to answer it with.
struct HttpError {
  int status;
  std::string message;
  std::string type;
};

HttpError bad_request(const std::string& m) { return {400, m, "invalid_request_error"}; }

// OpenAI's error body (what vLLM answers too): {"error": {"message", "type", "param", "code"}}.
std::string error_body(int status, const std::string& message, const std::string& type) {
  return json{{"error", {{"message", message}, {"type", type}, {"param", nullptr}, {"code", status}}}}.dump();
}

bool is_loopback(const std::string& host) {
  return host == "localhost" || host == "::1" || host.rfind("127.", 0) == 0;
}

// Equal strings in time independent of where they differ (the API key check).
bool same_secret(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) diff |= uint8_t(a[i]) ^ uint8_t(b[i % (b.empty() ? 1 : b.size())]);
  return diff == 0 && !b.empty();
}

// ---- connections -------------------------------------------------------------------------------
//
// cpp-httplib (0.11, Debian 12) gives each accepted connection a pool thread for its whole life
// and waits for every byte with the read timeout, so a client that trickles one byte a second
// keeps a thread forever, and a few idle connections starve everyone else. So moescope runs its
// own front and hands httplib only whole connections that have something to say:
//   - one thread (the caller of Front::run) accepts and keeps every idle connection, new or between
//     two keep-alive requests, in an epoll set; a connection goes to a worker only when bytes
//     arrive, and is closed when none come within the keep-alive time;
//   - a fixed number of workers (--http-threads) run httplib's request processing on a Stream of
//     ours, whose reads stop at a deadline: a request's line, headers and body must all arrive
//     within --timeout seconds of its first byte, however slowly they trickle;
//   - at most --max-connections are open at once; one more is answered 503 and closed at once, so
//     a storm of connections costs neither threads nor an unbounded number of descriptors.

using Clock = std::chrono::steady_clock;

// Wakes the epoll thread (an eventfd counter; a full counter is awake already).
void poke(int eventfd_) {
  const uint64_t one = 1;
  if (eventfd_ >= 0 && ::write(eventfd_, &one, sizeof one) < 0) {
  }
}

int ms_until(Clock::time_point t) {
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(t - Clock::now()).count();
  return int(std::clamp<int64_t>(ms, 0, 1 << 30));
}

// One connection's socket as httplib's Stream: buffered reads bounded by a deadline, writes
// bounded by the write timeout.
class ConnStream : public httplib::Stream {
public:
  ConnStream(int fd, int io_timeout_ms) : fd_(fd), io_ms_(io_timeout_ms) {}
  void set_deadline(Clock::time_point d) {
    deadline_ = d;
    failed_ = false;
  }
  bool failed() const { return failed_; }  // a read ran out of time or the peer closed
  bool buffered() const { return off_ < len_; }

  bool is_readable() const override { return buffered() || wait(POLLIN, read_wait_ms()); }
  bool is_writable() const override {
    if (!wait(POLLOUT, io_ms_)) return false;
    char c;  // a peer that closed its end is gone: 0 from a peek (pending bytes keep it alive)
    const ssize_t n = ::recv(fd_, &c, 1, MSG_PEEK | MSG_DONTWAIT);
    return n != 0 && !(n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
  }
  ssize_t read(char* ptr, size_t size) override {
    if (!buffered()) {
      if (!wait(POLLIN, read_wait_ms())) {
        failed_ = true;
        return -1;
      }
      const ssize_t n = ::recv(fd_, buf_, sizeof buf_, 0);
      if (n <= 0) {
        failed_ = true;
        return -1;
      }
      off_ = 0;
      len_ = size_t(n);
    }
    const size_t n = std::min(size, len_ - off_);
    std::memcpy(ptr, buf_ + off_, n);
    off_ += n;
    return ssize_t(n);
  }
  ssize_t write(const char* ptr, size_t size) override {
    size_t done = 0;
    while (done < size) {
      if (!wait(POLLOUT, io_ms_)) return -1;
      const ssize_t n = ::send(fd_, ptr + done, size - done, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) return -1;
      done += size_t(n);
    }
    return ssize_t(done);
  }
  void get_remote_ip_and_port(std::string& ip, int& port) const override { address(false, ip, port); }
  void get_local_ip_and_port(std::string& ip, int& port) const override { address(true, ip, port); }
  socket_t socket() const override { return fd_; }

private:
  int read_wait_ms() const { return std::min(io_ms_, ms_until(deadline_)); }
  bool wait(short events, int ms) const {
    pollfd p{fd_, events, 0};
    for (;;) {
      const int r = ::poll(&p, 1, ms);
      if (r < 0 && errno == EINTR) continue;
      return r > 0 && (p.revents & (events | POLLHUP)) && !(p.revents & (POLLERR | POLLNVAL));
    }
  }
  void address(bool local, std::string& ip, int& port) const {
    sockaddr_storage a{};
    socklen_t len = sizeof a;
    ip.clear();
    port = 0;
    if ((local ? ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len)
               : ::getpeername(fd_, reinterpret_cast<sockaddr*>(&a), &len)) != 0)
      return;
    char host[INET6_ADDRSTRLEN] = {};
    if (a.ss_family == AF_INET) {
      const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
      ::inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
      port = ntohs(v4->sin_port);
    } else if (a.ss_family == AF_INET6) {
      const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
      ::inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
      port = ntohs(v6->sin6_port);
    }
    ip = host;
  }
  int fd_;
  int io_ms_;
  Clock::time_point deadline_ = Clock::time_point::max();
  char buf_[4096];
  size_t off_ = 0, len_ = 0;
  bool failed_ = false;
};

struct Conn {
  int fd = -1;
  ConnStream stream;
  size_t served = 0;             // requests answered on it (keep-alive)
  Clock::time_point idle_until;  // while waiting for bytes
  Clock::time_point arrived;     // when its request's first bytes were seen
  Conn(int f, int io_ms) : fd(f), stream(f, io_ms) {}
};

struct FrontLimits {
  size_t workers = 8;
  size_t max_connections = 256;
  int request_timeout_ms = 10000;  // a whole request (line, headers, body) after its first byte
  int io_timeout_ms = 10000;       // one read or write
  int keep_alive_ms = 5000;        // an idle connection, new or between requests
  size_t keep_alive_max = 100;     // requests on one connection
};

class Front : public httplib::Server {
public:
  explicit Front(FrontLimits l) : l_(l) {}
  ~Front() override {
    if (wake_ >= 0) ::close(wake_);
    if (ep_ >= 0) ::close(ep_);
  }

  // Accepts on the socket bind_to_port opened until stop_serving(); false with the reason when
  // the machinery cannot start.
  void run() {
    const int lfd = svr_sock_;
    ep_ = ::epoll_create1(EPOLL_CLOEXEC);
    wake_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ep_ < 0 || wake_ < 0) throw Error(std::string("serve: cannot set up epoll: ") + std::strerror(errno));
    ::fcntl(lfd, F_SETFL, ::fcntl(lfd, F_GETFL) | O_NONBLOCK);
    ::listen(lfd, 128);  // httplib listens with a backlog of 5
    add(lfd, nullptr);
    add(wake_, nullptr);
    for (size_t i = 0; i < l_.workers; ++i) workers_.emplace_back([this] { work(); });

    std::unordered_map<int, std::unique_ptr<Conn>> idle;
    std::vector<epoll_event> events(256);
    auto close_conn = [&](std::unique_ptr<Conn> c) {
      ::close(c->fd);
      open_.fetch_sub(1);
    };
    while (!stopping_) {
      const int n = ::epoll_wait(ep_, events.data(), int(events.size()), 100);
      if (n < 0 && errno != EINTR) throw Error(std::string("serve: epoll_wait failed: ") + std::strerror(errno));
      for (int i = 0; i < n; ++i) {
        const int fd = events[size_t(i)].data.fd;
        if (fd == lfd) {
          accept_all(lfd, idle);
        } else if (fd == wake_) {
          uint64_t v;
          while (::read(wake_, &v, sizeof v) > 0) {
          }
          std::vector<std::unique_ptr<Conn>> back;
          {
            std::lock_guard<std::mutex> lock(mutex_);
            back.swap(returned_);
          }
          for (auto& c : back) {
            if (c->stream.buffered()) {  // a pipelined request already read: straight on
              dispatch(std::move(c));
              continue;
            }
            c->idle_until = Clock::now() + std::chrono::milliseconds(l_.keep_alive_ms);
            add(c->fd, nullptr);
            const int cfd = c->fd;
            idle[cfd] = std::move(c);
          }
        } else if (auto it = idle.find(fd); it != idle.end()) {
          ::epoll_ctl(ep_, EPOLL_CTL_DEL, fd, nullptr);
          std::unique_ptr<Conn> c = std::move(it->second);
          idle.erase(it);
          dispatch(std::move(c));  // bytes (or the client's close) arrived
        }
      }
      const auto now = Clock::now();
      for (auto it = idle.begin(); it != idle.end();) {
        if (it->second->idle_until <= now) {
          ::epoll_ctl(ep_, EPOLL_CTL_DEL, it->first, nullptr);
          close_conn(std::move(it->second));
          it = idle.erase(it);
        } else {
          ++it;
        }
      }
    }
    {
      std::lock_guard<std::mutex> lock(mutex_);
      done_ = true;
    }
    ready_.notify_all();
    for (auto& t : workers_) t.join();
    for (auto& [fd, c] : idle) close_conn(std::move(c));
    for (auto& c : returned_) close_conn(std::move(c));
    for (auto& c : jobs_) close_conn(std::move(c));
    returned_.clear();
    jobs_.clear();
  }
  // From any thread (the signal thread): run() returns once the workers finished their requests.
  void stop_serving() {
    stopping_ = true;
    poke(wake_);
  }
  size_t open_connections() const { return open_.load(); }

private:
  void add(int fd, void*) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    ::epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  }
  void accept_all(int lfd, std::unordered_map<int, std::unique_ptr<Conn>>& idle) {
    for (;;) {
      const int fd = ::accept4(lfd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE) spdlog::warn("serve: out of file descriptors; connections wait");
        return;  // EAGAIN: all taken
      }
      if (open_.load() >= l_.max_connections) {
        // Refused at once (OpenAI's code for an overloaded server), not queued without bound.
        static const std::string busy = [] {
          const std::string body = error_body(503, "too many connections; try again", "server_overloaded");
          return "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: " +
                 std::to_string(body.size()) + "\r\nConnection: close\r\nRetry-After: 1\r\n\r\n" + body;
        }();
        if (::send(fd, busy.data(), busy.size(), MSG_NOSIGNAL | MSG_DONTWAIT) < 0) {
        }
        ::shutdown(fd, SHUT_WR);
        ::close(fd);
        refused_.fetch_add(1);
        continue;
      }
      open_.fetch_add(1);
      auto c = std::make_unique<Conn>(fd, l_.io_timeout_ms);
      c->idle_until = Clock::now() + std::chrono::milliseconds(l_.keep_alive_ms);
      add(fd, nullptr);
      idle[fd] = std::move(c);
    }
  }
  void dispatch(std::unique_ptr<Conn> c) {
    c->arrived = Clock::now();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      jobs_.push_back(std::move(c));  // at most max_connections: every connection is in one place
    }
    ready_.notify_one();
  }
  void work() {
    for (;;) {
      std::unique_ptr<Conn> c;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return !jobs_.empty() || done_; });
        if (done_) return;
        c = std::move(jobs_.front());
        jobs_.pop_front();
      }
      bool keep = serve_one(*c);
      if (keep && !stopping_) {
        {
          std::lock_guard<std::mutex> lock(mutex_);
          returned_.push_back(std::move(c));
        }
        poke(wake_);
      } else {
        ::shutdown(c->fd, SHUT_RDWR);
        ::close(c->fd);
        open_.fetch_sub(1);
      }
    }
  }
  // One request on a connection with bytes waiting; true: keep it open for the next.
  bool serve_one(Conn& c) {
    // From the first bytes, not from when a worker got to it: waiting in the queue is the server's
    // time, and bytes already there are read even past the deadline.
    c.stream.set_deadline(c.arrived + std::chrono::milliseconds(l_.request_timeout_ms));
    bool closed = false;
    const bool last = c.served + 1 >= l_.keep_alive_max;
    const bool ok = process_request(c.stream, last, closed, nullptr);
    // A request that did not arrive in time (or half of one) may have been answered 400 by httplib;
    // either way the connection is done.
    const bool failed = c.stream.failed();
    c.stream.set_deadline(Clock::time_point::max());
    ++c.served;
    return ok && !closed && !last && !failed;
  }

  FrontLimits l_;
  int ep_ = -1, wake_ = -1;
  std::atomic<bool> stopping_{false};
  std::atomic<size_t> open_{0}, refused_{0};
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<std::unique_ptr<Conn>> jobs_;
  std::vector<std::unique_ptr<Conn>> returned_;
  std::vector<std::thread> workers_;
  bool done_ = false;
};

// ---- requests ----------------------------------------------------------------------------------

// What one completion request asks, validated.
struct Request {
  bool chat = false;
  bool stream = false;
  bool include_usage = false;
  bool routed = false;     // return_routed_experts
  bool token_ids = false;  // return_token_ids (vLLM's name); implied by routed
  bool harmony = false;    // a chat answer of gpt-oss: channels split into reasoning_content / content
  std::vector<int32_t> prompt;
  GenerateParams params;
};

const json* field(const json& body, const char* key) {
  auto it = body.find(key);
  return it == body.end() || it->is_null() ? nullptr : &*it;
}

bool get_bool(const json& body, const char* key, bool fallback) {
  const json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_boolean()) throw bad_request(std::string("'") + key + "' must be true or false");
  return v->get<bool>();
}

double get_number(const json& body, const char* key, double fallback, double lo, double hi) {
  const json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_number()) throw bad_request(std::string("'") + key + "' must be a number");
  const double d = v->get<double>();
  if (!(d >= lo && d <= hi))
    throw bad_request(std::string("'") + key + "' must be between " + json(lo).dump() + " and " + json(hi).dump());
  return d;
}

int64_t get_int(const json& body, const char* key, int64_t fallback, int64_t lo, int64_t hi) {
  const json* v = field(body, key);
  if (!v) return fallback;
  if (!v->is_number_integer()) throw bad_request(std::string("'") + key + "' must be an integer");
  const int64_t i = v->get<int64_t>();
  if (i < lo || i > hi)
    throw bad_request(std::string("'") + key + "' must be between " + std::to_string(lo) + " and " + std::to_string(hi));
  return i;
}

// A message's content: a string, or OpenAI's list of parts of which only text ones are taken.
std::string content_of(const json& m, size_t i) {
  const json* c = field(m, "content");
  if (!c) return "";
  if (c->is_string()) return c->get<std::string>();
  if (c->is_array()) {
    std::string text;
    for (const json& part : *c) {
      if (!part.is_object() || part.value("type", "") != "text" || !part.contains("text") || !part["text"].is_string())
        throw bad_request("messages[" + std::to_string(i) + "].content: only text parts are supported");
      text += part["text"].get<std::string>();
    }
    return text;
  }
  throw bad_request("messages[" + std::to_string(i) + "].content must be a string or a list of text parts");
}

struct Engine {
  std::shared_ptr<const Model> model;
  ChatFormat chat;
  std::unique_ptr<Session> session;
  std::string name;
  int max_request_tokens = 0;
  int context = 0;  // max_model_len
  bool harmony = false;  // gpt-oss' harmony format (ChatFormat::harmony())
  std::mutex mutex;  // one request at a time on the session
  std::atomic<uint64_t> next_id{1};
};

Request parse_request(const std::string& text, bool chat, Engine& e) {
  const json body = json::parse(text, nullptr, false);
  if (body.is_discarded()) throw bad_request("the request body is not valid JSON");
  if (!body.is_object()) throw bad_request("the request body must be a JSON object");
  if (const json* m = field(body, "model")) {
    if (!m->is_string()) throw bad_request("'model' must be a string");
    if (m->get<std::string>() != e.name)
      throw HttpError{404, "The model `" + m->get<std::string>() + "` does not exist (this server has `" + e.name + "`)",
                      "NotFoundError"};
  }
  Request r;
  r.chat = chat;
  r.stream = get_bool(body, "stream", false);
  if (const json* so = field(body, "stream_options")) {
    if (!so->is_object()) throw bad_request("'stream_options' must be an object");
    r.include_usage = get_bool(*so, "include_usage", false);
  }
  r.routed = get_bool(body, "return_routed_experts", false);
  r.token_ids = get_bool(body, "return_token_ids", false) || r.routed;
  if (get_int(body, "n", 1, INT64_MIN, INT64_MAX) != 1) throw bad_request("'n' must be 1 (one answer per request)");
  const int64_t limit = e.max_request_tokens;
  int64_t max_tokens = get_int(body, "max_tokens", std::min<int64_t>(256, limit), 1, limit);
  max_tokens = get_int(body, "max_completion_tokens", max_tokens, 1, limit);

  GenerateParams& p = r.params;
  p.max_tokens = int(max_tokens);
  p.sampling.temperature = float(get_number(body, "temperature", 1.0, 0.0, 100.0));
  p.sampling.top_p = float(get_number(body, "top_p", 1.0, 1e-9, 1.0));
  p.sampling.top_k = int(get_int(body, "top_k", 0, -1, 1 << 24));
  if (p.sampling.top_k < 0) p.sampling.top_k = 0;  // vLLM's -1: no limit
  p.sampling.min_p = float(get_number(body, "min_p", 0.0, 0.0, 1.0));
  p.sampling.repetition_penalty = float(get_number(body, "repetition_penalty", 1.0, 1e-6, 100.0));
  p.sampling.seed = uint64_t(get_int(body, "seed", 0, INT64_MIN, INT64_MAX));
  p.stop_ids = e.chat.stop_ids();
  // vLLM's ignore_eos: generate max_tokens whatever the model says (benchmarks).
  if (get_bool(body, "ignore_eos", false)) {
    p.stop_ids.clear();
    p.stop_at_eos = false;
  }
  r.harmony = chat && e.harmony;

  if (chat) {
    const json* msgs = field(body, "messages");
    if (!msgs || !msgs->is_array() || msgs->empty()) throw bad_request("'messages' must be a non-empty list");
    ordered_json messages = ordered_json::array();
    for (size_t i = 0; i < msgs->size(); ++i) {
      const json& m = (*msgs)[i];
      if (!m.is_object() || !m.contains("role") || !m["role"].is_string())
        throw bad_request("messages[" + std::to_string(i) + "] must be an object with a string 'role'");
      messages.push_back({{"role", m["role"].get<std::string>()}, {"content", content_of(m, i)}});
    }
    r.prompt = e.chat.render(messages, true).ids;
  } else {
    const json* pr = field(body, "prompt");
    if (!pr) throw bad_request("'prompt' is missing");
    const json* one = pr;
    if (pr->is_array() && pr->size() == 1 && ((*pr)[0].is_string() || (*pr)[0].is_array())) one = &(*pr)[0];
    if (one->is_string()) {
      r.prompt = e.chat.tokenizer().encode(one->get<std::string>(), /*add_special_tokens=*/true);
    } else if (one->is_array()) {
      for (const json& id : *one) {
        if (!id.is_number_integer() || id.get<int64_t>() < 0 || id.get<int64_t>() >= e.model->spec.vocab_size)
          throw bad_request("'prompt' token ids must be integers in [0, " + std::to_string(e.model->spec.vocab_size) + ")");
        r.prompt.push_back(int32_t(id.get<int64_t>()));
      }
    } else {
      throw bad_request("'prompt' must be a string, a list of token ids, or a list of one of those");
    }
  }
  if (r.prompt.empty()) throw bad_request("the prompt is empty");
  // vLLM's check (and message): prompt and completion together within the context.
  if (int64_t(r.prompt.size()) + p.max_tokens > e.context)
    throw bad_request("This model's maximum context length is " + std::to_string(e.context) + " tokens. However, you requested " +
                      std::to_string(r.prompt.size() + size_t(p.max_tokens)) + " tokens (" + std::to_string(r.prompt.size()) +
                      " in the " + (chat ? "messages" : "prompt") + ", " + std::to_string(p.max_tokens) +
                      " in the completion). Please reduce the length of the " + (chat ? "messages" : "prompt") +
                      " or completion.");
  return r;
}

// ---- responses ---------------------------------------------------------------------------------

// Trace rows [first, last) as vLLM's nested lists, and their weights.
void routing_rows(const RoutingTrace& t, size_t first, size_t last, json& ids, json& weights) {
  ids = json::array();
  weights = json::array();
  for (size_t i = first; i < last; ++i) {
    json row = json::array(), wrow = json::array();
    for (int m = 0; m < t.n_moe_layers(); ++m) {
      json ex = json::array(), w = json::array();
      for (int k = 0; k < t.top_k(); ++k) {
        ex.push_back(t.expert(i, m, k));
        w.push_back(std::round(double(t.weight(i, m, k)) * 1e4) / 1e4);
      }
      row.push_back(std::move(ex));
      wrow.push_back(std::move(w));
    }
    ids.push_back(std::move(row));
    weights.push_back(std::move(wrow));
  }
}

const char* finish_reason(StopReason r) { return r == StopReason::EndOfSequence ? "stop" : "length"; }

int64_t now_s() {
  return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count();
}

json usage(size_t prompt, size_t completion) {
  return {{"prompt_tokens", prompt}, {"completion_tokens", completion}, {"total_tokens", prompt + completion}};
}

double seconds_since(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

// The server's own account of one request (moescope's field; OpenAI clients ignore it):
// seconds waiting for the engine, prefill, decode, and the rates they give.
json timing(double queue_s, const GenerateResult& g) {
  auto r4 = [](double x) { return std::round(x * 1e4) / 1e4; };
  json t = {{"queue_s", r4(queue_s)},
            {"prefill_s", r4(g.prefill_seconds)},
            {"decode_s", r4(g.decode_seconds)},
            {"prompt_tokens", g.prompt_tokens},
            {"decode_steps", g.decode_steps}};
  t["prefill_tokens_per_s"] = g.prefill_seconds > 0 ? json(r4(g.prompt_tokens / g.prefill_seconds)) : json(nullptr);
  t["decode_tokens_per_s"] = g.decode_seconds > 0 && g.decode_steps > 0 ? json(r4(g.decode_steps / g.decode_seconds)) : json(nullptr);
  return t;
}

// Streams one generation as SSE chunks through `write` (false: the client is gone -> cancel).
class SseStreamer : public GenerationObserver {
public:
  SseStreamer(const Request& r, const Tokenizer& tok, const RoutingTrace& trace, json head,
              std::function<bool(const std::string&)> write)
      : r_(r), decoder_(tok, true), trace_(trace), head_(std::move(head)), write_(std::move(write)) {
    if (r.harmony) harmony_.emplace(tok);
  }
  double queue_s = 0;

  std::atomic<bool> cancel{false};

  // The first chunk (before the prefill): the assistant role.
  void start() {
    if (r_.chat) send(chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr));
  }
  // The first token's chunk also carries the prompt's routing (recorded by the prefill).
  void on_token(int32_t id, double) override {
    json c = chunk(harmony_ ? delta_of(harmony_->push(id)) : r_.chat ? json{{"content", decoder_.push(id)}} : json(decoder_.push(id)), nullptr);
    if (r_.token_ids) c["choices"][0]["token_ids"] = json::array({id});
    if (first_token_ && r_.routed) {
      json ids, w;
      routing_rows(trace_, 0, r_.prompt.size(), ids, w);
      c["prompt_routed_experts"] = std::move(ids);
      c["prompt_routed_expert_weights"] = std::move(w);
      c["prompt_token_ids"] = r_.prompt;
      sent_rows_ = r_.prompt.size();
    }
    first_token_ = false;
    add_rows(c);
    send(c);
  }
  void finish(const GenerateResult& g) {
    const std::string rest = harmony_ ? std::string() : decoder_.flush();
    json c = chunk(harmony_ ? delta_of(harmony_->flush())
                   : r_.chat ? (rest.empty() ? json::object() : json{{"content", rest}})
                             : json(rest),
                   finish_reason(g.reason));
    add_rows(c);
    c["moescope_timing"] = timing(queue_s, g);
    send(c);
    if (r_.include_usage) {
      json u = head_;
      u["choices"] = json::array();
      u["usage"] = usage(r_.prompt.size(), g.generated.size());
      send(u);
    }
    if (!cancel) write_("data: [DONE]\n\n");
  }

private:
  // A harmony token's delta: vLLM's delta.reasoning_content for the analysis channel, delta.content
  // for final; {} for the channel markers and headers.
  static json delta_of(const HarmonyText& t) {
    json d = json::object();
    if (!t.reasoning.empty()) d["reasoning_content"] = t.reasoning;
    if (!t.content.empty()) d["content"] = t.content;
    return d;
  }
  json chunk(json delta, const char* finish) {
    json c = head_;
    json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish ? json(finish) : json(nullptr)}};
    if (r_.chat) choice["delta"] = std::move(delta);
    else choice["text"] = std::move(delta);
    c["choices"] = json::array({std::move(choice)});
    return c;
  }
  void add_rows(json& c) {
    if (!r_.routed || trace_.size() <= sent_rows_) return;
    json ids, w;
    routing_rows(trace_, sent_rows_, trace_.size(), ids, w);
    c["choices"][0]["routed_experts"] = std::move(ids);
    c["choices"][0]["routed_expert_weights"] = std::move(w);
    sent_rows_ = trace_.size();
  }
  void send(const json& c) {
    if (cancel) return;
    if (!write_("data: " + c.dump() + "\n\n")) cancel = true;
  }
  const Request& r_;
  StreamingDecoder decoder_;
  const RoutingTrace& trace_;
  json head_;
  std::function<bool(const std::string&)> write_;
  size_t sent_rows_ = 0;
  bool first_token_ = true;
  std::optional<HarmonyParser> harmony_;
};

json head_of(Engine& e, bool chat, bool stream) {
  const uint64_t n = e.next_id.fetch_add(1);
  return {{"id", std::string(chat ? "chatcmpl-" : "cmpl-") + std::to_string(n)},
          {"object", chat ? (stream ? "chat.completion.chunk" : "chat.completion") : "text_completion"},
          {"created", now_s()},
          {"model", e.name},
          {"system_fingerprint", "moescope-" MOESCOPE_VERSION}};
}

// Non-streaming: runs the request and builds the whole response.
std::string complete(Engine& e, const Request& r) {
  const auto asked = std::chrono::steady_clock::now();
  std::lock_guard<std::mutex> lock(e.mutex);
  const double queue_s = seconds_since(asked);
  e.session->reset();
  const GenerateResult g = e.session->generate(r.prompt, r.params);
  const Tokenizer& tok = e.chat.tokenizer();
  json res = head_of(e, r.chat, false);
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason(g.reason)}};
  if (r.harmony) {
    // vLLM for gpt-oss: the final channel is the content (null before one opens), the analysis
    // channel the reasoning_content; no special token in either.
    const HarmonyText h = HarmonyParser::parse(tok, g.generated);
    choice["message"] = {{"role", "assistant"},
                         {"content", h.has_final || !h.content.empty() ? json(h.content) : json(nullptr)},
                         {"reasoning_content", h.reasoning.empty() ? json(nullptr) : json(h.reasoning)}};
  } else {
    StreamingDecoder dec(tok, true);  // the same text `generate` prints: every id, special ones skipped
    std::string text;
    for (int32_t id : g.generated) text += dec.push(id);
    text += dec.flush();
    if (r.chat) choice["message"] = {{"role", "assistant"}, {"content", text}};
    else choice["text"] = text;
  }
  if (r.token_ids) {
    choice["token_ids"] = g.generated;
    res["prompt_token_ids"] = r.prompt;
  }
  if (r.routed) {
    const RoutingTrace& t = e.session->trace();
    json ids, w;
    routing_rows(t, 0, r.prompt.size(), ids, w);
    res["prompt_routed_experts"] = std::move(ids);
    res["prompt_routed_expert_weights"] = std::move(w);
    routing_rows(t, r.prompt.size(), t.size(), ids, w);
    choice["routed_experts"] = std::move(ids);
    choice["routed_expert_weights"] = std::move(w);
  }
  res["choices"] = json::array({std::move(choice)});
  res["usage"] = usage(r.prompt.size(), g.generated.size());
  res["moescope_timing"] = timing(queue_s, g);
  return res.dump();
}

sigset_t stop_signals() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}

}  // namespace

int cmd_serve(int argc, char** argv) {
  Args args(argc, argv, 2, {},
            {"model", "host", "port", "api-key", "backend", "context", "threads", "max-body", "max-request-tokens",
             "http-threads", "timeout", "max-connections", "weights"});
  const std::string host = args.get_or("host", "127.0.0.1");
  const std::string api_key = args.get_or("api-key", "");
  const long long port = args.get_int("port", 8080);
  const long long max_body = args.get_int("max-body", 1 << 20);
  const long long http_threads = args.get_int("http-threads", 8);
  const long long timeout = args.get_int("timeout", 10);
  const long long max_connections = args.get_int("max-connections", 256);
  if (port < 0 || port > 65535) throw Error("--port must be in 0..65535 (0: any free port)");
  if (max_body < 1024 || max_body > (1ll << 30)) throw Error("--max-body must be between 1024 and 1073741824 bytes");
  if (http_threads < 1 || http_threads > 256) throw Error("--http-threads must be in 1..256");
  if (timeout < 1 || timeout > 3600) throw Error("--timeout must be in 1..3600 seconds");
  if (max_connections < 1 || max_connections > 65536) throw Error("--max-connections must be in 1..65536");
  // Every open connection is a descriptor: make room for them (the soft limit is often 1024).
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur != RLIM_INFINITY &&
      nofile.rlim_cur < rlim_t(max_connections + 64)) {
    const rlim_t want = rlim_t(max_connections + 64);
    nofile.rlim_cur = nofile.rlim_max == RLIM_INFINITY ? want : std::min(want, nofile.rlim_max);
    ::setrlimit(RLIMIT_NOFILE, &nofile);
    if (nofile.rlim_cur < want)
      throw Error("--max-connections " + std::to_string(max_connections) + " needs " + std::to_string(want) +
                  " file descriptors; this process may have " + std::to_string(nofile.rlim_cur));
  }
  if (!is_loopback(host) && api_key.empty())
    throw Error("--host " + host + " listens beyond this machine: give --api-key KEY as well");
  if (args.has("api-key") && api_key.empty()) throw Error("--api-key must not be empty");

  FrontLimits limits;
  limits.workers = size_t(http_threads);
  limits.max_connections = size_t(max_connections);
  limits.request_timeout_ms = int(timeout * 1000);
  limits.io_timeout_ms = int(timeout * 1000);
  limits.keep_alive_ms = int(std::min<long long>(timeout, 5) * 1000);
  Front svr(limits);

  // SIGINT/SIGTERM end the server from a thread of their own, blocked everywhere else: masked
  // before any other thread starts (the CPU backend's compute threads, the connection workers), or
  // the kernel may hand the signal to one of them and its default action kills the process. While
  // the model loads, a signal ends the process at once; once serving, it lets the requests under
  // way finish. The guard wakes and joins the signal thread however this function is left.
  sigset_t sigs = stop_signals();
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  std::atomic<bool> listening{false}, leaving{false};
  std::thread stopper([&svr, &listening, &leaving, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (leaving) return;
    if (!listening) {
      std::cerr << "moescope-cli serve: stopped while loading\n";
      std::_Exit(128 + sig);
    }
    spdlog::info("serve: signal {}: finishing the requests under way", sig);
    svr.stop_serving();
  });
  struct JoinStopper {
    std::atomic<bool>& leaving;
    std::thread& t;
    ~JoinStopper() {
      leaving = true;
      pthread_kill(t.native_handle(), SIGTERM);
      t.join();
    }
  } join_stopper{leaving, stopper};

  const auto dir = model_dir(args);
  Engine e{load_model(dir, load_options(args)), ChatFormat::from_dir(dir), nullptr, "", 0, false, {}, {}};
  e.session = std::make_unique<Session>(e.model, make_backend(e.model, backend_options(args)));
  e.name = e.model->spec.name;
  e.harmony = e.chat.harmony();
  const int context = e.session->backend().context_length();
  e.context = context;
  e.max_request_tokens = int(args.get_int("max-request-tokens", std::min(context, 4096)));
  if (e.max_request_tokens < 1 || e.max_request_tokens > context)
    throw Error("--max-request-tokens must be in 1.." + std::to_string(context) + " (the context)");

  svr.set_payload_max_length(size_t(max_body));

  svr.set_pre_routing_handler([&](const httplib::Request& req, httplib::Response& res) {
    if (api_key.empty()) return httplib::Server::HandlerResponse::Unhandled;
    const std::string auth = req.get_header_value("Authorization");
    const std::string prefix = "Bearer ";
    if (auth.rfind(prefix, 0) == 0 && same_secret(auth.substr(prefix.size()), api_key))
      return httplib::Server::HandlerResponse::Unhandled;
    res.status = 401;
    res.set_content(error_body(401, auth.empty() ? "missing API key (send Authorization: Bearer KEY)" : "invalid API key",
                               "authentication_error"),
                    "application/json");
    return httplib::Server::HandlerResponse::Handled;
  });
  // Statuses the library sets by itself (404, 413 body too large, 400 malformed HTTP) get a JSON body.
  svr.set_error_handler([](const httplib::Request&, httplib::Response& res) {
    if (!res.body.empty()) return;
    const std::string msg = res.status == 413 ? "request body too large"
                            : res.status == 404 ? "no such endpoint (see GET /v1/models; POST /v1/chat/completions, /v1/completions)"
                                                : "bad request (status " + std::to_string(res.status) + ")";
    res.set_content(error_body(res.status, msg, res.status == 404 ? "NotFoundError" : "invalid_request_error"), "application/json");
  });
  svr.set_exception_handler([](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
    std::string msg = "internal error";
    try {
      std::rethrow_exception(ep);
    } catch (const std::exception& x) {
      msg = x.what();
    } catch (...) {
    }
    spdlog::error("serve: {}", msg);
    res.status = 500;
    res.set_content(error_body(500, msg, "InternalServerError"), "application/json");
  });

  svr.Get("/v1/models", [&](const httplib::Request&, httplib::Response& res) {
    const ModelSpec& s = e.model->spec;
    json m = {{"id", e.name},
              {"object", "model"},
              {"created", now_s()},
              {"owned_by", "moescope"},
              {"max_model_len", context},
              {"moescope",
               {{"n_layers", s.n_layers}, {"moe_layers", s.moe_layer_indices()}, {"n_experts", s.moe.router.n_experts},
                {"top_k", s.moe.router.top_k}}}};
    res.set_content(json{{"object", "list"}, {"data", json::array({m})}}.dump(), "application/json");
  });

  auto completion = [&](bool chat) {
    return [&e, chat](const httplib::Request& req, httplib::Response& res) {
      try {
        auto r = std::make_shared<Request>(parse_request(req.body, chat, e));
        if (!r->stream) {
          res.set_content(complete(e, *r), "application/json");
          return;
        }
        res.set_header("Cache-Control", "no-cache");
        const auto asked = std::chrono::steady_clock::now();
        res.set_chunked_content_provider("text/event-stream", [&e, r, asked](size_t, httplib::DataSink& sink) {
          std::lock_guard<std::mutex> lock(e.mutex);
          e.session->reset();
          SseStreamer out(*r, e.chat.tokenizer(), e.session->trace(), head_of(e, r->chat, true),
                          [&sink](const std::string& s) { return sink.is_writable() && sink.write(s.data(), s.size()); });
          out.queue_s = seconds_since(asked);
          try {
            out.start();
            GenerateResult g = e.session->generate(r->prompt, r->params, &out, &out.cancel);
            out.finish(g);
          } catch (const Error& x) {  // headers are out: the error goes in the stream (as vLLM does)
            const std::string s = "data: " + error_body(400, x.what(), "invalid_request_error") + "\n\ndata: [DONE]\n\n";
            sink.write(s.data(), s.size());
          }
          if (out.cancel) spdlog::info("serve: client left mid-answer; stopped");
          sink.done();
          return true;
        });
      } catch (const HttpError& x) {
        res.status = x.status;
        res.set_content(error_body(x.status, x.message, x.type), "application/json");
      } catch (const Error& x) {  // the engine's bad-input errors (prompt longer than the context, ...)
        res.status = 400;
        res.set_content(error_body(400, x.what(), "invalid_request_error"), "application/json");
      }
    };
  };
  svr.Post("/v1/chat/completions", completion(true));
  svr.Post("/v1/completions", completion(false));

  int bound = int(port);
  if (port == 0) bound = svr.bind_to_any_port(host);
  else if (!svr.bind_to_port(host, int(port))) bound = -1;
  if (bound <= 0) throw Error("cannot listen on " + host + ":" + std::to_string(port) + " (in use, or not an address here)");

  listening = true;
  const std::string url = "http://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(bound);
  std::cout << "moescope-cli serve: " << e.name << " on " << url << "/v1 (" << e.session->backend().name() << ")" << std::endl;
  svr.run();
  std::cerr << "moescope-cli serve: stopped\n";
  return 0;
}

}  // namespace moescope::cli
#else  // built without cpp-httplib (app/cli/CMakeLists.txt)
namespace moescope::cli {
int cmd_serve(int, char**) {
  throw Error("this moescope-cli was built without cpp-httplib (Debian: libcpp-httplib-dev), so serve is not available");
}
}  // namespace moescope::cli
#endif
