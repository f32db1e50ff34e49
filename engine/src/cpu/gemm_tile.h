#pragma once
// The tile kernel of gemm.h, written once over a vector-traits type V and included by each
// instruction-set level's file, which compiles it with its own flags.
//
// V provides: L (fp32 lanes, a divisor of 32), reg, zero(), load(const float*), widen<D>(w, k) (L
// weights of row w from element k on, as fp32), fma(a, b, c) = a·b + c, hsum(reg); and the tile shape MR
// (x rows) × NR (W rows), with NR1 the W rows per tile when there is a single x row (decode,
// where more rows in flight help the loads and the FMAs have time to spare).
//
// Layout: dot products. x rows and W rows are both contiguous in K, so a tile keeps MR × NR
// vector accumulators, loads NR weight vectors and MR x vectors per step of L, and reduces each
// accumulator once at the end: no packing, no transposition, W read straight from the mapped
// checkpoint. Blocking: W rows go in strips of NR (a strip, NR·K weights, stays in L1 while the
// x rows pass over it), x rows in blocks of kTokenBlock (their K floats each stay in L2).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "cpu/gemm.h"
#include "cpu/gemm_qtile.h"

// Each including file defines its V in an anonymous namespace, so every instantiation below is
// its own (internal linkage), and the helpers are static: the levels' copies never merge at link
// time (the CTest case cpu_level_objects checks it).
namespace moescope::cpu {

// Where weight k of a row starts, in bytes: F32/BF16/F16 elements, or Q8_0 blocks (32 weights:
// an fp16 scale, then 32 int8, 34 bytes) whose weights are d · q, exactly as the dequantiser
// computes them.
template <DType D>
static constexpr size_t weight_offset(int k) {
  if constexpr (D == DType::Q8_0) return size_t(k / 32) * 34 + 2 + size_t(k % 32);
  else return size_t(k) * (D == DType::F32 ? 4 : 2);
}
template <DType D>
static constexpr size_t row_bytes_of(int K) {
  if constexpr (D == DType::Q8_0) return size_t(K / 32) * 34;
  else return size_t(K) * (D == DType::F32 ? 4 : 2);
}
// The fp16 scale of the Q8_0 block that holds weight k (the vector levels widen it with F16C).
static inline uint16_t q8_scale_bits(const uint8_t* w, int k) {
  uint16_t h;
  __builtin_memcpy(&h, w + size_t(k / 32) * 34, 2);
  return h;
}
static inline float q8_scale(const uint8_t* w, int k) { return f16_to_f32(q8_scale_bits(w, k)); }

// One weight as fp32, for the tails of K and the portable level.
template <DType D>
static inline float scalar_weight(const uint8_t* w, int k) {
  if constexpr (D == DType::F32) return reinterpret_cast<const float*>(w)[k];
  else if constexpr (D == DType::BF16) return bf16_to_f32(reinterpret_cast<const uint16_t*>(w)[k]);
  else if constexpr (D == DType::Q8_0) return float(int8_t(w[weight_offset<D>(k)])) * q8_scale(w, k);
  else return f16_to_f32(reinterpret_cast<const uint16_t*>(w)[k]);
}

template <class V, DType D>
struct TileKernels {
  // acc over k in [0, K) of MR' x rows against NR' W rows; y[i * ys + j].
  template <int MR, int NR>
  // pf: the next strip's first row (prefetched alongside, row for row), or nullptr.
  static void tile(const float* const* x, const uint8_t* w, size_t w_row_bytes, int K, float* y, size_t ys,
                   const uint8_t* pf) {
    typename V::reg acc[MR][NR];
#pragma GCC unroll 8
    for (int i = 0; i < MR; ++i)
#pragma GCC unroll 8
      for (int j = 0; j < NR; ++j) acc[i][j] = V::zero();
    const uint8_t* wr[NR];
#pragma GCC unroll 8
    for (int j = 0; j < NR; ++j) wr[j] = w + size_t(j) * w_row_bytes;
    int k = 0;
    for (; k + V::L <= K; k += V::L) {
      typename V::reg wv[NR];
#pragma GCC unroll 8
      for (int j = 0; j < NR; ++j) wv[j] = V::template widen<D>(wr[j], k);
      if (pf) {
#pragma GCC unroll 8
        for (int j = 0; j < NR; ++j) __builtin_prefetch(pf + size_t(j) * w_row_bytes + weight_offset<D>(k), 0, 2);
      }
#pragma GCC unroll 8
      for (int i = 0; i < MR; ++i) {
        const typename V::reg xv = V::load(x[i] + k);
#pragma GCC unroll 8
        for (int j = 0; j < NR; ++j) acc[i][j] = V::fma(xv, wv[j], acc[i][j]);
      }
    }
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j) {
        float s = V::hsum(acc[i][j]);
        for (int kk = k; kk < K; ++kk) s += x[i][kk] * scalar_weight<D>(wr[j], kk);
        y[size_t(i) * ys + size_t(j)] = s;
      }
  }

  using Tile = void (*)(const float* const*, const uint8_t*, size_t, int, float*, size_t, const uint8_t*);
  static constexpr int NRmax = std::max(V::NR, V::NR1);

  template <int MR, int... NRs>
  static void fill_row(Tile* row, std::integer_sequence<int, NRs...>) {
    ((row[NRs] = &tile<MR, NRs + 1>), ...);
  }
  template <int NR, int... MRs>
  static void fill(Tile (*table)[NR], std::integer_sequence<int, MRs...>) {
    (fill_row<MRs + 1>(table[MRs], std::make_integer_sequence<int, NR>{}), ...);
  }

  static void run(const RowsIn& x, int m, const void* w, int K, int n_rows, int row0, int row1, float* y, size_t ys) {
    constexpr int kTokenBlock = 32;
    static const auto table = [] {
      struct T { Tile t[V::MR][NRmax]; } tb{};
      fill<NRmax>(tb.t, std::make_integer_sequence<int, V::MR>{});
      return tb;
    }();
    const size_t row_bytes = row_bytes_of<D>(K);
    const auto* wb = static_cast<const uint8_t*>(w);
    const int NR = m == 1 ? V::NR1 : V::NR;
    for (int t0 = 0; t0 < m; t0 += kTokenBlock) {
      const int t1 = std::min(m, t0 + kTokenBlock);
      for (int r = row0; r < row1; r += NR) {
        const int nr = std::min(NR, row1 - r);
        const uint8_t* wr = wb + size_t(r) * row_bytes;
        // The first pass over a strip streams it from memory: it prefetches the next strip
        // (rows are often one page long, where the hardware prefetchers stop and restart).
        const uint8_t* next = r + 2 * nr <= n_rows && t0 == 0 ? wr + size_t(nr) * row_bytes : nullptr;
        for (int i = t0; i < t1; i += V::MR) {
          const int mr = std::min(V::MR, t1 - i);
          const float* xp[V::MR];
          for (int q = 0; q < mr; ++q) xp[q] = x[i + q];
          table.t[mr - 1][nr - 1](xp, wr, row_bytes, K, y + size_t(i) * ys + size_t(r - row0), ys,
                                  i == t0 ? next : nullptr);
        }
      }
    }
  }
};

// The level's gemm entry point for gemm.h's detail::GemmFn: V's tile kernel for F32/BF16/F16/Q8_0,
// QV's integer kernel (gemm_qtile.h) for the other block types.
template <class V, class QV>
void gemm_level(const RowsIn& x, int m, DType dt, const void* w, int K, int n_rows, int row0, int row1, float* y,
                size_t ys, XPack* pack) {
  switch (dt) {
    case DType::F32: TileKernels<V, DType::F32>::run(x, m, w, K, n_rows, row0, row1, y, ys); return;
    case DType::BF16: TileKernels<V, DType::BF16>::run(x, m, w, K, n_rows, row0, row1, y, ys); return;
    case DType::F16: TileKernels<V, DType::F16>::run(x, m, w, K, n_rows, row0, row1, y, ys); return;
    case DType::Q8_0: TileKernels<V, DType::Q8_0>::run(x, m, w, K, n_rows, row0, row1, y, ys); return;
    default: QKernels<QV>::run_any(x, m, dt, w, K, n_rows, row0, row1, y, ys, *pack); return;  // gemm_rows checked it
  }
}

}  // namespace moescope::cpu
