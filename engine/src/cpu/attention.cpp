// cpu/attention.h: the portable level of attend() and the dispatch to the level gemm.h chose
// (MOESCOPE_CPU_ISA forces both).
#include "cpu/attention.h"

#include "cpu/gemm.h"

#define MOESCOPE_ATTN_LEVEL generic
#include "cpu/attention_impl.h"
#undef MOESCOPE_ATTN_LEVEL

namespace moescope::cpu {

namespace detail {
AttendFn attend_avx2();    // nullptr where not compiled (not x86-64)
AttendFn attend_avx512();  // nullptr where not compiled
}  // namespace detail

void attend(const AttnQueries& a, int dk, int dv, size_t v_offset, float scale, const KvRun* runs, int n_runs,
            size_t row_stride, float* scratch) {
  static const detail::AttendFn avx2 = detail::attend_avx2(), avx512 = detail::attend_avx512();
  detail::AttendFn fn = &generic::attend_impl;
  switch (active_isa()) {
    case Isa::Amx:
    case Isa::Avx512: fn = avx512 ? avx512 : fn; break;
    case Isa::Avx2: fn = avx2 ? avx2 : fn; break;
    default: break;
  }
  fn(a, dk, dv, v_offset, scale, runs, n_runs, row_stride, scratch);
}

}  // namespace moescope::cpu
