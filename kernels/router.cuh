#pragma once
// The router on the device: one warp per token around the rules of moescope/routing_rules.h
// (router logits → scores → selection values with bias, interventions and the group limit →
// top-k → weights), the same rules the CPU's route_token() loops over one expert at a time.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "moescope/routing_rules.h"

namespace moescope::kernels {

// logits [n_tokens, n_experts]; bias [n_experts] (read when rule.use_bias; may be null);
// disabled [n_experts] mask or null. Writes ids/weights of token t at + t·out_stride (rule.top_k
// values each) and, when probs is not null, the scores at probs + t·probs_stride.
void route(const rules::RouterRule& rule, const uint8_t* disabled, const float* logits, const float* bias,
           int n_tokens, int32_t* ids, float* weights, int out_stride, float* probs, int probs_stride,
           cudaStream_t stream);

constexpr int kRouterMaxExperts = 1024;

}  // namespace moescope::kernels
