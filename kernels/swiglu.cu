#include "kernel_common.cuh"
#include "swiglu.cuh"

namespace moescope::kernels {
namespace {

template <bool kClamped>
__global__ void swiglu_kernel(const float* __restrict__ in, void* out, bool out_bf16, long long total, int width,
                              float alpha, float limit) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
    const long long r = i / width, c = i % width;
    const float g = in[r * 2 * width + c], u = in[r * 2 * width + width + c];
    const float v = kClamped ? detail::clamped_swiglu(g, u, alpha, limit) : g / (1.0f + expf(-g)) * u;
    if (out_bf16) static_cast<uint16_t*>(out)[i] = detail::f2bf16(v);
    else static_cast<float*>(out)[i] = v;
  }
}

unsigned blocks_for(long long total) { return unsigned(total / 256 + 1 < 4096 ? total / 256 + 1 : 4096); }

}  // namespace

void swiglu(const float* in, void* out, bool out_bf16, int n, int width, cudaStream_t stream) {
  const long long total = (long long)n * width;
  swiglu_kernel<false><<<blocks_for(total), 256, 0, stream>>>(in, out, out_bf16, total, width, 0.0f, 0.0f);
}

void swiglu_clamped(const float* in, void* out, bool out_bf16, int n, int width, float alpha, float limit,
                    cudaStream_t stream) {
  const long long total = (long long)n * width;
  swiglu_kernel<true><<<blocks_for(total), 256, 0, stream>>>(in, out, out_bf16, total, width, alpha, limit);
}

}  // namespace moescope::kernels
