// cpu/attention.h's attend() at AVX2 (flags in engine/CMakeLists.txt; used only where gemm.h's
// level is at least this one).
#include "cpu/attention.h"

#if defined(__x86_64__) && defined(__AVX2__)
#define MOESCOPE_ATTN_LEVEL avx2
#include "cpu/attention_impl.h"
#undef MOESCOPE_ATTN_LEVEL

moescope::cpu::detail::AttendFn moescope::cpu::detail::attend_avx2() { return &avx2::attend_impl; }
#else
moescope::cpu::detail::AttendFn moescope::cpu::detail::attend_avx2() { return nullptr; }
#endif
