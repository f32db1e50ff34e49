#pragma once
// Routed experts as OpenAI-compatible servers return them, parsed into the engine's RoutingTrace
// (ids only: the servers send no weights, so the trace says "weights unknown"; moescope-cli serve
// sends its weights in extra fields, read back here).
//
// Wire formats followed (docs/remote-routing.md has the full table and the sources):
//   vLLM (docs/training/routed_experts_replay.md, vllm-project/vllm @ 0087e005, v0.21 era), server
//     started with --enable-return-routed-experts, no per-request switch:
//       response "prompt_routed_experts": [prompt_len][moe_layers][top_k] (nested JSON lists, int16
//       values, shared by all choices), per choice "routed_experts": [gen_len][moe_layers][top_k];
//       -1 marks a prefix-cached position. Streaming: sent only when the request finishes (the last
//       chunk of each choice), not per token.
//   SGLang (python/sglang/srt/entrypoints/openai/serving_chat.py, serving_completions.py, utils.py;
//     PR #17434 of Jan 2026), server started with --enable-return-routed-experts and the request
//     carrying "return_routed_experts": true:
//       /generate: "meta_info": {"routed_experts": BASE64, "prompt_tokens": N, ...};
//       /v1/chat/completions, /v1/completions: response-level "sglext": {"routed_experts": BASE64}
//       (of the first choice only); streaming: one extra chunk with "choices": [] and "sglext" after
//       the last content chunk, before the usage chunk and "data: [DONE]".
//       BASE64 = little-endian int32 [seqlen - 1][num_hidden_layers][top_k] over prompt + output
//       tokens (the last sampled token is never fed, so it has no routing); the layer axis counts
//       every layer, dense ones included (routed_experts_capturer.py).
//   moescope-cli serve: vLLM's fields, plus "prompt_routed_expert_weights" / per choice
//       "routed_expert_weights" (same shapes, float) and, when streaming, routing per token.
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json_fwd.hpp>

#include "moescope/routing_trace.h"

namespace moescope {
struct ModelSpec;
}

namespace moescope::remote {

// ---- base64 (RFC 4648 standard alphabet; '=' padding optional) ------------------------------
// Incremental: push() takes any split of the text; finish() checks the end. Error on a character
// outside the alphabet, data after padding, or a dangling single character (truncated text).
class Base64Decoder {
public:
  void push(std::string_view text);
  std::vector<uint8_t> finish();

private:
  std::vector<uint8_t> out_;
  uint32_t bits_ = 0;
  int nbits_ = 0;
  int pending_ = 0;  // characters of the current quantum
  int padding_ = 0;
};
std::vector<uint8_t> base64_decode(std::string_view text);
std::string base64_encode(const uint8_t* data, size_t size);

// ---- one routed-experts array ------------------------------------------------------------------
// ids[(t * n_layers + l) * top_k + k]; -1 = none (vLLM's prefix-cache sentinel).
struct RoutedExperts {
  int64_t n_tokens = 0;
  int n_layers = 0;
  int top_k = 0;
  std::vector<int32_t> ids;
  bool empty() const { return n_tokens == 0; }
  void append_rows(const RoutedExperts& more);  // Error when the layer count or top-k differ
};

// How to cut a flat (base64) array: SGLang sends no shape. 0 = unknown.
struct RoutingGeometry {
  int n_layers = 0;  // layers in the payload (SGLang: num_hidden_layers)
  int top_k = 0;
};

// A nested list [tokens][layers][top_k] or a base64 string of int32; null gives an empty array.
// `what` names the field in error messages.
RoutedExperts decode_routed_experts(const nlohmann::json& value, const RoutingGeometry& geometry, const std::string& what);

// ---- a whole response --------------------------------------------------------------------------
enum class Server { Unknown, Vllm, Sglang, Moescope };
const char* server_name(Server s);

struct ChoiceRouting {
  int index = 0;
  std::string text;           // message.content, text, or the streamed deltas joined
  std::string reasoning;      // message.reasoning_content (or vLLM's newer "reasoning"), or the deltas joined
  std::string finish_reason;
  std::vector<int32_t> token_ids;  // generated ids, where the server sent them
  RoutedExperts routed;       // rows of the generated tokens (SGLang: all but the last; when the
                              // prompt length is unknown, SGLang's prompt rows too)
  std::vector<float> weights; // moescope: same shape as `routed`; else empty
};

struct ResponseRouting {
  Server server = Server::Unknown;
  std::string id, model;
  int64_t prompt_tokens = -1;  // usage.prompt_tokens / meta_info.prompt_tokens
  std::vector<int32_t> prompt_token_ids;
  RoutedExperts prompt;        // vLLM prompt_routed_experts; SGLang: the first prompt_tokens rows
  std::vector<float> prompt_weights;
  std::vector<ChoiceRouting> choices;
  bool has_routing() const;
  // Empty when the response carries routing; otherwise the one line to show (which flag to add).
  std::string missing_routing_message() const;
};

// A non-streaming body: vLLM or SGLang chat/completions, SGLang /generate (an object or a list of
// them), moescope-cli serve. Error with one line for malformed input or an error body.
ResponseRouting parse_response(const nlohmann::json& body, const RoutingGeometry& geometry = {});
ResponseRouting parse_response_text(std::string_view body, const RoutingGeometry& geometry = {});

// ---- Server-Sent Events ------------------------------------------------------------------------
// The event-stream format (WHATWG HTML, "server-sent events"): lines end in \n, \r\n or \r, "data:"
// lines of one event are joined with \n, a blank line ends the event, ':' lines are comments.
// feed() takes bytes split anywhere; on_event gets each event's data. An event larger than
// max_event_bytes is an Error (a server that never ends a line cannot exhaust memory).
class SseParser {
public:
  explicit SseParser(size_t max_event_bytes = size_t(256) << 20) : max_(max_event_bytes) {}
  void feed(std::string_view bytes, const std::function<void(const std::string& data)>& on_event);
  bool mid_event() const { return !line_.empty() || has_data_; }

private:
  void line(const std::function<void(const std::string&)>& on_event);
  size_t max_;
  std::string line_, data_;
  bool has_data_ = false;
  bool after_cr_ = false;
};

// The chunks of a streamed /v1/chat/completions or /v1/completions answer (stream: true) folded
// into one ResponseRouting. Routing rows that arrive in several chunks are appended in order.
class StreamAssembler {
public:
  explicit StreamAssembler(RoutingGeometry geometry = {}) : geometry_(geometry) {}
  void feed(std::string_view bytes);  // raw response bytes, split anywhere
  // Error when the stream ended before "data: [DONE]" (server gone, truncated answer).
  void finish();
  bool done() const { return done_; }
  const ResponseRouting& result() const { return r_; }
  ResponseRouting& result() { return r_; }
  // Called for every text delta: (choice index, text).
  std::function<void(int, const std::string&)> on_text;
  // Called for every reasoning delta (reasoning_content / reasoning): (choice index, text);
  // before on_text when one chunk has both.
  std::function<void(int, const std::string&)> on_reasoning;
  // Called when routing rows arrived (choice index, or -1 for prompt / sequence rows).
  std::function<void(int)> on_routing;

private:
  void chunk(const std::string& data);
  ChoiceRouting& choice(int index);
  RoutingGeometry geometry_;
  SseParser sse_;
  ResponseRouting r_;
  RoutedExperts sequence_;  // SGLang's prompt + generated rows, split at finish() (usage comes last)
  bool done_ = false;
  size_t events_ = 0;
};

// ---- into the engine's trace -------------------------------------------------------------------
// What the trace needs to know of the model; from its config where there is one, else inferred
// from the payload (layers 0..L-1, n_experts = largest id + 1).
struct TraceShape {
  std::string model;
  int n_experts = 0;
  int top_k = 0;
  int n_layers = 0;             // all layers
  std::vector<int> moe_layers;  // model layer index of each MoE layer
};
TraceShape trace_shape_of(const ModelSpec& spec);

// The trace's MoE layers for a payload of `payload_layers` layers a token, and rows[m]: the payload
// layer that holds MoE layer m. Error when the payload fits neither the MoE layers nor all layers.
void layer_map(int payload_layers, const TraceShape& shape, std::vector<int>& moe_layers, std::vector<int>& rows);

// Rows [from, a.n_tokens) of a payload into `trace` as tokens at positions pos0 + row, with
// rows[m]: the payload layer of the trace's MoE layer m (layer_map). Weights where `weights` has the
// payload's shape (moescope-cli serve), else none; token ids where `token_ids` has them; text from
// `text_of` (may be empty). Error on more experts a layer than the trace's top-k or an id at or above
// its expert count. to_trace and the app's remote backend (rows as they stream) share it.
void append_rows(RoutingTrace& trace, const RoutedExperts& a, const std::vector<float>& weights, int64_t from, int64_t pos0,
                 Phase phase, const std::vector<int>& rows, const std::vector<int32_t>& token_ids,
                 const std::function<std::string(int64_t)>& text_of = {});

// The routing of one choice: prompt rows (phase prefill) then generated rows (decode). The payload's
// layer axis may count the MoE layers (vLLM) or all layers (SGLang); anything else is an Error.
// Weights unknown unless the response carried them.
RoutingTrace to_trace(const ResponseRouting& response, int choice, const TraceShape& shape);

}  // namespace moescope::remote
