#pragma once
// Adds the shared expert's output: y[t] += g_t · s[t], with g_t = sigmoid(gate · x[t]) for
// Qwen2-MoE's gated shared expert (gate: fp32 [hidden]) or 1 when gate is null (DeepSeek).
// With a gate and gate_out, g_t is also written to gate_out[t·gate_out_stride] (the routing
// trace's shared-expert gates).
#include <cuda_runtime_api.h>

namespace moescope::kernels {

void shared_expert_add(const float* x, const float* gate, const float* s, float* y, int hidden, int n_tokens,
                       cudaStream_t stream, float* gate_out = nullptr, int gate_out_stride = 0);

}  // namespace moescope::kernels
