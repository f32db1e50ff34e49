// moescope-cli serve --model DIR|FILE [--host 127.0.0.1] [--port 8080] [--api-key KEY]
//     [--backend cpu|cuda] [--context N] [--threads N] [--max-body BYTES] [--max-request-tokens N]
//     [--http-threads N] [--timeout SECONDS]
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
// (413), tokens per request (400), a bounded pool of connection threads whose accept queue blocks
// when full, read/write timeouts against clients that trickle bytes. Loopback only unless --host
// says otherwise, and then --api-key is required ("Authorization: Bearer KEY", else 401).
#include "commands.h"
#include "moescope/error.h"

#if MOESCOPE_HAVE_HTTPLIB
#include <httplib.h>
#include <signal.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <iostream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common.h"
#include "moescope/chat.h"
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

// cpp-httplib's ThreadPool queues accepted connections without bound; this one blocks the accept
// thread while `max_queued` wait, so a flood of connections stays in the kernel's backlog (where it
// is refused when full) instead of piling up file descriptors and memory here.
class BoundedPool : public httplib::TaskQueue {
public:
  BoundedPool(size_t threads, size_t max_queued) : max_queued_(max_queued) {
    for (size_t i = 0; i < threads; ++i) workers_.emplace_back([this] { run(); });
  }
  void enqueue(std::function<void()> fn) override {
    std::unique_lock<std::mutex> lock(mutex_);
    space_.wait(lock, [&] { return jobs_.size() < max_queued_ || shutdown_; });
    jobs_.push_back(std::move(fn));
    ready_.notify_one();
  }
  void shutdown() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      shutdown_ = true;
    }
    ready_.notify_all();
    space_.notify_all();
    for (auto& t : workers_) t.join();
  }

private:
  void run() {
    for (;;) {
      std::function<void()> fn;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        ready_.wait(lock, [&] { return !jobs_.empty() || shutdown_; });
        if (jobs_.empty()) return;
        fn = std::move(jobs_.front());
        jobs_.pop_front();
      }
      space_.notify_one();
      fn();
    }
  }
  size_t max_queued_;
  std::mutex mutex_;
  std::condition_variable ready_, space_;
  std::deque<std::function<void()>> jobs_;
  std::vector<std::thread> workers_;
  bool shutdown_ = false;
};

// ---- requests ----------------------------------------------------------------------------------

// What one completion request asks, validated.
struct Request {
  bool chat = false;
  bool stream = false;
  bool include_usage = false;
  bool routed = false;     // return_routed_experts
  bool token_ids = false;  // return_token_ids (vLLM's name); implied by routed
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
  if (get_int(body, "n", 1, 1, 1 << 20) != 1) throw bad_request("'n' must be 1 (one answer per request)");
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
  if (get_bool(body, "ignore_eos", false)) {  // vLLM's and SGLang's: exactly max_tokens tokens
    p.stop_ids.clear();
    p.stop_at_eos = false;
  }

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

// Streams one generation as SSE chunks through `write` (false: the client is gone -> cancel).
class SseStreamer : public GenerationObserver {
public:
  SseStreamer(const Request& r, const Tokenizer& tok, const RoutingTrace& trace, json head,
              std::function<bool(const std::string&)> write)
      : r_(r), decoder_(tok, true), trace_(trace), head_(std::move(head)), write_(std::move(write)) {}

  std::atomic<bool> cancel{false};

  // The first chunk (before the prefill): the assistant role.
  void start() {
    if (r_.chat) send(chunk(json{{"role", "assistant"}, {"content", ""}}, nullptr));
  }
  // The first token's chunk also carries the prompt's routing (recorded by the prefill).
  void on_token(int32_t id, double) override {
    json c = chunk(r_.chat ? json{{"content", decoder_.push(id)}} : json(decoder_.push(id)), nullptr);
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
    const std::string rest = decoder_.flush();
    json c = chunk(r_.chat ? (rest.empty() ? json::object() : json{{"content", rest}}) : json(rest), finish_reason(g.reason));
    add_rows(c);
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
  std::lock_guard<std::mutex> lock(e.mutex);
  e.session->reset();
  const GenerateResult g = e.session->generate(r.prompt, r.params);
  const Tokenizer& tok = e.chat.tokenizer();
  StreamingDecoder dec(tok, true);  // the same text `generate` prints: every id, special ones skipped
  std::string text;
  for (int32_t id : g.generated) text += dec.push(id);
  text += dec.flush();
  json res = head_of(e, r.chat, false);
  json choice = {{"index", 0}, {"logprobs", nullptr}, {"finish_reason", finish_reason(g.reason)}};
  if (r.chat) choice["message"] = {{"role", "assistant"}, {"content", text}};
  else choice["text"] = text;
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
             "http-threads", "timeout"});
  const std::string host = args.get_or("host", "127.0.0.1");
  const std::string api_key = args.get_or("api-key", "");
  const long long port = args.get_int("port", 8080);
  const long long max_body = args.get_int("max-body", 1 << 20);
  const long long http_threads = args.get_int("http-threads", 8);
  const long long timeout = args.get_int("timeout", 10);
  if (port < 0 || port > 65535) throw Error("--port must be in 0..65535 (0: any free port)");
  if (max_body < 1024 || max_body > (1ll << 30)) throw Error("--max-body must be between 1024 and 1073741824 bytes");
  if (http_threads < 1 || http_threads > 256) throw Error("--http-threads must be in 1..256");
  if (timeout < 1 || timeout > 3600) throw Error("--timeout must be in 1..3600 seconds");
  if (!is_loopback(host) && api_key.empty())
    throw Error("--host " + host + " listens beyond this machine: give --api-key KEY as well");
  if (args.has("api-key") && api_key.empty()) throw Error("--api-key must not be empty");

  const auto dir = model_dir(args);
  Engine e{load_model(dir), ChatFormat::from_dir(dir), nullptr, "", 0, {}, {}};
  e.session = std::make_unique<Session>(e.model, make_backend(e.model, backend_options(args)));
  e.name = e.model->spec.name;
  const int context = e.session->backend().context_length();
  e.max_request_tokens = int(args.get_int("max-request-tokens", std::min(context, 4096)));
  if (e.max_request_tokens < 1 || e.max_request_tokens > context)
    throw Error("--max-request-tokens must be in 1.." + std::to_string(context) + " (the context)");

  // SIGINT/SIGTERM end the server from a thread of their own (blocked everywhere else, so the
  // connection threads started below inherit the mask).
  sigset_t sigs = stop_signals();
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);

  httplib::Server svr;
  const size_t pool = size_t(http_threads);
  svr.new_task_queue = [pool] { return new BoundedPool(pool, pool * 4); };
  svr.set_payload_max_length(size_t(max_body));
  svr.set_read_timeout(time_t(timeout), 0);
  svr.set_write_timeout(time_t(timeout), 0);
  svr.set_keep_alive_timeout(time_t(std::min<long long>(timeout, 5)));
  svr.set_keep_alive_max_count(100);

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
        res.set_chunked_content_provider("text/event-stream", [&e, r](size_t, httplib::DataSink& sink) {
          std::lock_guard<std::mutex> lock(e.mutex);
          e.session->reset();
          SseStreamer out(*r, e.chat.tokenizer(), e.session->trace(), head_of(e, r->chat, true),
                          [&sink](const std::string& s) { return sink.is_writable() && sink.write(s.data(), s.size()); });
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

  std::thread stopper([&svr, sigs] {
    int sig = 0;
    sigwait(&sigs, &sig);
    svr.stop();
  });
  const std::string url = "http://" + (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + std::to_string(bound);
  std::cout << "moescope-cli serve: " << e.name << " on " << url << "/v1 (" << e.session->backend().name() << ")" << std::endl;
  const bool ok = svr.listen_after_bind();
  // Ended by a signal (stopper done) or by a listen failure: wake the stopper in the latter case.
  if (stopper.joinable()) {
    pthread_kill(stopper.native_handle(), SIGTERM);
    stopper.join();
  }
  if (!ok && svr.is_running()) throw Error("the server stopped unexpectedly");
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
