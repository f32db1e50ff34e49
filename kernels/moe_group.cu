#include "kernel_common.cuh"
#include "moe_group.cuh"

namespace moescope::kernels {
namespace {

constexpr int kTile = 2048;

// One block; thread e owns expert e (looping when E > blockDim) and scans the pairs in order,
// so the grouping is deterministic.
__global__ void moe_group_kernel(const int32_t* __restrict__ ids, const float* __restrict__ wts, int id_stride, int T,
                                 int K, int E, int32_t* counts, int32_t* offsets, int32_t* rows, int32_t* slot_row) {
  __shared__ int32_t tile[kTile];
  const int n = T * K;
  for (int e = threadIdx.x; e < E; e += blockDim.x) counts[e] = 0;
  for (int i = threadIdx.x; i < n; i += blockDim.x) rows[i] = -1;
  __syncthreads();
  // pass 1: counts; pass 2: fill rows (offsets known)
  for (int pass = 0; pass < 2; ++pass) {
    if (pass == 1) {
      __syncthreads();
      if (threadIdx.x == 0) {
        int acc = 0;
        for (int e = 0; e < E; ++e) offsets[e] = acc, acc += counts[e];
      }
      __syncthreads();
      for (int e = threadIdx.x; e < E; e += blockDim.x) counts[e] = 0;
      __syncthreads();
    }
    for (int base = 0; base < n; base += kTile) {
      const int len = min(kTile, n - base);
      __syncthreads();
      for (int i = threadIdx.x; i < len; i += blockDim.x) {
        const int s = base + i, t = s / K, k = s % K;
        tile[i] = wts[t * id_stride + k] != 0.0f ? ids[t * id_stride + k] : -1;
        if (pass == 1) slot_row[s] = -1;
      }
      __syncthreads();
      for (int e = threadIdx.x; e < E; e += blockDim.x) {
        int c = counts[e];
        for (int i = 0; i < len; ++i)
          if (tile[i] == e) {
            if (pass == 1) {
              rows[offsets[e] + c] = base + i;
              slot_row[base + i] = offsets[e] + c;
            }
            ++c;
          }
        counts[e] = c;
      }
    }
  }
}

__global__ void moe_gather_kernel(const float* __restrict__ x, int H, const int32_t* __restrict__ rows, int K,
                                  uint16_t* __restrict__ xg) {
  const int r = rows[blockIdx.x];
  uint16_t* dst = xg + size_t(blockIdx.x) * H;
  for (int i = threadIdx.x; i < H; i += blockDim.x) dst[i] = r < 0 ? 0 : detail::f2bf16(x[size_t(r / K) * H + i]);
}

__global__ void moe_combine_kernel(const float* __restrict__ eo, const int32_t* __restrict__ slot_row,
                                   const float* __restrict__ wts, int id_stride, int K, float* __restrict__ y, int H,
                                   bool accumulate) {
  const int t = blockIdx.x;
  for (int i = threadIdx.x; i < H; i += blockDim.x) {
    float acc = accumulate ? y[size_t(t) * H + i] : 0.0f;
    for (int k = 0; k < K; ++k) {
      const int r = slot_row[t * K + k];
      if (r >= 0) acc += wts[t * id_stride + k] * eo[size_t(r) * H + i];
    }
    y[size_t(t) * H + i] = acc;
  }
}

}  // namespace

void moe_group(const int32_t* ids, const float* weights, int id_stride, int n_tokens, int top_k, int n_experts,
               int32_t* counts, int32_t* offsets, int32_t* rows, int32_t* slot_row, cudaStream_t stream) {
  moe_group_kernel<<<1, 1024, 0, stream>>>(ids, weights, id_stride, n_tokens, top_k, n_experts, counts, offsets, rows,
                                           slot_row);
}

void moe_gather(const float* x, int hidden, const int32_t* rows, int n_rows, int top_k, uint16_t* xg,
                cudaStream_t stream) {
  moe_gather_kernel<<<n_rows, 256, 0, stream>>>(x, hidden, rows, top_k, xg);
}

void moe_combine(const float* expert_out, const int32_t* slot_row, const float* weights, int id_stride, int top_k,
                 float* y, int hidden, int n_tokens, bool accumulate, cudaStream_t stream) {
  moe_combine_kernel<<<n_tokens, 256, 0, stream>>>(expert_out, slot_row, weights, id_stride, top_k, y, hidden,
                                                   accumulate);
}

}  // namespace moescope::kernels
