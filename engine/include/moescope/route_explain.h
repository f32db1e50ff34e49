#pragma once
// Why a token went to the experts it went to: the router's steps rebuilt from the scores a trace
// records (RoutingTrace::prob, the softmax or sigmoid scores before selection) and the layer's
// correction bias, by the same rules the backends route with (moescope/routing_rules.h). The
// token inspector shows it; it explains a "runner-up" whose score beats every chosen expert (its
// group was not kept, or the bias put it behind) and defines the margin under the model's rule.
#include <cstdint>
#include <vector>

#include "moescope/routing_rules.h"

namespace moescope {

struct RouteExplanation {
  std::vector<float> selection;    // [n_experts] what the selection compares: score (+ bias)
  std::vector<float> group_score;  // [n_group] each group's score; empty without groups
  uint64_t kept_groups = ~uint64_t(0);  // bit g: group g was kept (all bits without groups)
  std::vector<int> chosen;         // the rule's choice, best first (no interventions)
  // The expert that would have come in next: the best not chosen among the kept groups, and its
  // selection value's distance below the last chosen one (how close that one came to being
  // replaced). -1 / NaN when every selectable expert was chosen.
  int next = -1;
  float margin = NAN;
  // The best-scoring expert that was not chosen anywhere (raw score, no bias, any group), and
  // whether its group was dropped: the usual answer to "why not this one?".
  int best_unchosen = -1;
  bool best_unchosen_group_dropped = false;
  bool in_kept_group(int e) const;
  int group_size = 0;              // experts per group (0 without groups)
};

// scores: [rule.n_experts] router scores; bias: [n_experts] correction bias or nullptr (used
// only when rule.use_bias). rule.forced_expert is ignored: the explanation is of the model's rule.
RouteExplanation explain_route(const rules::RouterRule& rule, const float* scores, const float* bias);

}  // namespace moescope
