// cpu/attention.h's attend() at AVX512 (flags in engine/CMakeLists.txt; used only where gemm.h's
// level is at least this one).
#include "cpu/attention.h"

#if defined(__x86_64__) && defined(__AVX512F__)
#define MOESCOPE_ATTN_LEVEL avx512
#include "cpu/attention_impl.h"
#undef MOESCOPE_ATTN_LEVEL

moescope::cpu::detail::AttendFn moescope::cpu::detail::attend_avx512() { return &avx512::attend_impl; }
#else
moescope::cpu::detail::AttendFn moescope::cpu::detail::attend_avx512() { return nullptr; }
#endif
