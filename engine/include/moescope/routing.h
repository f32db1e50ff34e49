#pragma once
// Router semantics shared by every backend: how router logits become the selected experts and
// their weights, and the run-time interventions a user can apply (routing experiments).
#include <cstdint>
#include <vector>

#include "moescope/model_spec.h"
#include "moescope/routing_rules.h"

namespace moescope {

// Interventions applied inside the router (CPU and CUDA alike). Empty/zero means "as trained".
struct RoutingControl {
  // disabled[layer][expert]: never select. An empty outer vector disables nothing; an inner
  // vector may be empty for layers without changes. Layer indices are model layer indices.
  std::vector<std::vector<uint8_t>> disabled;
  int forced_expert = -1;      // always select this expert (first), when >= 0
  int forced_layer = -1;       // ... only in this layer (-1: every MoE layer)
  int top_k = 0;               // override the number of experts per token (0: the model's)
  bool ignore_bias = false;    // DeepSeek-V3: select without e_score_correction_bias

  bool empty() const { return disabled.empty() && forced_expert < 0 && top_k == 0 && !ignore_bias; }
  bool is_disabled(int layer, int expert) const {
    return layer < int(disabled.size()) && expert < int(disabled[size_t(layer)].size()) &&
           disabled[size_t(layer)][size_t(expert)];
  }
  int effective_top_k(const RouterSpec& r) const { return top_k > 0 ? std::min(top_k, r.n_experts) : r.top_k; }
  // [n_layers × n_experts]: 1 where is_disabled(); empty when nothing is disabled.
  std::vector<uint8_t> disabled_mask(int n_layers, int n_experts) const;
};

// The rule one layer routes by: the model's router (`has_bias`: the layer has a correction
// bias) with the control's interventions resolved for `layer`. The one place that reads both.
rules::RouterRule make_router_rule(const RouterSpec& r, const RoutingControl& control, int layer, bool has_bias);

// Routes one token by a rule (moescope/routing_rules.h). logits: [n_experts] router logits
// (fp32); bias: [n_experts] correction bias or nullptr; disabled: [n_experts] mask or nullptr.
// Writes rule.top_k ids in descending order of selection score and their final weights; probs
// (optional, [n_experts]) receives the router scores before any selection (softmax or sigmoid;
// for gpt-oss the softmax over all logits, while its weights are the softmax over the chosen k).
// scratch must hold 3 * n_experts floats.
void route_token(const rules::RouterRule& rule, const float* logits, const float* bias, const uint8_t* disabled,
                 int32_t* ids, float* weights, float* probs, float* scratch);

// The same for one token of `layer` straight from the model's router and the control (tests,
// one-off callers); scratch as above.
void route_token(const RouterSpec& r, const float* logits, const float* bias, const RoutingControl& control,
                 int layer, int32_t* ids, float* weights, float* probs, float* scratch);

}  // namespace moescope
