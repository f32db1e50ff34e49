// gemm.h's tile kernel at AVX-512F (16 fp32 lanes, 32 vector registers: a 4 × 4 tile holds 16
// accumulators and leaves room for the weight and x vectors). Built with -mavx512f plus the
// AVX2 flags (engine/CMakeLists.txt); called only where the CPU and the OS have AVX-512 (gemm.cpp).
#include "cpu/gemm.h"

#if defined(__x86_64__) && defined(__AVX512F__) && defined(__F16C__)
// GCC 12's avx512fintrin.h starts some conversions from a deliberately undefined vector, which
// -Wuninitialized reports at every use.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include "cpu/gemm_qtile_avx2.h"
#include "cpu/gemm_tile.h"

namespace moescope::cpu {
namespace {

struct Avx512 {
  static constexpr int L = 16, MR = 4, NR = 4, NR1 = 8;
  using reg = __m512;
  static reg zero() { return _mm512_setzero_ps(); }
  static reg load(const float* p) { return _mm512_loadu_ps(p); }
  static reg fma(reg a, reg b, reg c) { return _mm512_fmadd_ps(a, b, c); }
  static float hsum(reg v) { return _mm512_reduce_add_ps(v); }
  template <DType D>
  static reg widen(const uint8_t* w, int k) {
    if constexpr (D == DType::F32) {
      return _mm512_loadu_ps(reinterpret_cast<const float*>(w) + k);
    } else if constexpr (D == DType::Q8_0) {
      const __m128i q = _mm_loadu_si128(reinterpret_cast<const __m128i*>(w + weight_offset<D>(k)));
      return _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(q)), _mm512_set1_ps(_cvtsh_ss(q8_scale_bits(w, k))));
    } else {
      const __m256i h =
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(reinterpret_cast<const uint16_t*>(w) + k));
      if constexpr (D == DType::BF16) return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16));
      else return _mm512_cvtph_ps(h);
    }
  }
};

}  // namespace

detail::GemmFn detail::gemm_avx512() { return &gemm_level<Avx512, QAvx2>; }

}  // namespace moescope::cpu
#else
moescope::cpu::detail::GemmFn moescope::cpu::detail::gemm_avx512() { return nullptr; }
#endif
