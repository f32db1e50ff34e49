#pragma once
// Routing experiments: the same prompt with and without an intervention. Generates both answers,
// finds where the routing first diverged, and scores the original answer under the intervention
// (teacher forcing) to show how each of its tokens became more or less likely.
#include <string>
#include <vector>

#include "moescope/session.h"

namespace moescope {

struct TokenProbChange {
  int32_t id = 0;
  double p_original = 0.0;    // probability of the original answer's token, no intervention
  double p_intervened = 0.0;  // the same token's probability with the intervention
};

struct RunComparison {
  std::vector<int32_t> original;    // answer without the intervention
  std::vector<int32_t> intervened;  // answer with it
  int first_token_divergence = -1;  // index of the first differing answer token, -1: identical
  // First (position, MoE layer index) whose top-k set differs between the two runs over the
  // prompt + original answer (teacher forced); -1 when the routing never differs.
  int first_route_divergence_pos = -1;
  int first_route_divergence_layer = -1;
  double routed_overlap = 1.0;  // mean Jaccard overlap of the top-k sets over those positions
  std::vector<TokenProbChange> changes;  // one per original answer token
};

// Runs on `session` (its cache is reset). params.control is ignored: `control` is applied to the
// second run only.
RunComparison compare_runs(Session& session, const std::vector<int32_t>& prompt, const GenerateParams& params,
                           const RoutingControl& control);

}  // namespace moescope
