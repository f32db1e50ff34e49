#pragma once
// OLMoE's clip_qkv: x[n] = clamp(x, -limit, limit) in place.
#include <cuda_runtime_api.h>

namespace moescope::kernels {

void clamp(float* x, long long n, float limit, cudaStream_t stream);

}  // namespace moescope::kernels
