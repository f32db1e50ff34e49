#pragma once
// RMSNorm over rows: y = x / sqrt(mean(x²) + eps) · w, fp32 activations, fp32 weight [d].
#include <cuda_runtime_api.h>

namespace moescope::kernels {

// Rows are (token t, head h): x + t·x_stride + h·head_stride, width d, written to the same
// place in y (y may equal x). heads = 1 for a plain row norm.
void rmsnorm(const float* x, int x_stride, int head_stride, int heads, const float* w, float eps, float* y,
             int y_stride, int n_tokens, int d, cudaStream_t stream);

// Fused residual step: x[t] += delta[t] (when delta is not null), then y[t] = rmsnorm(x[t]).
// x, delta, y: [n_tokens, d] contiguous.
void add_rmsnorm(float* x, const float* delta, const float* w, float eps, float* y, int n_tokens, int d,
                 cudaStream_t stream);

}  // namespace moescope::kernels
