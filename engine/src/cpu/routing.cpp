// The CPU's loop around the router rules of moescope/routing_rules.h (the device's is
// kernels/router.cu). The rules follow transformers' DeepseekV3TopkRouter / DeepseekV2TopkRouter /
// Qwen3MoeTopKRouter / GptOssTopKRouter and DeepSeek's official MoEGate (model.py). Unselected
// groups are masked with -inf as DeepSeek's code does (some transformers versions use 0, which
// differs when biased scores are negative).
#include <algorithm>
#include <cmath>

#include "moescope/routing.h"

namespace moescope {

std::vector<uint8_t> RoutingControl::disabled_mask(int n_layers, int n_experts) const {
  if (disabled.empty()) return {};
  std::vector<uint8_t> mask(size_t(n_layers) * size_t(n_experts), 0);
  bool any = false;
  for (int l = 0; l < n_layers; ++l)
    for (int e = 0; e < n_experts; ++e)
      if (is_disabled(l, e)) mask[size_t(l) * size_t(n_experts) + size_t(e)] = 1, any = true;
  if (!any) mask.clear();
  return mask;
}

rules::RouterRule make_router_rule(const RouterSpec& r, const RoutingControl& control, int layer, bool has_bias) {
  rules::RouterRule rule;
  rule.n_experts = r.n_experts;
  rule.top_k = control.effective_top_k(r);
  rule.scoring = r.scoring == ScoreFunc::Sigmoid        ? rules::kSigmoid
                 : r.scoring == ScoreFunc::TopKSoftmax ? rules::kTopKSoftmax
                                                       : rules::kSoftmax;
  rule.grouping = r.n_group <= 1                        ? rules::kNoGroups
                  : r.group_score == GroupScore::Max     ? rules::kGroupMax
                  : r.group_score == GroupScore::SumTop2 ? rules::kGroupSumTop2
                                                         : rules::kNoGroups;
  rule.n_group = r.n_group;
  rule.topk_group = r.topk_group;
  rule.renormalize = r.renormalize;
  rule.scale_after_renorm = r.scale_after_renorm;
  rule.scaling = r.scaling;
  rule.use_bias = has_bias && r.correction_bias && !control.ignore_bias;
  const bool forced_here = control.forced_layer < 0 || control.forced_layer == layer;
  rule.forced_expert = forced_here && control.forced_expert >= 0 && control.forced_expert < r.n_experts
                           ? control.forced_expert
                           : -1;
  return rule;
}

void route_token(const rules::RouterRule& r, const float* logits, const float* bias, const uint8_t* disabled,
                 int32_t* ids, float* weights, float* probs, float* scratch) {
  const int E = r.n_experts, k = r.top_k;
  float* scores = scratch;              // [E] router scores (softmax or sigmoid)
  float* choice = scratch + E;          // [E] selection values (biased, masked)
  float* group_best = scratch + 2 * E;  // [n_group]

  if (rules::softmax_scores(r)) {
    float mx = rules::neg_inf();
    for (int e = 0; e < E; ++e) mx = std::max(mx, logits[e]);
    float sum = 0.0f;
    for (int e = 0; e < E; ++e) sum += (scores[e] = std::exp(logits[e] - mx));
    for (int e = 0; e < E; ++e) scores[e] /= sum;
  } else {
    for (int e = 0; e < E; ++e) scores[e] = rules::sigmoid(logits[e]);
  }
  if (probs) std::copy(scores, scores + E, probs);
  for (int e = 0; e < E; ++e) choice[e] = rules::selection_value(r, scores[e], logits[e], bias, e, disabled);

  if (rules::grouped(r)) {
    const int per = rules::group_size(r);
    for (int g = 0; g < r.n_group; ++g) group_best[g] = rules::group_value(r, choice + g * per, per);
    const uint64_t kept = rules::kept_groups(r, group_best);
    for (int e = 0; e < E; ++e)
      if (!rules::in_kept_group(r, kept, e)) choice[e] = rules::neg_inf();
  }

  int n_sel = 0;
  if (r.forced_expert >= 0) {
    ids[n_sel++] = r.forced_expert;
    choice[r.forced_expert] = rules::neg_inf();
  }
  for (; n_sel < k; ++n_sel) {
    int best = -1;
    float bv = rules::neg_inf();
    for (int e = 0; e < E; ++e)
      if (rules::selectable(choice[e]) && rules::ranks_before(choice[e], e, bv, best)) bv = choice[e], best = e;
    if (best < 0) break;  // fewer than k selectable experts (interventions)
    ids[n_sel] = best;
    choice[best] = rules::neg_inf();
  }
  rules::finish(r, rules::weight_source(r, scores, logits), n_sel, ids, weights);
}

void route_token(const RouterSpec& r, const float* logits, const float* bias, const RoutingControl& control,
                 int layer, int32_t* ids, float* weights, float* probs, float* scratch) {
  const rules::RouterRule rule = make_router_rule(r, control, layer, bias != nullptr);
  std::vector<uint8_t> disabled(size_t(r.n_experts));
  for (int e = 0; e < r.n_experts; ++e) disabled[size_t(e)] = control.is_disabled(layer, e);
  route_token(rule, logits, bias, disabled.data(), ids, weights, probs, scratch);
}

}  // namespace moescope
