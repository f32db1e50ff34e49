#pragma once
// Device helpers shared by the kernels (not a launcher header: included by .cu files only).
// BF16 values travel as uint16_t (the upper half of an IEEE float), so host code never needs
// cuda_bf16.h; widening is a shift.
#include <cuda_runtime.h>

#include <cstdint>

namespace moescope::kernels::detail {

__device__ __forceinline__ float bf16f(uint16_t h) { return __uint_as_float(uint32_t(h) << 16); }
__device__ __forceinline__ float bf16_lo(uint32_t w) { return __uint_as_float(w << 16); }
__device__ __forceinline__ float bf16_hi(uint32_t w) { return __uint_as_float(w & 0xffff0000u); }

__device__ __forceinline__ uint16_t f2bf16(float f) {  // round to nearest even, as the host does
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

__device__ __forceinline__ float load_w(const uint16_t* w, size_t i) { return bf16f(w[i]); }
__device__ __forceinline__ float load_w(const float* w, size_t i) { return w[i]; }

// gpt-oss' clamped SwiGLU of one (gate, up) pair, as cpu::clamped_swiglu: the gate clamped from
// above, the up value on both sides, then (u + 1) · g · sigmoid(alpha · g).
__device__ __forceinline__ float clamped_swiglu(float g, float u, float alpha, float limit) {
  const float gc = fminf(g, limit), uc = fminf(fmaxf(u, -limit), limit);
  return (uc + 1.0f) * gc / (1.0f + expf(-alpha * gc));
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
__device__ __forceinline__ float block_sum(float v) {
  __shared__ float part[32];
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nw = blockDim.x >> 5;
  v = warp_sum(v);
  __syncthreads();
  if (lane == 0) part[warp] = v;
  __syncthreads();
  v = lane < nw ? part[lane] : 0.0f;
  return warp_sum(v);
}

// One lane's share of dot(x[n], w[n]) for NT inputs x + t·x_stride against one weight row.
// BF16 rows are read 16 bytes (8 values) at a time when x and w allow it (`vec`).
template <int NT>
__device__ __forceinline__ void lane_dot(const float* x, int x_stride, const uint16_t* w, int n, bool vec, int lane,
                                         float* acc) {
  if (vec) {
    const uint4* w8 = reinterpret_cast<const uint4*>(w);
    for (int i = lane; i < n / 8; i += 32) {
      const uint4 p = __ldg(w8 + i);
      const float wv[8] = {bf16_lo(p.x), bf16_hi(p.x), bf16_lo(p.y), bf16_hi(p.y),
                           bf16_lo(p.z), bf16_hi(p.z), bf16_lo(p.w), bf16_hi(p.w)};
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        const float4* x4 = reinterpret_cast<const float4*>(x + size_t(t) * x_stride + size_t(i) * 8);
        const float4 a = x4[0], b = x4[1];
        acc[t] += a.x * wv[0] + a.y * wv[1] + a.z * wv[2] + a.w * wv[3] + b.x * wv[4] + b.y * wv[5] +
                  b.z * wv[6] + b.w * wv[7];
      }
    }
  } else {
    for (int i = lane; i < n; i += 32) {
      const float wi = bf16f(w[i]);
#pragma unroll
      for (int t = 0; t < NT; ++t) acc[t] += x[size_t(t) * x_stride + i] * wi;
    }
  }
}

template <int NT>
__device__ __forceinline__ void lane_dot(const float* x, int x_stride, const float* w, int n, bool vec, int lane,
                                         float* acc) {
  if (vec) {
    const float4* w4 = reinterpret_cast<const float4*>(w);
    for (int i = lane; i < n / 4; i += 32) {
      const float4 p = __ldg(w4 + i);
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        const float4 a = reinterpret_cast<const float4*>(x + size_t(t) * x_stride)[i];
        acc[t] += a.x * p.x + a.y * p.y + a.z * p.z + a.w * p.w;
      }
    }
  } else {
    for (int i = lane; i < n; i += 32) {
      const float wi = w[i];
#pragma unroll
      for (int t = 0; t < NT; ++t) acc[t] += x[size_t(t) * x_stride + i] * wi;
    }
  }
}

// Whether lane_dot may use 16-byte loads: rows of n elements of `elt` bytes starting at w, and
// x rows (stride in floats) all 16-byte aligned.
inline bool vector_ok(const void* w, int n, int elt, const float* x, int x_stride) {
  const int per = 16 / elt;
  return n % per == 0 && n % 8 == 0 && (reinterpret_cast<uintptr_t>(w) & 15) == 0 &&
         (reinterpret_cast<uintptr_t>(x) & 15) == 0 && x_stride % 4 == 0;
}

inline unsigned ceil_div(long long a, long long b) { return unsigned((a + b - 1) / b); }

}  // namespace moescope::kernels::detail
