#include "kernel_common.cuh"
#include "shared_expert.cuh"

namespace moescope::kernels {
namespace {

__global__ void shared_expert_add_kernel(const float* __restrict__ x, const float* __restrict__ gate,
                                         const float* __restrict__ s, float* __restrict__ y, int H) {
  const size_t row = size_t(blockIdx.x) * H;
  float g = 1.0f;
  if (gate) {
    float z = 0.0f;
    for (int i = threadIdx.x; i < H; i += blockDim.x) z += x[row + i] * gate[i];
    z = detail::block_sum(z);
    g = 1.0f / (1.0f + expf(-z));
  }
  for (int i = threadIdx.x; i < H; i += blockDim.x) y[row + i] += g * s[row + i];
}

}  // namespace

void shared_expert_add(const float* x, const float* gate, const float* s, float* y, int hidden, int n_tokens,
                       cudaStream_t stream) {
  shared_expert_add_kernel<<<n_tokens, 256, 0, stream>>>(x, gate, s, y, hidden);
}

}  // namespace moescope::kernels
