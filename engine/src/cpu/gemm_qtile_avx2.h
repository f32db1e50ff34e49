#pragma once
// gemm_qtile.h's QV on AVX2 integer instructions, included by the AVX2 and the AVX-512 level files
// (each compiles its own copy, in an anonymous namespace: see gemm_tile.h on linkage).
//
// A chunk's 256 products: 8 × (|w| · sign(x, w) in maddubs, pairs to int32 in madd), then three
// rounds of hadd leave the 16 group sums in two registers, in the order P (groups 0,2,4,6 | 1,3,5,7
// and 8,10,… | 9,11,…); then acc += sums · s_w · s_x + o_w · o_x, 8 lanes at a time.
// maddubs saturates at int16: |q_w| ≤ 127 and |q_x| ≤ 127 keep the sum of two products below it.
#include <immintrin.h>

#include <cstring>

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
  static void dot_f32(const int8_t* q, float s, float o, const float* x, acc& a) {
    const __m256 sv = _mm256_set1_ps(s), ov = _mm256_set1_ps(o);
#pragma GCC unroll 2
    for (int h = 0; h < 2; ++h) {
      const __m128i q8 = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(q + 8 * h));
      const __m256 wv = _mm256_fmadd_ps(_mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q8)), sv, ov);
      a = _mm256_fmadd_ps(wv, _mm256_loadu_ps(x + 8 * h), a);
    }
  }
  // Fused blocks (gemm_qtile.h): every block type this kernel takes but Q2_K, Q3_K and IQ4_XS.
  // Where the codes can stay unsigned (Q4_K: 0..15, Q5_K: 0..31, Q6_K: 0..63 with its −32 moved
  // into the addend −32·s; Q4_0/Q5_0 likewise with −8·d / −16·d; Q4_1, Q5_1), maddubs takes them
  // as they are, without the sign trick: 2·63·127 < 2^15. IQ4_NL and MXFP4 codes are signed.
  template <DType T>
  static constexpr bool fused = T != DType::Q2_K && T != DType::Q3_K && T != DType::IQ4_XS && T != DType::Q8_0;
  template <DType T>
  static constexpr bool signed_codes = T == DType::IQ4_NL || T == DType::MXFP4;

  struct Decoded {
    __m256i u[8];     // codes 32·r … 32·r + 31
    __m256 S[2], O[2];  // scales and addends of the 16 groups, P order
  };

  // Chunk c (256 weights) of a W row of K weights: one k-quant block, or 8 blocks of 32 (fewer at
  // the end of a row, the rest zero).
  template <DType T>
  static void decode(const uint8_t* row, int c, int K, Decoded& d) {
    const __m256i m4 = _mm256_set1_epi8(0x0F);
    constexpr size_t bb = quant::kBlockBytes<T>;
    if constexpr (quant::kBlockElems<T> == 32) {
      const int nb = std::min(8, K / 32 - 8 * c);
      alignas(32) float sc[8] = {}, ad[8] = {};
      for (int k = 0; k < 8; ++k) {
        if (k >= nb) {
          d.u[k] = _mm256_setzero_si256();
          continue;
        }
        const uint8_t* b = row + size_t(8 * c + k) * bb;
        auto nibbles = [&](const uint8_t* qs) {  // element j: low nibble of qs[j]; j + 16: its high one
          const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs));
          const __m128i m = _mm_set1_epi8(0x0F);
          return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(v, 4), m), _mm_and_si128(v, m));
        };
        auto table = [&](const int8_t* t, const uint8_t* qs) {
          const __m128i tv = _mm_loadu_si128(reinterpret_cast<const __m128i*>(t));
          const __m256i n = nibbles(qs);
          return _mm256_shuffle_epi8(_mm256_set_m128i(tv, tv), n);
        };
        auto fifth_bits = [&](const uint8_t* qh) {  // bit j of the u32 as 0x10 in byte j
          uint32_t h;
          std::memcpy(&h, qh, 4);
          const __m256i rep = _mm256_shuffle_epi8(_mm256_set1_epi32(int(h)),
                                                  _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2,
                                                                   2, 2, 2, 2, 3, 3, 3, 3, 3, 3, 3, 3));
          const __m256i bit = _mm256_set1_epi64x(int64_t(0x8040201008040201ull));
          return _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(rep, bit), bit), _mm256_set1_epi8(0x10));
        };
        if constexpr (T == DType::Q4_0 || T == DType::Q4_1) {
          d.u[k] = nibbles(b + (T == DType::Q4_0 ? 2 : 4));
          sc[k] = quant::half_at(b);
          ad[k] = T == DType::Q4_0 ? -8.0f * sc[k] : quant::half_at(b + 2);
        } else if constexpr (T == DType::Q5_0 || T == DType::Q5_1) {
          constexpr bool one = T == DType::Q5_1;
          d.u[k] = _mm256_or_si256(nibbles(b + (one ? 8 : 6)), fifth_bits(b + (one ? 4 : 2)));
          sc[k] = quant::half_at(b);
          ad[k] = one ? quant::half_at(b + 2) : -16.0f * sc[k];
        } else if constexpr (T == DType::IQ4_NL) {
          d.u[k] = table(quant::kIq4nl, b + 2);
          sc[k] = quant::half_at(b);
        } else {  // MXFP4
          d.u[k] = table(quant::kMxfp4, b + 1);
          sc[k] = quant::e8m0_half(b[0]);
        }
      }
      // Groups 2k, 2k+1 take block k's values; P order: blocks 0-3 twice, then 4-7 twice.
      const __m256i lo = _mm256_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3), hi = _mm256_setr_epi32(4, 5, 6, 7, 4, 5, 6, 7);
      const __m256 s8 = _mm256_load_ps(sc), a8 = _mm256_load_ps(ad);
      d.S[0] = _mm256_permutevar8x32_ps(s8, lo), d.S[1] = _mm256_permutevar8x32_ps(s8, hi);
      d.O[0] = _mm256_permutevar8x32_ps(a8, lo), d.O[1] = _mm256_permutevar8x32_ps(a8, hi);
      return;
    }
    const uint8_t* b = row + size_t(c) * bb;
    if constexpr (T == DType::Q6_K) {
      const __m256i m30 = _mm256_set1_epi8(0x30);
      for (int h = 0; h < 2; ++h) {
        const __m256i A = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * h));
        const __m256i B = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 64 * h + 32));
        const __m256i H = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h));
        d.u[4 * h] = _mm256_or_si256(_mm256_and_si256(A, m4), _mm256_and_si256(_mm256_slli_epi16(H, 4), m30));
        d.u[4 * h + 1] = _mm256_or_si256(_mm256_and_si256(B, m4), _mm256_and_si256(_mm256_slli_epi16(H, 2), m30));
        d.u[4 * h + 2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(A, 4), m4), _mm256_and_si256(H, m30));
        d.u[4 * h + 3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(B, 4), m4),
                                         _mm256_and_si256(_mm256_srli_epi16(H, 2), m30));
      }
      const __m128i sc8 = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192));
      const __m256 dv = _mm256_set1_ps(quant::half_at(b + 208));
      const __m256i idx = _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7);
      const __m256 minus32 = _mm256_set1_ps(-32.0f);
      d.S[0] = _mm256_permutevar8x32_ps(_mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(sc8))), idx);
      d.S[1] = _mm256_permutevar8x32_ps(_mm256_mul_ps(dv, _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(_mm_srli_si128(sc8, 8)))), idx);
      d.O[0] = _mm256_mul_ps(d.S[0], minus32), d.O[1] = _mm256_mul_ps(d.S[1], minus32);
    } else {  // Q4_K, Q5_K
      constexpr bool five = T == DType::Q5_K;
      const uint8_t* qs = b + (five ? 48 : 16);
      [[maybe_unused]] __m256i hv = _mm256_setzero_si256();
      if constexpr (five) hv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
      for (int j2 = 0; j2 < 4; ++j2) {
        const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(qs + 32 * j2));
        d.u[2 * j2] = _mm256_and_si256(v, m4);
        d.u[2 * j2 + 1] = _mm256_and_si256(_mm256_srli_epi16(v, 4), m4);
        if constexpr (five) {  // bit j of qh as bit 4 of sub-block j's codes (see quant::unpack)
          const __m256i b4 = _mm256_set1_epi8(0x10);
          auto bit4 = [&](int bit) {
            return _mm256_and_si256(bit <= 4 ? _mm256_sll_epi16(hv, _mm_cvtsi32_si128(4 - bit))
                                             : _mm256_srl_epi16(hv, _mm_cvtsi32_si128(bit - 4)),
                                    b4);
          };
          d.u[2 * j2] = _mm256_or_si256(d.u[2 * j2], bit4(2 * j2));
          d.u[2 * j2 + 1] = _mm256_or_si256(d.u[2 * j2 + 1], bit4(2 * j2 + 1));
        }
      }
      // The 6-bit scales and mins of sub-blocks 0..7, four to a word.
      uint32_t sc[2], mn[2];
      quant::scale_min_k4_words(b + 4, sc, mn);
      auto widen = [](const uint32_t* v) {
        return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(v))));
      };
      const __m256 s8 = _mm256_mul_ps(_mm256_set1_ps(quant::half_at(b)), widen(sc));
      const __m256 m8 = _mm256_xor_ps(_mm256_mul_ps(_mm256_set1_ps(quant::half_at(b + 2)), widen(mn)), _mm256_set1_ps(-0.0f));
      // Group g takes sub-block g / 2; P order: groups 0,2,4,6,1,3,5,7 | 8,10,…: sub-blocks 0-3 twice, 4-7 twice.
      const __m256i lo = _mm256_setr_epi32(0, 1, 2, 3, 0, 1, 2, 3), hi = _mm256_setr_epi32(4, 5, 6, 7, 4, 5, 6, 7);
      d.S[0] = _mm256_permutevar8x32_ps(s8, lo), d.S[1] = _mm256_permutevar8x32_ps(s8, hi);
      d.O[0] = _mm256_permutevar8x32_ps(m8, lo), d.O[1] = _mm256_permutevar8x32_ps(m8, hi);
    }
  }

  // A decoded block into a strip chunk (codes as bytes, then S and O), for dot_u.
  static void store(const Decoded& d, QChunk& w) {
    for (int r = 0; r < 8; ++r) _mm256_storeu_si256(reinterpret_cast<__m256i*>(w.q + 32 * r), d.u[r]);
    for (int h = 0; h < 2; ++h) _mm256_storeu_ps(w.s + 8 * h, d.S[h]), _mm256_storeu_ps(w.o + 8 * h, d.O[h]);
  }
  // A strip chunk back in registers.
  static Decoded load(const QChunk& w) {
    Decoded d;
    for (int r = 0; r < 8; ++r) d.u[r] = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w.q + 32 * r));
    for (int h = 0; h < 2; ++h) d.S[h] = _mm256_loadu_ps(w.s + 8 * h), d.O[h] = _mm256_loadu_ps(w.o + 8 * h);
    return d;
  }
  // A chunk of signed codes (unpacked), and one of unsigned codes (store), against an x chunk.
  static void dot(const QChunk& w, const QChunk& x, acc& a) { apply<true>(load(w), x, a); }
  static void dot_u(const QChunk& w, const QChunk& x, acc& a) { apply<false>(load(w), x, a); }

  // acc += the decoded block against one x chunk; Signed: codes in [−127, 127], multiplied by
  // the sign trick (|u| · sign(x, u)).
  template <bool Signed = false>
  static void apply(const Decoded& d, const QChunk& x, acc& a) {
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i p[8];
    for (int r = 0; r < 8; ++r) {
      const __m256i xv = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + 32 * r));
      if constexpr (Signed)
        p[r] = _mm256_madd_epi16(_mm256_maddubs_epi16(_mm256_sign_epi8(d.u[r], d.u[r]), _mm256_sign_epi8(xv, d.u[r])), ones);
      else
        p[r] = _mm256_madd_epi16(_mm256_maddubs_epi16(d.u[r], xv), ones);
    }
    for (int h = 0; h < 2; ++h) {
      const __m256i sums =
          _mm256_hadd_epi32(_mm256_hadd_epi32(p[4 * h], p[4 * h + 1]), _mm256_hadd_epi32(p[4 * h + 2], p[4 * h + 3]));
      a = _mm256_fmadd_ps(_mm256_cvtepi32_ps(sums), _mm256_mul_ps(d.S[h], _mm256_loadu_ps(x.s + 8 * h)), a);
      a = _mm256_fmadd_ps(d.O[h], _mm256_loadu_ps(x.o + 8 * h), a);
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
