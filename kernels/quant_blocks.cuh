#pragma once
// Device side of llama.cpp's block types (not a launcher header: included by .cu files only).
// The decoding itself is the one definition in engine/src/quant_blocks.h, compiled here as
// __host__ __device__ (MOESCOPE_QHD): a block becomes int8 codes q and a scale s and an addend o
// per group of 16 weights, weight[e] = s[e / 16] · q[e] + o[e / 16].
//
// What this file adds: that product rounded exactly as the host evaluates it (no fused
// multiply-add: the dequantised values are bit-exact with dequantize_blocks), and one lane's share
// of a dot product of x rows with a row of blocks, for the matvec kernels (quant_gemv.cu).
#include <cuda_runtime.h>

#include <cstdint>
#include <type_traits>

#include "kernel_common.cuh"
#include "quant_blocks.h"

namespace moescope::kernels::detail {

template <DType T>
constexpr int kQElems = quant::kBlockElems<T>;
template <DType T>
constexpr int kQBytes = quant::kBlockBytes<T>;
template <DType T>
constexpr int kQGroups = quant::kBlockElems<T> / quant::kGroup;

// A block copied from global memory into a local buffer with the widest loads its alignment
// allows (16 bytes for Q4_K/Q5_K, 2 for Q6_K, ...: blocks of a row follow each other from a
// 16-byte aligned start, so block i sits at a multiple of kQAlign past it), then unpacked there:
// a lane reads its block in a few wide loads instead of one load per byte.
template <DType T>
constexpr int kQAlign = kQBytes<T> % 16 == 0 ? 16 : kQBytes<T> % 8 == 0 ? 8 : kQBytes<T> % 4 == 0 ? 4
                                                                           : kQBytes<T> % 2 == 0 ? 2 : 1;
template <DType T>
struct QBlockBuf {
  alignas(16) uint8_t bytes[kQBytes<T>];
};
template <DType T>
__device__ __forceinline__ void load_block(const uint8_t* __restrict__ src, QBlockBuf<T>& dst) {
  constexpr int A = kQAlign<T>, N = kQBytes<T> / A;
  using Word = std::conditional_t<A == 16, uint4, std::conditional_t<A == 8, uint2, std::conditional_t<A == 4,
               uint32_t, std::conditional_t<A == 2, uint16_t, uint8_t>>>>;
  const Word* s = reinterpret_cast<const Word*>(src);
  Word* d = reinterpret_cast<Word*>(dst.bytes);
#pragma unroll
  for (int i = 0; i < N; ++i) d[i] = __ldg(s + i);
}

// Weight e of an unpacked block, in float32 with the host's two roundings (s·q, then + o).
template <DType T>
__device__ __forceinline__ float qvalue(const int8_t* q, const float* s, const float* o, int e) {
  const int g = e / quant::kGroup;
  const float p = __fmul_rn(s[g], float(q[e]));
  if constexpr (quant::has_addend(T)) return __fadd_rn(p, o[g]);
  else return p;
}

// One lane's share of dot(x_t, row) for NT rows x_t = x + t·x_stride against a row of nb blocks
// of type T (the row 16-byte aligned): the lane at `seg_lane` of a segment of `seg` lanes takes
// blocks seg_lane, seg_lane + seg, ... Per group of 16: s·Σ x·q + o·Σ x (fp32; the same sum as
// Σ x·(s·q + o) up to rounding).
template <DType T, int NT>
__device__ __forceinline__ void qrow_dot(const uint8_t* __restrict__ row, int nb, const float* __restrict__ x,
                                         int x_stride, int seg_lane, int seg, float* acc) {
  constexpr int BE = kQElems<T>, BB = kQBytes<T>, NG = kQGroups<T>;
  for (int ib = seg_lane; ib < nb; ib += seg) {
    QBlockBuf<T> blk;
    load_block<T>(row + size_t(ib) * BB, blk);
    int8_t q[BE];
    float s[NG], o[NG];
    quant::unpack<T>(blk.bytes, q, s, o);
    const float* xb = x + size_t(ib) * BE;
#pragma unroll 1
    for (int g = 0; g < NG; ++g) {
      float dq[NT], dx[NT];
#pragma unroll
      for (int t = 0; t < NT; ++t) dq[t] = 0.0f, dx[t] = 0.0f;
#pragma unroll
      for (int i = 0; i < quant::kGroup; ++i) {
        const int e = g * quant::kGroup + i;
        const float qv = float(q[e]);
#pragma unroll
        for (int t = 0; t < NT; ++t) {
          const float xv = xb[size_t(t) * x_stride + e];
          dq[t] += xv * qv;
          if constexpr (quant::has_addend(T)) dx[t] += xv;
        }
      }
#pragma unroll
      for (int t = 0; t < NT; ++t) {
        if constexpr (quant::has_addend(T)) acc[t] += s[g] * dq[t] + o[g] * dx[t];
        else acc[t] += s[g] * dq[t];
      }
    }
  }
}

// Sum over an aligned segment of `seg` lanes (a power of two, at most 32); every lane of the
// segment gets it. All 32 lanes of the warp must call it.
__device__ __forceinline__ float seg_sum(float v, int seg) {
  for (int o = seg >> 1; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

// Lanes per row for rows of nb blocks: the smallest power of two >= nb, at most 32 (short rows
// share a warp, so a Q4_K row of 2048 weights, 8 blocks, is 8 lanes and a warp takes 4 rows).
inline int seg_lanes(int nb) {
  int s = 1;
  while (s < nb && s < 32) s <<= 1;
  return s;
}

}  // namespace moescope::kernels::detail
