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

  // Candidates in descending logit order, sorted lazily: the walks below (top-p, min-p, the draw)
  // usually stop within the first few dozen tokens, so only the prefix they reach is sorted
  // (growing 4× when a walk needs more). A full sort of a 50k–150k vocabulary cost more than the
  // forward of a small model. Draws are the same as with a full sort (up to ties between equal
  // logits, whose order a sort leaves unspecified anyway).
  std::iota(order_.begin(), order_.end(), 0);
  const auto by_logit = [logits](int32_t a, int32_t b) { return logits[a] > logits[b]; };
  int n = V;       // candidates (top-k cuts them)
  int sorted = 0;  // order_[0, sorted) is final
  const float inv_t = 1.0f / p_.temperature;
  float mx = 0.0f;
  double sum = 0.0;
  if (p_.top_k > 0 && p_.top_k < V) {
    n = sorted = p_.top_k;
    std::partial_sort(order_.begin(), order_.begin() + n, order_.end(), by_logit);
    mx = logits[order_[0]] * inv_t;
    for (int i = 0; i < n; ++i) sum += std::exp(double(logits[order_[size_t(i)]] * inv_t - mx));
  } else {
    mx = logits[argmax(logits, V)] * inv_t;
    for (int i = 0; i < V; ++i) sum += std::exp(double(logits[i] * inv_t - mx));
  }
  // Probability of the i-th candidate, sorting further first when i is beyond the sorted prefix.
  const auto prob = [&](int i) {
    if (i >= sorted) {
      const int to = std::min(n, std::max({i + 1, 4 * sorted, 64}));
      std::partial_sort(order_.begin() + sorted, order_.begin() + to, order_.begin() + n, by_logit);
      for (int j = sorted; j < to; ++j)
        probs_[size_t(j)] = float(std::exp(double(logits[order_[size_t(j)]] * inv_t - mx)) / sum);
      sorted = to;
    }
    return probs_[size_t(i)];
  };
  if (sorted > 0)
    for (int j = 0; j < sorted; ++j) probs_[size_t(j)] = float(std::exp(double(logits[order_[size_t(j)]] * inv_t - mx)) / sum);

  double mass = -1.0;  // mass of the kept candidates; unknown while every candidate is kept
  if (p_.top_p < 1.0f) {  // smallest prefix whose mass reaches top_p (at least one token)
    double cum = 0.0;
    for (int i = 0; i < n; ++i) {
      cum += prob(i);
      if (cum >= p_.top_p) {
        n = i + 1;
        mass = cum;
        break;
      }
    }
  }
  if (p_.min_p > 0.0f) {  // drop tokens below min_p × the top probability
    const float floor = p_.min_p * prob(0);
    int keep = 1;
    double kept = prob(0);
    while (keep < n && prob(keep) >= floor) kept += prob(keep++);
    mass = kept;
    n = keep;
  }
  if (mass < 0) mass = 1.0;  // nothing cut: the probabilities are normalised over all candidates
  std::uniform_real_distribution<double> u(0.0, mass);
  double r = u(rng_);
  for (int i = 0; i < n; ++i) {
    r -= prob(i);
    if (r <= 0.0) return order_[size_t(i)];
  }
  prob(n - 1);
  return order_[size_t(n - 1)];
}

}  // namespace moescope
