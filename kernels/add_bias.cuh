#pragma once
// y[t, r] += b[r] for t < n_tokens, r < out (after a cuBLAS matmul, which has no bias).
#include <cuda_runtime_api.h>

namespace moescope::kernels {

void add_bias(float* y, int y_stride, const float* bias, int n_tokens, int out, cudaStream_t stream);

}  // namespace moescope::kernels
