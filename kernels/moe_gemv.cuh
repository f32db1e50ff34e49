#pragma once
// Routed experts for a few tokens (decode) without leaving the device: the selected expert ids
// and weights are read from device memory, and only those experts' weight rows are streamed.
// Expert weights are stacked: gate_up [E][2W][H] (gate rows, then up rows), down [E][H][W], BF16.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::kernels {

// h[t][k][r] = silu(gate_e · x_t)[r] · (up_e · x_t)[r], e = ids[t·id_stride + k]; slots with
// weight 0 (padding after interventions) give h = 0 and read no weights.
void moe_gate_up(const float* x, int hidden, const uint16_t* gate_up, int width, const int32_t* ids,
                 const float* weights, int id_stride, int top_k, float* h, int n_tokens, cudaStream_t stream);
// y[t][r] (+)= Σ_k weights[t,k] · (down_e · h[t][k])[r]
void moe_down(const float* h, int width, const uint16_t* down, int hidden, const int32_t* ids, const float* weights,
              int id_stride, int top_k, float* y, int n_tokens, bool accumulate, cudaStream_t stream);

}  // namespace moescope::kernels
