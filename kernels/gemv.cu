#include "gemv.cuh"
#include "kernel_common.cuh"

namespace moescope::kernels {
namespace {

constexpr int kWarps = 8;  // rows per block

template <class Wt, int NT>
__global__ void gemv_kernel(const float* __restrict__ x, int x_stride, const Wt* __restrict__ w, int out, int in,
                            const float* __restrict__ bias, float* __restrict__ y, int y_stride, bool accumulate,
                            bool vec) {
  const int lane = threadIdx.x & 31;
  const int row = blockIdx.x * kWarps + (threadIdx.x >> 5);
  if (row >= out) return;
  float acc[NT] = {};
  detail::lane_dot<NT>(x, x_stride, w + size_t(row) * in, in, vec, lane, acc);
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    float v = detail::warp_sum(acc[t]);
    if (lane == 0) {
      if (bias) v += bias[row];
      float* dst = y + size_t(t) * y_stride + row;
      *dst = accumulate ? *dst + v : v;
    }
  }
}

template <class Wt>
void launch(const float* x, int x_stride, const Wt* w, int out, int in, const float* bias, float* y, int y_stride,
            int n, bool acc, cudaStream_t s) {
  const bool vec = detail::vector_ok(w, in, sizeof(Wt), x, x_stride);
  const dim3 grid(detail::ceil_div(out, kWarps)), block(32 * kWarps);
  switch (n) {
    case 1: gemv_kernel<Wt, 1><<<grid, block, 0, s>>>(x, x_stride, w, out, in, bias, y, y_stride, acc, vec); break;
    case 2: gemv_kernel<Wt, 2><<<grid, block, 0, s>>>(x, x_stride, w, out, in, bias, y, y_stride, acc, vec); break;
    case 3: gemv_kernel<Wt, 3><<<grid, block, 0, s>>>(x, x_stride, w, out, in, bias, y, y_stride, acc, vec); break;
    default: gemv_kernel<Wt, 4><<<grid, block, 0, s>>>(x, x_stride, w, out, in, bias, y, y_stride, acc, vec); break;
  }
}

}  // namespace

void gemv(const float* x, int x_stride, const void* w, bool w_f32, int out, int in, const float* bias, float* y,
          int y_stride, int n_tokens, bool accumulate, cudaStream_t stream) {
  if (w_f32)
    launch(x, x_stride, static_cast<const float*>(w), out, in, bias, y, y_stride, n_tokens, accumulate, stream);
  else
    launch(x, x_stride, static_cast<const uint16_t*>(w), out, in, bias, y, y_stride, n_tokens, accumulate, stream);
}

}  // namespace moescope::kernels
