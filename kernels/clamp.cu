#include "clamp.cuh"

namespace moescope::kernels {
namespace {

__global__ void clamp_kernel(float* x, long long n, float limit) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    x[i] = fminf(fmaxf(x[i], -limit), limit);
}

}  // namespace

void clamp(float* x, long long n, float limit, cudaStream_t stream) {
  clamp_kernel<<<unsigned(n / 256 + 1 < 4096 ? n / 256 + 1 : 4096), 256, 0, stream>>>(x, n, limit);
}

}  // namespace moescope::kernels
