#include "kernel_common.cuh"
#include "moe_gemv.cuh"

namespace moescope::kernels {
namespace {

constexpr int kWarps = 8;

// grid (rows / kWarps, top_k, n_tokens)
__global__ void moe_gate_up_kernel(const float* __restrict__ x, int H, const uint16_t* __restrict__ gu, int W,
                                   const int32_t* __restrict__ ids, const float* __restrict__ wts, int id_stride,
                                   int K, float* __restrict__ h, bool vec, ExpertExtras ex) {
  const int lane = threadIdx.x & 31, r = blockIdx.x * kWarps + (threadIdx.x >> 5);
  const int k = blockIdx.y, t = blockIdx.z;
  if (r >= W) return;
  float* out = h + (size_t(t) * K + k) * W + r;
  if (wts[t * id_stride + k] == 0.0f) {
    if (lane == 0) *out = 0.0f;
    return;
  }
  const int e = ids[t * id_stride + k];
  const uint16_t* we = gu + size_t(e) * 2 * W * H;
  float g[1] = {0.0f}, u[1] = {0.0f};
  detail::lane_dot<1>(x + size_t(t) * H, H, we + size_t(r) * H, H, vec, lane, g);
  detail::lane_dot<1>(x + size_t(t) * H, H, we + size_t(W + r) * H, H, vec, lane, u);
  float gs = detail::warp_sum(g[0]), us = detail::warp_sum(u[0]);
  if (lane != 0) return;
  if (ex.gate_up_bias) {
    const float* b = ex.gate_up_bias + size_t(e) * 2 * W;
    gs += b[r], us += b[W + r];
  }
  *out = ex.clamped ? detail::clamped_swiglu(gs, us, ex.alpha, ex.limit) : gs / (1.0f + expf(-gs)) * us;
}

// grid (hidden / kWarps, 1, n_tokens)
__global__ void moe_down_kernel(const float* __restrict__ h, int W, const uint16_t* __restrict__ down, int H,
                                const int32_t* __restrict__ ids, const float* __restrict__ wts, int id_stride, int K,
                                float* __restrict__ y, bool accumulate, bool vec, ExpertExtras ex) {
  const int lane = threadIdx.x & 31, r = blockIdx.x * kWarps + (threadIdx.x >> 5), t = blockIdx.z;
  if (r >= H) return;
  float total = 0.0f;
  for (int k = 0; k < K; ++k) {
    const float wt = wts[t * id_stride + k];
    if (wt == 0.0f) continue;
    const int e = ids[t * id_stride + k];
    const uint16_t* we = down + size_t(e) * H * W;
    float acc[1] = {0.0f};
    detail::lane_dot<1>(h + (size_t(t) * K + k) * W, W, we + size_t(r) * W, W, vec, lane, acc);
    const float d = detail::warp_sum(acc[0]);
    total += wt * (ex.down_bias ? d + ex.down_bias[size_t(e) * H + r] : d);
  }
  if (lane == 0) {
    float* dst = y + size_t(t) * H + r;
    *dst = accumulate ? *dst + total : total;
  }
}

}  // namespace

void moe_gate_up(const float* x, int hidden, const uint16_t* gate_up, int width, const int32_t* ids,
                 const float* weights, int id_stride, int top_k, float* h, int n_tokens, cudaStream_t stream,
                 const ExpertExtras& extras) {
  const bool vec = detail::vector_ok(gate_up, hidden, 2, x, hidden);
  moe_gate_up_kernel<<<dim3(detail::ceil_div(width, kWarps), top_k, n_tokens), 32 * kWarps, 0, stream>>>(
      x, hidden, gate_up, width, ids, weights, id_stride, top_k, h, vec, extras);
}

void moe_down(const float* h, int width, const uint16_t* down, int hidden, const int32_t* ids, const float* weights,
              int id_stride, int top_k, float* y, int n_tokens, bool accumulate, cudaStream_t stream,
              const ExpertExtras& extras) {
  const bool vec = detail::vector_ok(down, width, 2, h, width);
  moe_down_kernel<<<dim3(detail::ceil_div(hidden, kWarps), 1, n_tokens), 32 * kWarps, 0, stream>>>(
      h, width, down, hidden, ids, weights, id_stride, top_k, y, accumulate, vec, extras);
}

}  // namespace moescope::kernels
