#include <stdexcept>
#include <string>

#include "quant_blocks.cuh"
#include "quant_gemv.cuh"

namespace moescope::kernels {
namespace {

constexpr int kWarps = 8;

// A warp takes 32 / seg rows of nb blocks each (detail::seg_lanes); the segment of row r is lanes
// seg·(r % rows_per_warp) ... Every lane reaches the shuffles of seg_sum, rows past `out` with
// nothing to add.
struct RowSlot {
  int row, seg_lane;
};
__device__ __forceinline__ RowSlot row_slot(int seg) {
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, per_warp = 32 / seg;
  return {(int(blockIdx.x) * kWarps + warp) * per_warp + lane / seg, lane & (seg - 1)};
}
__host__ __device__ constexpr int rows_per_block(int seg) { return kWarps * (32 / seg); }

template <DType T, int NT>
__global__ void qgemv_kernel(const float* __restrict__ x, int x_stride, const uint8_t* __restrict__ w, int out, int nb,
                             const float* __restrict__ bias, float* __restrict__ y, int y_stride, bool accumulate,
                             int seg) {
  const RowSlot rs = row_slot(seg);
  const bool valid = rs.row < out;
  float acc[NT];
#pragma unroll
  for (int t = 0; t < NT; ++t) acc[t] = 0.0f;
  if (valid)
    detail::qrow_dot<T, NT>(w + size_t(rs.row) * nb * detail::kQBytes<T>, nb, x, x_stride, rs.seg_lane, seg, acc);
#pragma unroll
  for (int t = 0; t < NT; ++t) {
    float v = detail::seg_sum(acc[t], seg);
    if (valid && rs.seg_lane == 0) {
      if (bias) v += bias[rs.row];
      float* dst = y + size_t(t) * y_stride + rs.row;
      *dst = accumulate ? *dst + v : v;
    }
  }
}

// grid (W / rows_per_block, top_k, n_tokens)
template <DType T>
__global__ void qmoe_gate_up_kernel(const float* __restrict__ x, int H, const uint8_t* __restrict__ gu, int W,
                                    const int32_t* __restrict__ ids, const float* __restrict__ wts, int id_stride,
                                    int K, float* __restrict__ h, int seg, ExpertExtras ex) {
  const RowSlot rs = row_slot(seg);
  const int k = blockIdx.y, t = blockIdx.z, r = rs.row;
  const bool valid = r < W;
  float* out = h + (size_t(t) * K + k) * W;
  if (wts[t * id_stride + k] == 0.0f) {  // the same for the whole block
    if (valid && rs.seg_lane == 0) out[r] = 0.0f;
    return;
  }
  const int e = ids[t * id_stride + k];
  const int nb = H / detail::kQElems<T>;
  const size_t row_bytes = size_t(nb) * detail::kQBytes<T>;
  const uint8_t* we = gu + size_t(e) * 2 * W * row_bytes;
  float g[1] = {0.0f}, u[1] = {0.0f};
  if (valid) {
    detail::qrow_dot<T, 1>(we + size_t(r) * row_bytes, nb, x + size_t(t) * H, H, rs.seg_lane, seg, g);
    detail::qrow_dot<T, 1>(we + size_t(W + r) * row_bytes, nb, x + size_t(t) * H, H, rs.seg_lane, seg, u);
  }
  float gs = detail::seg_sum(g[0], seg), us = detail::seg_sum(u[0], seg);
  if (!valid || rs.seg_lane != 0) return;
  if (ex.gate_up_bias) {
    const float* b = ex.gate_up_bias + size_t(e) * 2 * W;
    gs += b[r], us += b[W + r];
  }
  out[r] = ex.clamped ? detail::clamped_swiglu(gs, us, ex.alpha, ex.limit) : gs / (1.0f + expf(-gs)) * us;
}

// grid (H / rows_per_block, 1, n_tokens)
template <DType T>
__global__ void qmoe_down_kernel(const float* __restrict__ h, int W, const uint8_t* __restrict__ down, int H,
                                 const int32_t* __restrict__ ids, const float* __restrict__ wts, int id_stride, int K,
                                 float* __restrict__ y, bool accumulate, int seg, ExpertExtras ex) {
  const RowSlot rs = row_slot(seg);
  const int t = blockIdx.z, r = rs.row;
  const bool valid = r < H;
  const int nb = W / detail::kQElems<T>;
  const size_t row_bytes = size_t(nb) * detail::kQBytes<T>;
  float total = 0.0f;
  for (int k = 0; k < K; ++k) {
    const float wt = wts[t * id_stride + k];
    if (wt == 0.0f) continue;  // the same for the whole block
    const int e = ids[t * id_stride + k];
    float acc[1] = {0.0f};
    if (valid)
      detail::qrow_dot<T, 1>(down + (size_t(e) * H + r) * row_bytes, nb, h + (size_t(t) * K + k) * W, W, rs.seg_lane,
                             seg, acc);
    const float d = detail::seg_sum(acc[0], seg);
    if (valid) total += wt * (ex.down_bias ? d + ex.down_bias[size_t(e) * H + r] : d);
  }
  if (valid && rs.seg_lane == 0) {
    float* dst = y + size_t(t) * H + r;
    *dst = accumulate ? *dst + total : total;
  }
}

// Calls f.template operator()<T>() for block type t; throws for any other type.
template <class F>
void dispatch(DType t, const char* what, F&& f) {
  if (!quant::with_block_type(t, f))
    throw std::invalid_argument(std::string(what).append(": not a block type: ").append(std::to_string(int(t))));
}

}  // namespace

bool quant_supported(DType t) {
  bool block = false;
  quant::with_block_type(t, [&]<DType T>() { block = true; });
  return block;
}

void quant_gemv(const float* x, int x_stride, const void* w, DType wt, int out, int in, const float* bias, float* y,
                int y_stride, int n_tokens, bool accumulate, cudaStream_t stream) {
  dispatch(wt, "quant_gemv", [&]<DType T>() {
    const int nb = in / detail::kQElems<T>, seg = detail::seg_lanes(nb);
    const dim3 grid(detail::ceil_div(out, rows_per_block(seg))), block(32 * kWarps);
    const auto* wb = static_cast<const uint8_t*>(w);
    auto go = [&](auto kernel) {
      kernel<<<grid, block, 0, stream>>>(x, x_stride, wb, out, nb, bias, y, y_stride, accumulate, seg);
    };
    switch (n_tokens) {
      case 1: go(qgemv_kernel<T, 1>); break;
      case 2: go(qgemv_kernel<T, 2>); break;
      case 3: go(qgemv_kernel<T, 3>); break;
      default: go(qgemv_kernel<T, 4>); break;
    }
  });
}

void quant_moe_gate_up(const float* x, int hidden, const void* gate_up, DType wt, int width, const int32_t* ids,
                       const float* weights, int id_stride, int top_k, float* h, int n_tokens, cudaStream_t stream,
                       const ExpertExtras& extras) {
  dispatch(wt, "quant_moe_gate_up", [&]<DType T>() {
    const int seg = detail::seg_lanes(hidden / detail::kQElems<T>);
    qmoe_gate_up_kernel<T><<<dim3(detail::ceil_div(width, rows_per_block(seg)), top_k, n_tokens), 32 * kWarps, 0,
                             stream>>>(x, hidden, static_cast<const uint8_t*>(gate_up), width, ids, weights, id_stride,
                                       top_k, h, seg, extras);
  });
}

void quant_moe_down(const float* h, int width, const void* down, DType wt, int hidden, const int32_t* ids,
                    const float* weights, int id_stride, int top_k, float* y, int n_tokens, bool accumulate,
                    cudaStream_t stream, const ExpertExtras& extras) {
  dispatch(wt, "quant_moe_down", [&]<DType T>() {
    const int seg = detail::seg_lanes(width / detail::kQElems<T>);
    qmoe_down_kernel<T><<<dim3(detail::ceil_div(hidden, rows_per_block(seg)), 1, n_tokens), 32 * kWarps, 0,
                          stream>>>(h, width, static_cast<const uint8_t*>(down), hidden, ids, weights, id_stride, top_k,
                                    y, accumulate, seg, extras);
  });
}

}  // namespace moescope::kernels
