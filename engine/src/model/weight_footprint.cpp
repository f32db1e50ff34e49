// weight_footprint.h: sums the bound views of a model by component and type.
#include "moescope/weight_footprint.h"

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>
#include <vector>

namespace moescope {

WeightFootprint weight_footprint(const ModelSpec& spec, const ModelWeights& w) {
  WeightFootprint f;
  int64_t weights = 0, active_experts = 0;
  for_each_weight(w, [&](WeightPart part, bool, const TensorView& t) {
    if (!t.data || t.shape.empty()) return;
    if (part == WeightPart::LmHead && t.data == w.embed.data) return;  // tied: counted once
    const auto bytes = int64_t(t.nbytes());
    auto& p = f.parts[weight_part_name(part)];
    p.bytes += bytes;
    p.bytes_by_type[dtype_name(t.dtype)] += bytes;
    f.bytes_by_type[dtype_name(t.dtype)] += bytes;
    f.total_bytes += bytes;
    weights += t.numel();
  });
  for (const LayerWeights& L : w.layers) {  // top_k of each MoE layer's average expert
    if (L.experts.empty()) continue;
    int64_t layer_experts = 0;
    for (const auto& e : L.experts)
      for (const TensorView* t : {&e.gate, &e.up, &e.down, &e.gate_b, &e.up_b, &e.down_b})
        if (t->data) layer_experts += int64_t(t->nbytes());
    active_experts += int64_t(std::llround(double(layer_experts) / double(L.experts.size()) * spec.moe.router.top_k));
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
