#pragma once
// Attention on the CPU, flash style: queries against the cached keys and values of one head in
// blocks of 16 positions, with a running maximum and sum per query (online softmax), so no
// score row is ever kept and each cached row is read once for every query of the call (all the
// query heads that share a key-value head, for a block of tokens).
//
// Per block: with many queries the 16 keys are transposed so that a query's 16 scores are one
// vector of FMAs (no horizontal sums); with few (decode) each score is a plain dot product, which
// is cheaper than the transposition. Each value chunk accumulates in registers over the block.
#include <cstddef>

namespace moescope::cpu {

// Positions [first, first + n) of one layer's cache, rows `row_stride` floats apart from `row`.
struct KvRun {
  int first, n;
  const float* row;
};

struct AttnQueries {
  const float* const* q;  // query i: dk floats
  float* const* o;        // its output: dv floats
  const int* lo;          // query i sees positions [lo[i], hi[i]]
  const int* hi;
  int nq;
  // Query i's sink logit (gpt-oss): one more term exp(sink[i]) in the softmax's denominator that
  // carries no value. nullptr: no sinks.
  const float* sink = nullptr;
};

// Floats of scratch attend() needs for nq queries of width dk.
inline size_t attend_scratch(int nq, int dk) { return size_t(2) * size_t(nq) + size_t(16) * size_t(dk); }

// o_i = softmax_j(scale · q_i · k_j) · v_j over the visible positions of `runs` (in order, each
// position once): k_j is the first dk floats of row j, v_j the dv floats from v_offset on.
// Runs at the instruction-set level gemm.h chose (active_isa()).
void attend(const AttnQueries& a, int dk, int dv, size_t v_offset, float scale, const KvRun* runs, int n_runs,
            size_t row_stride, float* scratch);

namespace detail {
using AttendFn = void (*)(const AttnQueries&, int, int, size_t, float, const KvRun*, int, size_t, float*);
AttendFn attend_avx2();
AttendFn attend_avx512();
}  // namespace detail

}  // namespace moescope::cpu
