#pragma once
// Next-token sampling, in transformers' order: repetition penalty → temperature → top-k →
// top-p → min-p → draw. temperature <= 0 is greedy (argmax after the penalty).
#include <cstdint>
#include <random>
#include <span>
#include <vector>

namespace moescope {

struct SamplingParams {
  float temperature = 0.0f;
  int top_k = 0;                   // 0: off
  float top_p = 1.0f;              // 1: off
  float min_p = 0.0f;              // 0: off
  float repetition_penalty = 1.0f; // 1: off
  uint64_t seed = 0;
};

class Sampler {
public:
  Sampler(const SamplingParams& params, int vocab);
  // Modifies logits in place. history: tokens the repetition penalty applies to.
  int32_t sample(float* logits, std::span<const int32_t> history);
  const SamplingParams& params() const { return p_; }

private:
  SamplingParams p_;
  std::mt19937_64 rng_;
  std::vector<int32_t> order_;   // scratch [vocab]
  std::vector<float> probs_;     // scratch [vocab]
  std::vector<uint8_t> seen_;    // scratch [vocab]
};

// Greedy pick: index of the largest logit (lowest index on ties, like torch.argmax).
int32_t argmax(const float* logits, int vocab);

}  // namespace moescope
