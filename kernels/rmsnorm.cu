#include "kernel_common.cuh"
#include "rmsnorm.cuh"

namespace moescope::kernels {
namespace {

__global__ void rmsnorm_kernel(const float* x, int x_stride, int head_stride, int heads, const float* __restrict__ w,
                               float eps, float* y, int y_stride, int d) {
  const int t = blockIdx.x / heads, h = blockIdx.x % heads;
  const float* xr = x + size_t(t) * x_stride + size_t(h) * head_stride;
  float* yr = y + size_t(t) * y_stride + size_t(h) * head_stride;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < d; i += blockDim.x) ss += xr[i] * xr[i];
  const float inv = 1.0f / sqrtf(detail::block_sum(ss) / float(d) + eps);
  for (int i = threadIdx.x; i < d; i += blockDim.x) yr[i] = w[i] * (xr[i] * inv);
}

__global__ void add_rmsnorm_kernel(float* x, const float* __restrict__ delta, const float* __restrict__ w, float eps,
                                   float* __restrict__ y, int d) {
  float* xr = x + size_t(blockIdx.x) * d;
  float* yr = y + size_t(blockIdx.x) * d;
  float ss = 0.0f;
  for (int i = threadIdx.x; i < d; i += blockDim.x) {
    float v = xr[i];
    if (delta) xr[i] = v = v + delta[size_t(blockIdx.x) * d + i];
    ss += v * v;
  }
  const float inv = 1.0f / sqrtf(detail::block_sum(ss) / float(d) + eps);
  for (int i = threadIdx.x; i < d; i += blockDim.x) yr[i] = w[i] * (xr[i] * inv);
}

int threads_for(int d) { return d >= 1024 ? 1024 : ((d + 31) / 32) * 32; }

}  // namespace

void rmsnorm(const float* x, int x_stride, int head_stride, int heads, const float* w, float eps, float* y,
             int y_stride, int n_tokens, int d, cudaStream_t stream) {
  rmsnorm_kernel<<<n_tokens * heads, threads_for(d), 0, stream>>>(x, x_stride, head_stride, heads, w, eps, y,
                                                                 y_stride, d);
}

void add_rmsnorm(float* x, const float* delta, const float* w, float eps, float* y, int n_tokens, int d,
                 cudaStream_t stream) {
  add_rmsnorm_kernel<<<n_tokens, threads_for(d), 0, stream>>>(x, delta, w, eps, y, d);
}

}  // namespace moescope::kernels
