// The CPU backend's matrix kernels (engine/src/cpu/gemm.h) at every instruction-set level this
// CPU has, against plain double-precision loops. A level the CPU lacks is skipped with a reason.
//
// Tolerance: |y − ref| ≤ 1e-5 · Σ_k |x_k · w_k| (+1e-30), where ref sums the same fp32 products
// in double. The levels differ from each other and from ref only in the order of their fp32 sums
// (AMX: in the three-way bf16 split of x, which is exact); a kernel that drops a tail, reads the
// wrong row or mixes up tokens misses by the size of a whole product.
//
// The other block types (gemm_qtile.h): with QuantX::Int8 the reference is the same double loop
// over the dequantised weights and x quantised to 8 bits as the kernel's contract says (blocks of
// 32, d = max|x| / 127, q = round(x · (1 / d))), same tolerance; and against the fp32 x the
// difference must stay inside the bound that rounding implies, Σ_k |w_k| · d_k / 2. With
// QuantX::F32, the plain reference with 1e-5.
#include <QtTest>

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <random>
#include <tuple>
#include <vector>

#include "cpu/attention.h"
#include "cpu/gemm.h"
#include "moescope/cpu_ops.h"
#include "moescope/thread_pool.h"
#include "quant_test_blocks.h"

using namespace moescope;
using cpu::Isa;

namespace {

const Isa kLevels[] = {Isa::Generic, Isa::Avx2, Isa::Avx512, Isa::Amx};

struct Weights {
  DType dt;
  int rows, K;
  std::vector<float> f32;      // the values (as the kernel must read them)
  std::vector<uint16_t> half;  // BF16 or F16 storage
  std::vector<uint8_t> blocks; // block-type storage
  TensorView view() const {
    const void* data = dt == DType::F32 ? static_cast<const void*>(f32.data())
                       : dtype_is_quantized(dt) ? static_cast<const void*>(blocks.data())
                                                : half.data();
    return {dt, {rows, K}, data};
  }
};

Weights make_weights(DType dt, int rows, int K, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 0.05f);
  Weights w{dt, rows, K, std::vector<float>(size_t(rows) * K), {}};
  if (dt == DType::Q8_0) {  // blocks of 32: d = max|v| / 127 (as fp16), q = round(v / d); values d · q
    w.blocks.resize(w.f32.size() / 32 * 34);
    for (size_t b = 0; b < w.f32.size() / 32; ++b) {
      float v[32], amax = 0.0f;
      for (int j = 0; j < 32; ++j) amax = std::max(amax, std::abs(v[j] = nd(rng)));
      const uint16_t dh = f32_to_f16(amax / 127.0f);
      const float d = f16_to_f32(dh);
      uint8_t* blk = w.blocks.data() + b * 34;
      std::memcpy(blk, &dh, 2);
      for (int j = 0; j < 32; ++j) {
        const int8_t q = int8_t(std::lround(d > 0 ? v[j] / d : 0.0f));
        blk[2 + j] = uint8_t(q);
        w.f32[b * 32 + size_t(j)] = d * float(q);
      }
    }
    return w;
  }
  if (dt != DType::F32) w.half.resize(w.f32.size());
  for (size_t i = 0; i < w.f32.size(); ++i) {
    const float v = nd(rng);
    if (dt == DType::BF16) {
      w.half[i] = uint16_t(std::bit_cast<uint32_t>(v) >> 16);
      w.f32[i] = bf16_to_f32(w.half[i]);
    } else if (dt == DType::F16) {
      w.half[i] = f32_to_f16(v);
      w.f32[i] = f16_to_f32(w.half[i]);
    } else {
      w.f32[i] = v;
    }
  }
  return w;
}

// Random blocks of a block type (quant_test_blocks.h), with the values the dequantiser makes of them.
Weights make_block_weights(DType dt, int rows, int K, std::mt19937& rng) {
  Weights w{dt, rows, K, std::vector<float>(size_t(rows) * K), {}};
  const size_t n_blocks = w.f32.size() / size_t(dtype_block_elems(dt));
  w.blocks = test::random_blocks(dt, n_blocks, rng, 0.05f);
  dequantize_blocks(dt, w.blocks.data(), w.f32.data(), int64_t(n_blocks));
  return w;
}

// x as the integer kernels see it: blocks of 32, d = max|x| / 127, q = round(x · (1 / d)); also
// each element's d (for the rounding bound).
void quantize_x_like_the_kernel(const float* x, int K, float* xq, float* d_of) {
  for (int b = 0; b < K / 32; ++b) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
    const float d = amax / 127.0f, id = d > 0.0f ? 1.0f / d : 0.0f;
    for (int j = 0; j < 32; ++j) {
      xq[32 * b + j] = d * float(std::clamp(int(std::nearbyint(x[32 * b + j] * id)), -127, 127));
      d_of[32 * b + j] = d;
    }
  }
}

std::vector<float> make_x(int m, int K, std::mt19937& rng) {
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(size_t(m) * K);
  for (auto& v : x) v = nd(rng);
  return x;
}

// Checks y[i * ys + (r - row0)] against the double-precision reference for rows [row0, row1).
void check(const std::vector<const float*>& xr, const Weights& w, int row0, int row1, const float* y, size_t ys) {
  for (size_t i = 0; i < xr.size(); ++i)
    for (int r = row0; r < row1; ++r) {
      double ref = 0.0, mag = 0.0;
      for (int k = 0; k < w.K; ++k) {
        const double p = double(xr[i][k]) * w.f32[size_t(r) * w.K + k];
        ref += p, mag += std::abs(p);
      }
      const double got = y[i * ys + size_t(r - row0)];
      if (std::abs(got - ref) > 1e-5 * mag + 1e-30)
        QFAIL(qPrintable(QString("token %1 row %2: %3, expected %4 (K %5)").arg(i).arg(r).arg(got).arg(ref).arg(w.K)));
    }
}

}  // namespace

class CpuKernelsTest : public QObject {
  Q_OBJECT

  void levels_data() {
    QTest::addColumn<int>("level");
    for (Isa isa : kLevels) QTest::newRow(cpu::isa_name(isa)) << int(isa);
  }
  // Forces the row's level, or skips when this CPU lacks it.
  bool use_level() {
    QFETCH(int, level);
    const Isa isa = Isa(level);
    if (!cpu::isa_supported(isa)) return false;
    return cpu::force_isa(isa);
  }

private slots:
  // The F32/BF16/F16/Q8_0 cases hold the kernels to fp32 x: QuantX::F32 (the default Int8 rounds
  // x for BF16 prompts on AVX512_BF16 CPUs, which bf16_rounded_activations checks).
  void initTestCase() {
    initial_ = cpu::active_isa();
    cpu::set_quant_activations(cpu::QuantX::F32);
  }
  void cleanupTestCase() { cpu::force_isa(initial_); }

  // Every shape class: one x row (decode), tails in m, rows and K, exact tiles, AMX-sized
  // blocks (K a multiple of 32, m ≥ 4, rows past a multiple of 16), row offsets and strides.
  void gemm_rows_matches_reference_data() { levels_data(); }
  void gemm_rows_matches_reference() {
    if (!use_level()) QSKIP("this CPU (or this build) lacks the level");
    std::mt19937 rng(11);
    struct Shape { int m, rows, K, row0, row1; };
    const Shape shapes[] = {{1, 53, 2048, 0, 53},  {1, 7, 37, 2, 7},     {3, 7, 37, 0, 7},
                            {4, 48, 64, 0, 48},    {5, 100, 96, 16, 85}, {17, 50, 1024, 0, 50},
                            {33, 64, 256, 0, 64},  {64, 96, 128, 48, 96}, {2, 31, 33, 1, 30}};
    // Q8_0 also under QuantX::Int8, where prompts of 16 or more rows at the amx level take AMX's
    // tile products (gemm_amx.cpp; x still exact): the same bound.
    using Mode = cpu::QuantX;
    for (auto [dt, mode] : {std::pair{DType::F32, Mode::F32}, std::pair{DType::BF16, Mode::F32},
                            std::pair{DType::F16, Mode::F32}, std::pair{DType::Q8_0, Mode::F32},
                            std::pair{DType::Q8_0, Mode::Int8}})
      for (const Shape& s : shapes) {
        if (dt == DType::Q8_0 && s.K % 32 != 0) continue;  // Q8_0 rows are whole blocks
        cpu::set_quant_activations(mode);
        const Weights w = make_weights(dt, s.rows, s.K, rng);
        const std::vector<float> x = make_x(s.m, s.K, rng);
        const size_t ys = size_t(s.row1 - s.row0) + 3;  // a stride wider than the block
        std::vector<float> y(size_t(s.m) * ys, -1.0f);
        cpu::gemm_rows(cpu::RowsIn{nullptr, x.data(), size_t(s.K)}, s.m, w.view(), s.row0, s.row1, y.data(), ys);
        std::vector<const float*> xr;
        for (int i = 0; i < s.m; ++i) xr.push_back(x.data() + size_t(i) * s.K);
        check(xr, w, s.row0, s.row1, y.data(), ys);
        cpu::set_quant_activations(Mode::F32);
        if (QTest::currentTestFailed()) {
          qWarning("dtype %s, m %d, rows %d, K %d", dtype_name(dt), s.m, s.rows, s.K);
          return;
        }
      }
  }

  // x rows by pointer, out of order and repeated (the MoE's tokens of one expert), and one
  // packed x reused for two weights under one tag, then repacked under a new tag.
  void gemm_rows_by_pointer_and_pack_data() { levels_data(); }
  void gemm_rows_by_pointer_and_pack() {
    if (!use_level()) QSKIP("this CPU (or this build) lacks the level");
    std::mt19937 rng(5);
    const int K = 512, rows = 96, m = 9;
    const std::vector<float> pool = make_x(20, K, rng);
    std::vector<const float*> xr;
    for (int i : {7, 3, 3, 19, 0, 12, 5, 8, 1}) xr.push_back(pool.data() + size_t(i) * K);
    const Weights a = make_weights(DType::BF16, rows, K, rng), b = make_weights(DType::BF16, rows, K, rng);
    std::vector<float> y(size_t(m) * rows);
    cpu::XPack pack;
    pack.tag = cpu::new_pack_tags();
    cpu::gemm_rows(cpu::RowsIn{xr.data()}, m, a.view(), 0, rows, y.data(), rows, &pack);
    check(xr, a, 0, rows, y.data(), rows);
    cpu::gemm_rows(cpu::RowsIn{xr.data()}, m, b.view(), 0, rows, y.data(), rows, &pack);
    check(xr, b, 0, rows, y.data(), rows);
    std::vector<const float*> other(xr.rbegin(), xr.rend());
    pack.tag = cpu::new_pack_tags();
    cpu::gemm_rows(cpu::RowsIn{other.data()}, m, a.view(), 0, rows, y.data(), rows, &pack);
    check(other, a, 0, rows, y.data(), rows);
  }

  // matmul(): the row blocks split over two threads, a bias, the strides of x and y.
  void matmul_over_threads_data() { levels_data(); }
  void matmul_over_threads() {
    if (!use_level()) QSKIP("this CPU (or this build) lacks the level");
    std::mt19937 rng(3);
    ThreadPool pool(2);
    for (int m : {1, 6, 40}) {
      const int K = 256, rows = 1000;
      const Weights w = make_weights(DType::BF16, rows, K, rng);
      std::vector<float> bias(rows);
      for (int r = 0; r < rows; ++r) bias[size_t(r)] = 0.01f * float(r % 17);
      const TensorView bv{DType::F32, {rows}, bias.data()};
      const std::vector<float> x = make_x(m, K + 8, rng);
      std::vector<float> y(size_t(m) * (rows + 5));
      cpu::matmul(pool, x.data(), m, w.view(), &bv, y.data(), K + 8, rows + 5);
      std::vector<const float*> xr;
      for (int i = 0; i < m; ++i) xr.push_back(x.data() + size_t(i) * (K + 8));
      for (int i = 0; i < m; ++i)
        for (int r = 0; r < rows; ++r) y[size_t(i) * (rows + 5) + r] -= bias[size_t(r)];
      check(xr, w, 0, rows, y.data(), rows + 5);
    }
  }

  // Flash attention (cpu/attention.h) against a plain two-pass softmax in double: runs that end
  // mid-block, queries with different visible ranges (causal and sliding window), key and value
  // widths that are not multiples of the vector width, values stored after the keys.
  // Tolerance: 1e-5 · max |v| per output element.
  void attention_matches_reference_data() { levels_data(); }
  void attention_matches_reference() {
    if (!use_level()) QSKIP("this CPU (or this build) lacks the level");
    std::mt19937 rng(9);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (auto [dk, dv] : {std::pair{40, 24}, std::pair{128, 128}, std::pair{576, 512}}) {
      const int n_pos = 53, stride = dk + dv + 5;
      const size_t v_off = size_t(dk) + 3;
      std::vector<float> rows(size_t(n_pos) * stride);
      for (auto& v : rows) v = nd(rng);
      // runs of 7, 16, 16, 14 positions (cache blocks need not start at a multiple of 16)
      std::vector<cpu::KvRun> runs;
      int first = 0;
      for (int len : {7, 16, 16, 14}) {
        runs.push_back({first, len, rows.data() + size_t(first) * stride});
        first += len;
      }
      for (const int nq : {9, 16, 3}) {  // 3: the few-query (decode) path
        std::vector<std::vector<float>> q(nq, std::vector<float>(size_t(dk))), o(nq, std::vector<float>(size_t(dv)));
        std::vector<const float*> qp;
        std::vector<float*> op;
        std::vector<int> lo, hi;
        for (int i = 0; i < nq; ++i) {
          for (auto& v : q[size_t(i)]) v = nd(rng);
          qp.push_back(q[size_t(i)].data()), op.push_back(o[size_t(i)].data());
          hi.push_back(std::min(n_pos - 1, 5 + 6 * i));
          lo.push_back(i % 3 == 0 ? 0 : std::max(0, hi.back() - 20));  // some with a sliding window
        }
        std::vector<float> scratch(cpu::attend_scratch(nq, dk));
        const float scale = 1.0f / std::sqrt(float(dk));
        cpu::attend({qp.data(), op.data(), lo.data(), hi.data(), nq}, dk, dv, v_off, scale, runs.data(), int(runs.size()),
                    size_t(stride), scratch.data());
        for (int i = 0; i < nq; ++i) {
          std::vector<double> sc;
          double mx = -1e300, sum = 0.0, vmax = 0.0;
          for (int j = lo[size_t(i)]; j <= hi[size_t(i)]; ++j) {
            double d = 0.0;
            for (int e = 0; e < dk; ++e) d += double(q[size_t(i)][size_t(e)]) * rows[size_t(j) * stride + size_t(e)];
            sc.push_back(d * scale);
            mx = std::max(mx, sc.back());
          }
          for (auto& v : sc) sum += (v = std::exp(v - mx));
          for (int e = 0; e < dv; ++e) {
            double ref = 0.0;
            for (int j = lo[size_t(i)]; j <= hi[size_t(i)]; ++j) {
              const double v = rows[size_t(j) * stride + v_off + size_t(e)];
              ref += sc[size_t(j - lo[size_t(i)])] / sum * v;
              vmax = std::max(vmax, std::abs(v));
            }
            const double got = o[size_t(i)][size_t(e)];
            if (std::abs(got - ref) > 1e-5 * vmax)
              QFAIL(qPrintable(QString("dk %1 dv %2 nq %3 query %4 value %5: %6, expected %7").arg(dk).arg(dv).arg(nq)
                                   .arg(i).arg(e).arg(got).arg(ref)));
          }
        }
      }
    }
  }

  // Every other block type at every level, both ways of meeting x: one x row (decode), three (both: the fused blocks of the AVX2 code) and five
  // (a tail of the 4-row strips), 7 rows (a strip tail), row offsets, K of whole 256-chunks for
  // the k-quants and IQ4_XS and, for the 32-blocks, a chunk and a part (352 = 256 + 3 × 32); x
  // rows by pointer with one pack tag over two weights (the gate/up pattern: x quantised once).
  void block_types_match_reference_data() {
    QTest::addColumn<int>("level");
    QTest::addColumn<int>("type");
    for (Isa isa : kLevels)
      for (DType t : {DType::Q4_0, DType::Q4_1, DType::Q5_0, DType::Q5_1, DType::Q2_K, DType::Q3_K, DType::Q4_K,
                      DType::Q5_K, DType::Q6_K, DType::IQ4_NL, DType::IQ4_XS, DType::MXFP4})
        QTest::newRow(qPrintable(QString("%1 %2").arg(cpu::isa_name(isa), dtype_name(t)))) << int(isa) << int(t);
  }
  void block_types_match_reference() {
    if (!use_level()) QSKIP("this CPU (or this build) lacks the level");
    QFETCH(int, type);
    const DType dt = DType(type);
    QVERIFY(cpu::gemm_supports(dt));
    std::mt19937 rng(29 + uint32_t(type));
    const int K = dtype_block_elems(dt) == 256 ? 512 : 352, rows = 7;
    const Weights w1 = make_block_weights(dt, rows, K, rng), w2 = make_block_weights(dt, rows, K, rng);
    // 1 and 3: the fused blocks where the level has them (≤ 4 rows); 5: the strips; at the avx512
    // and amx levels of a CPU with AVX512_VNNI, 3 and more take gemm_qvnni_avx512.cpp instead: 3, 5
    // and 11 its rows (8 a pass, then a tail), 21 and 40 its token blocks (16 x rows in the lanes)
    // with rows left over
    for (int m : {1, 3, 5, 11, 21, 40}) {
      const std::vector<float> x = make_x(m, K, rng);
      std::vector<const float*> xr;
      for (int i = 0; i < m; ++i) xr.push_back(x.data() + size_t(i) * K);
      std::vector<float> xq(x.size()), dx(x.size());
      for (int i = 0; i < m; ++i) quantize_x_like_the_kernel(xr[size_t(i)], K, xq.data() + size_t(i) * K, dx.data() + size_t(i) * K);
      std::vector<const float*> xqr;
      for (int i = 0; i < m; ++i) xqr.push_back(xq.data() + size_t(i) * K);
      for (cpu::QuantX mode : {cpu::QuantX::Int8, cpu::QuantX::F32}) {
        cpu::set_quant_activations(mode);
        cpu::XPack pack;
        pack.tag = cpu::new_pack_tags();
        std::vector<float> y1(size_t(m) * rows, NAN), y2(size_t(m) * rows, NAN);
        cpu::gemm_rows(cpu::RowsIn{xr.data()}, m, w1.view(), 0, rows, y1.data(), size_t(rows), &pack);
        cpu::gemm_rows(cpu::RowsIn{xr.data()}, m, w2.view(), 2, rows, y2.data(), size_t(rows), &pack);
        const bool int8 = mode == cpu::QuantX::Int8;
        check(int8 ? xqr : xr, w1, 0, rows, y1.data(), size_t(rows));
        check(int8 ? xqr : xr, w2, 2, rows, y2.data(), size_t(rows));
        if (!int8) continue;
        for (int i = 0; i < m; ++i)  // against the unquantised x: inside x's rounding bound
          for (int r = 0; r < rows; ++r) {
            double ref = 0.0, bound = 0.0;
            for (int k = 0; k < K; ++k) {
              const double wk = w1.f32[size_t(r) * K + size_t(k)];
              ref += double(xr[size_t(i)][k]) * wk;
              bound += std::abs(wk) * double(dx[size_t(i) * K + size_t(k)]) / 2;
            }
            QVERIFY2(std::abs(y1[size_t(i) * rows + size_t(r)] - ref) <= bound * 1.0001 + 1e-6,
                     qPrintable(QString("token %1 row %2: %3 vs %4, bound %5").arg(i).arg(r)
                                    .arg(y1[size_t(i) * rows + size_t(r)]).arg(ref).arg(bound)));
          }
      }
      cpu::set_quant_activations(cpu::QuantX::F32);
    }
  }

  // BF16 weights with x rounded to bf16 (QuantX::Int8, ≥ 4 x rows, the avx512 level on a CPU with
  // AVX512_BF16: gemm_bf16dot_avx512.cpp) against the double loop over x rounded to nearest-even
  // bf16, 1e-5 of Σ|x·w|; tails in m (4 x rows a tile), rows (4 a tile) and K (32 a step), x rows
  // by pointer with one pack tag over two weights. On other CPUs the fp32 kernel runs instead, and
  // the plain reference holds.
  void bf16_rounded_activations() {
    if (!cpu::force_isa(Isa::Avx512)) QSKIP("this CPU (or this build) lacks the avx512 level");
    cpu::set_quant_activations(cpu::QuantX::Int8);
    std::mt19937 rng(41);
    for (auto [m, rows, K] : {std::tuple{4, 9, 64}, std::tuple{7, 50, 100}, std::tuple{33, 13, 96}}) {
      const Weights w1 = make_weights(DType::BF16, rows, K, rng), w2 = make_weights(DType::BF16, rows, K, rng);
      const std::vector<float> x = make_x(m, K, rng);
      std::vector<const float*> xr;
      std::vector<float> xb(x.size());
      for (size_t i = 0; i < x.size(); ++i) {  // nearest-even bf16 (no subnormals in these x)
        const uint32_t u = std::bit_cast<uint32_t>(x[i]);
        xb[i] = std::bit_cast<float>(((u + 0x7FFFu + ((u >> 16) & 1u)) >> 16) << 16);
      }
      std::vector<const float*> xbr;
      for (int i = 0; i < m; ++i) xr.push_back(x.data() + size_t(i) * K), xbr.push_back(xb.data() + size_t(i) * K);
      cpu::XPack pack;
      pack.tag = cpu::new_pack_tags();
      std::vector<float> y1(size_t(m) * rows), y2(size_t(m) * rows);
      cpu::gemm_rows(cpu::RowsIn{xr.data()}, m, w1.view(), 0, rows, y1.data(), size_t(rows), &pack);
      cpu::gemm_rows(cpu::RowsIn{xr.data()}, m, w2.view(), 1, rows, y2.data(), size_t(rows), &pack);
      const bool rounded = cpu::bf16_dot_products();
      check(rounded ? xbr : xr, w1, 0, rows, y1.data(), size_t(rows));
      check(rounded ? xbr : xr, w2, 1, rows, y2.data(), size_t(rows));
      qInfo("m %d rows %d K %d: %s", m, rows, K, rounded ? "x rounded to bf16 (VDPBF16PS)" : "fp32 x (no AVX512_BF16)");
    }
    cpu::set_quant_activations(cpu::QuantX::F32);
    cpu::force_isa(initial_);
  }

  // Rows of a block type must be whole blocks: a clear error.
  void partial_blocks_are_refused() {
    std::vector<uint8_t> block(256, 0);
    std::vector<float> x(256, 1.0f), y(1);
    const TensorView q4k{DType::Q4_K, {1, 96}, block.data()};
    QVERIFY_THROWS_EXCEPTION(std::exception, cpu::gemm_rows(cpu::RowsIn{nullptr, x.data(), 96}, 1, q4k, 0, 1, y.data(), 1));
    const TensorView q8{DType::Q8_0, {1, 48}, block.data()};
    QVERIFY_THROWS_EXCEPTION(std::exception, cpu::gemm_rows(cpu::RowsIn{nullptr, x.data(), 48}, 1, q8, 0, 1, y.data(), 1));
    QVERIFY(!cpu::gemm_supports(DType::U8));
  }

  // The choice at start: MOESCOPE_CPU_ISA is honoured where the CPU has the level.
  void level_names_round_trip() {
    for (Isa isa : kLevels) QVERIFY(QString(cpu::isa_name(isa)).size() > 0);
    QVERIFY(cpu::isa_supported(Isa::Generic));
    QVERIFY(cpu::isa_supported(initial_));
  }

private:
  Isa initial_ = Isa::Generic;
};

QTEST_GUILESS_MAIN(CpuKernelsTest)
#include "test_cpu_kernels.moc"
