#pragma once
// The CPU backend's matrix kernels: y = x · Wᵀ over a block of W's rows, for any number of x rows
// given as pointers (so that the MoE runs an expert over its tokens without gathering them).
// Weights are F32, BF16, F16 or Q8_0 rows, widened to fp32 in registers, every sum accumulating in
// fp32; or rows of another block type (Q4_K, Q6_K, MXFP4, ...), multiplied as llama.cpp does, in
// integers against x rows quantised to 8 bits (gemm_qtile.h).
//
// One tile kernel (gemm_tile.h) is compiled once per instruction-set level (gemm_avx2.cpp,
// gemm_avx512.cpp, and the portable gemm.cpp), BF16 weights have a kernel of their own on AMX's
// bf16 tile products (gemm_amx.cpp; Q8_0 prompts too), most block types one on AVX512_VNNI's integer dot products
// (gemm_qvnni_avx512.cpp, under the avx512 and amx levels), and the best level this CPU has is
// chosen at run time. MOESCOPE_CPU_ISA=generic|avx2|avx512|amx forces one (a level this CPU lacks is refused with
// a warning); tests force each in turn (force_isa) and compare it with the plain loops.
#include <cstdint>
#include <string>
#include <vector>

#include "moescope/tensor.h"

namespace moescope::cpu {

enum class Isa : uint8_t { Generic, Avx2, Avx512, Amx };
const char* isa_name(Isa isa);
bool isa_supported(Isa isa);
// The level in use: MOESCOPE_CPU_ISA where it names a supported level, else the best supported.
Isa active_isa();
// For tests: uses `isa` from now on; false (and no change) when this CPU lacks it.
bool force_isa(Isa isa);

// The rows of x: x_list[i] when x_list is set, else x + i * x_stride.
struct RowsIn {
  const float* const* list = nullptr;
  const float* base = nullptr;
  size_t stride = 0;
  const float* operator[](int i) const { return list ? list[i] : base + size_t(i) * stride; }
};

// x rows prepared once for several products (the AMX level packs them into its tile layout; the
// other levels need nothing). A caller that runs several weights, or several row blocks, over the
// same x rows on one thread gives each such run a new tag (new_pack_tags) and passes the same
// XPack: the rows are packed on the first call with that tag and reused after.
struct XPack {
  XPack() = default;
  ~XPack();  // out of line (gemm.cpp), like xpack_reserve
  XPack(const XPack&) = delete;
  XPack& operator=(const XPack&) = delete;
  // What data holds: AMX's bf16 pairs (gemm_amx.cpp), 8-bit x blocks (gemm_qtile.h), the same
  // with per-lane scales (gemm_qvnni_avx512.cpp) or bf16 x rows (gemm_bf16dot_avx512.cpp).
  enum class Kind : uint8_t { None, AmxBf16, Q8, Q8Lanes, Bf16 };
  uint64_t tag = 0;  // 0: pack on every call
  uint64_t packed_tag = 0;
  Kind kind = Kind::None;
  int m = 0, K = 0;
  std::vector<uint32_t> data;
};
uint64_t new_pack_tags(int n = 1);  // the first of n fresh tags
// pack.data grown to at least n values. Defined in gemm.cpp, built for the baseline: the level
// files must not emit library code (vector growth) that the linker could hand to other callers.
uint32_t* xpack_reserve(XPack& pack, size_t n);

// The weight types the kernels read directly: F32, BF16, F16 and Q8_0 (d · q widened in registers,
// the same values the dequantiser gives, products in fp32), and every other block type of
// tensor.h (integer dot products with x quantised to 8 bits per block of 32: gemm_qtile.h).
bool gemm_supports(DType dt);

// For i < m and r in [row0, row1): y[i * y_stride + (r - row0)] = Σ_k x_i[k] · W[r, k], with
// K = w.shape[1] and W of a type gemm_supports (anything else throws).
void gemm_rows(const RowsIn& x, int m, const TensorView& w, int row0, int row1, float* y, size_t y_stride,
               XPack* pack = nullptr);

// How activations meet the weights: Int8, the default, rounds them as llama.cpp does: for the
// block types other than Q8_0, x is quantised to 8 bits per block of 32 and multiplied in integers
// (gemm_qtile.h; x's rounding moves a product by up to ~0.4 % of Σ|w·x|), and on CPUs with
// AVX512_BF16 but not AMX, prompts (≥ 4 x rows) over BF16 weights round x to bf16 for VDPBF16PS
// (gemm_bf16dot_avx512.cpp; up to 2^-9 of |x|); Q8_0 prompts on AMX keep x exact but sum in
// another order (gemm_amx.cpp; ~1e-7 relative). F32 keeps x in fp32 everywhere (the dequantised
// model's forward up to rounding; slower). MOESCOPE_CPU_QUANT_X=int8|f32 sets it at start.
enum class QuantX : uint8_t { Int8, F32 };
QuantX quant_activations();
void set_quant_activations(QuantX q);
// True where BF16 prompts take the bf16 dot-product kernel now (level, CPU and QuantX allowing).
bool bf16_dot_products();

// Rows of W per work item a caller hands to one thread (a multiple of every level's tile height).
inline constexpr int kGemmRowBlock = 48;

namespace detail {
// One level's entry point (same contract as gemm_rows, W's dtype already checked).
using GemmFn = void (*)(const RowsIn& x, int m, DType dt, const void* w, int K, int n_rows, int row0, int row1,
                        float* y, size_t y_stride, XPack* pack);
GemmFn gemm_generic();
GemmFn gemm_avx2();    // nullptr where not compiled (not x86-64)
GemmFn gemm_avx512();  // nullptr where not compiled
GemmFn gemm_amx();     // nullptr where not compiled; what it does not take goes to gemm_avx512
GemmFn gemm_bf16dot(); // BF16 weights only, x rounded to bf16; nullptr where not compiled
GemmFn gemm_qvnni();   // the block types gemm_qvnni_takes, x quantised; nullptr where not compiled
bool gemm_qvnni_takes(DType dt);
bool amx_available();  // the CPU has AMX-BF16 and the OS let this process use it
}  // namespace detail

}  // namespace moescope::cpu
