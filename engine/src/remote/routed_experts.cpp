// vLLM's, SGLang's and moescope-cli serve's routed experts (the formats are listed at the top of
// moescope/remote_routing.h and in docs/remote-routing.md) into ResponseRouting and RoutingTrace.
#include <algorithm>
#include <nlohmann/json.hpp>

#include "moescope/error.h"
#include "moescope/model_spec.h"
#include "moescope/remote_routing.h"

namespace moescope::remote {

using nlohmann::json;

namespace {

// Expert ids fit the trace's 16 bits; -1 is vLLM's "not recorded" (prefix-cached position).
constexpr int64_t kMaxId = 0xFFFE;
// No real model has more: a bound that keeps a hostile shape from allocating without end.
constexpr int64_t kMaxLayers = 4096, kMaxTopK = 4096;

std::string str_or(const json& j, const char* key) {
  auto it = j.find(key);
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

int32_t checked_id(int64_t v, const std::string& what) {
  if (v < -1 || v > kMaxId) throw Error(what + ": expert id " + std::to_string(v) + " out of range");
  return int32_t(v);
}

RoutedExperts from_nested(const json& v, const std::string& what) {
  RoutedExperts r;
  r.n_tokens = int64_t(v.size());
  for (size_t t = 0; t < v.size(); ++t) {
    const json& row = v[t];
    if (!row.is_array()) throw Error(what + ": token " + std::to_string(t) + " is not a list of layers");
    if (t == 0) {
      if (row.empty() || row.size() > size_t(kMaxLayers)) throw Error(what + ": token 0 has " + std::to_string(row.size()) + " layers");
      r.n_layers = int(row.size());
    } else if (row.size() != size_t(r.n_layers)) {
      throw Error(what + ": token " + std::to_string(t) + " has " + std::to_string(row.size()) + " layers, token 0 has " +
                  std::to_string(r.n_layers) + " (not a [tokens, layers, top_k] array)");
    }
    for (size_t l = 0; l < row.size(); ++l) {
      const json& ex = row[l];
      if (!ex.is_array()) throw Error(what + ": token " + std::to_string(t) + ", layer " + std::to_string(l) + " is not a list of experts");
      if (t == 0 && l == 0) {
        if (ex.empty() || ex.size() > size_t(kMaxTopK)) throw Error(what + ": " + std::to_string(ex.size()) + " experts per layer");
        r.top_k = int(ex.size());
        r.ids.reserve(v.size() * row.size() * ex.size());
      } else if (ex.size() != size_t(r.top_k)) {
        throw Error(what + ": token " + std::to_string(t) + ", layer " + std::to_string(l) + " has " + std::to_string(ex.size()) +
                    " experts, token 0 has " + std::to_string(r.top_k));
      }
      for (const json& e : ex) {
        if (!e.is_number_integer()) throw Error(what + ": expert ids must be integers");
        r.ids.push_back(checked_id(e.get<int64_t>(), what));
      }
    }
  }
  return r;
}

RoutedExperts from_base64(const std::string& text, const RoutingGeometry& g, const std::string& what) {
  std::vector<uint8_t> bytes;
  try {
    bytes = base64_decode(text);
  } catch (const Error& e) {
    throw Error(what + ": " + e.what());
  }
  if (bytes.size() % 4 != 0)
    throw Error(what + ": " + std::to_string(bytes.size()) + " bytes is not a whole number of int32 values (truncated?)");
  const size_t n = bytes.size() / 4;
  RoutedExperts r;
  if (n == 0) return r;
  if (g.n_layers <= 0 || g.top_k <= 0)
    throw Error(what + ": a base64 array carries no shape; give the model's config.json (layers and top-k)");
  const size_t per_token = size_t(g.n_layers) * size_t(g.top_k);
  if (n % per_token != 0)
    throw Error(what + ": " + std::to_string(n) + " ids do not split into tokens of " + std::to_string(g.n_layers) + " layers x " +
                std::to_string(g.top_k) + " experts (another model's config?)");
  r.n_tokens = int64_t(n / per_token);
  r.n_layers = g.n_layers;
  r.top_k = g.top_k;
  r.ids.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const uint32_t u = uint32_t(bytes[4 * i]) | uint32_t(bytes[4 * i + 1]) << 8 | uint32_t(bytes[4 * i + 2]) << 16 |
                       uint32_t(bytes[4 * i + 3]) << 24;
    r.ids[i] = checked_id(int64_t(int32_t(u)), what);
  }
  return r;
}

// Floats [tokens][layers][top_k] of the same shape as `ids` (moescope-cli serve's weights).
std::vector<float> weights_of(const json& v, const RoutedExperts& ids, const std::string& what) {
  std::vector<float> out;
  if (v.is_null()) return out;
  if (!v.is_array() || v.size() != size_t(ids.n_tokens)) throw Error(what + ": not one row per routed token");
  out.reserve(ids.ids.size());
  for (const json& row : v) {
    if (!row.is_array() || row.size() != size_t(ids.n_layers)) throw Error(what + ": rows must have one entry per layer");
    for (const json& w : row) {
      if (!w.is_array() || w.size() != size_t(ids.top_k)) throw Error(what + ": entries must have top-k weights");
      for (const json& x : w) {
        if (!x.is_number()) throw Error(what + ": weights must be numbers");
        out.push_back(x.get<float>());
      }
    }
  }
  return out;
}

void append_floats(std::vector<float>& to, const std::vector<float>& more) { to.insert(to.end(), more.begin(), more.end()); }

std::vector<int32_t> ids_of(const json& v, const std::string& what) {
  std::vector<int32_t> out;
  if (v.is_null()) return out;
  if (!v.is_array()) throw Error(what + ": not a list of token ids");
  for (const json& x : v) {
    if (!x.is_number_integer()) throw Error(what + ": token ids must be integers");
    out.push_back(int32_t(x.get<int64_t>()));
  }
  return out;
}

// {"error": {"message": ...}} (OpenAI, vLLM) or {"object": "error", "message": ...} (vLLM, SGLang).
void throw_if_error(const json& j) {
  if (!j.is_object()) return;
  auto it = j.find("error");
  if (it != j.end() && !it->is_null()) {
    std::string msg = it->is_object() ? str_or(*it, "message") : it->is_string() ? it->get<std::string>() : "";
    throw Error("server error: " + (msg.empty() ? it->dump() : msg));
  }
  if (str_or(j, "object") == "error") throw Error("server error: " + str_or(j, "message"));
}

Server detect(const json& j) {
  if (j.contains("prompt_routed_expert_weights") || str_or(j, "system_fingerprint").rfind("moescope", 0) == 0) return Server::Moescope;
  if (j.contains("sglext") || j.contains("meta_info")) return Server::Sglang;
  if (auto m = j.find("metadata"); m != j.end() && m->is_object() && m->contains("weight_version")) return Server::Sglang;
  if (j.contains("prompt_routed_experts") || str_or(j, "system_fingerprint").rfind("vllm", 0) == 0) return Server::Vllm;
  if (auto c = j.find("choices"); c != j.end() && c->is_array())
    for (const json& ch : *c)
      if (ch.is_object() && ch.contains("routed_experts")) return Server::Vllm;
  return Server::Unknown;
}

// Splits SGLang's prompt + generated rows at the prompt length (when it is known).
void split_sequence(ResponseRouting& r, ChoiceRouting& c, const RoutedExperts& seq) {
  if (seq.empty()) return;
  const int64_t p = r.prompt_tokens >= 0 ? std::min(r.prompt_tokens, seq.n_tokens) : 0;
  const size_t per = size_t(seq.n_layers) * size_t(seq.top_k);
  RoutedExperts head{p, seq.n_layers, seq.top_k, {seq.ids.begin(), seq.ids.begin() + std::ptrdiff_t(size_t(p) * per)}};
  RoutedExperts tail{seq.n_tokens - p, seq.n_layers, seq.top_k, {seq.ids.begin() + std::ptrdiff_t(size_t(p) * per), seq.ids.end()}};
  if (r.prompt.empty()) r.prompt = std::move(head);
  c.routed.append_rows(tail);
}

ChoiceRouting& choice_at(ResponseRouting& r, int index) {
  for (auto& c : r.choices)
    if (c.index == index) return c;
  if (index < 0 || index > 4096) throw Error("choice index " + std::to_string(index) + " out of range");
  r.choices.emplace_back();
  r.choices.back().index = index;
  return r.choices.back();
}

int index_of(const json& ch, size_t fallback) {
  auto it = ch.find("index");
  if (it == ch.end()) return int(fallback);
  if (!it->is_number_integer()) throw Error("choice 'index' must be an integer");
  return int(std::clamp<int64_t>(it->get<int64_t>(), -1, 1 << 20));
}

// One choice of a response or of a stream chunk (delta); appends what it carries.
void read_choice(const json& ch, size_t i, const RoutingGeometry& g, ResponseRouting& r, bool* routed,
                 std::string* delta_text, std::string* delta_reasoning = nullptr) {
  if (!ch.is_object()) throw Error("choice " + std::to_string(i) + " is not an object");
  ChoiceRouting& c = choice_at(r, index_of(ch, i));
  const std::string where = "choice " + std::to_string(c.index);
  std::string text;
  for (const char* key : {"message", "delta"})
    if (auto m = ch.find(key); m != ch.end() && m->is_object())
      if (auto ct = m->find("content"); ct != m->end() && ct->is_string()) text = ct->get<std::string>();
  // A reasoning model's thinking, apart from the answer: vLLM's reasoning parsers (gpt-oss' harmony
  // analysis channel, <think>...</think>) send it as reasoning_content (newer vLLM: reasoning).
  for (const char* key : {"message", "delta"})
    if (auto m = ch.find(key); m != ch.end() && m->is_object())
      for (const char* field : {"reasoning_content", "reasoning"})
        if (auto rc = m->find(field); rc != m->end() && rc->is_string()) {
          c.reasoning += rc->get<std::string>();
          if (delta_reasoning) *delta_reasoning = rc->get<std::string>();
          break;
        }
  if (auto t = ch.find("text"); t != ch.end() && t->is_string()) text = t->get<std::string>();
  c.text += text;
  if (delta_text) *delta_text = text;
  if (auto f = ch.find("finish_reason"); f != ch.end() && f->is_string()) c.finish_reason = f->get<std::string>();
  if (auto t = ch.find("token_ids"); t != ch.end()) {
    auto more = ids_of(*t, where + " token_ids");
    c.token_ids.insert(c.token_ids.end(), more.begin(), more.end());
  }
  if (auto re = ch.find("routed_experts"); re != ch.end() && !re->is_null()) {
    RoutedExperts more = decode_routed_experts(*re, g, where + " routed_experts");
    if (auto w = ch.find("routed_expert_weights"); w != ch.end())
      append_floats(c.weights, weights_of(*w, more, where + " routed_expert_weights"));
    c.routed.append_rows(more);
    if (routed && !more.empty()) *routed = true;
  }
}

// The response-level fields shared by a body and a chunk.
void read_top(const json& j, const RoutingGeometry& g, ResponseRouting& r, RoutedExperts& sequence, bool* prompt_routed) {
  if (r.server == Server::Unknown) r.server = detect(j);
  if (r.id.empty()) r.id = str_or(j, "id");
  if (r.model.empty()) r.model = str_or(j, "model");
  if (auto u = j.find("usage"); u != j.end() && u->is_object())
    if (auto p = u->find("prompt_tokens"); p != u->end() && p->is_number_integer()) r.prompt_tokens = p->get<int64_t>();
  if (auto p = j.find("prompt_token_ids"); p != j.end() && !p->is_null()) r.prompt_token_ids = ids_of(*p, "prompt_token_ids");
  if (auto p = j.find("prompt_routed_experts"); p != j.end() && !p->is_null()) {
    RoutedExperts more = decode_routed_experts(*p, g, "prompt_routed_experts");
    if (auto w = j.find("prompt_routed_expert_weights"); w != j.end())
      append_floats(r.prompt_weights, weights_of(*w, more, "prompt_routed_expert_weights"));
    r.prompt.append_rows(more);
    if (prompt_routed && !more.empty()) *prompt_routed = true;
  }
  if (auto s = j.find("sglext"); s != j.end() && s->is_object())
    if (auto re = s->find("routed_experts"); re != s->end() && !re->is_null()) {
      sequence.append_rows(decode_routed_experts(*re, g, "sglext.routed_experts"));
      if (prompt_routed) *prompt_routed = true;
    }
}

// SGLang /generate: {"text", "output_ids", "meta_info": {"id", "prompt_tokens", "routed_experts", ...}}.
void read_generate(const json& item, size_t i, const RoutingGeometry& g, ResponseRouting& r) {
  if (!item.is_object()) throw Error("/generate result " + std::to_string(i) + " is not an object");
  throw_if_error(item);
  r.server = Server::Sglang;
  ChoiceRouting& c = choice_at(r, int(i));
  c.text = str_or(item, "text");
  if (auto o = item.find("output_ids"); o != item.end()) c.token_ids = ids_of(*o, "output_ids");
  auto mi = item.find("meta_info");
  if (mi == item.end() || !mi->is_object())
    throw Error("/generate result " + std::to_string(i) + ": no 'meta_info' object (not an SGLang /generate result)");
  const json& meta = *mi;
  if (r.id.empty()) r.id = str_or(meta, "id");
  if (auto p = meta.find("prompt_tokens"); p != meta.end() && p->is_number_integer()) r.prompt_tokens = p->get<int64_t>();
  if (auto f = meta.find("finish_reason"); f != meta.end() && f->is_object()) c.finish_reason = str_or(*f, "type");
  if (auto re = meta.find("routed_experts"); re != meta.end() && !re->is_null())
    split_sequence(r, c, decode_routed_experts(*re, g, "meta_info.routed_experts"));
}

}  // namespace

const char* server_name(Server s) {
  switch (s) {
    case Server::Vllm: return "vLLM";
    case Server::Sglang: return "SGLang";
    case Server::Moescope: return "moescope";
    default: return "unknown";
  }
}

void RoutedExperts::append_rows(const RoutedExperts& more) {
  if (more.empty()) return;
  if (empty()) {
    *this = more;
    return;
  }
  if (more.n_layers != n_layers || more.top_k != top_k)
    throw Error("routed experts: a chunk of " + std::to_string(more.n_layers) + " layers x " + std::to_string(more.top_k) +
                " follows rows of " + std::to_string(n_layers) + " x " + std::to_string(top_k));
  n_tokens += more.n_tokens;
  ids.insert(ids.end(), more.ids.begin(), more.ids.end());
}

RoutedExperts decode_routed_experts(const json& value, const RoutingGeometry& geometry, const std::string& what) {
  if (value.is_null()) return {};
  if (value.is_array()) return from_nested(value, what);
  if (value.is_string()) return from_base64(value.get_ref<const std::string&>(), geometry, what);
  throw Error(what + ": expected a [tokens, layers, top_k] list or a base64 string, got " + std::string(value.type_name()));
}

bool ResponseRouting::has_routing() const {
  if (!prompt.empty()) return true;
  for (const auto& c : choices)
    if (!c.routed.empty()) return true;
  return false;
}

std::string ResponseRouting::missing_routing_message() const {
  if (has_routing()) return {};
  switch (server) {
    case Server::Vllm: return "the server sent no routed experts: start vLLM with --enable-return-routed-experts";
    case Server::Sglang:
      return "the server sent no routed experts: start SGLang with --enable-return-routed-experts and send "
             "\"return_routed_experts\": true in the request";
    case Server::Moescope: return "the server sent no routed experts: send \"return_routed_experts\": true in the request";
    default:
      return "the server sent no routed experts: start vLLM or SGLang with --enable-return-routed-experts (SGLang also "
             "needs \"return_routed_experts\": true in the request)";
  }
}

ResponseRouting parse_response_unchecked(const json& body, const RoutingGeometry& g);

// Every field is checked before use; a JSON exception escaping anyway (a shape not thought of) still
// ends as one clear Error, never as an exception the caller does not expect.
ResponseRouting parse_response(const json& body, const RoutingGeometry& g) {
  try {
    return parse_response_unchecked(body, g);
  } catch (const json::exception& e) {
    throw Error(std::string("response: unexpected JSON (") + e.what() + ")");
  }
}

ResponseRouting parse_response_unchecked(const json& body, const RoutingGeometry& g) {
  ResponseRouting r;
  if (body.is_array()) {  // SGLang /generate with a batch or n > 1
    if (body.empty()) throw Error("empty /generate result list");
    for (size_t i = 0; i < body.size(); ++i) read_generate(body[i], i, g, r);
    return r;
  }
  if (!body.is_object()) throw Error("response: expected a JSON object, got " + std::string(body.type_name()));
  throw_if_error(body);
  if (body.contains("meta_info") && !body.contains("choices")) {
    read_generate(body, 0, g, r);
    return r;
  }
  RoutedExperts sequence;
  read_top(body, g, r, sequence, nullptr);
  auto ch = body.find("choices");
  if (ch == body.end() || !ch->is_array()) throw Error("response: no 'choices' list (not a completion response)");
  for (size_t i = 0; i < ch->size(); ++i) read_choice((*ch)[i], i, g, r, nullptr, nullptr);
  if (!sequence.empty()) split_sequence(r, choice_at(r, 0), sequence);  // SGLang: routing of the first choice
  return r;
}

ResponseRouting parse_response_text(std::string_view body, const RoutingGeometry& g) {
  const json j = json::parse(body.begin(), body.end(), nullptr, false);
  if (j.is_discarded()) throw Error("response: invalid JSON (" + std::to_string(body.size()) + " bytes; truncated?)");
  return parse_response(j, g);
}

// ---- streaming ---------------------------------------------------------------------------------

void StreamAssembler::feed(std::string_view bytes) {
  try {
    sse_.feed(bytes, [this](const std::string& data) { chunk(data); });
  } catch (const json::exception& e) {  // as parse_response
    throw Error("stream event " + std::to_string(events_) + ": unexpected JSON (" + e.what() + ")");
  }
}

void StreamAssembler::chunk(const std::string& data) {
  ++events_;
  if (data == "[DONE]") {
    done_ = true;
    return;
  }
  if (done_) return;  // nothing follows [DONE]
  const json j = json::parse(data, nullptr, false);
  if (j.is_discarded()) throw Error("stream event " + std::to_string(events_) + ": invalid JSON (truncated chunk?)");
  if (!j.is_object()) throw Error("stream event " + std::to_string(events_) + ": expected a JSON object");
  throw_if_error(j);
  bool prompt_routed = false;
  read_top(j, geometry_, r_, sequence_, &prompt_routed);
  if (prompt_routed && on_routing) on_routing(-1);
  if (auto ch = j.find("choices"); ch != j.end()) {
    if (!ch->is_array()) throw Error("stream event " + std::to_string(events_) + ": 'choices' must be a list");
    for (size_t i = 0; i < ch->size(); ++i) {
      bool routed = false;
      std::string delta;
      std::string reasoning;
      read_choice((*ch)[i], i, geometry_, r_, &routed, &delta, &reasoning);
      const int index = index_of((*ch)[i], i);
      if (!reasoning.empty() && on_reasoning) on_reasoning(index, reasoning);
      if (!delta.empty() && on_text) on_text(index, delta);
      if (routed && on_routing) on_routing(index);
    }
  }
}

void StreamAssembler::finish() {
  if (sse_.mid_event() && !done_) throw Error("the stream ended in the middle of an event (truncated answer)");
  if (!done_) throw Error("the stream ended before \"data: [DONE]\" (the server stopped mid-answer)");
  if (!sequence_.empty()) {
    split_sequence(r_, choice_at(r_, 0), sequence_);
    sequence_ = {};
  }
}

ChoiceRouting& StreamAssembler::choice(int index) { return choice_at(r_, index); }

// ---- into the trace ----------------------------------------------------------------------------

TraceShape trace_shape_of(const ModelSpec& spec) {
  TraceShape s;
  s.model = spec.name;
  s.n_experts = spec.moe.router.n_experts;
  s.top_k = spec.moe.router.top_k;
  s.n_layers = spec.n_layers;
  s.moe_layers = spec.moe_layer_indices();
  return s;
}

// Payload layer -> trace MoE layer: the payload counts the MoE layers (vLLM) or every layer (SGLang).
void layer_map(int L, const TraceShape& shape, std::vector<int>& moe_layers, std::vector<int>& rows) {
  moe_layers = shape.moe_layers;
  rows.clear();
  if (moe_layers.empty()) {
    for (int l = 0; l < L; ++l) moe_layers.push_back(l);
    rows = moe_layers;
  } else if (L == int(moe_layers.size())) {
    for (int m = 0; m < L; ++m) rows.push_back(m);
  } else if (shape.n_layers > 0 && L == shape.n_layers) {
    rows = moe_layers;
  } else {
    throw Error("the routed experts have " + std::to_string(L) + " layers a token; the model has " + std::to_string(shape.n_layers) +
                " layers, " + std::to_string(moe_layers.size()) + " of them MoE (another model's config?)");
  }
}

void append_rows(RoutingTrace& trace, const RoutedExperts& a, const std::vector<float>& weights, int64_t from, int64_t pos0,
                 Phase phase, const std::vector<int>& rows, const std::vector<int32_t>& token_ids,
                 const std::function<std::string(int64_t)>& text_of) {
  const int K = a.top_k, L = a.n_layers;
  if (a.empty() || from >= a.n_tokens) return;
  if (K > trace.top_k())
    throw Error("the routed experts have " + std::to_string(K) + " experts a layer; the model selects " + std::to_string(trace.top_k()));
  const bool has_weights = !weights.empty() && weights.size() == a.ids.size();
  const size_t nm = rows.size();
  std::vector<int32_t> ids(nm * size_t(K));
  std::vector<float> w(nm * size_t(K));
  for (int64_t t = from; t < a.n_tokens; ++t) {
    const size_t base = size_t(t) * size_t(L) * size_t(K);
    for (size_t m = 0; m < nm; ++m)
      for (int k = 0; k < K; ++k) {
        const size_t src = base + size_t(rows[m]) * size_t(K) + size_t(k);
        const int32_t e = a.ids[src];
        if (e >= trace.n_experts())
          throw Error("expert id " + std::to_string(e) + " (token " + std::to_string(pos0 + t) + ", layer " +
                      std::to_string(trace.moe_layers()[m]) + ") is not below the model's " + std::to_string(trace.n_experts()) +
                      " experts (physical ids of redundant experts under expert-parallel load balancing?)");
        ids[m * size_t(K) + size_t(k)] = e;
        if (has_weights) w[m * size_t(K) + size_t(k)] = weights[src];
      }
    TraceToken tk;
    tk.pos = int32_t(pos0 + t);
    tk.id = size_t(t) < token_ids.size() ? token_ids[size_t(t)] : 0;
    tk.phase = phase;
    if (text_of) tk.text = text_of(t);
    trace.append(tk, ids.data(), has_weights ? w.data() : nullptr, K);
  }
}

RoutingTrace to_trace(const ResponseRouting& r, int choice_index, const TraceShape& shape) {
  const ChoiceRouting* c = nullptr;
  for (const auto& ch : r.choices)
    if (ch.index == choice_index) c = &ch;
  if (!c && !(choice_index == 0 && r.choices.empty())) throw Error("the response has no choice " + std::to_string(choice_index));
  static const ChoiceRouting kNoChoice;
  if (!c) c = &kNoChoice;
  const RoutedExperts& P = r.prompt;
  const RoutedExperts& G = c->routed;
  if (P.empty() && G.empty()) throw Error(r.missing_routing_message());
  const int L = P.empty() ? G.n_layers : P.n_layers;
  const int K = P.empty() ? G.top_k : P.top_k;
  if (!P.empty() && !G.empty() && (G.n_layers != L || G.top_k != K))
    throw Error("prompt and generated routed experts differ in shape");

  std::vector<int> moe_layers, rows;
  layer_map(L, shape, moe_layers, rows);
  const int top_k = shape.top_k > 0 ? shape.top_k : K;
  if (K > top_k)
    throw Error("the routed experts have " + std::to_string(K) + " experts a layer; the model selects " + std::to_string(top_k));
  int n_experts = shape.n_experts;
  if (n_experts <= 0) {
    int32_t top = 0;
    for (int32_t v : P.ids) top = std::max(top, v);
    for (int32_t v : G.ids) top = std::max(top, v);
    n_experts = std::max(int(top) + 1, top_k);
  }
  const bool weights = r.prompt_weights.size() == P.ids.size() && c->weights.size() == G.ids.size() &&
                       !(r.prompt_weights.empty() && c->weights.empty());
  static const std::vector<float> kNone;

  RoutingTrace trace(shape.model.empty() ? r.model : shape.model, n_experts, top_k, moe_layers);
  append_rows(trace, P, weights ? r.prompt_weights : kNone, 0, 0, Phase::Prefill, rows, r.prompt_token_ids);
  const int64_t pos0 = !P.empty() ? P.n_tokens : std::max<int64_t>(r.prompt_tokens, 0);
  append_rows(trace, G, weights ? c->weights : kNone, 0, pos0, Phase::Decode, rows, c->token_ids);
  return trace;
}

}  // namespace moescope::remote
