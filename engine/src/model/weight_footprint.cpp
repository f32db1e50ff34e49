// weight_footprint.h: sums the bound views of a model by component and type.
#include "moescope/weight_footprint.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

namespace moescope {

WeightFootprint weight_footprint(const ModelSpec& spec, const ModelWeights& w) {
  WeightFootprint f;
  int64_t weights = 0;
  auto add = [&](const char* part, const TensorView& t) {
    if (!t.data || t.shape.empty()) return int64_t(0);
    const auto bytes = int64_t(t.nbytes());
    auto& p = f.parts[part];
    p.bytes += bytes;
    p.bytes_by_type[dtype_name(t.dtype)] += bytes;
    f.bytes_by_type[dtype_name(t.dtype)] += bytes;
    f.total_bytes += bytes;
    weights += t.numel();
    return bytes;
  };
  auto mlp = [&](const char* part, const MlpWeights& m) {
    int64_t b = 0;
    for (const TensorView* t : {&m.gate, &m.up, &m.down, &m.gate_b, &m.up_b, &m.down_b}) b += add(part, *t);
    return b;
  };
  add("embedding", w.embed);
  if (w.lm_head.data != w.embed.data) add("lm_head", w.lm_head);
  add("norms", w.final_norm);
  int64_t active_experts = 0;
  for (size_t l = 0; l < w.layers.size(); ++l) {
    const LayerWeights& L = w.layers[l];
    for (const TensorView* t : {&L.attn_norm, &L.ffn_norm}) add("norms", *t);
    for (const Linear* x : {&L.q, &L.k, &L.v, &L.o, &L.q_a, &L.q_b, &L.kv_a, &L.kv_b}) add("attention", x->w), add("attention", x->b);
    for (const TensorView* t : {&L.q_norm, &L.k_norm, &L.q_a_norm, &L.kv_a_norm, &L.sinks}) add("attention", *t);
    for (const Linear* x : {&L.lin_qkv, &L.lin_z, &L.lin_b, &L.lin_a, &L.lin_out})
      add("linear_attention", x->w), add("linear_attention", x->b);
    for (const TensorView* t : {&L.conv, &L.dt_bias, &L.a_log, &L.lin_norm}) add("linear_attention", *t);
    mlp("dense_ffn", L.dense);
    for (const TensorView* t : {&L.router, &L.router_bias, &L.router_logit_bias}) add("router", *t);
    int64_t layer_experts = 0;
    for (const auto& e : L.experts) layer_experts += mlp("routed_experts", e);
    if (!L.experts.empty())
      active_experts += int64_t(std::llround(double(layer_experts) / double(L.experts.size()) * spec.moe.router.top_k));
    mlp("shared_experts", L.shared);
    add("shared_experts", L.shared_gate);
  }
  const int64_t embed = f.parts.count("embedding") ? f.parts["embedding"].bytes : 0;
  const int64_t experts = f.parts.count("routed_experts") ? f.parts["routed_experts"].bytes : 0;
  // One row of the embedding is read a token; a tied head reads all of it.
  const int64_t embed_read = w.lm_head.data == w.embed.data ? embed : (w.embed.shape.empty() ? 0 : embed / w.embed.shape[0]);
  f.decode_bytes_per_token = f.total_bytes - embed - experts + embed_read + active_experts;
  f.bits_per_weight = weights > 0 ? double(f.total_bytes) * 8.0 / double(weights) : 0.0;
  return f;
}

std::string types_text(const WeightFootprint& f) {
  std::vector<std::pair<int64_t, std::string>> v;
  for (const auto& [t, b] : f.bytes_by_type) v.emplace_back(b, t);
  std::sort(v.rbegin(), v.rend());
  std::string s;
  for (const auto& [b, t] : v) {
    const double share = f.total_bytes > 0 ? 100.0 * double(b) / double(f.total_bytes) : 0.0;
    if (share < 0.5) continue;
    if (!s.empty()) s += ", ";
    s.append(t).append(" ").append(std::to_string(int(std::lround(share)))).append(" %");
  }
  return s;
}

nlohmann::json footprint_json(const WeightFootprint& f) {
  nlohmann::json parts = nlohmann::json::object();
  for (const auto& [name, p] : f.parts) parts[name] = {{"bytes", p.bytes}, {"bytes_by_type", p.bytes_by_type}};
  return {{"total_bytes", f.total_bytes},
          {"decode_bytes_per_token", f.decode_bytes_per_token},
          {"bits_per_weight", f.bits_per_weight},
          {"types", types_text(f)},
          {"bytes_by_type", f.bytes_by_type},
          {"parts", parts}};
}

}  // namespace moescope
