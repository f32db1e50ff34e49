#pragma once
// Load-balance statistics over a routing trace, updated incrementally as tokens arrive so live
// views cost O(new tokens), not O(conversation). Definitions (per MoE layer, over a window of
// tokens; load_e = times expert e was selected):
//   cv       population standard deviation of load / mean load
//   maxvio   max load / mean load − 1
//   entropy  −Σ p log p / log n_experts, p = load / Σ load   (1 = perfectly even)
//   dead     experts with load 0;   distinct: experts with load > 0
#include <cstdint>
#include <vector>

#include "moescope/routing_trace.h"

namespace moescope {

struct LayerBalance {
  int layer = 0;      // model layer index
  int64_t tokens = 0;
  double cv = 0.0;
  double maxvio = 0.0;
  double entropy = 0.0;
  int dead = 0;
  int distinct = 0;
};

// Metrics of one load vector (tokens: how many tokens it counts).
LayerBalance balance_of(const std::vector<int64_t>& load, int64_t tokens, int layer);

class RoutingStats {
public:
  RoutingStats() = default;
  RoutingStats(int n_experts, std::vector<int> moe_layers);
  static RoutingStats for_trace(const RoutingTrace& trace);

  // Adds tokens [first, last) of the trace (incremental: call with the new range only).
  void add(const RoutingTrace& trace, size_t first, size_t last);
  void add_all(const RoutingTrace& trace) { add(trace, 0, trace.size()); }
  // One token given as ids [n_moe_layers][k] (negative = none), for dumps read without a trace;
  // Error on an id >= n_experts.
  void add_token(const int32_t* ids, int k);
  // Counts gathered elsewhere (a streamed dump's workers): load[m * n_experts + e] is added to
  // expert e of MoE layer m, and `tokens` to the token count.
  void add_counts(const int64_t* load, int64_t tokens);
  // Another statistics' counts (same experts and layers; Error otherwise).
  void merge(const RoutingStats& other);
  void clear();

  int n_experts() const { return n_experts_; }
  const std::vector<int>& moe_layers() const { return layers_; }
  int64_t tokens() const { return tokens_; }
  const std::vector<int64_t>& load(int moe_index) const { return load_[size_t(moe_index)]; }
  LayerBalance layer(int moe_index) const;
  // All layers at once, as statistics of the per-layer figures: expert i of one layer and expert
  // i of another are unrelated, so their counts are never added. The mean of each metric over
  // the MoE layers, and the worst layer's value of each (highest cv, MaxVio and dead, lowest
  // entropy and distinct). layer is -1; tokens is the token count.
  LayerBalance mean_over_layers() const;
  LayerBalance worst_over_layers() const;

private:
  int n_experts_ = 0;
  std::vector<int> layers_;
  int64_t tokens_ = 0;
  std::vector<std::vector<int64_t>> load_;  // [moe_layers][n_experts]
};

// Co-activation of one MoE layer over trace tokens [first, last): count[i][j] = tokens that
// selected both i and j (diagonal: tokens that selected i). P(j | i) = count[i][j] / count[i][i].
std::vector<int64_t> coactivation(const RoutingTrace& trace, int moe_index, size_t first, size_t last);

// CSV with header `layer,tokens,cv,maxvio,entropy,dead,distinct`, one row per MoE layer and a
// final row with layer "all".
std::string balance_csv(const RoutingStats& stats);

}  // namespace moescope
