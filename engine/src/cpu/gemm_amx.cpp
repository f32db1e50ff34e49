// gemm.h's BF16-weight kernel on AMX (Intel's tile unit: one TDPBF16PS multiplies a 16 × 32
// bf16 tile by a 32 × 16 one into 16 × 16 fp32 sums, 8192 products per instruction).
//
// W is the left operand, so its tiles load straight from the checkpoint's rows (16 rows × 32
// weights, the row length as stride): nothing is packed per call but the x rows, which become the
// right operand in AMX's pair layout (B[k/2][token][2]) for blocks of 16 tokens.
//
// Precision: rounding x to bf16 (what llama.cpp does) would cost three decimal digits and move
// the logits by ~1e-3, past the golden tolerances. So each x value is split into three bf16 parts,
// hi = bf16(x), mid = bf16(x − hi), lo = bf16(x − hi − mid), whose sum is x exactly (8 + 8 + 8
// significand bits), and every W tile is multiplied by all three: products of bf16 values are
// exact in fp32, sums round as the fp32 kernels' do. Three tile products instead of one, which
// AMX can afford: the AVX-512 FMA path does 32 products a cycle, this ~170.
//
// Used for BF16 weights with at least kMinRows x rows and K a multiple of 32; everything else, and
// the rows of a block past its last multiple of 16, go to the AVX-512 level. Built with -mamx-tile
// -mamx-bf16 -mavx512bf16 (engine/CMakeLists.txt); used only where the CPU has AMX and Linux grants the tile
// state to this process (gemm.cpp, amx_available()).
#include "cpu/gemm.h"

#if defined(__x86_64__) && defined(__AMX_TILE__) && defined(__AMX_BF16__) && defined(__AVX512BF16__) && defined(__linux__)
#if defined(__GNUC__) && !defined(__clang__)  // GCC 12's intrinsics: see gemm_avx512.cpp
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#include <cpuid.h>
#include <immintrin.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cstring>

namespace moescope::cpu {
namespace {

constexpr int kMinRows = 4;    // fewer x rows: the AVX-512 FMA kernel is as fast
constexpr int kMinRowsQ8 = 16;  // Q8_0 weights (one core, 768 × 2048: 8 rows 31 against 40 G weight-rows/s, 16 rows 57 against 41, 64 rows 71 against 41)
constexpr int kTok = 16;       // tokens per right-hand tile (its 16 columns)
constexpr int kParts = 3;      // hi, mid, lo
constexpr int kRowTiles = 3;   // 48 W rows in flight (tiles 0-2 accumulate)
constexpr int kPrefetch = 256; // weights ahead (8 steps) that each row's next line is fetched

struct TileConfig {
  uint8_t palette = 1, start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};
};

void configure_tiles() {
  TileConfig c;
  for (int t = 0; t < 8; ++t) c.colsb[t] = 64, c.rows[t] = 16;
  _tile_loadconfig(&c);
}

// x rows [i0, i0 + n) of the call, n ≤ 16, as kParts right-hand operands: pairs[p][k/2][16]
// (one uint32 = two bf16 of consecutive k per token). Columns of missing tokens keep whatever
// they held: a column of the product depends only on its own column.
void pack_block(const RowsIn& x, int i0, int n, int K, uint32_t* pairs) {
  const size_t part_stride = size_t(K / 2) * kTok;
  const __m512i cols = _mm512_mullo_epi32(_mm512_set_epi32(15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0),
                                          _mm512_set1_epi32(kTok));
  auto widen = [](__m256i h) { return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(h), 16)); };
  for (int t = 0; t < n; ++t) {
    const float* xr = x[i0 + t];
    for (int k = 0; k < K; k += 32) {
      __m512 r0 = _mm512_loadu_ps(xr + k), r1 = _mm512_loadu_ps(xr + k + 16);
      uint32_t* dst = pairs + size_t(k / 2) * kTok + size_t(t);
      for (int p = 0; p < kParts; ++p, dst += part_stride) {
        const __m512i part = std::bit_cast<__m512i>(_mm512_cvtne2ps_pbh(r1, r0));
        _mm512_i32scatter_epi32(dst, cols, part, 4);
        r0 = _mm512_sub_ps(r0, widen(_mm512_castsi512_si256(part)));
        r1 = _mm512_sub_ps(r1, widen(_mm512_extracti64x4_epi64(part, 1)));
      }
    }
  }
}

// One 16-row tile of W (rows 16·T.. of `w`) times the three parts of the packed x, into
// accumulator tile T. A macro: GCC's tile intrinsics take the tile numbers as literal text.
#define MOESCOPE_AMX_TILE_STEP(T)                                   \
  do {                                                              \
    _tile_loadd(3, w + size_t(16 * (T)) * size_t(K) + k, w_stride); \
    _tile_dpbf16ps(T, 3, 6);                                        \
    _tile_dpbf16ps(T, 3, 5);                                        \
    _tile_dpbf16ps(T, 3, 4);                                        \
  } while (0)

// 16·NT rows of W from `w` (row stride K) against the packed block: out[16·NT][16] fp32. NT = 3
// (48 rows in flight) for whole blocks, 1 for a block's last 16.
template <int NT>
void row_tiles(const uint16_t* w, int K, const uint32_t* pairs, float* out) {
  static_assert(NT >= 1 && NT <= kRowTiles);
  const size_t part_stride = size_t(K / 2) * kTok;
  const size_t w_stride = size_t(K) * 2;
  _tile_zero(0);
  if constexpr (NT > 1) _tile_zero(1);
  if constexpr (NT > 2) _tile_zero(2);
  for (int k = 0; k < K; k += 32) {
    // The rows are 16·NT streams one 64-byte line apart per step, too many for the hardware
    // prefetchers: fetch each row's line kPrefetch weights ahead.
    if (k + kPrefetch < K)
      for (int i = 0; i < 16 * NT; ++i)
        _mm_prefetch(reinterpret_cast<const char*>(w + size_t(i) * K + k + kPrefetch), _MM_HINT_T0);
    const uint32_t* b = pairs + size_t(k / 2) * kTok;
    _tile_loadd(4, b, 64);
    _tile_loadd(5, b + part_stride, 64);
    _tile_loadd(6, b + 2 * part_stride, 64);
    MOESCOPE_AMX_TILE_STEP(0);
    if constexpr (NT > 1) MOESCOPE_AMX_TILE_STEP(1);
    if constexpr (NT > 2) MOESCOPE_AMX_TILE_STEP(2);
  }
  _tile_stored(0, out, 64);
  if constexpr (NT > 1) _tile_stored(1, out + 256, 64);
  if constexpr (NT > 2) _tile_stored(2, out + 512, 64);
}

#undef MOESCOPE_AMX_TILE_STEP

// Q8_0 weights (d · q per block of 32, the block being one tile step): the codes of 16 rows as
// bf16, exact (|q| ≤ 127), in wq[16][K], and their scales in ds[K / 32][16].
void widen_q8_rows(const uint8_t* w, size_t row_bytes, int K, uint16_t* wq, float* ds) {
  for (int i = 0; i < 16; ++i) {
    const uint8_t* row = w + size_t(i) * row_bytes;
    for (int b = 0; b < K / 32; ++b) {
      const uint8_t* blk = row + size_t(b) * 34;
      uint16_t h;
      std::memcpy(&h, blk, 2);
      ds[size_t(b) * 16 + size_t(i)] = _cvtsh_ss(h);
      const __m256i q = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(blk + 2));
      const __m512 lo = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_castsi256_si128(q)));
      const __m512 hi = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(_mm256_extracti128_si256(q, 1)));
      _mm512_storeu_si512(wq + size_t(i) * size_t(K) + size_t(32 * b), std::bit_cast<__m512i>(_mm512_cvtne2ps_pbh(hi, lo)));
    }
  }
}

// 16 rows of widened Q8_0 codes against one packed token block: out[16][16]. Each step of 32 is a
// block: its three tile products go to a fresh tile (alternately tile 0 and 1, so that one step's
// products overlap the previous step's scaling), which is stored and added into 16 accumulators
// (one per W row, 16 tokens each) times the row's block scale.
void q8_row_tile(const uint16_t* wq, const float* ds, int K, const uint32_t* pairs, float* out) {
  const size_t part_stride = size_t(K / 2) * kTok, w_stride = size_t(K) * 2;
  alignas(64) float c[2][256];
  __m512 acc[16];
  for (auto& a : acc) a = _mm512_setzero_ps();
  auto scale = [&](const float* ci, int k) {
    const float* d = ds + size_t(k / 32) * 16;
    for (int i = 0; i < 16; ++i) acc[i] = _mm512_fmadd_ps(_mm512_load_ps(ci + 16 * i), _mm512_set1_ps(d[i]), acc[i]);
  };
#define MOESCOPE_AMX_Q8_STEP(T, KK)                             \
  do {                                                          \
    const uint32_t* b = pairs + size_t((KK) / 2) * kTok;        \
    _tile_loadd(4, b, 64);                                      \
    _tile_loadd(5, b + part_stride, 64);                        \
    _tile_loadd(6, b + 2 * part_stride, 64);                    \
    _tile_loadd(3, wq + (KK), w_stride);                        \
    _tile_zero(T);                                              \
    _tile_dpbf16ps(T, 3, 6);                                    \
    _tile_dpbf16ps(T, 3, 5);                                    \
    _tile_dpbf16ps(T, 3, 4);                                    \
  } while (0)
  int k = 0;
  for (; k + 64 <= K; k += 64) {
    MOESCOPE_AMX_Q8_STEP(0, k);
    MOESCOPE_AMX_Q8_STEP(1, k + 32);
    _tile_stored(0, c[0], 64);
    scale(c[0], k);
    _tile_stored(1, c[1], 64);
    scale(c[1], k + 32);
  }
  if (k < K) {
    MOESCOPE_AMX_Q8_STEP(0, k);
    _tile_stored(0, c[0], 64);
    scale(c[0], k);
  }
#undef MOESCOPE_AMX_Q8_STEP
  for (int i = 0; i < 16; ++i) _mm512_store_ps(out + 16 * i, acc[i]);
}

// x rows packed once per pack tag into pack (a caller that runs several weights, or row blocks,
// over the same x passes the same tag and packs once); the blocks of 16 tokens, kParts each.
const uint32_t* packed_x(const RowsIn& x, int m, int K, XPack* pack) {
  thread_local XPack own;
  XPack& pk = pack ? *pack : own;
  const size_t block = size_t(K / 2) * kTok * kParts;
  const size_t blocks = size_t((m + kTok - 1) / kTok);
  if (!pack || pk.tag == 0 || pk.tag != pk.packed_tag || pk.kind != XPack::Kind::AmxBf16 || pk.m != m || pk.K != K) {
    uint32_t* data = xpack_reserve(pk, blocks * block);
    for (size_t bi = 0; bi < blocks; ++bi)
      pack_block(x, int(bi) * kTok, std::min(kTok, m - int(bi) * kTok), K, data + bi * block);
    pk.packed_tag = pk.tag, pk.kind = XPack::Kind::AmxBf16, pk.m = m, pk.K = K;
  }
  return pk.data.data();
}

void amx_gemm(const RowsIn& x, int m, DType dt, const void* w, int K, int n_rows, int row0, int row1, float* y,
              size_t ys, XPack* pack) {
  const detail::GemmFn fallback = detail::gemm_avx512();
  const bool q8 = dt == DType::Q8_0 && m >= kMinRowsQ8 && quant_activations() == QuantX::Int8;
  if ((dt != DType::BF16 && !q8) || m < kMinRows || K % 32 != 0) {
    fallback(x, m, dt, w, K, n_rows, row0, row1, y, ys, pack);
    return;
  }
  const int full = row0 + (row1 - row0) / 16 * 16;  // rows [row0, full) in tiles of 16
  if (full > row0) {
    const uint32_t* px = packed_x(x, m, K, pack);
    const size_t block = size_t(K / 2) * kTok * kParts;
    const size_t blocks = size_t((m + kTok - 1) / kTok);
    configure_tiles();
    alignas(64) float out[kRowTiles * 16 * 16];
    auto put = [&](int r, int rows, size_t bi) {  // out's rows × tokens into y
      const int t0 = int(bi) * kTok, nt = std::min(kTok, m - t0);
      for (int i = 0; i < rows; ++i)
        for (int t = 0; t < nt; ++t) y[size_t(t0 + t) * ys + size_t(r - row0 + i)] = out[i * 16 + t];
    };
    if (q8) {
      // 16 rows at a time widened into the scratch (their codes as bf16, their scales), then
      // every token block passes over them.
      thread_local XPack scratch;  // not x: a buffer that xpack_reserve grows outside this file
      const size_t wq_words = size_t(16) * size_t(K) / 2;
      uint32_t* buf = xpack_reserve(scratch, wq_words + size_t(K / 32) * 16 + 16);
      auto* wq = reinterpret_cast<uint16_t*>(buf);
      auto* ds = reinterpret_cast<float*>(buf + wq_words);
      const size_t row_bytes = size_t(K / 32) * 34;
      for (int r = row0; r < full; r += 16) {
        widen_q8_rows(static_cast<const uint8_t*>(w) + size_t(r) * row_bytes, row_bytes, K, wq, ds);
        for (size_t bi = 0; bi < blocks; ++bi) {
          q8_row_tile(wq, ds, K, px + bi * block, out);
          put(r, 16, bi);
        }
      }
    } else {
      const auto* wb = static_cast<const uint16_t*>(w);
      // Rows outer, token blocks inner: a 48-row strip of W (96 KB at K = 1024) stays in L2
      // while every token block passes over it.
      for (int r = row0; r < full;) {
        const int rows = full - r >= 48 ? 48 : 16;
        for (size_t bi = 0; bi < blocks; ++bi) {
          if (rows == 48) row_tiles<3>(wb + size_t(r) * K, K, px + bi * block, out);
          else row_tiles<1>(wb + size_t(r) * K, K, px + bi * block, out);
          put(r, rows, bi);
        }
        r += rows;
      }
    }
    _tile_release();
  }
  if (full < row1) fallback(x, m, dt, w, K, n_rows, full, row1, y + (full - row0), ys, pack);
}

}  // namespace

bool detail::amx_available() {
  unsigned a, b, c, d;
  if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return false;
  if (!((d >> 22) & 1u) || !((d >> 24) & 1u)) return false;  // AMX-BF16, AMX-TILE
  if (!__get_cpuid_count(7, 1, &a, &b, &c, &d) || !((a >> 5) & 1u)) return false;  // AVX512_BF16 (x's split)
  // Linux hands out the tile data state only on request (ARCH_REQ_XCOMP_PERM, XTILEDATA).
  static const bool granted = syscall(SYS_arch_prctl, 0x1023, 18) == 0;
  return granted;
}

detail::GemmFn detail::gemm_amx() { return &amx_gemm; }

}  // namespace moescope::cpu
#else
bool moescope::cpu::detail::amx_available() { return false; }
moescope::cpu::detail::GemmFn moescope::cpu::detail::gemm_amx() { return nullptr; }
#endif
