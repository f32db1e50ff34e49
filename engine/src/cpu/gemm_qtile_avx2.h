#pragma once
// gemm_qtile.h's QV on AVX2 integer instructions, included by the AVX2 and the AVX-512 level files
// (each compiles its own copy, in an anonymous namespace: see gemm_tile.h on linkage).
//
// A chunk's 256 products: 8 × (|w| · sign(x, w) in maddubs, pairs to int32 in madd), then three
// rounds of hadd leave the 16 group sums in two registers, in the order P (groups 0,2,4,6 | 1,3,5,7
// and 8,10,… | 9,11,…); then acc += sums · s_w · s_x + o_w · o_x, 8 lanes at a time.
// maddubs saturates at int16: |q_w| ≤ 127 and |q_x| ≤ 127 keep the sum of two products below it.
#include <immintrin.h>

#include "cpu/gemm_qtile.h"

namespace moescope::cpu {
namespace {

struct QAvx2 {
  static constexpr int P[16] = {0, 2, 4, 6, 1, 3, 5, 7, 8, 10, 12, 14, 9, 11, 13, 15};
  using acc = __m256;
  static void order(const float* natural, float* dst) {  // P within each half of 8
    const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
    _mm256_storeu_ps(dst, _mm256_permutevar8x32_ps(_mm256_loadu_ps(natural), idx));
    _mm256_storeu_ps(dst + 8, _mm256_permutevar8x32_ps(_mm256_loadu_ps(natural + 8), idx));
  }
  static acc zero() { return _mm256_setzero_ps(); }
  // 32 products of two groups, as 8 int32 partial sums (4 per group, one group per 128-bit lane).
  static __m256i pair(const int8_t* w, const int8_t* x) {
    const __m256i wv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w));
    const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x));
    const __m256i p = _mm256_maddubs_epi16(_mm256_sign_epi8(wv, wv), _mm256_sign_epi8(xv, wv));
    return _mm256_madd_epi16(p, _mm256_set1_epi16(1));
  }
  static void dot(const QChunk& w, const QChunk& x, acc& a) {
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const int8_t* wq = w.q + 128 * h;
      const int8_t* xq = x.q + 128 * h;
      const __m256i h01 = _mm256_hadd_epi32(pair(wq, xq), pair(wq + 32, xq + 32));
      const __m256i h23 = _mm256_hadd_epi32(pair(wq + 64, xq + 64), pair(wq + 96, xq + 96));
      const __m256 sums = _mm256_cvtepi32_ps(_mm256_hadd_epi32(h01, h23));
      const __m256 scale = _mm256_mul_ps(_mm256_loadu_ps(w.s + 8 * h), _mm256_loadu_ps(x.s + 8 * h));
      a = _mm256_fmadd_ps(sums, scale, a);
      a = _mm256_fmadd_ps(_mm256_loadu_ps(w.o + 8 * h), _mm256_loadu_ps(x.o + 8 * h), a);
    }
  }
  static void dot_f32(const int8_t* q, float s, float o, const float* x, acc& a) {
    const __m256 sv = _mm256_set1_ps(s), ov = _mm256_set1_ps(o);
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * h));
      const __m256 wv = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)), sv, ov);
      a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + 8 * h), a);
    }
  }
  static float hsum(acc v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
};

}  // namespace
}  // namespace moescope::cpu
