// Router → top-k → weights, written once for every architecture. Follows transformers'
// DeepseekV3TopkRouter / DeepseekV2TopkRouter / Qwen3MoeTopKRouter and DeepSeek's official
// MoEGate (model.py). Unselected groups are masked with -inf as DeepSeek's code does (some
// transformers versions use 0, which differs when biased scores are negative).
#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "moescope/routing.h"

namespace moescope {

void route_token(const RouterSpec& r, const float* logits, const float* bias, const RoutingControl& control,
                 int layer, int32_t* ids, float* weights, float* probs, float* scratch) {
  const int E = r.n_experts;
  const int k = control.effective_top_k(r);
  float* scores = scratch;           // [E] router scores (softmax or sigmoid)
  float* choice = scratch + E;       // [E] selection scores (biased, masked)
  float* group_best = scratch + 2 * E;  // [n_group]

  if (r.scoring == ScoreFunc::Softmax || r.scoring == ScoreFunc::TopKSoftmax) {
    float mx = -std::numeric_limits<float>::infinity();
    for (int e = 0; e < E; ++e) mx = std::max(mx, logits[e]);
    float sum = 0.0f;
    for (int e = 0; e < E; ++e) sum += (scores[e] = std::exp(logits[e] - mx));
    for (int e = 0; e < E; ++e) scores[e] /= sum;
  } else {
    for (int e = 0; e < E; ++e) scores[e] = 1.0f / (1.0f + std::exp(-logits[e]));
  }
  if (probs) std::copy(scores, scores + E, probs);
  // gpt-oss (transformers' GptOssTopKRouter): top-k on the raw logits; the full softmax above
  // is only what `probs` reports.
  if (r.scoring == ScoreFunc::TopKSoftmax) std::copy(logits, logits + E, scores);

  const bool use_bias = bias && r.correction_bias && !control.ignore_bias;
  for (int e = 0; e < E; ++e) choice[e] = use_bias ? scores[e] + bias[e] : scores[e];
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  for (int e = 0; e < E; ++e)
    if (control.is_disabled(layer, e)) choice[e] = kNegInf;

  // Group-limited selection: keep the topk_group best groups, mask the rest with -inf.
  if (r.group_score != GroupScore::None && r.n_group > 1) {
    const int per = E / r.n_group;
    for (int g = 0; g < r.n_group; ++g) {
      const float* c = choice + g * per;
      if (r.group_score == GroupScore::Max) {
        group_best[g] = *std::max_element(c, c + per);
      } else {  // sum of the two best
        float a = kNegInf, b = kNegInf;
        for (int i = 0; i < per; ++i) {
          if (c[i] > a) { b = a; a = c[i]; }
          else if (c[i] > b) b = c[i];
        }
        group_best[g] = a + b;
      }
    }
    // Rank groups; ties go to the lower index, as torch.topk does on CPU.
    int order[1024];
    const int G = std::min(r.n_group, 1024);
    std::iota(order, order + G, 0);
    std::stable_sort(order, order + G, [&](int x, int y) { return group_best[x] > group_best[y]; });
    for (int gi = r.topk_group; gi < G; ++gi) {
      float* c = choice + order[gi] * per;
      std::fill(c, c + per, kNegInf);
    }
  }

  // Top-k by selection score, in descending order.
  int n_sel = 0;
  if (control.forced_expert >= 0 && control.forced_expert < E &&
      (control.forced_layer < 0 || control.forced_layer == layer)) {
    ids[n_sel++] = control.forced_expert;
    choice[control.forced_expert] = kNegInf;
  }
  for (; n_sel < k; ++n_sel) {
    int best = -1;
    float bv = kNegInf;
    for (int e = 0; e < E; ++e)
      if (choice[e] > bv) {
        bv = choice[e];
        best = e;
      }
    if (best < 0) break;  // fewer than k selectable experts (interventions)
    ids[n_sel] = best;
    choice[best] = kNegInf;
  }
  for (int i = n_sel; i < k; ++i) ids[i] = n_sel > 0 ? ids[0] : 0;  // padding, weight 0 below

  if (r.scoring == ScoreFunc::TopKSoftmax) {  // weights: softmax over the selected logits
    float mx = -std::numeric_limits<float>::infinity(), sum = 0.0f;
    for (int i = 0; i < n_sel; ++i) mx = std::max(mx, scores[ids[i]]);
    for (int i = 0; i < n_sel; ++i) sum += (weights[i] = std::exp(scores[ids[i]] - mx));
    for (int i = 0; i < n_sel; ++i) weights[i] = weights[i] / sum * r.scaling;
    for (int i = n_sel; i < k; ++i) weights[i] = 0.0f;
    return;
  }
  // Weights come from the unbiased scores.
  float sum = 0.0f;
  for (int i = 0; i < n_sel; ++i) sum += (weights[i] = scores[ids[i]]);
  if (r.renormalize && n_sel > 0) {
    const float denom = r.scoring == ScoreFunc::Sigmoid ? sum + 1e-20f : sum;
    for (int i = 0; i < n_sel; ++i) weights[i] /= denom;
    if (r.scale_after_renorm)
      for (int i = 0; i < n_sel; ++i) weights[i] *= r.scaling;
  } else {
    for (int i = 0; i < n_sel; ++i) weights[i] *= r.scaling;
  }
  for (int i = n_sel; i < k; ++i) weights[i] = 0.0f;
}

}  // namespace moescope
