#pragma once
// The router's rules, written once for every backend: how router logits become the selected
// experts and their weights, and how the user's interventions change that. The CPU router
// (engine/src/cpu/routing.cpp) and the device router (kernels/router.cu) are two loops around
// these functions: the CPU walks the experts one by one, the device spreads them over a warp.
// Adding a rule or an intervention is a change here (and, for an intervention, in
// make_router_rule() in moescope/routing.h); neither loop interprets the model or the controls.
//
// Plain C++17 with no standard-library types, so that nvcc compiles it into device code too.
#include <cmath>
#include <cstdint>

#if defined(__CUDACC__)
#define MOESCOPE_HD __host__ __device__ __forceinline__
#else
#define MOESCOPE_HD inline
#endif

namespace moescope::rules {

enum Scoring : int32_t {
  kSoftmax = 0,      // scores = softmax over all logits; top-k on the scores
  kSigmoid = 1,      // scores = sigmoid(logit); top-k on the scores (+ correction bias)
  kTopKSoftmax = 2,  // gpt-oss: top-k on the raw logits, weights = softmax over the chosen k
};
enum Grouping : int32_t {
  kNoGroups = 0,
  kGroupMax = 1,      // DeepSeek-V2: a group counts by its best expert
  kGroupSumTop2 = 2,  // DeepSeek-V3: by the sum of its two best (biased) experts
};

// Group masks are 64-bit: spec_from_config and spec_from_gguf refuse more groups.
constexpr int kMaxGroups = 64;
// Sigmoid weights are renormalised by (sum + this), as DeepSeek-V3's gate does.
constexpr float kSigmoidRenormEps = 1e-20f;

// Everything one layer's routing depends on, with the interventions already resolved for that
// layer. A plain aggregate: copied by value into a kernel's parameters.
struct RouterRule {
  int32_t n_experts = 0;
  int32_t top_k = 0;            // experts per token, after a top-k override
  int32_t scoring = kSoftmax;   // Scoring
  int32_t grouping = kNoGroups; // Grouping (kNoGroups also when n_group <= 1)
  int32_t n_group = 1, topk_group = 1;
  bool renormalize = false;     // divide the chosen weights by their sum
  bool scale_after_renorm = true;  // DeepSeek-V2 scales only when it does not renormalise
  float scaling = 1.0f;         // routed_scaling_factor
  bool use_bias = false;        // add the correction bias to the selection scores
  int32_t forced_expert = -1;   // chosen first in this layer (-1: none)
};

MOESCOPE_HD float neg_inf() { return -INFINITY; }

MOESCOPE_HD bool softmax_scores(const RouterRule& r) { return r.scoring != kSigmoid; }
MOESCOPE_HD float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// What the selection compares for expert e: the score (or, for kTopKSoftmax, the raw logit),
// plus the correction bias when the rule uses it; -inf for an expert the user disabled.
MOESCOPE_HD float selection_value(const RouterRule& r, float score, float logit, const float* bias, int e,
                                  const uint8_t* disabled) {
  if (disabled && disabled[e]) return neg_inf();
  const float v = r.scoring == kTopKSoftmax ? logit : score;
  return r.use_bias && bias ? v + bias[e] : v;
}

// Only experts with a finite or +inf selection value can be chosen (disabled and masked are -inf;
// NaN never wins).
MOESCOPE_HD bool selectable(float v) { return v > neg_inf(); }

// (v, i) ranks before (best_v, best_i): a larger value, or an equal one at a lower index (as
// torch.topk on the CPU). An index below 0 is "nothing yet" / "nothing".
MOESCOPE_HD bool ranks_before(float v, int i, float best_v, int best_i) {
  return i >= 0 && (best_i < 0 || v > best_v || (v == best_v && i < best_i));
}

MOESCOPE_HD bool grouped(const RouterRule& r) { return r.grouping != kNoGroups && r.n_group > 1; }
MOESCOPE_HD int group_size(const RouterRule& r) { return r.n_experts / r.n_group; }

// A group's score from its `per` selection values.
MOESCOPE_HD float group_value(const RouterRule& r, const float* values, int per) {
  float a = neg_inf(), b = neg_inf();
  for (int i = 0; i < per; ++i) {
    if (values[i] > a) b = a, a = values[i];
    else if (values[i] > b) b = values[i];
  }
  return r.grouping == kGroupMax ? a : a + b;
}

// The topk_group best groups (ties to the lower index) as a bit mask.
MOESCOPE_HD uint64_t kept_groups(const RouterRule& r, const float* group_values) {
  uint64_t kept = 0;
  for (int n = 0; n < r.topk_group && n < r.n_group; ++n) {
    int best = -1;
    for (int g = 0; g < r.n_group; ++g)
      if (!(kept >> g & 1u) && (best < 0 || group_values[g] > group_values[best])) best = g;
    kept |= uint64_t(1) << best;
  }
  return kept;
}
MOESCOPE_HD bool in_kept_group(const RouterRule& r, uint64_t kept, int e) { return kept >> (e / group_size(r)) & 1u; }

// Final weights of the n_sel chosen experts (ids in selection order) and padding: slots a lack of
// selectable experts left empty repeat the first id (or 0) with weight 0. `source` is what the
// weights come from, indexed by expert: the unbiased scores, or the logits for kTopKSoftmax.
MOESCOPE_HD void finish(const RouterRule& r, const float* source, int n_sel, int32_t* ids, float* weights) {
  const int k = r.top_k;
  for (int i = n_sel; i < k; ++i) ids[i] = n_sel > 0 ? ids[0] : 0, weights[i] = 0.0f;
  if (n_sel == 0) return;
  if (r.scoring == kTopKSoftmax) {
    float mx = neg_inf(), sum = 0.0f;
    for (int i = 0; i < n_sel; ++i) mx = fmaxf(mx, source[ids[i]]);
    for (int i = 0; i < n_sel; ++i) sum += (weights[i] = expf(source[ids[i]] - mx));
    for (int i = 0; i < n_sel; ++i) weights[i] = weights[i] / sum * r.scaling;
    return;
  }
  float sum = 0.0f;
  for (int i = 0; i < n_sel; ++i) sum += (weights[i] = source[ids[i]]);
  if (r.renormalize) {
    const float denom = r.scoring == kSigmoid ? sum + kSigmoidRenormEps : sum;
    for (int i = 0; i < n_sel; ++i) weights[i] /= denom;
    if (r.scale_after_renorm)
      for (int i = 0; i < n_sel; ++i) weights[i] *= r.scaling;
  } else {
    for (int i = 0; i < n_sel; ++i) weights[i] *= r.scaling;
  }
}

MOESCOPE_HD const float* weight_source(const RouterRule& r, const float* scores, const float* logits) {
  return r.scoring == kTopKSoftmax ? logits : scores;
}

}  // namespace moescope::rules
