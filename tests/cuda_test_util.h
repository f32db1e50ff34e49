#pragma once
// Shared by the GPU tests (plain_test.h, no Qt): the skip on machines without a usable CUDA
// device and in builds without CUDA (they never pass silently: CTest reports them as skipped),
// and the routing comparison that tells a real difference from a near-tie.
#include <algorithm>
#include <cmath>
#include <functional>
#include <string>
#include <vector>

#include "moescope/backend.h"
#include "moescope/routing.h"
#include "plain_test.h"

#ifdef MOESCOPE_HAVE_CUDA
#define REQUIRE_CUDA()                                                           \
  do {                                                                           \
    std::string why_;                                                            \
    if (!moescope::cuda_available(&why_)) PT_SKIP("no CUDA device: " + why_);    \
  } while (0)
#else
#define REQUIRE_CUDA() PT_SKIP("built without CUDA")
#endif

// One token's top-k from the GPU against the CPU's. The GPU computes the same scores in another
// summation order (and, in a whole model, from slightly different activations), so where two
// experts' selection scores are within `tol` either may come first. Accepted: identical ids; or,
// slot by slot, every differing pair of experts within `tol` in the CPU's selection scores; or,
// with group-limited routing, the groups at the topk_group boundary within `tol` (then whole
// groups may swap). `sel` is the CPU's selection score per expert (score + correction bias, -inf
// where disabled). `detail` says what differed and by how much.
struct RouteCheck {
  bool identical = true, ok = true;
  float gap = 0.0f;           // largest selection-score gap over the differing slots
  float group_margin = 0.0f;  // group routing: the gap at the topk_group boundary
  std::string detail;
};

inline RouteCheck compare_route(const int32_t* gpu, const int32_t* cpu, int K, const std::vector<float>& sel,
                                const moescope::RouterSpec& r, float tol) {
  RouteCheck c;
  const int E = int(sel.size());
  auto score = [&](int32_t e) { return e >= 0 && e < E ? sel[size_t(e)] : NAN; };
  for (int k = 0; k < K; ++k) {
    if (gpu[k] == cpu[k]) continue;
    c.identical = false;
    const float a = score(gpu[k]), b = score(cpu[k]);
    const float gap = std::isinf(a) && std::isinf(b) && a == b ? 0.0f : std::fabs(a - b);
    if (!(gap <= c.gap)) c.gap = gap;  // NaN (an id out of range) sticks
    c.detail += fmt::format("slot {}: GPU expert {} (score {:.6g}), CPU expert {} (score {:.6g}), gap {:.3g}; ", k,
                            gpu[k], a, cpu[k], b, gap);
  }
  if (c.identical) return c;
  c.ok = c.gap < tol;
  if (!c.ok && r.group_score != moescope::GroupScore::None && r.n_group > 1 && r.topk_group < r.n_group) {
    const int per = E / r.n_group;
    std::vector<float> g(static_cast<size_t>(r.n_group));
    for (int i = 0; i < r.n_group; ++i) {
      std::vector<float> v(sel.begin() + i * per, sel.begin() + (i + 1) * per);
      std::sort(v.begin(), v.end(), std::greater<>());
      g[size_t(i)] = r.group_score == moescope::GroupScore::Max ? v[0] : v[0] + (per > 1 ? v[1] : 0.0f);
    }
    std::sort(g.begin(), g.end(), std::greater<>());
    c.group_margin = g[size_t(r.topk_group - 1)] - g[size_t(r.topk_group)];
    c.detail += fmt::format("group margin at the top-{} boundary {:.3g}; ", r.topk_group, c.group_margin);
    c.ok = c.group_margin < tol;
  }
  return c;
}
