#pragma once
// The router on the device: router logits → scores (softmax or sigmoid) → selection scores
// (+ correction bias, interventions, group limit with -inf masking) → top-k → weights
// (renormalised, scaled). Mirrors route_token() in engine/src/cpu/routing.cpp step for step,
// including its tie rules (lower expert / group index first). One warp per token.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::kernels {

struct RouterParams {
  int n_experts = 0, top_k = 0;  // top_k: the effective k (interventions applied)
  bool sigmoid = false;
  int group_score = 0;           // 0 none, 1 max, 2 sum of the top two
  int n_group = 1, topk_group = 1;
  bool renormalize = false, scale_after_renorm = true;
  float scaling = 1.0f;
  // interventions
  const uint8_t* disabled = nullptr;  // [n_experts] for this layer, or null
  int forced_expert = -1;             // already resolved for this layer (-1: none)
};

// logits [n_tokens, n_experts]; bias [n_experts] (null: none or ignored). Writes ids/weights of
// token t at + t·out_stride (top_k values each) and, when probs is not null, the scores at
// probs + t·probs_stride.
void route(const RouterParams& p, const float* logits, const float* bias, int n_tokens, int32_t* ids, float* weights,
           int out_stride, float* probs, int probs_stride, cudaStream_t stream);

constexpr int kRouterMaxExperts = 1024;
constexpr int kRouterMaxGroups = 32;

}  // namespace moescope::kernels
