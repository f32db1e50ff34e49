#pragma once
// y[t, r] (+)= dot(x[t, :], W[r, :]) + b[r] for a few tokens (t < n_tokens <= 4): the decode
// matmul. One warp per output row, 16-byte weight loads; W is BF16 or F32, x and y are fp32.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::kernels {

constexpr int kGemvMaxTokens = 4;

void gemv(const float* x, int x_stride, const void* w, bool w_f32, int out, int in, const float* bias, float* y,
          int y_stride, int n_tokens, bool accumulate, cudaStream_t stream);

}  // namespace moescope::kernels
