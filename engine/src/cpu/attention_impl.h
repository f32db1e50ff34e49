// cpu/attention.h's attend(), written once and compiled per instruction-set level: included by
// attention.cpp (portable), attention_avx2.cpp and attention_avx512.cpp, each inside its own
// namespace MOESCOPE_ATTN_LEVEL and with its own flags (engine/CMakeLists.txt). Plain loops that
// the compiler vectorises at the file's level; attention.cpp picks the level gemm.h chose. No
// include guard: it is meant to be included once per level. Nothing here may call library code
// that is not inlined (the linker would share one level's copy with every caller).
#include <algorithm>
#include <cmath>
#include <limits>

#include "cpu/attention.h"

namespace moescope::cpu::MOESCOPE_ATTN_LEVEL {

namespace {
constexpr int kKeys = 16;  // positions per block (a vector of scores at AVX-512 width)
constexpr int kChunk = 16; // value floats accumulated in registers at a time
constexpr int kDirectBelow = 12;  // fewer queries than this: scores by plain dot products
}  // namespace

void attend_impl(const AttnQueries& a, int dk, int dv, size_t v_offset, float scale, const KvRun* runs, int n_runs,
                 size_t row_stride, float* scratch) {
  constexpr float kNegInf = -std::numeric_limits<float>::infinity();
  float* m = scratch;       // running maximum per query
  float* l = m + a.nq;      // running sum of exp(score - m)
  float* kT = l + a.nq;     // [dk][kKeys]: the block's keys, transposed
  for (int i = 0; i < a.nq; ++i) {
    m[i] = kNegInf, l[i] = 0.0f;
    std::fill(a.o[i], a.o[i] + dv, 0.0f);
  }
  int lo_all = a.lo[0], hi_all = a.hi[0];
  for (int i = 1; i < a.nq; ++i) lo_all = std::min(lo_all, a.lo[i]), hi_all = std::max(hi_all, a.hi[i]);

  for (int r = 0; r < n_runs; ++r) {
    const KvRun& run = runs[r];
    for (int j0 = run.first; j0 < run.first + run.n; j0 += kKeys) {
      const int nk = std::min(kKeys, run.first + run.n - j0);
      if (j0 > hi_all || j0 + nk <= lo_all) continue;
      const float* rows = run.row + size_t(j0 - run.first) * row_stride;
      // Few queries (decode): a dot product per (query, key) costs less than transposing the keys.
      const bool direct = a.nq < kDirectBelow;
      if (!direct)
        for (int d = 0; d < dk; ++d) {
          float* t = kT + size_t(d) * kKeys;
          for (int k = 0; k < nk; ++k) t[k] = rows[size_t(k) * row_stride + size_t(d)];
          for (int k = nk; k < kKeys; ++k) t[k] = 0.0f;
        }
      for (int i = 0; i < a.nq; ++i) {
        if (a.hi[i] < j0 || a.lo[i] >= j0 + nk) continue;  // nothing visible to this query here
        const float* q = a.q[i];
        float s[kKeys] = {};
        if (direct) {
          for (int k = 0; k < nk; ++k) {
            const float* kr = rows + size_t(k) * row_stride;
            float acc = 0.0f;
#pragma omp simd reduction(+ : acc)
            for (int d = 0; d < dk; ++d) acc += q[d] * kr[d];
            s[k] = acc;
          }
        } else {
          for (int d = 0; d < dk; ++d) {
            const float qd = q[d];
            const float* t = kT + size_t(d) * kKeys;
#pragma omp simd
            for (int k = 0; k < kKeys; ++k) s[k] += qd * t[k];
          }
        }
        float mb = kNegInf;
        for (int k = 0; k < kKeys; ++k) {
          const int j = j0 + k;
          s[k] = k < nk && j >= a.lo[i] && j <= a.hi[i] ? s[k] * scale : kNegInf;
          mb = std::max(mb, s[k]);
        }
        float* o = a.o[i];
        if (mb > m[i]) {  // a new maximum: rescale what was summed so far
          const float alpha = m[i] == kNegInf ? 0.0f : std::exp(m[i] - mb);
          l[i] *= alpha;
#pragma omp simd
          for (int e = 0; e < dv; ++e) o[e] *= alpha;
          m[i] = mb;
        }
        float sum = 0.0f;
        for (int k = 0; k < kKeys; ++k) {
          s[k] = s[k] == kNegInf ? 0.0f : std::exp(s[k] - m[i]);
          sum += s[k];
        }
        l[i] += sum;
        const float* v = rows + v_offset;
        int e0 = 0;
        for (; e0 + kChunk <= dv; e0 += kChunk) {
          float acc[kChunk];
#pragma omp simd
          for (int e = 0; e < kChunk; ++e) acc[e] = o[e0 + e];
          for (int k = 0; k < nk; ++k) {
            const float p = s[k];
            const float* vk = v + size_t(k) * row_stride + size_t(e0);
#pragma omp simd
            for (int e = 0; e < kChunk; ++e) acc[e] += p * vk[e];
          }
#pragma omp simd
          for (int e = 0; e < kChunk; ++e) o[e0 + e] = acc[e];
        }
        for (int k = 0; k < nk; ++k)
          for (int e = e0; e < dv; ++e) o[e] += s[k] * v[size_t(k) * row_stride + size_t(e)];
      }
    }
  }
  for (int i = 0; i < a.nq; ++i) {
    // A sink adds exp(sink - m) to the sum (transformers appends it as one more softmax column).
    const float inv = 1.0f / (a.sink ? l[i] + std::exp(a.sink[i] - m[i]) : l[i]);
    float* o = a.o[i];
#pragma omp simd
    for (int e = 0; e < dv; ++e) o[e] *= inv;
  }
}

}  // namespace moescope::cpu::MOESCOPE_ATTN_LEVEL
