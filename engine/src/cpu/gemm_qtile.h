#pragma once
// gemm.h's kernel for the block-quantised weight types (Q4_0 … Q6_K, IQ4_NL, IQ4_XS, MXFP4),
// written once over a traits type QV and included by each instruction-set level's file.
//
// As llama.cpp does it: the x rows are quantised to 8 bits per block of 32 (d = max|x| / 127,
// q = round(x / d)), once per row and pack tag, and every product is an integer dot product of
// weight codes and x codes. The weights are unpacked (quant_blocks.h) a chunk of 256 at a time
// into int8 codes with a scale s and an addend o per 16 weights; for each chunk and x row
//
//     Σ_k w_k · x_k ≈ Σ_g  s_g · dx_g · Σ_{k∈g} q_k · qx_k   +   o_g · dx_g · Σ_{k∈g} qx_k
//
// (g the 16-weight groups; dx_g the x block's scale; the second sum is kept with the quantised x).
// The only error against fp32 is x's 8-bit rounding (relative 1/254 per element at worst), the
// same error llama.cpp's own kernels make; the results differ from llama.cpp's by float rounding
// only where llama.cpp also quantises x in blocks of 32 (its k-quant kernels use one scale per
// 256, which is coarser).
//
// With QuantX::F32 (gemm.h) x stays fp32 and each weight is widened to s · q + o in registers
// instead: the same weights as the dequantiser's up to rounding of that product (its forward
// matches an F32 file of the dequantised weights to ~1e-6), at the cost of fp32 arithmetic. The
// transformers goldens, whose activations are fp32, run that way.
//
// QV provides: P[16] (the order in which its dot product produces the 16 group sums of a chunk:
// position i holds group P[i]; s and o are stored in that order so no shuffle is needed), acc,
// order(natural, dst) (16 values by group into that order), zero(), dot(w, x, acc) (acc += one
// chunk's contribution), dot_f32(q, s, o, x, acc) (acc += one
// group of 16 weights s · q + o against 16 fp32 x), hsum(acc); and fused<T>, true where the level
// decodes a 256-weight block of type T into registers (decode<T>(block, Decoded&)) and multiplies
// that with an x chunk (apply(Decoded, x chunk, acc)): equal to unpack + dot up to float rounding.
//
// Layout: a strip of 4 W rows is unpacked whole (4 × K/256 chunks, in L1/L2), then every x row
// passes over it, so a weight is unpacked once per strip and x block, not once per x row.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "cpu/gemm.h"
#include "quant_blocks.h"

namespace moescope::cpu {

// 256 codes with their 16 scales and addends (a W chunk: s, o as unpacked; an x chunk: s = dx of
// the group's block, o = dx · Σ qx over the group). Groups past the end of a row are zero.
struct QChunk {
  int8_t q[256];
  float s[16];
  float o[16];
};
static_assert(sizeof(QChunk) % sizeof(uint32_t) == 0);
inline constexpr int kChunk = 256;

template <class QV>
struct QKernels {
  static constexpr int NR = 4;          // W rows per strip
  static constexpr int kFusedRows = 4;  // at most this many x rows take the fused blocks (QV::fused)

  // pos[g]: where group g's scale goes in a chunk (the inverse of QV::P).
  static constexpr auto pos = [] {
    struct A { int v[16]; } a{};
    for (int i = 0; i < 16; ++i) a.v[QV::P[i]] = i;
    return a;
  }();

  static int chunks(int K) { return (K + kChunk - 1) / kChunk; }

  // One x row into chunks(K) chunks.
  static void quantize_row(const float* x, int K, QChunk* out) {
    const int nc = chunks(K);
    for (int c = 0; c < nc; ++c) {
      QChunk& ch = out[c];
      std::memset(&ch, 0, sizeof ch);
      for (int b = 0; b < 8 && kChunk * c + 32 * b < K; ++b) {
        const float* xb = x + kChunk * c + 32 * b;
        float amax = 0.0f;
        for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(xb[j]));
        const float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
        int sum[2] = {0, 0};
        for (int j = 0; j < 32; ++j) {
          const int q = std::clamp(int(std::nearbyint(xb[j] * id)), -127, 127);
          ch.q[32 * b + j] = int8_t(q);
          sum[j / 16] += q;
        }
        for (int h = 0; h < 2; ++h) {
          ch.s[pos.v[2 * b + h]] = d;
          ch.o[pos.v[2 * b + h]] = d * float(sum[h]);  // (a few values a row: no need for QV::order)
        }
      }
    }
  }

  // Chunk c of one W row of type T (K weights) into w.
  template <DType T>
  static void unpack_chunk(const uint8_t* row, int c, int K, QChunk& w) {
    constexpr int be = quant::kBlockElems<T>;
    constexpr size_t bb = quant::kBlockBytes<T>;
    float s[16] = {}, o[16] = {};
    if constexpr (be == kChunk) {
      quant::unpack<T>(row + size_t(c) * bb, w.q, s, o);
    } else {
      const int nb = std::min(kChunk / be, K / be - c * (kChunk / be));
      for (int b = 0; b < nb; ++b)
        quant::unpack<T>(row + size_t(c * (kChunk / be) + b) * bb, w.q + be * b, s + b * (be / 16), o + b * (be / 16));
      if (nb < kChunk / be) std::memset(w.q + be * nb, 0, size_t(kChunk - be * nb));
    }
    QV::order(s, w.s);
    if constexpr (quant::has_addend(T)) QV::order(o, w.o);
    else std::memset(w.o, 0, sizeof w.o);
  }

  // U: the W chunks hold the fused types' unsigned codes (QV::store of a decoded block), which
  // QV::dot_u multiplies without the sign trick.
  template <int R, bool U = false>
  static void strip(const QChunk* wq, int nc, const QChunk* xq, int m, float* y, size_t ys) {
    for (int i = 0; i < m; ++i) {
      typename QV::acc acc[R];
      for (int j = 0; j < R; ++j) acc[j] = QV::zero();
      const QChunk* xi = xq + size_t(i) * size_t(nc);
      for (int c = 0; c < nc; ++c)
#pragma GCC unroll 4
        for (int j = 0; j < R; ++j) {
          if constexpr (U) QV::dot_u(wq[size_t(j) * size_t(nc) + size_t(c)], xi[c], acc[j]);
          else QV::dot(wq[size_t(j) * size_t(nc) + size_t(c)], xi[c], acc[j]);
        }
      for (int j = 0; j < R; ++j) y[size_t(i) * ys + size_t(j)] = QV::hsum(acc[j]);
    }
  }

  // The fp32-x variant of strip: x rows as they are, K weights a row.
  template <int R>
  static void strip_f32(const QChunk* wq, int nc, const RowsIn& x, int m, int K, float* y, size_t ys) {
    for (int i = 0; i < m; ++i) {
      typename QV::acc acc[R];
      for (int j = 0; j < R; ++j) acc[j] = QV::zero();
      const float* xi = x[i];
      for (int c = 0; c < nc; ++c)
        for (int g = 0; g < 16 && kChunk * c + 16 * g < K; ++g)
#pragma GCC unroll 4
          for (int j = 0; j < R; ++j) {
            const QChunk& wc = wq[size_t(j) * size_t(nc) + size_t(c)];
            QV::dot_f32(wc.q + 16 * g, wc.s[pos.v[g]], wc.o[pos.v[g]], xi + kChunk * c + 16 * g, acc[j]);
          }
      for (int j = 0; j < R; ++j) y[size_t(i) * ys + size_t(j)] = QV::hsum(acc[j]);
    }
  }

  // The fused path (QV::fused<T>) over W rows [row0, row1) for M x rows: each block decoded once
  // into registers and multiplied with every x row; the rows 4 ahead fetched meanwhile.
  template <DType T, int M>
  static void fused_rows(const QChunk* xq, int nc, int K, const uint8_t* wb, size_t row_bytes, int n_rows, int row0,
                         int row1, float* y, size_t ys) {
    constexpr int pf_rows = 4;
    constexpr size_t bb = size_t(kChunk / quant::kBlockElems<T>) * quant::kBlockBytes<T>;  // a chunk's bytes
    for (int r = row0; r < row1; ++r) {
      const uint8_t* row = wb + size_t(r) * row_bytes;
      const uint8_t* next = r + pf_rows < n_rows ? row + size_t(pf_rows) * row_bytes : nullptr;
      typename QV::acc acc[M];
      for (int i = 0; i < M; ++i) acc[i] = QV::zero();
      for (int c = 0; c < nc; ++c) {
        if (next)
          for (size_t off = size_t(c) * bb; off < std::min(row_bytes, size_t(c + 1) * bb); off += 64)
            __builtin_prefetch(next + off, 0, 2);
        typename QV::Decoded dec;
        QV::template decode<T>(row, c, K, dec);
#pragma GCC unroll 4
        for (int i = 0; i < M; ++i)
          QV::template apply<QV::template signed_codes<T>>(dec, xq[size_t(i) * size_t(nc) + size_t(c)], acc[i]);
      }
      for (int i = 0; i < M; ++i) y[size_t(i) * ys + size_t(r - row0)] = QV::hsum(acc[i]);
    }
  }

  template <DType T>
  static void run(const RowsIn& x, int m, const void* w, int K, int n_rows, int row0, int row1, float* y,
                  size_t ys, XPack& pack) {
    const int nc = chunks(K);
    const bool int8 = quant_activations() == QuantX::Int8;
    constexpr size_t words = sizeof(QChunk) / sizeof(uint32_t);
    // x rows quantised once per pack tag (a caller running several weights over the same x rows
    // passes the same tag), then the W strips' scratch after them.
    const bool fresh = int8 && (pack.tag == 0 || pack.packed_tag != pack.tag || pack.kind != XPack::Kind::Q8 ||
                                pack.m != m || pack.K != K);
    const size_t x_words = int8 ? size_t(m) * size_t(nc) * words : 0;
    uint32_t* data = xpack_reserve(pack, x_words + size_t(NR) * size_t(nc) * words);
    auto* xq = reinterpret_cast<QChunk*>(data);
    auto* wq = reinterpret_cast<QChunk*>(data + x_words);
    if (fresh) {
      for (int i = 0; i < m; ++i) quantize_row(x[i], K, xq + size_t(i) * size_t(nc));
      pack.packed_tag = pack.tag, pack.kind = XPack::Kind::Q8, pack.m = m, pack.K = K;
    }
    const size_t row_bytes = size_t(K / quant::kBlockElems<T>) * quant::kBlockBytes<T>;
    const auto* wb = static_cast<const uint8_t*>(w);
    if constexpr (QV::template fused<T>) {
      // A few x rows (decode, and the experts that get few tokens of a prompt): fused_rows, with no
      // unpacked strip in between. More x rows than that would no longer keep their chunks in L1
      // while a W row passes: the strips below.
      if (int8 && m <= kFusedRows) {
        switch (m) {  // the accumulators in registers
          case 1: fused_rows<T, 1>(xq, nc, K, wb, row_bytes, n_rows, row0, row1, y, ys); return;
          case 2: fused_rows<T, 2>(xq, nc, K, wb, row_bytes, n_rows, row0, row1, y, ys); return;
          case 3: fused_rows<T, 3>(xq, nc, K, wb, row_bytes, n_rows, row0, row1, y, ys); return;
          default: fused_rows<T, 4>(xq, nc, K, wb, row_bytes, n_rows, row0, row1, y, ys); return;
        }
      }
    }
    constexpr size_t chunk_bytes = size_t(kChunk / quant::kBlockElems<T>) * quant::kBlockBytes<T>;
    for (int r = row0; r < row1; r += NR) {
      const int nr = std::min(NR, row1 - r);
      for (int j = 0; j < nr; ++j) {
        const uint8_t* row = wb + size_t(r + j) * row_bytes;
        // The same bytes of the next strip's row are fetched while this one is unpacked: rows are
        // a few KB, and the hardware prefetchers stop at every 4 KB page.
        const uint8_t* next = r + NR + j < n_rows ? row + size_t(NR) * row_bytes : nullptr;
        for (int c = 0; c < nc; ++c) {
          if (next)
            for (size_t off = size_t(c) * chunk_bytes; off < std::min(row_bytes, size_t(c + 1) * chunk_bytes); off += 64)
              __builtin_prefetch(next + off, 0, 2);
          QChunk& dst = wq[size_t(j) * size_t(nc) + size_t(c)];
          if constexpr (QV::template fused<T>) {  // unsigned codes: s · u + o is the same weight
            typename QV::Decoded dec;
            QV::template decode<T>(row, c, K, dec);
            QV::store(dec, dst);
          } else {
            unpack_chunk<T>(row, c, K, dst);
          }
        }
      }
      float* yr = y + size_t(r - row0);
      if (!int8) {
        switch (nr) {
          case 4: strip_f32<4>(wq, nc, x, m, K, yr, ys); break;
          case 3: strip_f32<3>(wq, nc, x, m, K, yr, ys); break;
          case 2: strip_f32<2>(wq, nc, x, m, K, yr, ys); break;
          default: strip_f32<1>(wq, nc, x, m, K, yr, ys); break;
        }
        continue;
      }
      constexpr bool U = QV::template fused<T> && !QV::template signed_codes<T>;
      switch (nr) {
        case 4: strip<4, U>(wq, nc, xq, m, yr, ys); break;
        case 3: strip<3, U>(wq, nc, xq, m, yr, ys); break;
        case 2: strip<2, U>(wq, nc, xq, m, yr, ys); break;
        default: strip<1, U>(wq, nc, xq, m, yr, ys); break;
      }
    }
  }

  // Every block type but Q8_0, which the fp32 tile kernel reads exactly (measured: integer
  // products for it won 3 % in decode and lost 20 % in prefill, and moved the logits of a
  // quantised moescope-tiny by 17 % of the largest instead of 2 %); false for the others.
  static bool run_any(const RowsIn& x, int m, DType dt, const void* w, int K, int n_rows, int row0, int row1, float* y,
                      size_t ys, XPack& pack) {
    if (dt == DType::Q8_0) return false;
    return quant::with_block_type(dt, [&]<DType T>() { run<T>(x, m, w, K, n_rows, row0, row1, y, ys, pack); });
  }
};

}  // namespace moescope::cpu
