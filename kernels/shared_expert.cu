#include "kernel_common.cuh"
#include "shared_expert.cuh"

namespace moescope::kernels {
namespace {

__global__ void shared_expert_add_kernel(const float* __restrict__ x, const float* __restrict__ gate,
                                         const float* __restrict__ s, float* __restrict__ y, int H,
                                         float* __restrict__ gate_out, int gate_out_stride) {
  const size_t row = size_t(blockIdx.x) * H;
  float g = 1.0f;
  if (gate) {
    float z = 0.0f;
    for (int i = threadIdx.x; i < H; i += blockDim.x) z += x[row + i] * gate[i];
    z = detail::block_sum(z);
    g = 1.0f / (1.0f + expf(-z));
    if (gate_out && threadIdx.x == 0) gate_out[size_t(blockIdx.x) * gate_out_stride] = g;
  }
  for (int i = threadIdx.x; i < H; i += blockDim.x) y[row + i] += g * s[row + i];
}

}  // namespace

void shared_expert_add(const float* x, const float* gate, const float* s, float* y, int hidden, int n_tokens,
                       cudaStream_t stream, float* gate_out, int gate_out_stride) {
  shared_expert_add_kernel<<<n_tokens, 256, 0, stream>>>(x, gate, s, y, hidden, gate_out, gate_out_stride);
}

}  // namespace moescope::kernels
