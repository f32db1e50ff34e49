#include "moescope/route_explain.h"

#include <cmath>

namespace moescope {

bool RouteExplanation::in_kept_group(int e) const {
  return group_size <= 0 || (kept_groups >> (e / group_size) & 1u);
}

RouteExplanation explain_route(const rules::RouterRule& r, const float* scores, const float* bias) {
  RouteExplanation x;
  const int E = r.n_experts;
  // For gpt-oss the rule selects on logits; the recorded scores are their softmax, which orders
  // the experts the same way, so the scores stand in for the logits here.
  x.selection.resize(size_t(E));
  for (int e = 0; e < E; ++e) x.selection[size_t(e)] = rules::selection_value(r, scores[e], scores[e], bias, e, nullptr);

  std::vector<float> choice = x.selection;
  if (rules::grouped(r)) {
    const int per = rules::group_size(r);
    x.group_size = per;
    x.group_score.resize(size_t(r.n_group));
    for (int g = 0; g < r.n_group; ++g) x.group_score[size_t(g)] = rules::group_value(r, choice.data() + g * per, per);
    x.kept_groups = rules::kept_groups(r, x.group_score.data());
    for (int e = 0; e < E; ++e)
      if (!x.in_kept_group(e)) choice[size_t(e)] = rules::neg_inf();
  }
  auto best_of = [&](const std::vector<float>& values) {
    int best = -1;
    float bv = rules::neg_inf();
    for (int e = 0; e < E; ++e)
      if (rules::selectable(values[size_t(e)]) && rules::ranks_before(values[size_t(e)], e, bv, best))
        bv = values[size_t(e)], best = e;
    return best;
  };
  while (int(x.chosen.size()) < r.top_k) {
    const int best = best_of(choice);
    if (best < 0) break;
    x.chosen.push_back(best);
    choice[size_t(best)] = rules::neg_inf();
  }
  x.next = best_of(choice);
  if (x.next >= 0 && !x.chosen.empty())
    x.margin = x.selection[size_t(x.chosen.back())] - x.selection[size_t(x.next)];

  std::vector<float> raw(scores, scores + E);
  for (int e : x.chosen) raw[size_t(e)] = rules::neg_inf();
  x.best_unchosen = best_of(raw);
  x.best_unchosen_group_dropped = x.best_unchosen >= 0 && !x.in_kept_group(x.best_unchosen);
  return x;
}

}  // namespace moescope
