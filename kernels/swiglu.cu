#include "kernel_common.cuh"
#include "swiglu.cuh"

namespace moescope::kernels {
namespace {

__global__ void swiglu_kernel(const float* __restrict__ in, void* out, bool out_bf16, long long total, int width) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
    const long long r = i / width, c = i % width;
    const float g = in[r * 2 * width + c], u = in[r * 2 * width + width + c];
    const float v = g / (1.0f + expf(-g)) * u;
    if (out_bf16) static_cast<uint16_t*>(out)[i] = detail::f2bf16(v);
    else static_cast<float*>(out)[i] = v;
  }
}

}  // namespace

void swiglu(const float* in, void* out, bool out_bf16, int n, int width, cudaStream_t stream) {
  const long long total = (long long)n * width;
  const unsigned blocks = unsigned(total / 256 + 1 < 4096 ? total / 256 + 1 : 4096);
  swiglu_kernel<<<blocks, 256, 0, stream>>>(in, out, out_bf16, total, width);
}

}  // namespace moescope::kernels
