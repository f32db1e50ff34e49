// gemm.h's tile kernel at AVX2 + FMA + F16C (8 fp32 lanes, 16 vector registers: a 4 × 3 tile
// holds 12 accumulators, 3 weight vectors and one x vector). Built with -mavx2 -mfma -mf16c
// (engine/CMakeLists.txt); called only where the CPU has them (gemm.cpp).
#include "cpu/gemm.h"

#if defined(__x86_64__) && defined(__AVX2__) && defined(__FMA__) && defined(__F16C__)
#include <immintrin.h>

#include "cpu/gemm_qtile_avx2.h"
#include "cpu/gemm_tile.h"

namespace moescope::cpu {
namespace {

struct Avx2 {
  static constexpr int L = 8, MR = 4, NR = 3, NR1 = 6;
  using reg = __m256;
  static reg zero() { return _mm256_setzero_ps(); }
  static reg load(const float* p) { return _mm256_loadu_ps(p); }
  static reg fma(reg a, reg b, reg c) { return _mm256_fmadd_ps(a, b, c); }
  static float hsum(reg v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
  }
  template <DType D>
  static reg widen(const uint8_t* w, int k) {
    if constexpr (D == DType::F32) {
      return _mm256_loadu_ps(reinterpret_cast<const float*>(w) + k);
    } else if constexpr (D == DType::Q8_0) {
      const __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(w + weight_offset<D>(k)));
      return _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q)), _mm256_set1_ps(_cvtsh_ss(q8_scale_bits(w, k))));
    } else {
      const __m128i h = _mm_loadu_si128(reinterpret_cast<const __m128i*>(reinterpret_cast<const uint16_t*>(w) + k));
      if constexpr (D == DType::BF16) return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(h), 16));
      else return _mm256_cvtph_ps(h);
    }
  }
};

}  // namespace

detail::GemmFn detail::gemm_avx2() { return &gemm_level<Avx2, QAvx2>; }

}  // namespace moescope::cpu
#else
moescope::cpu::detail::GemmFn moescope::cpu::detail::gemm_avx2() { return nullptr; }
#endif
