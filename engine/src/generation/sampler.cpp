#include "moescope/sampler.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace moescope {

int32_t argmax(const float* logits, int vocab) {
  int32_t best = 0;
  for (int i = 1; i < vocab; ++i)
    if (logits[i] > logits[best]) best = i;
  return best;
}

Sampler::Sampler(const SamplingParams& params, int vocab)
    : p_(params), rng_(params.seed), order_(size_t(vocab)), probs_(size_t(vocab)), seen_(size_t(vocab)) {}

int32_t Sampler::sample(float* logits, std::span<const int32_t> history) {
  const int V = int(order_.size());
  if (p_.repetition_penalty != 1.0f && !history.empty()) {
    std::fill(seen_.begin(), seen_.end(), 0);
    for (int32_t id : history) {
      if (id < 0 || id >= V || seen_[size_t(id)]) continue;
      seen_[size_t(id)] = 1;
      float& l = logits[id];
      l = l < 0 ? l * p_.repetition_penalty : l / p_.repetition_penalty;
    }
  }
  if (p_.temperature <= 0.0f) return argmax(logits, V);

  // Candidates sorted by logit, descending; truncated by top-k.
  std::iota(order_.begin(), order_.end(), 0);
  int n = V;
  if (p_.top_k > 0 && p_.top_k < V) {
    n = p_.top_k;
    std::partial_sort(order_.begin(), order_.begin() + n, order_.end(),
                      [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  } else {
    std::sort(order_.begin(), order_.end(), [&](int32_t a, int32_t b) { return logits[a] > logits[b]; });
  }
  const float inv_t = 1.0f / p_.temperature;
  const float mx = logits[order_[0]] * inv_t;
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += (probs_[size_t(i)] = std::exp(logits[order_[size_t(i)]] * inv_t - mx));
  for (int i = 0; i < n; ++i) probs_[size_t(i)] = float(probs_[size_t(i)] / sum);

  if (p_.top_p < 1.0f) {  // smallest prefix whose mass reaches top_p (at least one token)
    double cum = 0.0;
    int keep = n;
    for (int i = 0; i < n; ++i) {
      cum += probs_[size_t(i)];
      if (cum >= p_.top_p) {
        keep = i + 1;
        break;
      }
    }
    n = std::max(1, keep);
  }
  if (p_.min_p > 0.0f) {  // drop tokens below min_p × the top probability
    const float floor = p_.min_p * probs_[0];
    int keep = 1;
    while (keep < n && probs_[size_t(keep)] >= floor) ++keep;
    n = keep;
  }
  double mass = 0.0;
  for (int i = 0; i < n; ++i) mass += probs_[size_t(i)];
  std::uniform_real_distribution<double> u(0.0, mass);
  double r = u(rng_);
  for (int i = 0; i < n; ++i) {
    r -= probs_[size_t(i)];
    if (r <= 0.0) return order_[size_t(i)];
  }
  return order_[size_t(n - 1)];
}

}  // namespace moescope
