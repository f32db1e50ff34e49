#pragma once
// Router semantics shared by every backend: how router logits become the selected experts and
// their weights, and the run-time interventions a user can apply (routing experiments).
#include <cstdint>
#include <vector>

#include "moescope/model_spec.h"

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
};

// Routes one token. logits: [n_experts] router logits (fp32). bias: [n_experts] correction bias
// or nullptr. Writes k = control.effective_top_k(r) ids in descending order of selection score
// and their final weights (after renormalisation and scaling). probs (optional, [n_experts])
// receives the router scores (softmax or sigmoid) before any selection; for TopKSoftmax (gpt-oss)
// the softmax over all logits, while the weights are the softmax over the selected k.
// scratch must hold 3 * n_experts floats.
void route_token(const RouterSpec& r, const float* logits, const float* bias, const RoutingControl& control,
                 int layer, int32_t* ids, float* weights, float* probs, float* scratch);

}  // namespace moescope
