#pragma once
// Adds the shared expert's output: y[t] += g_t · s[t], with g_t = sigmoid(gate · x[t]) for
// Qwen2-MoE's gated shared expert (gate: fp32 [hidden]) or 1 when gate is null (DeepSeek).
#include <cuda_runtime_api.h>

namespace moescope::kernels {

void shared_expert_add(const float* x, const float* gate, const float* s, float* y, int hidden, int n_tokens,
                       cudaStream_t stream);

}  // namespace moescope::kernels
