#pragma once
// llama.cpp's block types, each written once as an unpacking: a block of n weights becomes n
// small integers q, and a scale s and an addend o per group of 16 weights, such that
//
//     weight[e] = s[e / 16] · q[e] + o[e / 16]      (for the types with no offset: s · q)
//
// evaluated in float32 in exactly that association. That is the association of the reference
// dequantisers (the PyPI `gguf` package, gguf/quants.py), so dequantize_blocks
// (tensor_quant.cpp) is this unpacking followed by that product, bit for bit; and the CPU kernels
// (cpu/gemm_qtile.h) take q as int8 and s, o as they are, for integer dot products.
//
// Every q fits in [−127, 127] (the kernels' int8 products rely on it: |q| ≤ 127 keeps two
// products of an AVX2 maddubs inside int16).
//
// Block layouts (bytes, little-endian; d/dmin are IEEE half floats; "nib" = 4-bit code):
//   Q8_0   34  d, int8 q[32]                              x = d·q
//   Q4_0   18  d, qs[16]: x[j] = low nib of qs[j], x[j+16] = high nib; x = d·(nib − 8)
//   Q4_1   20  d, m, qs[16]                               x = d·nib + m
//   Q5_0   22  d, qh (u32: bit j = 5th bit of x[j]), qs[16] as Q4_0; x = d·(q − 16)
//   Q5_1   24  d, m, qh, qs[16]                           x = d·q + m
//   Q2_K   84  scales[16] (low nib scale, high nib min), qs[64] (2 bits), d, dmin
//   Q3_K  110  hmask[32], qs[64] (low 2 bits), scales[12] (16 × 6 bits, signed −32), d
//   Q4_K  144  d, dmin, scales[12] (8 × 6-bit scale + 8 × 6-bit min), qs[128]
//   Q5_K  176  d, dmin, scales[12], qh[32], qs[128]
//   Q6_K  210  ql[128], qh[64], int8 scales[16], d
//   IQ4_NL 18  d, qs[16] as Q4_0, codes looked up in a non-linear table
//   IQ4_XS 136 d, scales_h (u16), scales_l[4], qs[128]: 8 sub-blocks of 32, 6-bit scales − 32
//   MXFP4  17  e (E8M0 exponent), qs[16] as Q4_0, codes = doubled E2M1 values, scale 2^(e−128)
//
// Everything here has internal linkage (static): the CPU kernels compile it once per
// instruction-set level, and those copies must never be merged with each other at link time
// (cpu/gemm_tile.h, the CTest case cpu_level_objects).
//
// The same definitions are the CUDA kernels' block decoding (kernels/quant_blocks.cuh): under
// nvcc the functions are __host__ __device__ (MOESCOPE_QHD), and device code reads the two code
// books from __device__ twins with the same values (MOESCOPE_QTABLE); the CPU build sees neither.
#include <bit>
#include <cstdint>
#include <cstring>

#if defined(__AVX2__) && !defined(__CUDA_ARCH__)
#include <immintrin.h>
#endif

#if defined(__CUDACC__)
#include <cuda_fp16.h>
#define MOESCOPE_QHD __host__ __device__
#else
#define MOESCOPE_QHD
#endif
#if defined(__CUDA_ARCH__)
#define MOESCOPE_QTABLE(name) name##Device
#else
#define MOESCOPE_QTABLE(name) name
#endif

#include "moescope/tensor.h"

namespace moescope::quant {

inline constexpr int kGroup = 16;  // weights per (s, o) pair

MOESCOPE_QHD static inline float half_at(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
#if defined(__CUDA_ARCH__)  // exact, as the host conversions
  return __half2float(__ushort_as_half(h));
#elif defined(__F16C__)  // a level file: one instruction (the conversion is exact either way)
  return _cvtsh_ss(h);
#else
  return f16_to_f32(h);
#endif
}

// IQ4_NL / IQ4_XS code book (ggml's kvalues_iq4nl).
#define MOESCOPE_IQ4NL_VALUES -127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113
static constexpr int8_t kIq4nl[16] = {MOESCOPE_IQ4NL_VALUES};
// MXFP4: E2M1 values doubled (ggml's kvalues_mxfp4); the scale is halved to match.
#define MOESCOPE_MXFP4_VALUES 0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12
static constexpr int8_t kMxfp4[16] = {MOESCOPE_MXFP4_VALUES};
#if defined(__CUDACC__)  // device code cannot index a host constexpr array: the same values in device memory
static __device__ const int8_t kIq4nlDevice[16] = {MOESCOPE_IQ4NL_VALUES};
static __device__ const int8_t kMxfp4Device[16] = {MOESCOPE_MXFP4_VALUES};
#endif

// ggml_e8m0_to_fp32_half: 2^(e − 128), subnormal for e < 2.
MOESCOPE_QHD static inline float e8m0_half(uint8_t e) {
  const uint32_t bits = e < 2 ? (uint32_t(0x00200000) << e) : (uint32_t(e - 1) << 23);
#if defined(__CUDA_ARCH__)
  return __uint_as_float(bits);
#else
  return std::bit_cast<float>(bits);
#endif
}

// Weights and bytes per block of a block type (as dtype_block_elems / dtype_block_bytes).
template <DType T>
static constexpr int kBlockElems =
    T == DType::Q2_K || T == DType::Q3_K || T == DType::Q4_K || T == DType::Q5_K || T == DType::Q6_K ||
            T == DType::IQ4_XS
        ? 256
        : 32;
template <DType T>
static constexpr int kBlockBytes = T == DType::Q8_0     ? 34
                                   : T == DType::Q4_0   ? 18
                                   : T == DType::Q4_1   ? 20
                                   : T == DType::Q5_0   ? 22
                                   : T == DType::Q5_1   ? 24
                                   : T == DType::Q2_K   ? 84
                                   : T == DType::Q3_K   ? 110
                                   : T == DType::Q4_K   ? 144
                                   : T == DType::Q5_K   ? 176
                                   : T == DType::Q6_K   ? 210
                                   : T == DType::IQ4_NL ? 18
                                   : T == DType::IQ4_XS ? 136
                                                        : 17;  // MXFP4

// True for the types whose weights carry an addend (a min or an offset): Q4_1, Q5_1, Q2_K, Q4_K,
// Q5_K. The others are s · q alone.
MOESCOPE_QHD static constexpr bool has_addend(DType t) {
  return t == DType::Q4_1 || t == DType::Q5_1 || t == DType::Q2_K || t == DType::Q4_K || t == DType::Q5_K;
}

// 32 codes of 4 bits in 16 bytes: element j is the low nibble of qs[j], element j + 16 its high
// one; q = code − bias, or table[code].
MOESCOPE_QHD static inline void nibbles32(const uint8_t* qs, int8_t* q, int bias = 0) {
  for (int j = 0; j < 16; ++j) {
    q[j] = int8_t((qs[j] & 0x0F) - bias);
    q[j + 16] = int8_t((qs[j] >> 4) - bias);
  }
}
MOESCOPE_QHD static inline void nibbles32(const uint8_t* qs, int8_t* q, const int8_t* table) {
#if defined(__AVX2__) && !defined(__CUDA_ARCH__)  // a level file: the 16-entry table is one byte shuffle
  const __m128i t = _mm_loadu_si128(reinterpret_cast<const __m128i*>(table));
  const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i*>(qs)), m = _mm_set1_epi8(0x0F);
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q), _mm_shuffle_epi8(t, _mm_and_si128(b, m)));
  _mm_storeu_si128(reinterpret_cast<__m128i*>(q + 16), _mm_shuffle_epi8(t, _mm_and_si128(_mm_srli_epi16(b, 4), m)));
#else
  for (int j = 0; j < 16; ++j) {
    q[j] = table[qs[j] & 0x0F];
    q[j + 16] = table[qs[j] >> 4];
  }
#endif
}

// The 6-bit scales and mins of Q4_K/Q5_K (get_scale_min_k4).
MOESCOPE_QHD static inline void scale_min_k4(const uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 0x3F;
    m = s[j + 4] & 0x3F;
  } else {
    sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 2) & 0x30);
    m = (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30);
  }
}

// The same 8 scales and 8 mins, four to a 32-bit word (byte j of sc[0] is sub-block j's scale, of
// sc[1] sub-block 4 + j's; mn likewise), for the vector kernels: bytes 0-3 of s hold scales 0-3
// (low 6 bits) and the top 2 bits of scales 4-7, bytes 4-7 the same for the mins, bytes 8-11 the
// low 4 bits of scales 4-7 (low nibble) and mins 4-7 (high nibble).
static inline void scale_min_k4_words(const uint8_t* s, uint32_t sc[2], uint32_t mn[2]) {
  uint32_t w0, w1, w2;
  std::memcpy(&w0, s, 4), std::memcpy(&w1, s + 4, 4), std::memcpy(&w2, s + 8, 4);
  sc[0] = w0 & 0x3F3F3F3Fu, sc[1] = (w2 & 0x0F0F0F0Fu) | (((w0 >> 6) & 0x03030303u) << 4);
  mn[0] = w1 & 0x3F3F3F3Fu, mn[1] = ((w2 >> 4) & 0x0F0F0F0Fu) | (((w1 >> 6) & 0x03030303u) << 4);
}

// One block of type T: q[dtype_block_elems], s and o[dtype_block_elems / 16] (o is left alone for
// the types without an addend).
template <DType T>
MOESCOPE_QHD static inline void unpack(const uint8_t* b, int8_t* q, float* s, float* o) {
  if constexpr (T == DType::Q8_0) {
    std::memcpy(q, b + 2, 32);
    s[0] = s[1] = half_at(b);
  } else if constexpr (T == DType::Q4_0) {
    nibbles32(b + 2, q, 8);
    s[0] = s[1] = half_at(b);
  } else if constexpr (T == DType::Q4_1) {
    nibbles32(b + 4, q);
    s[0] = s[1] = half_at(b);
    o[0] = o[1] = half_at(b + 2);
  } else if constexpr (T == DType::Q5_0 || T == DType::Q5_1) {
    constexpr bool one = T == DType::Q5_1;
    uint32_t qh;
    std::memcpy(&qh, b + (one ? 4 : 2), 4);
    const uint8_t* qs = b + (one ? 8 : 6);
    for (int j = 0; j < 16; ++j) {
      q[j] = int8_t(((qs[j] & 0x0F) | (((qh >> j) & 1u) << 4)) - (one ? 0 : 16));
      q[j + 16] = int8_t(((qs[j] >> 4) | (((qh >> (j + 16)) & 1u) << 4)) - (one ? 0 : 16));
    }
    s[0] = s[1] = half_at(b);
    if constexpr (one) o[0] = o[1] = half_at(b + 2);
  } else if constexpr (T == DType::Q2_K) {
    // Element 128·h + 32·p + l takes 2 bits from qs[32·h + l] at shift 2·p.
    const uint8_t* qs = b + 16;
    const float d = half_at(b + 80), dmin = half_at(b + 82);
    for (int h = 0; h < 2; ++h)
      for (int p = 0; p < 4; ++p)
        for (int l = 0; l < 32; ++l) q[128 * h + 32 * p + l] = int8_t((qs[32 * h + l] >> (2 * p)) & 3);
    for (int g = 0; g < 16; ++g) {
      s[g] = d * float(b[g] & 0x0F);
      o[g] = -(dmin * float(b[g] >> 4));
    }
  } else if constexpr (T == DType::Q3_K) {
    const uint8_t* hmask = b;
    const uint8_t* qs = b + 32;
    const uint8_t* sc = b + 96;
    const float d = half_at(b + 108);
    for (int h = 0; h < 2; ++h)
      for (int p = 0; p < 4; ++p) {
        const int hbit = 4 * h + p;  // element e takes bit e / 32 of hmask[e % 32]
        for (int l = 0; l < 32; ++l) {
          const int low = (qs[32 * h + l] >> (2 * p)) & 3;
          const int high_bit = (hmask[l] >> hbit) & 1;  // a set bit means no −4 offset
          q[128 * h + 32 * p + l] = int8_t(low - ((high_bit ^ 1) << 2));
        }
      }
    for (int g = 0; g < 16; ++g) {
      const int lo = g < 8 ? (sc[g] & 0x0F) : (sc[g - 8] >> 4);
      const int hi = (sc[8 + g % 4] >> (2 * (g / 4))) & 3;
      s[g] = d * float((lo | (hi << 4)) - 32);
    }
  } else if constexpr (T == DType::Q4_K || T == DType::Q5_K) {
    // Sub-block j (32 weights) takes nibble j % 2 of qs[32·(j / 2) + l] (and, for Q5_K, bit j of
    // qh[l] as its fifth bit).
    constexpr bool five = T == DType::Q5_K;
    const float d = half_at(b), dmin = half_at(b + 2);
    const uint8_t* qh = b + 16;
    const uint8_t* qs = b + (five ? 48 : 16);
    for (int j = 0; j < 8; ++j) {
      int sc, m;
      scale_min_k4(b + 4, j, sc, m);
      s[2 * j] = s[2 * j + 1] = d * float(sc);
      o[2 * j] = o[2 * j + 1] = -(dmin * float(m));
      const int shift = 4 * (j % 2);
      for (int l = 0; l < 32; ++l) {
        int v = (qs[32 * (j / 2) + l] >> shift) & 0x0F;
        if constexpr (five) v |= ((qh[l] >> j) & 1) << 4;
        q[32 * j + l] = int8_t(v);
      }
    }
  } else if constexpr (T == DType::Q6_K) {
    // Element 128·h + r: low 4 bits from ql[64·h + r % 64] (nibble r / 64), high 2 bits from
    // qh[32·h + r % 32] at shift 2·(r / 32).
    const uint8_t* ql = b;
    const uint8_t* qh = b + 128;
    const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
    const float d = half_at(b + 208);
    for (int h = 0; h < 2; ++h)
      for (int p = 0; p < 4; ++p) {
        const uint8_t* lo = ql + 64 * h + 32 * (p % 2);
        const int shift = 4 * (p / 2);
        for (int l = 0; l < 32; ++l) {
          const int low = (lo[l] >> shift) & 0x0F;
          const int high = (qh[32 * h + l] >> (2 * p)) & 3;
          q[128 * h + 32 * p + l] = int8_t((low | (high << 4)) - 32);
        }
      }
    for (int g = 0; g < 16; ++g) s[g] = d * float(scales[g]);
  } else if constexpr (T == DType::IQ4_NL) {
    nibbles32(b + 2, q, MOESCOPE_QTABLE(kIq4nl));
    s[0] = s[1] = half_at(b);
  } else if constexpr (T == DType::IQ4_XS) {
    const float d = half_at(b);
    uint16_t scales_h;
    std::memcpy(&scales_h, b + 2, 2);
    const uint8_t* scales_l = b + 4;
    for (int j = 0; j < 8; ++j) {
      const int lo = (scales_l[j / 2] >> (4 * (j % 2))) & 0x0F;
      const int hi = (scales_h >> (2 * j)) & 3;
      s[2 * j] = s[2 * j + 1] = d * float((lo | (hi << 4)) - 32);
      nibbles32(b + 8 + 16 * j, q + 32 * j, MOESCOPE_QTABLE(kIq4nl));
    }
  } else if constexpr (T == DType::MXFP4) {
    nibbles32(b + 1, q, MOESCOPE_QTABLE(kMxfp4));
    s[0] = s[1] = e8m0_half(b[0]);
  }
}

// Calls f.template operator()<T>() with the block type t as a template argument; false for a type
// that is not a block type.
template <class F>
static inline bool with_block_type(DType t, F&& f) {
  switch (t) {
    case DType::Q8_0: f.template operator()<DType::Q8_0>(); return true;
    case DType::Q4_0: f.template operator()<DType::Q4_0>(); return true;
    case DType::Q4_1: f.template operator()<DType::Q4_1>(); return true;
    case DType::Q5_0: f.template operator()<DType::Q5_0>(); return true;
    case DType::Q5_1: f.template operator()<DType::Q5_1>(); return true;
    case DType::Q2_K: f.template operator()<DType::Q2_K>(); return true;
    case DType::Q3_K: f.template operator()<DType::Q3_K>(); return true;
    case DType::Q4_K: f.template operator()<DType::Q4_K>(); return true;
    case DType::Q5_K: f.template operator()<DType::Q5_K>(); return true;
    case DType::Q6_K: f.template operator()<DType::Q6_K>(); return true;
    case DType::IQ4_NL: f.template operator()<DType::IQ4_NL>(); return true;
    case DType::IQ4_XS: f.template operator()<DType::IQ4_XS>(); return true;
    case DType::MXFP4: f.template operator()<DType::MXFP4>(); return true;
    default: return false;
  }
}

}  // namespace moescope::quant
