// gemm_qtile.h's integer products on AVX512_VNNI: the block types whose 256-weight chunk decodes
// into registers (Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K, IQ4_NL, MXFP4) against x quantised
// to 8 bits per block of 32, for any number of x rows. Built with -mavx512vnni -mavx512bw
// (engine/CMakeLists.txt); gemm.cpp calls it only where the CPU has both, the avx512 or amx
// level is in use and activations are quantised (QuantX::Int8).
//
// The same arithmetic as the AVX2 kernel (gemm_qtile_avx2.h), in fewer instructions: a chunk is
// four 64-byte registers of unsigned codes in element order, and one VPDPBUSD per register adds
// the products of 4 neighbouring codes into each of its 16 int32 lanes (no saturation, no sign
// trick: the signed codes of IQ4_NL and MXFP4 are stored + 128 and the 128 · s is moved into the
// addend, exactly in integers). Instead of reducing lanes to group sums, each lane is scaled by its
// group's weight scale times its x block's scale, both laid out per lane beforehand (the weight's
// when a block is decoded, once for all x rows; the x row's when it is quantised), so a chunk and an
// x row take 4 dot products, 4 conversions, 4 multiplies and 5 FMAs, and each output one
// horizontal sum at the end.
//
// 3 to 15 x rows go 8 at a time (kPass) over a row block of W: each block is decoded once per 8
// x rows, and the block's rows stay in L2 between the passes. From 16 x rows on, the kernel
// below ("Prompts") puts the x rows in the lanes instead.
#include "cpu/gemm.h"

#if defined(__x86_64__) && defined(__AVX512VNNI__) && defined(__AVX512BW__) && defined(__F16C__)
// GCC 12's avx512fintrin.h starts some conversions from a deliberately undefined vector, which
// -Wuninitialized reports at every use.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <immintrin.h>

#include <array>
#include <utility>

#include "cpu/gemm_qtile.h"

namespace moescope::cpu {
namespace {

template <DType T>
constexpr bool kTakes = T == DType::Q4_0 || T == DType::Q4_1 || T == DType::Q5_0 || T == DType::Q5_1 ||
                        T == DType::Q4_K || T == DType::Q5_K || T == DType::Q6_K || T == DType::IQ4_NL ||
                        T == DType::MXFP4;

int chunks(int K) { return (K + kChunk - 1) / kChunk; }  // gemm_qtile.h's chunks of 256 weights

// An x chunk as apply reads it: the codes, each lane's x block scale (lane l of register r holds
// elements 64r + 4l … + 3, of x block 2r + l / 8), and the addend products dx · Σ qx per group.
struct XChunk {
  int8_t q[256];
  float s[64];
  float o[16];
};
static_assert(sizeof(XChunk) % sizeof(uint32_t) == 0);

struct Decoded {
  __m512i u[4];  // codes 64r … 64r + 63, unsigned
  __m512 S[4];   // each lane's weight scale
  __m512 O;      // the addends of the 16 groups
};

// Lane l of register r from block (of 32) 2r + l / 8, and from group 4r + l / 4.
__m512 lanes_of_blocks(__m512 per_block, int r) {
  return _mm512_permutexvar_ps(_mm512_add_epi32(_mm512_set1_epi32(2 * r),
                                                _mm512_setr_epi32(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1)),
                               per_block);
}
__m512 lanes_of_groups(__m512 per_group, int r) {
  return _mm512_permutexvar_ps(_mm512_add_epi32(_mm512_set1_epi32(4 * r),
                                                _mm512_setr_epi32(0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3)),
                               per_group);
}
// Group g from block g / 2.
__m512 groups_of_blocks(__m512 per_block) {
  return _mm512_permutexvar_ps(_mm512_setr_epi32(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7), per_block);
}
__m512 widen8(__m256 v) { return _mm512_castps256_ps512(v); }

// Chunk c (256 weights) of a W row of K weights into d; blocks past the end of a row are zero.
template <DType T>
void decode(const uint8_t* row, int c, int K, Decoded& d) {
  const __m512i m4 = _mm512_set1_epi8(0x0F);
  constexpr size_t bb = quant::kBlockBytes<T>;
  if constexpr (quant::kBlockElems<T> == 32) {
    constexpr bool five = T == DType::Q5_0 || T == DType::Q5_1, table = T == DType::IQ4_NL || T == DType::MXFP4;
    constexpr size_t qs_at = T == DType::Q4_0 || T == DType::IQ4_NL ? 2 : T == DType::MXFP4 ? 1 : T == DType::Q4_1 ? 4
                             : T == DType::Q5_0                     ? 6
                                                                    : 8;
    const int nb = std::min(8, K / 32 - 8 * c);
    alignas(32) float sc[8] = {}, ad[8] = {};
    for (int r = 0; r < 4; ++r) {  // blocks 2r, 2r + 1
      __m128i qs[2] = {_mm_setzero_si128(), _mm_setzero_si128()};
      uint32_t qh[2] = {0, 0};
      for (int t = 0; t < 2; ++t) {
        const int k = 2 * r + t;
        if (k >= nb) continue;
        const uint8_t* b = row + size_t(8 * c + k) * bb;
        qs[t] = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + qs_at));
        if constexpr (five) std::memcpy(&qh[t], b + (T == DType::Q5_1 ? 4 : 2), 4);
        if constexpr (T == DType::MXFP4) sc[k] = quant::e8m0_half(b[0]);
        else sc[k] = quant::half_at(b);
        if constexpr (T == DType::Q4_1 || T == DType::Q5_1) ad[k] = quant::half_at(b + 2);
        else if constexpr (T == DType::Q4_0) ad[k] = -8.0f * sc[k];
        else if constexpr (T == DType::Q5_0) ad[k] = -16.0f * sc[k];
        else ad[k] = -128.0f * sc[k];  // the table's codes, stored + 128
      }
      // Element j of a block: the low nibble of qs[j] (j < 16), the high one of qs[j − 16]: the
      // 128-bit lanes hold qs0, qs0, qs1, qs1, the second and fourth shifted by 4.
      const __m256i a = _mm256_set_m128i(qs[0], qs[0]), b = _mm256_set_m128i(qs[1], qs[1]);
      __m512i v = _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
      v = _mm512_and_si512(_mm512_srlv_epi64(v, _mm512_setr_epi64(0, 0, 4, 4, 0, 0, 4, 4)), m4);
      if constexpr (five)  // bit j of qh: the fifth bit of element j
        v = _mm512_or_si512(v, _mm512_maskz_mov_epi8(_cvtu64_mask64(uint64_t(qh[0]) | uint64_t(qh[1]) << 32),
                                                     _mm512_set1_epi8(0x10)));
      if constexpr (table)
        v = _mm512_xor_si512(
            _mm512_shuffle_epi8(_mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(
                                    T == DType::IQ4_NL ? quant::kIq4nl : quant::kMxfp4))),
                                v),
            _mm512_set1_epi8(char(0x80)));
      d.u[r] = v;
    }
    const __m512 s8 = widen8(_mm256_load_ps(sc)), a8 = widen8(_mm256_load_ps(ad));
    for (int r = 0; r < 4; ++r) d.S[r] = lanes_of_blocks(s8, r);
    d.O = groups_of_blocks(a8);
    return;
  }
  const uint8_t* b = row + size_t(c) * bb;
  if constexpr (T == DType::Q6_K) {
    const __m512i m30 = _mm512_set1_epi8(0x30);
    for (int h = 0; h < 2; ++h) {  // elements 128h … 128h + 127
      const __m512i A = _mm512_loadu_si512(b + 64 * h);
      const __m256i H = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 128 + 32 * h));
      const __m512i HH = _mm512_inserti64x4(_mm512_castsi256_si512(H), H, 1);
      // bits 0-1 of qh[j] are the high bits of element j, 2-3 of j + 32, 4-5 of j + 64, 6-7 of j + 96
      const __m512i lo = _mm512_and_si512(_mm512_sllv_epi64(HH, _mm512_setr_epi64(4, 4, 4, 4, 2, 2, 2, 2)), m30);
      const __m512i hi = _mm512_and_si512(_mm512_srlv_epi64(HH, _mm512_setr_epi64(0, 0, 0, 0, 2, 2, 2, 2)), m30);
      d.u[2 * h] = _mm512_or_si512(_mm512_and_si512(A, m4), lo);
      d.u[2 * h + 1] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(A, 4), m4), hi);
    }
    const __m512 s16 = _mm512_mul_ps(_mm512_set1_ps(quant::half_at(b + 208)),
                                     _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(
                                         _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 192)))));
    for (int r = 0; r < 4; ++r) d.S[r] = lanes_of_groups(s16, r);
    d.O = _mm512_mul_ps(s16, _mm512_set1_ps(-32.0f));
  } else {  // Q4_K, Q5_K
    constexpr bool five = T == DType::Q5_K;
    const uint8_t* qs = b + (five ? 48 : 16);
    [[maybe_unused]] __m512i hh = _mm512_setzero_si512();
    if constexpr (five) {
      const __m256i h = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(b + 16));
      hh = _mm512_inserti64x4(_mm512_castsi256_si512(h), h, 1);
    }
    for (int j = 0; j < 2; ++j) {  // 64 bytes of qs: sub-blocks 4j … 4j + 3
      const __m512i v = _mm512_loadu_si512(qs + 64 * j);
      __m512i lo = _mm512_and_si512(v, m4);                         // sub-blocks 4j | 4j + 2
      __m512i hi = _mm512_and_si512(_mm512_srli_epi16(v, 4), m4);  // 4j + 1 | 4j + 3
      if constexpr (five) {  // bit s of qh[l]: the fifth bit of element l of sub-block s
        auto bits = [&](int s0, int s1) {
          const __m512i sel = _mm512_inserti64x4(_mm512_set1_epi8(char(1 << s0)), _mm256_set1_epi8(char(1 << s1)), 1);
          return _mm512_maskz_mov_epi8(_mm512_test_epi8_mask(hh, sel), _mm512_set1_epi8(0x10));
        };
        lo = _mm512_or_si512(lo, bits(4 * j, 4 * j + 2));
        hi = _mm512_or_si512(hi, bits(4 * j + 1, 4 * j + 3));
      }
      d.u[2 * j] = _mm512_shuffle_i64x2(lo, hi, 0x44);      // sub-blocks 4j | 4j + 1
      d.u[2 * j + 1] = _mm512_shuffle_i64x2(lo, hi, 0xEE);  // 4j + 2 | 4j + 3
    }
    uint32_t sc[2], mn[2];  // the 6-bit scales and mins of the 8 sub-blocks, four to a word
    quant::scale_min_k4_words(b + 4, sc, mn);
    auto widen = [](const uint32_t* v) {
      return _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(v))));
    };
    const __m512 s8 = widen8(_mm256_mul_ps(_mm256_set1_ps(quant::half_at(b)), widen(sc)));
    const __m512 m8 = widen8(_mm256_mul_ps(_mm256_set1_ps(-quant::half_at(b + 2)), widen(mn)));
    for (int r = 0; r < 4; ++r) d.S[r] = lanes_of_blocks(s8, r);
    d.O = groups_of_blocks(m8);
  }
}

// acc += the decoded chunk against one x chunk.
inline void apply(const Decoded& d, const XChunk& x, __m512& acc) {
#pragma GCC unroll 4
  for (int r = 0; r < 4; ++r) {
    const __m512i p = _mm512_dpbusd_epi32(_mm512_setzero_si512(), d.u[r], _mm512_loadu_si512(x.q + 64 * r));
    acc = _mm512_fmadd_ps(_mm512_cvtepi32_ps(p), _mm512_mul_ps(d.S[r], _mm512_loadu_ps(x.s + 16 * r)), acc);
  }
  acc = _mm512_fmadd_ps(d.O, _mm512_loadu_ps(x.o), acc);
}

// x rows a pass over W: M accumulators, the decoded chunk (9 registers) and the temporaries in the
// 32 vector registers (16 a pass spilled: 36 against 63 G weight-rows per second for Q4_K).
constexpr int kPass = 8;

// Chunk c of a W row decoded into d, the same bytes of `next` (the row kFetchRows further on, or
// nullptr) fetched meanwhile: rows are a few KB, and the hardware prefetchers stop at every page.
constexpr int kFetchRows = 4;
template <DType T>
void decode_fetching(const uint8_t* row, const uint8_t* next, size_t row_bytes, int c, int K, Decoded& d) {
  constexpr size_t cb = size_t(kChunk / quant::kBlockElems<T>) * quant::kBlockBytes<T>;  // a chunk's bytes
  if (next)
    for (size_t off = size_t(c) * cb; off < std::min(row_bytes, size_t(c + 1) * cb); off += 64)
      __builtin_prefetch(next + off, 0, 2);
  decode<T>(row, c, K, d);
}
inline const uint8_t* row_ahead(const uint8_t* row, int r, int n_rows, size_t row_bytes, bool fetch) {
  return fetch && r + kFetchRows < n_rows ? row + size_t(kFetchRows) * row_bytes : nullptr;
}

// W rows [row0, row1) against M x rows (M ≤ kPass): each chunk decoded once and applied to every x
// row.
template <DType T, int M>
void rows(const XChunk* xq, int nc, int K, const uint8_t* wb, size_t row_bytes, int n_rows, int row0, int row1,
          float* y, size_t ys, bool fetch) {
  for (int r = row0; r < row1; ++r) {
    const uint8_t* row = wb + size_t(r) * row_bytes;
    const uint8_t* next = row_ahead(row, r, n_rows, row_bytes, fetch);
    __m512 acc[M];
    for (int i = 0; i < M; ++i) acc[i] = _mm512_setzero_ps();
    for (int c = 0; c < nc; ++c) {
      Decoded dec;
      decode_fetching<T>(row, next, row_bytes, c, K, dec);
#pragma GCC unroll 8
      for (int i = 0; i < M; ++i) apply(dec, xq[size_t(i) * size_t(nc) + size_t(c)], acc[i]);
    }
    for (int i = 0; i < M; ++i) y[size_t(i) * ys + size_t(r - row0)] = _mm512_reduce_add_ps(acc[i]);
  }
}

// One x row into chunks(K) XChunks: gemm_qtile.h's quantize_row (d = max|x| / 127 per block of
// 32, q = round(x / d) to nearest even), the same values 16 lanes at a time, with each block's d
// spread over the lanes that read it.
void quantize(const float* x, int K, XChunk* out) {
  for (int c = 0; c < chunks(K); ++c) {
    XChunk& o = out[c];
    const int nb = std::min(8, (K - kChunk * c) / 32);  // K is whole blocks of 32
    alignas(32) float d8[8] = {};
    for (int b = 0; b < 8; ++b) {
      if (b >= nb) {
        std::memset(o.q + 32 * b, 0, 32);
        o.o[2 * b] = o.o[2 * b + 1] = 0.0f;
        continue;
      }
      const float* xb = x + kChunk * c + 32 * b;
      const __m512 v[2] = {_mm512_loadu_ps(xb), _mm512_loadu_ps(xb + 16)};
      const float amax = _mm512_reduce_max_ps(_mm512_max_ps(_mm512_abs_ps(v[0]), _mm512_abs_ps(v[1])));
      const float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
      for (int h = 0; h < 2; ++h) {
        __m512i q = _mm512_cvtps_epi32(_mm512_mul_ps(v[h], _mm512_set1_ps(id)));  // MXCSR: nearest even
        q = _mm512_max_epi32(_mm512_min_epi32(q, _mm512_set1_epi32(127)), _mm512_set1_epi32(-127));
        _mm_storeu_si128(reinterpret_cast<__m128i*>(o.q + 32 * b + 16 * h), _mm512_cvtsepi32_epi8(q));
        o.o[2 * b + h] = d * float(_mm512_reduce_add_epi32(q));
      }
      d8[b] = d;
    }
    const __m512 s8 = widen8(_mm256_load_ps(d8));
    for (int r = 0; r < 4; ++r) _mm512_storeu_ps(o.s + 16 * r, lanes_of_blocks(s8, r));
  }
}

// ---- Prompts: 16 x rows in the lanes ----
// With 16 or more x rows, lane t of a register is x row t instead of 4 weights of one row: the x
// rows' codes are transposed once per pack (16 rows a block: quad j of the chunk, + 128 as
// unsigned bytes, for VPDPBUSD's unsigned operand), and each weight row's 4-code quads are
// broadcast from memory as its signed operand. A span of weights with one scale (32, or Q6_K's
// 16) then costs 8 (4) dot products into an int32 accumulator that starts at −128 · Σ codes
// (which takes the + 128 back out, exactly), one conversion, one multiply by s_w · dx and two FMAs
// (the scale and the addend) for 16 x rows at once: two to three times the products per
// instruction of the per-row kernel above, and a weight chunk is decoded once for up to
// kBlocks × 16 x rows.
constexpr int kLanes = 16;
constexpr int kBlocks = 4;  // token blocks a pass (accumulators in registers)

struct XBlock {
  int32_t q[64][kLanes];  // quad j, lane t: x row t's codes 4j … 4j + 3, each + 128
  float dx[16][kLanes];   // group g, lane t: x row t's block scale
  float ox[16][kLanes];   // group g, lane t: dx · Σ qx over the group
  float ox32[8][kLanes];  // block b (groups 2b, 2b + 1): the same over the block
};
static_assert(sizeof(XBlock) % 64 == 0);

// Chunk c of x rows xq[0 … 15] (chunks(K) XChunks a row) into a block.
void transpose_rows(const XChunk* xq, int nc, int c, XBlock& o) {
  const __m512i idx = _mm512_mullo_epi32(_mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15),
                                         _mm512_set1_epi32(int(size_t(nc) * sizeof(XChunk))));
  const XChunk& x0 = xq[c];
  const __m512i plus128 = _mm512_set1_epi8(char(0x80));
  for (int j = 0; j < 64; ++j)
    _mm512_store_si512(o.q[j], _mm512_xor_si512(_mm512_i32gather_epi32(idx, x0.q + 4 * j, 1), plus128));
  for (int g = 0; g < 16; ++g) {
    _mm512_store_ps(o.dx[g], _mm512_i32gather_ps(idx, x0.s + 16 * (g / 4) + 8 * ((g / 2) % 2), 1));
    _mm512_store_ps(o.ox[g], _mm512_i32gather_ps(idx, x0.o + g, 1));
  }
  for (int b = 0; b < 8; ++b) _mm512_store_ps(o.ox32[b], _mm512_add_ps(_mm512_load_ps(o.ox[2 * b]), _mm512_load_ps(o.ox[2 * b + 1])));
}

// W rows [row0, row1) against B token blocks (xb: B × nc blocks).
template <DType T, int B>
void token_blocks(const XBlock* xb, int nc, int K, const uint8_t* wb, size_t row_bytes, int n_rows, int row0, int row1,
                  float* y, size_t ys, bool fetch) {
  constexpr bool table = T == DType::IQ4_NL || T == DType::MXFP4;  // decode stores their codes + 128
  // Every type here but Q6_K has one scale and addend per 32 weights (two groups): a span of 32
  // takes 8 dot products before its conversion and scaling, Q6_K's spans of 16 take 4.
  constexpr bool kPairs = T != DType::Q6_K;
  constexpr int kScales = kPairs ? 8 : 16, kQuads = 256 / 4 / kScales;
  alignas(64) int8_t w8[256];
  alignas(64) uint64_t sad[4][8];
  alignas(64) float sl[4][16], ov[16], sg[16], og[16];
  alignas(64) int32_t wg[16];
  alignas(64) float out[kLanes];
  for (int r = row0; r < row1; ++r) {
    const uint8_t* row = wb + size_t(r) * row_bytes;
    const uint8_t* next = row_ahead(row, r, n_rows, row_bytes, fetch);
    __m512 acc[B];
    for (int b = 0; b < B; ++b) acc[b] = _mm512_setzero_ps();
    for (int c = 0; c < nc; ++c) {
      Decoded dec;
      decode_fetching<T>(row, next, row_bytes, c, K, dec);
      for (int q = 0; q < 4; ++q) {  // signed codes, their sums per 8, the lanes' scales
        _mm512_store_si512(sad[q], _mm512_sad_epu8(dec.u[q], _mm512_setzero_si512()));
        _mm512_store_si512(w8 + 64 * q, table ? _mm512_xor_si512(dec.u[q], _mm512_set1_epi8(char(0x80))) : dec.u[q]);
        _mm512_store_ps(sl[q], dec.S[q]);
      }
      _mm512_store_ps(ov, dec.O);
      for (int g = 0; g < 16; ++g) {  // group g: bytes 16 (g % 4) … of register g / 4
        const int q = g / 4, k = g % 4;
        wg[g] = -128 * (int(sad[q][2 * k] + sad[q][2 * k + 1]) - (table ? 128 * 16 : 0));
        sg[g] = sl[q][4 * k];
        og[g] = table ? 0.0f : ov[g];  // (decode's addend is for the + 128 codes)
      }
      if constexpr (kPairs)  // groups 2p, 2p + 1 share the weight scale and addend (and the x block)
        for (int p = 0; p < 8; ++p) wg[p] = wg[2 * p] + wg[2 * p + 1], sg[p] = sg[2 * p], og[p] = og[2 * p];
#pragma GCC unroll 1
      for (int b = 0; b < B; ++b) {
        const XBlock& x = xb[size_t(b) * size_t(nc) + size_t(c)];
        __m512 a = acc[b];
#pragma GCC unroll 4
        for (int g = 0; g < kScales; ++g) {  // a span of weights with one scale
          __m512i is = _mm512_set1_epi32(wg[g]);
#pragma GCC unroll 8
          for (int q = 0; q < kQuads; ++q) {
            int32_t quad;
            std::memcpy(&quad, w8 + 4 * (kQuads * g + q), 4);
            is = _mm512_dpbusd_epi32(is, _mm512_load_si512(x.q[kQuads * g + q]), _mm512_set1_epi32(quad));
          }
          const float* dx = x.dx[kPairs ? 2 * g : g];
          a = _mm512_fmadd_ps(_mm512_cvtepi32_ps(is), _mm512_mul_ps(_mm512_load_ps(dx), _mm512_set1_ps(sg[g])), a);
          a = _mm512_fmadd_ps(_mm512_set1_ps(og[g]), _mm512_load_ps(kPairs ? x.ox32[g] : x.ox[g]), a);
        }
        acc[b] = a;
      }
    }
    for (int b = 0; b < B; ++b) {
      _mm512_store_ps(out, acc[b]);
      for (int t = 0; t < kLanes; ++t) y[size_t(kLanes * b + t) * ys + size_t(r - row0)] = out[t];
    }
  }
}

template <DType T>
void run(const RowsIn& x, int m, const void* w, int K, int n_rows, int row0, int row1, float* y, size_t ys,
         XPack& pack) {
  const int nc = chunks(K), nblk = m / kLanes;
  constexpr size_t words = sizeof(XChunk) / sizeof(uint32_t), bwords = sizeof(XBlock) / sizeof(uint32_t);
  // x rows quantised once per pack tag (see gemm_qtile.h's run), then their blocks (64-byte aligned).
  const bool fresh = pack.tag == 0 || pack.packed_tag != pack.tag || pack.kind != XPack::Kind::Q8Lanes ||
                     pack.m != m || pack.K != K;
  const size_t x_words = size_t(m) * size_t(nc) * words;
  uint32_t* data = xpack_reserve(pack, x_words + size_t(nblk) * size_t(nc) * bwords + 16);
  auto* xq = reinterpret_cast<XChunk*>(data);
  auto* xb = reinterpret_cast<XBlock*>((reinterpret_cast<uintptr_t>(data + x_words) + 63) & ~uintptr_t(63));
  if (fresh) {
    for (int i = 0; i < m; ++i) quantize(x[i], K, xq + size_t(i) * size_t(nc));
    for (int b = 0; b < nblk; ++b)
      for (int c = 0; c < nc; ++c)
        transpose_rows(xq + size_t(kLanes * b) * size_t(nc), nc, c, xb[size_t(b) * size_t(nc) + size_t(c)]);
    pack.packed_tag = pack.tag, pack.kind = XPack::Kind::Q8Lanes, pack.m = m, pack.K = K;
  }
  const size_t row_bytes = size_t(K / quant::kBlockElems<T>) * quant::kBlockBytes<T>;
  const auto* wb = static_cast<const uint8_t*>(w);
  // Later passes find the rows in cache: no prefetching.
  using Blocks = void (*)(const XBlock*, int, int, const uint8_t*, size_t, int, int, int, float*, size_t, bool);
  static constexpr auto blocks = []<int... Bs>(std::integer_sequence<int, Bs...>) {
    return std::array<Blocks, sizeof...(Bs)>{&token_blocks<T, Bs + 1>...};
  }(std::make_integer_sequence<int, kBlocks>{});
  for (int b0 = 0; b0 < nblk; b0 += kBlocks)
    blocks[size_t(std::min(kBlocks, nblk - b0) - 1)](xb + size_t(b0) * size_t(nc), nc, K, wb, row_bytes, n_rows, row0,
                                                    row1, y + size_t(kLanes * b0) * ys, ys, b0 == 0);
  // The rows left (fewer than 16): kPass a pass.
  using Rows = void (*)(const XChunk*, int, int, const uint8_t*, size_t, int, int, int, float*, size_t, bool);
  static constexpr auto rows_n = []<int... Ms>(std::integer_sequence<int, Ms...>) {
    return std::array<Rows, sizeof...(Ms)>{&rows<T, Ms + 1>...};  // the accumulators in registers
  }(std::make_integer_sequence<int, kPass>{});
  for (int i0 = kLanes * nblk; i0 < m; i0 += kPass)
    rows_n[size_t(std::min(kPass, m - i0) - 1)](xq + size_t(i0) * size_t(nc), nc, K, wb, row_bytes, n_rows, row0, row1,
                                               y + size_t(i0) * ys, ys, i0 == 0);
}

void qvnni_gemm(const RowsIn& x, int m, DType dt, const void* w, int K, int n_rows, int row0, int row1, float* y,
                size_t ys, XPack* pack) {
  quant::with_block_type(dt, [&]<DType T>() {
    if constexpr (kTakes<T>) run<T>(x, m, w, K, n_rows, row0, row1, y, ys, *pack);
  });
}

}  // namespace

detail::GemmFn detail::gemm_qvnni() { return &qvnni_gemm; }
bool detail::gemm_qvnni_takes(DType dt) {
  bool takes = false;
  quant::with_block_type(dt, [&]<DType T>() { takes = kTakes<T>; });
  return takes;
}

}  // namespace moescope::cpu
#else
moescope::cpu::detail::GemmFn moescope::cpu::detail::gemm_qvnni() { return nullptr; }
bool moescope::cpu::detail::gemm_qvnni_takes(moescope::DType) { return false; }
#endif
