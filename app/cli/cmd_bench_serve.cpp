// moescope-cli bench-serve --url http://127.0.0.1:PORT [--tokens 128] [--requests 3] [--prompt TEXT]
//     [--api-key KEY] [--json]
// A streaming client of an OpenAI-compatible server (moescope-cli serve, or vLLM / SGLang): each
// request asks /v1/completions for exactly --tokens tokens (greedy, "ignore_eos": true), and the
// client measures time to first token (request sent -> first token's chunk) and its decode rate
// (tokens after the first over the time from the first token's chunk to the last one). moescope
// serve reports its own figures in the last chunk ("moescope_timing": queue, prefill and decode
// seconds, decode tokens/s); they are printed beside the client's, with the ratio client / server:
// what HTTP, JSON and SSE cost on top of the engine. A server without that field gets only the
// client's figures. Requests run one after another; the median of them is the summary.
#include "commands.h"
#include "moescope/error.h"

#if MOESCOPE_HAVE_HTTPLIB
#include <httplib.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "args.h"
#include "moescope/remote_routing.h"

namespace moescope::cli {

namespace {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

struct Run {
  int tokens = 0;
  double ttft_s = 0;                     // client: sent -> first token
  double client_decode_tps = 0;          // client: (tokens - 1) / (last token - first token)
  double client_total_s = 0;             // client: sent -> [DONE]
  std::optional<double> server_tps;      // moescope_timing.decode_tokens_per_s
  std::optional<double> server_ttft_s;   // queue + prefill
};

double median(std::vector<double> v) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

Run one_request(httplib::Client& cli, const std::string& key, const std::string& prompt, int tokens) {
  const json body = {{"prompt", prompt},       {"max_tokens", tokens}, {"temperature", 0},
                     {"ignore_eos", true},     {"stream", true},       {"stream_options", {{"include_usage", true}}}};
  Run run;
  remote::SseParser sse;
  std::string error;
  bool done = false;
  int chunks = 0, usage_tokens = -1;
  Clock::time_point first, last;
  httplib::Request req;
  req.method = "POST";
  req.path = "/v1/completions";
  req.headers = {{"Content-Type", "application/json"}, {"Accept", "text/event-stream"}};
  if (!key.empty()) req.headers.emplace("Authorization", "Bearer " + key);
  req.body = body.dump();
  std::string raw;  // an error body (not an event stream)
  req.content_receiver = [&](const char* data, size_t len, uint64_t, uint64_t) {
    const auto now = Clock::now();
    raw.append(data, std::min(len, size_t(4096) - std::min(raw.size(), size_t(4096))));
    sse.feed(std::string_view(data, len), [&](const std::string& ev) {
      if (ev == "[DONE]") {
        done = true;
        return;
      }
      const json c = json::parse(ev, nullptr, false);
      if (!c.is_object()) return;
      if (c.contains("error")) error = c["error"].value("message", ev);
      if (auto u = c.find("usage"); u != c.end() && u->is_object()) usage_tokens = u->value("completion_tokens", -1);
      if (auto t = c.find("moescope_timing"); t != c.end() && t->is_object()) {
        if ((*t)["decode_tokens_per_s"].is_number()) run.server_tps = (*t)["decode_tokens_per_s"].get<double>();
        run.server_ttft_s = t->value("queue_s", 0.0) + t->value("prefill_s", 0.0);
      }
      auto ch = c.find("choices");
      if (ch == c.end() || !ch->is_array() || ch->empty()) return;
      const json& c0 = (*ch)[0];
      const bool text = c0.contains("text") && c0["text"].is_string() && !c0["text"].get<std::string>().empty();
      if (!text && !c0.value("finish_reason", json(nullptr)).is_null()) return;  // the closing chunk
      if (chunks++ == 0) first = now;
      last = now;
    });
    return true;
  };
  const auto sent = Clock::now();
  auto res = cli.send(req);
  const auto end = Clock::now();
  if (!res) throw Error("no answer from the server (" + httplib::to_string(res.error()) + ")");
  if (res->status != 200) {
    const json j = json::parse(raw, nullptr, false);
    const std::string msg = j.is_object() && j.contains("error") ? j["error"].value("message", raw) : raw;
    throw Error("the server answered " + std::to_string(res->status) + ": " + msg);
  }
  if (!error.empty()) throw Error("the server reported: " + error);
  if (!done) throw Error("the stream ended before data: [DONE]");
  if (chunks == 0) throw Error("the answer had no tokens");
  run.tokens = usage_tokens > 0 ? usage_tokens : chunks;
  run.ttft_s = std::chrono::duration<double>(first - sent).count();
  run.client_total_s = std::chrono::duration<double>(end - sent).count();
  const double span = std::chrono::duration<double>(last - first).count();
  run.client_decode_tps = run.tokens > 1 && span > 0 ? (run.tokens - 1) / span : NAN;
  return run;
}

std::string fixed(double v, int digits) {
  if (!std::isfinite(v)) return "n/a";
  char b[64];
  std::snprintf(b, sizeof b, "%.*f", digits, v);
  return b;
}

}  // namespace

int cmd_bench_serve(int argc, char** argv) {
  Args args(argc, argv, 2, {"json"}, {"url", "tokens", "requests", "prompt", "api-key", "timeout"});
  const std::string url = args.require("url");
  const long long tokens = args.get_int("tokens", 128);
  const long long requests = args.get_int("requests", 3);
  const long long timeout = args.get_int("timeout", 600);
  const std::string prompt = args.get_or("prompt", "The expert");
  const std::string key = args.get_or("api-key", "");
  if (tokens < 2 || tokens > 1 << 20) throw Error("--tokens must be in 2..1048576");
  if (requests < 1 || requests > 10000) throw Error("--requests must be in 1..10000");
  if (timeout < 1 || timeout > 86400) throw Error("--timeout must be in 1..86400 seconds");
  std::string base = url;
  for (const char* suffix : {"/", "/v1", "/v1/"})
    if (base.size() > std::string(suffix).size() && base.ends_with(suffix)) base.resize(base.size() - std::string(suffix).size());
  if (base.rfind("http://", 0) != 0) throw Error("--url must be http://HOST:PORT (TLS is not supported here)");
  httplib::Client cli(base);
  if (!cli.is_valid()) throw Error("--url " + url + " is not a URL this client can use");
  cli.set_read_timeout(time_t(timeout), 0);
  cli.set_connection_timeout(10, 0);

  std::string model;
  {
    httplib::Headers h;
    if (!key.empty()) h.emplace("Authorization", "Bearer " + key);
    auto m = cli.Get("/v1/models", h);
    if (!m)
      throw Error("cannot reach " + base +
                  (m.error() == httplib::Error::Connection ? ": connection refused (is the server running, on this port?)"
                                                             : " (" + httplib::to_string(m.error()) + ")"));
    const json j = json::parse(m->body, nullptr, false);
    if (m->status != 200 || !j.is_object() || !j.contains("data") || !j["data"].is_array() || j["data"].empty())
      throw Error("GET /v1/models answered " + std::to_string(m->status) + ", not a model list");
    model = j["data"][0].value("id", "?");
  }

  std::vector<Run> runs;
  one_request(cli, key, prompt, 2);  // warm-up: connection, first allocations
  for (long long i = 0; i < requests; ++i) runs.push_back(one_request(cli, key, prompt, int(tokens)));

  std::vector<double> ttft, client, server, ratio, server_ttft;
  for (const Run& r : runs) {
    ttft.push_back(r.ttft_s);
    client.push_back(r.client_decode_tps);
    if (r.server_tps) {
      server.push_back(*r.server_tps);
      ratio.push_back(r.client_decode_tps / *r.server_tps);
    }
    if (r.server_ttft_s) server_ttft.push_back(*r.server_ttft_s);
  }
  const bool have_server = server.size() == runs.size();
  if (args.has("json")) {
    json out = {{"url", base}, {"model", model}, {"tokens", runs.front().tokens}, {"requests", requests},
                {"ttft_ms", median(ttft) * 1e3}, {"client_decode_tokens_per_s", median(client)}};
    out["server_decode_tokens_per_s"] = have_server ? json(median(server)) : json(nullptr);
    out["client_over_server"] = have_server ? json(median(ratio)) : json(nullptr);
    out["server_ttft_ms"] = server_ttft.size() == runs.size() ? json(median(server_ttft) * 1e3) : json(nullptr);
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::cout << "bench-serve: " << base << "  model " << model << "  " << runs.front().tokens << " tokens x "
            << requests << " requests (streamed /v1/completions, greedy, ignore_eos)\n";
  for (size_t i = 0; i < runs.size(); ++i) {
    const Run& r = runs[i];
    std::cout << "  request " << i + 1 << ": ttft " << fixed(r.ttft_s * 1e3, 1) << " ms";
    if (r.server_ttft_s) std::cout << " (server queue+prefill " << fixed(*r.server_ttft_s * 1e3, 1) << " ms)";
    std::cout << "  client " << fixed(r.client_decode_tps, 1) << " tok/s";
    if (r.server_tps) std::cout << "  server " << fixed(*r.server_tps, 1) << " tok/s  ratio " << fixed(r.client_decode_tps / *r.server_tps, 3);
    std::cout << "\n";
  }
  std::cout << "median: ttft " << fixed(median(ttft) * 1e3, 1) << " ms";
  if (server_ttft.size() == runs.size()) std::cout << " (server " << fixed(median(server_ttft) * 1e3, 1) << " ms)";
  std::cout << "  client decode " << fixed(median(client), 1) << " tok/s";
  if (have_server)
    std::cout << "  server decode " << fixed(median(server), 1) << " tok/s  client/server " << fixed(median(ratio), 3);
  else
    std::cout << "  (the server sent no moescope_timing: no server figures)";
  std::cout << "\n";
  return 0;
}

}  // namespace moescope::cli
#else
namespace moescope::cli {
int cmd_bench_serve(int, char**) {
  throw Error("this moescope-cli was built without cpp-httplib (Debian: libcpp-httplib-dev), so bench-serve is not available");
}
}  // namespace moescope::cli
#endif
