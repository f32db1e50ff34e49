#pragma once
// Routed experts for a few tokens (decode) without leaving the device: the selected expert ids
// and weights are read from device memory, and only those experts' weight rows are streamed.
// Expert weights are stacked: gate_up [E][2W][H] (gate rows, then up rows), down [E][H][W], BF16.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::kernels {

// gpt-oss' experts: per-expert biases (fp32, device; null: none) and the clamped SwiGLU
// (swiglu.cuh swiglu_clamped) in place of silu(gate) · up.
struct ExpertExtras {
  const float* gate_up_bias = nullptr;  // [E][2W]: gate biases, then up biases, per expert
  const float* down_bias = nullptr;     // [E][H]
  bool clamped = false;
  float alpha = 0.0f, limit = 0.0f;
};

// h[t][k][r] = silu(gate_e · x_t)[r] · (up_e · x_t)[r], e = ids[t·id_stride + k]; slots with
// weight 0 (padding after interventions) give h = 0 and read no weights. With extras: the
// expert's gate/up biases are added first, and the clamped SwiGLU replaces silu(g) · u.
void moe_gate_up(const float* x, int hidden, const uint16_t* gate_up, int width, const int32_t* ids,
                 const float* weights, int id_stride, int top_k, float* h, int n_tokens, cudaStream_t stream,
                 const ExpertExtras& extras = {});
// y[t][r] (+)= Σ_k weights[t,k] · ((down_e · h[t][k])[r] + down_bias_e[r])
void moe_down(const float* h, int width, const uint16_t* down, int hidden, const int32_t* ids, const float* weights,
              int id_stride, int top_k, float* y, int n_tokens, bool accumulate, cudaStream_t stream,
              const ExpertExtras& extras = {});

}  // namespace moescope::kernels
