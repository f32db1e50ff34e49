// gemm.h: the portable level of the tile kernel and the choice of level at run time.
#include "cpu/gemm.h"

#include <algorithm>
#include <atomic>
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#endif
#include <cstdlib>
#include <cstring>
#include <spdlog/spdlog.h>
#include <string_view>

#include "cpu/gemm_tile.h"
#include "moescope/error.h"

namespace moescope::cpu {
namespace {

// One lane of plain fp32 code: CPUs without AVX2, and builds for other processors.
struct Generic {
  static constexpr int L = 1, MR = 4, NR = 3, NR1 = 4;
  using reg = float;
  static reg zero() { return 0.0f; }
  static reg load(const float* p) { return *p; }
  static reg fma(reg a, reg b, reg c) { return a * b + c; }
  static float hsum(reg v) { return v; }
  template <DType D>
  static reg widen(const uint8_t* w, int k) { return scalar_weight<D>(w, k); }
};

// The portable level of gemm_qtile.h: one group at a time in plain integers.
struct QGeneric {
  static constexpr int P[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
  using acc = float;
  static acc zero() { return 0.0f; }
  static void dot(const QChunk& w, const QChunk& x, acc& a) {
    for (int g = 0; g < 16; ++g) {
      int isum = 0;
      for (int l = 0; l < 16; ++l) isum += int(w.q[16 * g + l]) * int(x.q[16 * g + l]);
      a += float(isum) * (w.s[g] * x.s[g]) + w.o[g] * x.o[g];
    }
  }
  static void order(const float* natural, float* dst) { std::memcpy(dst, natural, 16 * sizeof(float)); }
  template <DType T>
  static constexpr bool fused = false;
  template <DType T>
  static constexpr bool signed_codes = false;
  struct Decoded {};
  template <DType T>
  static void decode(const uint8_t*, int, int, Decoded&) {}
  template <bool Signed = false>
  static void apply(const Decoded&, const QChunk&, acc&) {}
  static void store(const Decoded&, QChunk&) {}
  static void dot_u(const QChunk&, const QChunk&, acc&) {}
  static void dot_f32(const int8_t* q, float s, float o, const float* x, acc& a) {
    for (int l = 0; l < 16; ++l) a += (s * float(q[l]) + o) * x[l];
  }
  static float hsum(acc a) { return a; }
};

#if defined(__x86_64__) && defined(__GNUC__)
// The CPU's features and whether the OS saves the registers they use (XCR0), from cpuid.
struct X86 {
  bool avx2 = false, fma = false, f16c = false, avx512f = false, avx512bw = false, avx512vnni = false,
       avx512bf16 = false;
  X86() {
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1u)) return;  // OSXSAVE
    const bool fma_ = (c >> 12) & 1u, f16c_ = (c >> 29) & 1u;
    uint32_t lo, hi;
    __asm__("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    const bool ymm = (lo & 0x6u) == 0x6u, zmm = ymm && (lo & 0xE0u) == 0xE0u;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d)) return;
    avx2 = ymm && ((b >> 5) & 1u);
    fma = ymm && fma_;
    f16c = ymm && f16c_;
    avx512f = zmm && ((b >> 16) & 1u);
    avx512bw = zmm && ((b >> 30) & 1u);
    avx512vnni = zmm && ((c >> 11) & 1u);
    if (__get_cpuid_count(7, 1, &a, &b, &c, &d)) avx512bf16 = zmm && ((a >> 5) & 1u);
  }
};
const X86& x86() {
  static const X86 f;
  return f;
}
#endif

bool cpu_has(Isa isa) {
  switch (isa) {
    case Isa::Generic: return true;
#if defined(__x86_64__) && defined(__GNUC__)
    case Isa::Avx2: return detail::gemm_avx2() && x86().avx2 && x86().fma && x86().f16c;
    case Isa::Avx512: return detail::gemm_avx512() && cpu_has(Isa::Avx2) && x86().avx512f;
    case Isa::Amx: return detail::gemm_amx() && cpu_has(Isa::Avx512) && x86().avx512bw && detail::amx_available();
#endif
    default: return false;
  }
}

Isa best_isa() {
  for (Isa isa : {Isa::Amx, Isa::Avx512, Isa::Avx2})
    if (cpu_has(isa)) return isa;
  return Isa::Generic;
}

Isa chosen_at_start() {
  Isa isa = best_isa();
  if (const char* env = std::getenv("MOESCOPE_CPU_ISA"); env && *env && std::string_view(env) != "auto") {
    bool known = false;
    for (Isa cand : {Isa::Generic, Isa::Avx2, Isa::Avx512, Isa::Amx})
      if (std::string_view(env) == isa_name(cand)) {
        known = true;
        if (cpu_has(cand)) isa = cand;
        else spdlog::warn("MOESCOPE_CPU_ISA={}: this CPU lacks it; using {}", env, isa_name(isa));
      }
    if (!known) spdlog::warn("MOESCOPE_CPU_ISA={}: not one of generic, avx2, avx512, amx, auto; using {}", env, isa_name(isa));
  }
  spdlog::debug("CPU kernels: {}", isa_name(isa));
  return isa;
}

std::atomic<Isa>& current() {
  static std::atomic<Isa> isa{chosen_at_start()};
  return isa;
}

detail::GemmFn level_fn(Isa isa) {
  switch (isa) {
    case Isa::Amx: return detail::gemm_amx();
    case Isa::Avx512: return detail::gemm_avx512();
    case Isa::Avx2: return detail::gemm_avx2();
    default: return detail::gemm_generic();
  }
}

}  // namespace

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::Avx2: return "avx2";
    case Isa::Avx512: return "avx512";
    case Isa::Amx: return "amx";
    default: return "generic";
  }
}

bool isa_supported(Isa isa) { return cpu_has(isa); }
Isa active_isa() { return current().load(std::memory_order_relaxed); }

bool force_isa(Isa isa) {
  if (!cpu_has(isa)) return false;
  current().store(isa, std::memory_order_relaxed);
  return true;
}

detail::GemmFn detail::gemm_generic() { return &gemm_level<Generic, QGeneric>; }

namespace {
// x rows from which BF16 products take the bf16 dot-product kernel (fewer: decode, where the fp32
// kernel is as fast, waiting on memory, and exact).
constexpr int kBf16DotMinRows = 4;

// True where BF16 prompts take gemm_bf16dot_avx512.cpp: the AVX-512 level in use (not AMX, whose
// kernel is exact and faster), the CPU has AVX512_BF16, and activations may be rounded (QuantX::Int8).
bool bf16dot_level_now() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool cpu = detail::gemm_bf16dot() && x86().avx512bf16 && x86().avx512bw;
  return cpu && active_isa() == Isa::Avx512 && quant_activations() == QuantX::Int8;
#else
  return false;
#endif
}

// x rows from which the block types take the VNNI kernel: below it the AVX2 kernel's cheaper
// decoding wins (one core of a Xeon with AMX, 768 × 2048 weights in L2, Q4_K / Q6_K: 1 x row 29 / 25
// against 24 / 23 G weight-rows per second, 2 rows even, 3 rows 37 / 37 against 38 / 39, 8 rows
// 46 / 44 against 56 / 57).
constexpr int kQvnniMinRows = 3;

// True where the block types of gemm_qvnni_takes go to gemm_qvnni_avx512.cpp: the avx512 or amx
// level in use (amx hands block types to the avx512 level), the CPU has AVX512_VNNI, and x is
// quantised (QuantX::Int8).
bool qvnni_level_now() {
#if defined(__x86_64__) && defined(__GNUC__)
  static const bool cpu = detail::gemm_qvnni() && x86().avx512vnni && x86().avx512bw;
  const Isa isa = active_isa();
  return cpu && (isa == Isa::Avx512 || isa == Isa::Amx) && quant_activations() == QuantX::Int8;
#else
  return false;
#endif
}
}  // namespace

bool gemm_supports(DType dt) {
  return dt == DType::F32 || dt == DType::BF16 || dt == DType::F16 || dtype_is_quantized(dt);
}

namespace {
std::atomic<QuantX>& quant_x() {
  static std::atomic<QuantX> q{[] {
    const char* env = std::getenv("MOESCOPE_CPU_QUANT_X");
    if (!env || !*env || std::string_view(env) == "int8") return QuantX::Int8;
    if (std::string_view(env) == "f32") return QuantX::F32;
    spdlog::warn("MOESCOPE_CPU_QUANT_X={}: not one of int8, f32; using int8", env);
    return QuantX::Int8;
  }()};
  return q;
}
}  // namespace

bool bf16_dot_products() { return bf16dot_level_now(); }

QuantX quant_activations() { return quant_x().load(std::memory_order_relaxed); }
void set_quant_activations(QuantX q) { quant_x().store(q, std::memory_order_relaxed); }

uint64_t new_pack_tags(int n) {
  static std::atomic<uint64_t> next{1};
  return next.fetch_add(uint64_t(std::max(n, 1)), std::memory_order_relaxed);
}

XPack::~XPack() = default;

uint32_t* xpack_reserve(XPack& pack, size_t n) {
  if (pack.data.size() < n) pack.data.resize(n);
  return pack.data.data();
}

void gemm_rows(const RowsIn& x, int m, const TensorView& w, int row0, int row1, float* y, size_t y_stride,
               XPack* pack) {
  if (!gemm_supports(w.dtype))
    throw Error(std::string("matmul: weights of type ") + dtype_name(w.dtype) + " need dequantising first");
  if (dtype_is_quantized(w.dtype) && w.shape[1] % dtype_block_elems(w.dtype) != 0)
    throw Error(std::string("matmul: ") + dtype_name(w.dtype) + " rows of " + std::to_string(w.shape[1]) +
                " weights are not whole blocks");
  if (m <= 0 || row1 <= row0) return;
  thread_local XPack own;  // a caller without a pack of its own: packed on every call (tag 0)
  XPack* pk = pack ? pack : &own;
  const int K = int(w.shape[1]), n_rows = int(w.shape[0]);
  if (w.dtype == DType::BF16 && m >= kBf16DotMinRows && bf16dot_level_now()) {
    detail::gemm_bf16dot()(x, m, w.dtype, w.data, K, n_rows, row0, row1, y, y_stride, pk);
    return;
  }
  if (m >= kQvnniMinRows && detail::gemm_qvnni_takes(w.dtype) && qvnni_level_now()) {
    detail::gemm_qvnni()(x, m, w.dtype, w.data, K, n_rows, row0, row1, y, y_stride, pk);
    return;
  }
  level_fn(active_isa())(x, m, w.dtype, w.data, K, n_rows, row0, row1, y, y_stride, pk);
}

}  // namespace moescope::cpu
