// gemm.h's BF16-weight kernel on AVX512_BF16 dot products (VDPBF16PS: 32 bf16 products summed in
// pairs into 16 fp32 lanes per instruction), for the CPUs that have them without AMX (AMD Zen 4
// and later, Intel Cooper Lake).
//
// Activations rounded to bf16, as llama.cpp's BF16 kernels round them: used only with the rounded
// activations of QuantX::Int8 (gemm.h) and for at least kMinRows x rows (prompts: decode stays on
// the exact fp32 path, which is as fast there since it waits on memory). x rows are rounded once
// per pack tag (round to nearest even), W rows read in place; a tile of 4 x rows × 4 W rows keeps
// 16 accumulators in registers. Each product is exact in fp32 and the sums round as fp32 sums do,
// so the only difference from the fp32 kernel is x's rounding: at most 2^-9 of |x| per element.
//
// Built with -mavx512bf16 -mavx512bw -mavx512f (engine/CMakeLists.txt); used only where cpuid
// says the CPU has AVX512_BF16 (gemm.cpp).
#include "cpu/gemm.h"

#if defined(__x86_64__) && defined(__AVX512BF16__) && defined(__AVX512BW__)
#if defined(__GNUC__) && !defined(__clang__)  // GCC 12's intrinsics: see gemm_avx512.cpp
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <utility>

namespace moescope::cpu {
namespace {

constexpr int kMR = 4, kNR = 4;  // x rows × W rows per tile

float bf16_value(uint16_t h) {
  uint32_t u = uint32_t(h) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

// One float to bf16 as VCVTNE2PS2BF16 converts it: round to nearest even, subnormals to zero (the
// instruction works as if MXCSR.DAZ were set). NaN cannot occur in activations that reach here.
uint16_t to_bf16(float v) {
  uint32_t u;
  std::memcpy(&u, &v, 4);
  if ((u & 0x7F800000u) == 0) return uint16_t((u >> 16) & 0x8000u);
  return uint16_t((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16);
}

// The x rows as bf16, each padded with zeros to Kp (a multiple of 32) elements.
void pack_rows(const RowsIn& x, int m, int K, int Kp, uint16_t* out) {
  for (int i = 0; i < m; ++i) {
    const float* xi = x[i];
    uint16_t* o = out + size_t(i) * size_t(Kp);
    int k = 0;
    for (; k + 32 <= K; k += 32) {
      const __m512bh v = _mm512_cvtne2ps_pbh(_mm512_loadu_ps(xi + k + 16), _mm512_loadu_ps(xi + k));
      _mm512_storeu_si512(o + k, reinterpret_cast<const __m512i&>(v));
    }
    for (; k < Kp; ++k) o[k] = k < K ? to_bf16(xi[k]) : 0;
  }
}

template <int MR, int NR>
void tile(const uint16_t* const* xr, const uint16_t* w, int K, float* y, size_t ys) {
  __m512 acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) acc[i][j] = _mm512_setzero_ps();
  int k = 0;
  for (; k + 32 <= K; k += 32) {
    __m512i wv[NR];
    for (int j = 0; j < NR; ++j) wv[j] = _mm512_loadu_si512(w + size_t(j) * size_t(K) + size_t(k));
    for (int i = 0; i < MR; ++i) {
      const __m512i xv = _mm512_loadu_si512(xr[i] + k);
      for (int j = 0; j < NR; ++j)
        acc[i][j] = _mm512_dpbf16_ps(acc[i][j], reinterpret_cast<const __m512bh&>(xv), reinterpret_cast<const __m512bh&>(wv[j]));
    }
  }
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j) {
      float s = _mm512_reduce_add_ps(acc[i][j]);
      for (int kk = k; kk < K; ++kk) s += bf16_value(xr[i][kk]) * bf16_value(w[size_t(j) * size_t(K) + size_t(kk)]);
      y[size_t(i) * ys + size_t(j)] = s;
    }
}

using TileFn = void (*)(const uint16_t* const*, const uint16_t*, int, float*, size_t);
template <int MR, int... NRs>
constexpr std::array<TileFn, sizeof...(NRs)> row_of(std::integer_sequence<int, NRs...>) {
  return {&tile<MR, NRs + 1>...};
}

void bf16dot_gemm(const RowsIn& x, int m, DType dt, const void* w, int K, int n_rows, int row0, int row1, float* y,
                  size_t ys, XPack* pack) {
  static constexpr std::array<std::array<TileFn, kNR>, kMR> table = {
      row_of<1>(std::make_integer_sequence<int, kNR>{}), row_of<2>(std::make_integer_sequence<int, kNR>{}),
      row_of<3>(std::make_integer_sequence<int, kNR>{}), row_of<4>(std::make_integer_sequence<int, kNR>{})};
  const int Kp = (K + 31) / 32 * 32;
  XPack& pk = *pack;
  const size_t words = (size_t(m) * size_t(Kp) + 1) / 2;
  uint32_t* data = xpack_reserve(pk, words);
  auto* xb = reinterpret_cast<uint16_t*>(data);
  if (pk.tag == 0 || pk.tag != pk.packed_tag || pk.kind != XPack::Kind::Bf16 || pk.m != m || pk.K != K) {
    pack_rows(x, m, K, Kp, xb);
    pk.packed_tag = pk.tag, pk.kind = XPack::Kind::Bf16, pk.m = m, pk.K = K;
  }
  const auto* wb = static_cast<const uint16_t*>(w);
  constexpr int kTokenBlock = 32;  // x rows whose bf16 copies stay in L2 while W strips pass
  for (int t0 = 0; t0 < m; t0 += kTokenBlock) {
    const int t1 = std::min(m, t0 + kTokenBlock);
    for (int r = row0; r < row1; r += kNR) {
      const int nr = std::min(kNR, row1 - r);
      const uint16_t* wr = wb + size_t(r) * size_t(K);
      if (t0 == 0 && r + 2 * nr <= n_rows)  // the next strip, fetched while this one is used
        for (size_t off = 0; off < size_t(nr) * size_t(K) * 2; off += 64)
          __builtin_prefetch(reinterpret_cast<const uint8_t*>(wr + size_t(nr) * size_t(K)) + off, 0, 2);
      for (int i = t0; i < t1; i += kMR) {
        const int mr = std::min(kMR, t1 - i);
        const uint16_t* xp[kMR];
        for (int q = 0; q < mr; ++q) xp[q] = xb + size_t(i + q) * size_t(Kp);
        table[size_t(mr - 1)][size_t(nr - 1)](xp, wr, K, y + size_t(i) * ys + size_t(r - row0), ys);
      }
    }
  }
  (void)dt;
}

}  // namespace

detail::GemmFn detail::gemm_bf16dot() { return &bf16dot_gemm; }

}  // namespace moescope::cpu
#else
moescope::cpu::detail::GemmFn moescope::cpu::detail::gemm_bf16dot() { return nullptr; }
#endif
