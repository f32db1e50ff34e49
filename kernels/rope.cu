#include "kernel_common.cuh"
#include "rope.cuh"

namespace moescope::kernels {
namespace {

__global__ void rope_kernel(float* x, int x_stride, int offset, int head_stride, int heads, int dim, bool interleaved,
                            const float* __restrict__ inv_freq, float attention_factor, const int* __restrict__ pos0) {
  const int t = blockIdx.x / heads, h = blockIdx.x % heads, half = dim / 2;
  float* v = x + size_t(t) * x_stride + offset + size_t(h) * head_stride;
  const float pos = float(*pos0 + t);
  for (int i = threadIdx.x; i < half; i += blockDim.x) {
    const float angle = pos * inv_freq[i];  // fp32 product, as transformers and the CPU backend
    const float c = cosf(angle) * attention_factor, s = sinf(angle) * attention_factor;
    const int ia = interleaved ? 2 * i : i, ib = interleaved ? 2 * i + 1 : i + half;
    const float a = v[ia], b = v[ib];
    v[ia] = a * c - b * s;
    v[ib] = b * c + a * s;
  }
}

}  // namespace

void rope(float* x, int x_stride, int offset, int head_stride, int heads, int dim, bool interleaved,
          const float* inv_freq, float attention_factor, const int* pos0, int n_tokens, cudaStream_t stream) {
  const int threads = dim / 2 >= 64 ? 64 : 32;
  rope_kernel<<<n_tokens * heads, threads, 0, stream>>>(x, x_stride, offset, head_stride, heads, dim, interleaved,
                                                       inv_freq, attention_factor, pos0);
}

}  // namespace moescope::kernels
