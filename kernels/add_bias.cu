#include "add_bias.cuh"

namespace moescope::kernels {
namespace {

__global__ void add_bias_kernel(float* y, int y_stride, const float* __restrict__ bias, int out) {
  float* row = y + size_t(blockIdx.x) * y_stride;
  for (int r = threadIdx.x; r < out; r += blockDim.x) row[r] += bias[r];
}

}  // namespace

void add_bias(float* y, int y_stride, const float* bias, int n_tokens, int out, cudaStream_t stream) {
  add_bias_kernel<<<n_tokens, 256, 0, stream>>>(y, y_stride, bias, out);
}

}  // namespace moescope::kernels
