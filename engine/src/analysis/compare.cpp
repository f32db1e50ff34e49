#include "moescope/compare.h"

#include <algorithm>
#include <cmath>

#include "moescope/error.h"

namespace moescope {

namespace {

// Softmax probability of `id` in one row of logits.
double prob_of(const float* logits, int vocab, int32_t id) {
  float mx = logits[0];
  for (int i = 1; i < vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0.0;
  for (int i = 0; i < vocab; ++i) sum += std::exp(double(logits[i] - mx));
  return std::exp(double(logits[id] - mx)) / sum;
}

struct Scored {
  std::vector<double> probs;  // probability of each answer token
  RoutingTrace trace;
};

// Teacher-forced pass over prompt + answer: probabilities of the answer tokens and the routing.
Scored score(Session& s, const std::vector<int32_t>& prompt, const std::vector<int32_t>& answer,
             const RoutingControl& control) {
  std::vector<int32_t> all = prompt;
  all.insert(all.end(), answer.begin(), answer.end());
  s.reset();
  ForwardResult r = s.prefill(all, /*all_logits=*/true, &control);
  Scored out;
  const int V = r.vocab;
  for (size_t i = 0; i < answer.size(); ++i)
    out.probs.push_back(prob_of(r.logits.data() + (prompt.size() - 1 + i) * size_t(V), V, answer[i]));
  out.trace = s.trace();
  return out;
}

}  // namespace

RunComparison compare_runs(Session& session, const std::vector<int32_t>& prompt, const GenerateParams& params,
                           const RoutingControl& control) {
  if (prompt.empty()) throw Error("empty prompt");
  RunComparison c;
  GenerateParams p = params;
  p.control = RoutingControl{};
  session.reset();
  c.original = session.generate(prompt, p).generated;
  p.control = control;
  session.reset();
  c.intervened = session.generate(prompt, p).generated;
  for (size_t i = 0; i < std::min(c.original.size(), c.intervened.size()); ++i)
    if (c.original[i] != c.intervened[i]) {
      c.first_token_divergence = int(i);
      break;
    }
  if (c.first_token_divergence < 0 && c.original.size() != c.intervened.size())
    c.first_token_divergence = int(std::min(c.original.size(), c.intervened.size()));

  // The original answer's last token was never fed back, so scoring covers all of it.
  if (!c.original.empty() && int(prompt.size() + c.original.size()) <= session.backend().context_length()) {
    Scored base = score(session, prompt, c.original, RoutingControl{});
    Scored alt = score(session, prompt, c.original, control);
    for (size_t i = 0; i < c.original.size(); ++i) c.changes.push_back({c.original[i], base.probs[i], alt.probs[i]});
    double overlap = 0.0;
    size_t n = 0;
    for (size_t t = 0; t < base.trace.size(); ++t)
      for (int m = 0; m < base.trace.n_moe_layers(); ++m) {
        std::vector<int> a, b;
        for (int k = 0; k < base.trace.top_k(); ++k) {
          if (base.trace.expert(t, m, k) >= 0) a.push_back(base.trace.expert(t, m, k));
          if (alt.trace.expert(t, m, k) >= 0) b.push_back(alt.trace.expert(t, m, k));
        }
        std::sort(a.begin(), a.end());
        std::sort(b.begin(), b.end());
        std::vector<int> both;
        std::set_intersection(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(both));
        const size_t uni = a.size() + b.size() - both.size();
        overlap += uni ? double(both.size()) / double(uni) : 1.0;
        ++n;
        if (a != b && c.first_route_divergence_pos < 0) {
          c.first_route_divergence_pos = int(t);
          c.first_route_divergence_layer = m;
        }
      }
    c.routed_overlap = n ? overlap / double(n) : 1.0;
  }
  session.reset();
  return c;
}

}  // namespace moescope
