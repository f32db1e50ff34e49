#include "moescope/routing_trace.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <nlohmann/json.hpp>

#include "moescope/error.h"
#include "moescope/tensor.h"

namespace moescope {

namespace {
// A half-precision value written with 5 significant digits: the nearest half of what is read
// back is the same half, so a saved trace reopens bit for bit (half has 11 significant bits).
double half_digits(float v) {
  if (v == 0.0f || !std::isfinite(v)) return v;
  const double scale = std::pow(10.0, 4 - int(std::floor(std::log10(std::fabs(double(v))))));
  return std::round(double(v) * scale) / scale;
}
constexpr uint16_t kNone = 0xFFFF;
constexpr int kMaxExperts = 0xFFFE;
}  // namespace

RoutingTrace::RoutingTrace(std::string model, int n_experts, int top_k, std::vector<int> moe_layers)
    : model_(std::move(model)), n_experts_(n_experts), top_k_(top_k), moe_layers_(std::move(moe_layers)) {
  if (n_experts_ < 0 || n_experts_ > kMaxExperts) throw Error("routing trace: n_experts out of range");
  if (top_k_ < 0 || top_k_ > n_experts_) throw Error("routing trace: top_k out of range");
}

void RoutingTrace::append(const TraceToken& token, const int32_t* ids, const float* weights, int k,
                          const float* probs, const float* shared_gates) {
  tokens_.push_back(token);
  if (!weights) weights_unknown_ = true;
  const size_t nm = moe_layers_.size();
  for (size_t m = 0; m < nm; ++m)
    for (int s = 0; s < top_k_; ++s) {
      const bool valid = s < k && ids[m * size_t(k) + size_t(s)] >= 0 && ids[m * size_t(k) + size_t(s)] < n_experts_;
      ids_.push_back(valid ? uint16_t(ids[m * size_t(k) + size_t(s)]) : kNone);
      weights_.push_back(valid && weights ? f32_to_f16(weights[m * size_t(k) + size_t(s)]) : 0);
    }
  if (probs) {
    if (probs_.size() != (tokens_.size() - 1) * nm * size_t(n_experts_)) probs_.resize((tokens_.size() - 1) * nm * size_t(n_experts_), 0);
    for (size_t i = 0; i < nm * size_t(n_experts_); ++i) probs_.push_back(f32_to_f16(probs[i]));
  } else if (!probs_.empty()) {
    probs_.resize(tokens_.size() * nm * size_t(n_experts_), 0);
  }
  if (shared_gates) {
    gates_.resize((tokens_.size() - 1) * nm, 0);
    for (size_t m = 0; m < nm; ++m) gates_.push_back(f32_to_f16(shared_gates[m]));
  } else if (!gates_.empty()) {
    gates_.resize(tokens_.size() * nm, 0);
  }
}

void RoutingTrace::truncate(size_t n) {
  if (n == 0) weights_unknown_ = false;
  if (n >= tokens_.size()) return;
  tokens_.resize(n);
  ids_.resize(n * moe_layers_.size() * size_t(top_k_));
  weights_.resize(ids_.size());
  if (!probs_.empty()) probs_.resize(n * moe_layers_.size() * size_t(n_experts_));
  if (!gates_.empty()) gates_.resize(n * moe_layers_.size());
}

RoutingTrace RoutingTrace::slice(size_t first, size_t last) const {
  RoutingTrace s(model_, n_experts_, top_k_, moe_layers_);
  s.append(*this, first, last);
  return s;
}

void RoutingTrace::append(const RoutingTrace& seg, size_t first, size_t last) {
  if (!same_shape(seg))
    throw Error("routing trace: a segment of another shape (" + std::to_string(seg.n_experts_) + " experts, top-" +
                std::to_string(seg.top_k_) + ", " + std::to_string(seg.moe_layers_.size()) +
                " MoE layers) cannot extend this trace");
  last = std::min(last, seg.tokens_.size());
  first = std::min(first, last);
  if (first == last) return;
  // Cut where the segment starts when this trace already holds that position (positions ascend;
  // a trace that is itself a segment starts at its first token's position).
  const int32_t pos0 = seg.tokens_[first].pos;
  if (!tokens_.empty() && pos0 <= tokens_.back().pos)
    truncate(size_t(std::max(0, pos0 - tokens_.front().pos)));
  const size_t slots = moe_layers_.size() * size_t(top_k_), scores = moe_layers_.size() * size_t(n_experts_);
  const size_t before = tokens_.size();
  const auto at = [](const std::vector<uint16_t>& v, size_t i) { return v.begin() + std::ptrdiff_t(i); };
  tokens_.insert(tokens_.end(), seg.tokens_.begin() + std::ptrdiff_t(first), seg.tokens_.begin() + std::ptrdiff_t(last));
  ids_.insert(ids_.end(), at(seg.ids_, first * slots), at(seg.ids_, last * slots));
  weights_.insert(weights_.end(), at(seg.weights_, first * slots), at(seg.weights_, last * slots));
  if (!seg.has_weights()) weights_unknown_ = true;  // as append() without weights
  // Scores: tokens without them read as zeros, whichever side lacks them.
  if (!seg.probs_.empty()) {
    probs_.resize(before * scores, 0);
    probs_.insert(probs_.end(), at(seg.probs_, first * scores), at(seg.probs_, last * scores));
  } else if (!probs_.empty()) {
    probs_.resize(tokens_.size() * scores, 0);
  }
  const size_t nm = moe_layers_.size();
  if (!seg.gates_.empty()) {
    gates_.resize(before * nm, 0);
    gates_.insert(gates_.end(), at(seg.gates_, first * nm), at(seg.gates_, last * nm));
  } else if (!gates_.empty()) {
    gates_.resize(tokens_.size() * nm, 0);
  }
}

int RoutingTrace::expert(size_t i, int m, int slot) const {
  uint16_t v = ids_[slot_index(i, m, slot)];
  return v == kNone ? -1 : int(v);
}

float RoutingTrace::weight(size_t i, int m, int slot) const { return f16_to_f32(weights_[slot_index(i, m, slot)]); }

float RoutingTrace::prob(size_t i, int m, int e) const {
  if (probs_.empty()) return 0.0f;
  return f16_to_f32(probs_[(i * moe_layers_.size() + size_t(m)) * size_t(n_experts_) + size_t(e)]);
}

float RoutingTrace::shared_gate(size_t i, int m) const {
  if (gates_.empty()) return -1.0f;
  return f16_to_f32(gates_[i * moe_layers_.size() + size_t(m)]);
}

size_t RoutingTrace::bytes() const { return (ids_.size() + weights_.size() + probs_.size() + gates_.size()) * 2; }

nlohmann::json RoutingTrace::to_json() const {
  using nlohmann::json;
  json j = {{"version", 1}, {"model", model_}, {"n_experts", n_experts_}, {"top_k", top_k_}, {"moe_layers", moe_layers_}};
  if (!has_weights()) j["weights_known"] = false;
  json toks = json::array();
  for (size_t i = 0; i < tokens_.size(); ++i) {
    const auto& t = tokens_[i];
    json routes = json::array();
    for (int m = 0; m < n_moe_layers(); ++m) {
      json ex = json::array(), w = json::array();
      for (int s = 0; s < top_k_; ++s) {
        int e = expert(i, m, s);
        if (e < 0) continue;
        ex.push_back(e);
        if (has_weights()) w.push_back(half_digits(weight(i, m, s)));
      }
      json r = {{"layer", moe_layers_[size_t(m)]}, {"experts", ex}};
      if (has_weights()) r["weights"] = w;
      if (has_probs()) {
        json p = json::array();
        for (int e = 0; e < n_experts_; ++e) p.push_back(half_digits(prob(i, m, e)));
        r["probs"] = p;
      }
      if (has_shared_gates()) r["shared_gate"] = half_digits(shared_gate(i, m));
      routes.push_back(r);
    }
    toks.push_back({{"pos", t.pos}, {"id", t.id}, {"text", t.text},
                    {"phase", t.phase == Phase::Prefill ? "prefill" : "decode"}, {"routes", routes}});
  }
  j["tokens"] = toks;
  return j;
}

RoutingTrace RoutingTrace::from_json(const nlohmann::json& j) {
  auto fail = [](const std::string& why) -> Error { return Error("routing trace: " + why); };
  if (!j.is_object()) throw fail("expected a JSON object");
  if (!j.contains("version") || !j["version"].is_number_integer() || j["version"].get<int>() != 1)
    throw fail("unsupported or missing 'version' (expected 1)");
  auto need_int = [&](const char* k, int lo, int hi) {
    if (!j.contains(k) || !j[k].is_number_integer()) throw fail(std::string("missing integer '") + k + "'");
    long long v = j[k].get<long long>();
    if (v < lo || v > hi) throw fail(std::string("'") + k + "' out of range");
    return int(v);
  };
  // A dense model's trace (no MoE layer) has n_experts = top_k = 0.
  int n_experts = need_int("n_experts", 0, kMaxExperts);
  int top_k = need_int("top_k", 0, n_experts);
  if (!j.contains("moe_layers") || !j["moe_layers"].is_array()) throw fail("missing 'moe_layers' array");
  std::vector<int> layers;
  for (const auto& l : j["moe_layers"]) {
    if (!l.is_number_integer() || l.get<long long>() < 0 || l.get<long long>() > 100000) throw fail("bad layer index in 'moe_layers'");
    layers.push_back(l.get<int>());
  }
  if (layers.size() > 4096) throw fail("too many MoE layers");
  if (!layers.empty() && top_k == 0) throw fail("'n_experts' and 'top_k' must be positive when there are MoE layers");
  std::string model = j.contains("model") && j["model"].is_string() ? j["model"].get<std::string>() : "";
  RoutingTrace t(model, n_experts, top_k, layers);
  // "weights_known": false (or routes without "weights"): a trace of ids only.
  const bool weights_known = !(j.contains("weights_known") && j["weights_known"].is_boolean() && !j["weights_known"].get<bool>());
  if (!j.contains("tokens") || !j["tokens"].is_array()) throw fail("missing 'tokens' array");
  const size_t nm = layers.size();
  std::vector<int32_t> ids(nm * size_t(top_k));
  std::vector<float> w(nm * size_t(top_k)), probs, gates;
  size_t index = 0;
  for (const auto& tk : j["tokens"]) {
    const std::string where = "token " + std::to_string(index++);
    if (!tk.is_object()) throw fail(where + " is not an object");
    TraceToken tt;
    if (tk.contains("pos") && tk["pos"].is_number_integer()) tt.pos = tk["pos"].get<int>();
    if (tk.contains("id") && tk["id"].is_number_integer()) tt.id = tk["id"].get<int>();
    if (tk.contains("text") && tk["text"].is_string()) tt.text = tk["text"].get<std::string>();
    if (tk.contains("phase") && tk["phase"].is_string()) tt.phase = tk["phase"] == "decode" ? Phase::Decode : Phase::Prefill;
    if (!tk.contains("routes") || !tk["routes"].is_array() || tk["routes"].size() != nm)
      throw fail(where + ": 'routes' must hold one entry per MoE layer");
    std::fill(ids.begin(), ids.end(), -1);
    std::fill(w.begin(), w.end(), 0.0f);
    bool with_probs = false, with_weights = true, with_gates = false;
    for (size_t m = 0; m < nm; ++m) {
      const auto& r = tk["routes"][m];
      const bool route_weights = weights_known && r.is_object() && r.contains("weights");
      if (!r.is_object() || !r.contains("experts") || !r["experts"].is_array() || r["experts"].size() > size_t(top_k) ||
          (route_weights && (!r["weights"].is_array() || r["experts"].size() != r["weights"].size())))
        throw fail(where + ": malformed route for MoE layer " + std::to_string(layers[m]));
      if (!route_weights) with_weights = false;
      for (size_t s = 0; s < r["experts"].size(); ++s) {
        const auto& e = r["experts"][s];
        if (!e.is_number_integer() || e.get<long long>() < 0 || e.get<long long>() >= n_experts ||
            (route_weights && !r["weights"][s].is_number()))
          throw fail(where + ": expert id or weight out of range");
        ids[m * size_t(top_k) + s] = e.get<int>();
        if (route_weights) w[m * size_t(top_k) + s] = r["weights"][s].get<float>();
      }
      if (r.contains("probs")) {
        if (!r["probs"].is_array() || r["probs"].size() != size_t(n_experts)) throw fail(where + ": 'probs' must have n_experts values");
        if (!with_probs) probs.assign(nm * size_t(n_experts), 0.0f);
        with_probs = true;
        for (int e = 0; e < n_experts; ++e) {
          if (!r["probs"][size_t(e)].is_number()) throw fail(where + ": non-numeric probability");
          probs[m * size_t(n_experts) + size_t(e)] = r["probs"][size_t(e)].get<float>();
        }
      }
      if (r.contains("shared_gate")) {
        if (!r["shared_gate"].is_number() || !(r["shared_gate"].get<double>() >= 0.0 && r["shared_gate"].get<double>() <= 1.0))
          throw fail(where + ": 'shared_gate' must be a number in [0, 1]");
        if (!with_gates) gates.assign(nm, 0.0f);
        with_gates = true;
        gates[m] = r["shared_gate"].get<float>();
      }
    }
    t.append(tt, ids.data(), with_weights ? w.data() : nullptr, top_k, with_probs ? probs.data() : nullptr,
             with_gates ? gates.data() : nullptr);
  }
  return t;
}

void RoutingTrace::save(const std::filesystem::path& path) const {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error("cannot write " + path.string());
  out << to_json().dump();
  if (!out) throw Error("failed writing " + path.string());
}

RoutingTrace RoutingTrace::load(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + path.string());
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    throw Error(path.filename().string() + ": invalid JSON (" + std::string(e.what()) + ")");
  }
  return from_json(j);
}

}  // namespace moescope
