// Reference dequantisers of llama.cpp's block types, one block at a time, plain C++.
//
// Bit-exact with dequantize_blocks in the PyPI `gguf` package (gguf/quants.py), which follows
// ggml-quants.c: every product and sum below is the one numpy evaluates, in float32, in the same
// association (e.g. Q4_K is (d·sc)·q − dmin·m, not d·(sc·q) − …). This file is compiled with
// -ffp-contract=off (engine/CMakeLists.txt) so that no a·b+c is fused into one rounding.
// The goldens that hold it to that are made by tests/tools/gen_quant_goldens.py.
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
#include <cstring>

#include "moescope/error.h"
#include "moescope/tensor.h"

namespace moescope {

namespace {

constexpr int QK_K = 256;

float half(const uint8_t* p) {
  uint16_t h;
  std::memcpy(&h, p, 2);
  return f16_to_f32(h);
}

// IQ4_NL / IQ4_XS code book (ggml-common.h kvalues_iq4nl).
constexpr int8_t kIq4nl[16] = {-127, -104, -83, -65, -49, -35, -22, -10, 1, 13, 25, 38, 53, 69, 89, 113};
// MXFP4: E2M1 values doubled (ggml kvalues_mxfp4); the scale is halved to match.
constexpr int8_t kMxfp4[16] = {0, 1, 2, 3, 4, 6, 8, 12, 0, -1, -2, -3, -4, -6, -8, -12};

// ggml_e8m0_to_fp32_half: 2^(e - 128), subnormal for e < 2.
float e8m0_half(uint8_t e) {
  const uint32_t bits = e < 2 ? (uint32_t(0x00200000) << e) : (uint32_t(e - 1) << 23);
  return std::bit_cast<float>(bits);
}

// The element order of a 32-element group of nibbles: x[j] = low nibble of qs[j], x[j + 16] =
// its high nibble.
uint8_t nibble32(const uint8_t* qs, int j) { return j < 16 ? (qs[j] & 0x0F) : (qs[j - 16] >> 4); }

void q8_0(const uint8_t* b, float* y) {
  const float d = half(b);
  for (int j = 0; j < 32; ++j) y[j] = float(int8_t(b[2 + j])) * d;
}

void q4_0(const uint8_t* b, float* y) {
  const float d = half(b);
  for (int j = 0; j < 32; ++j) y[j] = d * float(int(nibble32(b + 2, j)) - 8);
}

void q4_1(const uint8_t* b, float* y) {
  const float d = half(b), m = half(b + 2);
  for (int j = 0; j < 32; ++j) y[j] = d * float(nibble32(b + 4, j)) + m;
}

void q5_0(const uint8_t* b, float* y) {
  const float d = half(b);
  uint32_t qh;
  std::memcpy(&qh, b + 2, 4);
  for (int j = 0; j < 32; ++j) {
    const int q = nibble32(b + 6, j) | (((qh >> j) & 1u) << 4);
    y[j] = d * float(q - 16);
  }
}

void q5_1(const uint8_t* b, float* y) {
  const float d = half(b), m = half(b + 2);
  uint32_t qh;
  std::memcpy(&qh, b + 4, 4);
  for (int j = 0; j < 32; ++j) {
    const int q = nibble32(b + 8, j) | (((qh >> j) & 1u) << 4);
    y[j] = d * float(q) + m;
  }
}

// Element e = 128·h + 32·s + l of a k-quant block takes 2 bits from qs[32·h + l] at shift 2·s.
void q2_k(const uint8_t* b, float* y) {
  const uint8_t* scales = b;
  const uint8_t* qs = b + 16;
  const float d = half(b + 80), dmin = half(b + 82);
  for (int e = 0; e < QK_K; ++e) {
    const int h = e / 128, s = (e % 128) / 32, l = e % 32;
    const uint8_t sc = scales[e / 16];
    const float dl = d * float(sc & 0x0F), ml = dmin * float(sc >> 4);
    const float q = float((qs[32 * h + l] >> (2 * s)) & 3);
    y[e] = dl * q - ml;
  }
}

void q3_k(const uint8_t* b, float* y) {
  const uint8_t* hmask = b;
  const uint8_t* qs = b + 32;
  const uint8_t* sc = b + 96;
  const float d = half(b + 108);
  float dl[16];
  for (int i = 0; i < 16; ++i) {
    const int lo = i < 8 ? (sc[i] & 0x0F) : (sc[i - 8] >> 4);
    const int hi = (sc[8 + i % 4] >> (2 * (i / 4))) & 3;
    dl[i] = d * float((lo | (hi << 4)) - 32);
  }
  for (int e = 0; e < QK_K; ++e) {
    const int h = e / 128, s = (e % 128) / 32, l = e % 32;
    const int low = (qs[32 * h + l] >> (2 * s)) & 3;
    const int high_bit = (hmask[l] >> (e / 32)) & 1;  // a set bit means no −4 offset
    y[e] = dl[e / 16] * float(low - ((high_bit ^ 1) << 2));
  }
}

// The 6-bit scales and mins of Q4_K/Q5_K (get_scale_min_k4).
void scale_min_k4(const uint8_t* s, int j, int& sc, int& m) {
  if (j < 4) {
    sc = s[j] & 0x3F;
    m = s[j + 4] & 0x3F;
  } else {
    sc = (s[j + 4] & 0x0F) | ((s[j - 4] >> 2) & 0x30);
    m = (s[j + 4] >> 4) | ((s[j] >> 2) & 0x30);
  }
}

// Sub-block j (32 elements) of a Q4_K/Q5_K block takes nibble j % 2 of qs[32·(j / 2) + l].
void q4_k(const uint8_t* b, float* y) {
  const float d = half(b), dmin = half(b + 2);
  const uint8_t* qs = b + 16;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min_k4(b + 4, j, sc, m);
    const float dj = d * float(sc), mj = dmin * float(m);
    for (int l = 0; l < 32; ++l) {
      const int q = (qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0F;
      y[32 * j + l] = dj * float(q) - mj;
    }
  }
}

void q5_k(const uint8_t* b, float* y) {
  const float d = half(b), dmin = half(b + 2);
  const uint8_t* qh = b + 16;
  const uint8_t* qs = b + 48;
  for (int j = 0; j < 8; ++j) {
    int sc, m;
    scale_min_k4(b + 4, j, sc, m);
    const float dj = d * float(sc), mj = dmin * float(m);
    for (int l = 0; l < 32; ++l) {
      const int q = ((qs[32 * (j / 2) + l] >> (4 * (j % 2))) & 0x0F) | (((qh[l] >> j) & 1) << 4);
      y[32 * j + l] = dj * float(q) - mj;
    }
  }
}

// Element e = 128·h + r: low 4 bits from ql[64·h + r % 64] (nibble r / 64), high 2 bits from
// qh[32·h + r % 32] at shift 2·(r / 32).
void q6_k(const uint8_t* b, float* y) {
  const uint8_t* ql = b;
  const uint8_t* qh = b + 128;
  const auto* scales = reinterpret_cast<const int8_t*>(b + 192);
  const float d = half(b + 208);
  for (int e = 0; e < QK_K; ++e) {
    const int h = e / 128, r = e % 128;
    const int low = (ql[64 * h + r % 64] >> (4 * (r / 64))) & 0x0F;
    const int high = (qh[32 * h + r % 32] >> (2 * (r / 32))) & 3;
    const float ds = d * float(scales[e / 16]);
    y[e] = ds * float(int8_t((low | (high << 4))) - 32);
  }
}

void iq4_nl(const uint8_t* b, float* y) {
  const float d = half(b);
  for (int j = 0; j < 32; ++j) y[j] = d * float(kIq4nl[nibble32(b + 2, j)]);
}

void iq4_xs(const uint8_t* b, float* y) {
  const float d = half(b);
  uint16_t scales_h;
  std::memcpy(&scales_h, b + 2, 2);
  const uint8_t* scales_l = b + 4;
  const uint8_t* qs = b + 8;
  for (int j = 0; j < 8; ++j) {
    const int lo = (scales_l[j / 2] >> (4 * (j % 2))) & 0x0F;
    const int hi = (scales_h >> (2 * j)) & 3;
    const float dl = d * float((lo | (hi << 4)) - 32);
    for (int l = 0; l < 32; ++l) y[32 * j + l] = dl * float(kIq4nl[nibble32(qs + 16 * j, l)]);
  }
}

void mxfp4(const uint8_t* b, float* y) {
  const float d = e8m0_half(b[0]);
  for (int j = 0; j < 32; ++j) y[j] = d * float(kMxfp4[nibble32(b + 1, j)]);
}

}  // namespace

void dequantize_blocks(DType t, const void* src, float* dst, int64_t n_blocks) {
  void (*block)(const uint8_t*, float*) = nullptr;
  switch (t) {
    case DType::Q8_0: block = q8_0; break;
    case DType::Q4_0: block = q4_0; break;
    case DType::Q4_1: block = q4_1; break;
    case DType::Q5_0: block = q5_0; break;
    case DType::Q5_1: block = q5_1; break;
    case DType::Q2_K: block = q2_k; break;
    case DType::Q3_K: block = q3_k; break;
    case DType::Q4_K: block = q4_k; break;
    case DType::Q5_K: block = q5_k; break;
    case DType::Q6_K: block = q6_k; break;
    case DType::IQ4_NL: block = iq4_nl; break;
    case DType::IQ4_XS: block = iq4_xs; break;
    case DType::MXFP4: block = mxfp4; break;
    case DType::F32:
    case DType::F16:
    case DType::BF16:
    case DType::U8:
      throw Error(std::string("dequantize_blocks: ") + dtype_name(t) + " is not a block type");
  }
  const auto* p = static_cast<const uint8_t*>(src);
  const size_t bytes = dtype_block_bytes(t);
  const int64_t elems = dtype_block_elems(t);
  for (int64_t i = 0; i < n_blocks; ++i) block(p + size_t(i) * bytes, dst + i * elems);
}

}  // namespace moescope
