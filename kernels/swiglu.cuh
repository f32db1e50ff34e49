#pragma once
// SwiGLU activation on a fused gate/up projection: in [n, 2W] = [gate | up] fp32 →
// out[n, W] = silu(gate) · up, written as fp32 or BF16 (the input of a following cuBLAS matmul).
#include <cuda_runtime_api.h>

namespace moescope::kernels {

void swiglu(const float* in, void* out, bool out_bf16, int n, int width, cudaStream_t stream);

// gpt-oss' clamped SwiGLU (cpu::clamped_swiglu), same layout: with g' = min(gate, limit) and
// u' = clamp(up, -limit, limit), out = (u' + 1) · g' · sigmoid(alpha · g').
void swiglu_clamped(const float* in, void* out, bool out_bf16, int n, int width, float alpha, float limit,
                    cudaStream_t stream);

}  // namespace moescope::kernels
