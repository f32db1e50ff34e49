#include "cpu/kv_cache.h"

#include "moescope/error.h"

namespace moescope::cpu {

PagedKvCache::PagedKvCache(int n_layers, int values_per_token, int capacity, int block_tokens)
    : n_layers_(n_layers), values_(values_per_token), capacity_(capacity), block_tokens_(block_tokens) {}

void PagedKvCache::ensure(int n) {
  if (n > capacity_)
    throw Error("context full: " + std::to_string(n) + " tokens needed, the context holds " +
                std::to_string(capacity_));
  const size_t need = size_t((n + block_tokens_ - 1) / block_tokens_);
  const size_t block_floats = size_t(n_layers_) * block_tokens_ * values_;
  while (blocks_.size() < need) blocks_.push_back(std::make_unique<float[]>(block_floats));
}

KvStats PagedKvCache::stats(int mha_values_per_token) const {
  KvStats s;
  s.tokens = size_;
  s.capacity = capacity_;
  s.block_tokens = block_tokens_;
  s.blocks_used = (size_ + block_tokens_ - 1) / block_tokens_;
  s.blocks_total = (capacity_ + block_tokens_ - 1) / block_tokens_;
  s.bytes_per_token_layer = int64_t(values_) * 4;
  s.bytes_used = s.bytes_per_token_layer * n_layers_ * size_;
  s.bytes_reserved = int64_t(blocks_.size()) * block_tokens_ * n_layers_ * s.bytes_per_token_layer;
  s.mha_bytes_per_token_layer = int64_t(mha_values_per_token) * 4;
  s.n_layers = n_layers_;
  s.element_type = "F32";
  return s;
}

RecurrentState::RecurrentState(int n_layers, const LinearAttentionSpec& la) {
  for (int l = 0; l < n_layers; ++l) {
    recurrent_.emplace_back(size_t(la.n_v_heads) * la.k_head_dim * la.v_head_dim, 0.0f);
    conv_.emplace_back(size_t(std::max(0, la.conv_kernel - 1)) * la.conv_dim(), 0.0f);
  }
}

void RecurrentState::clear() {
  for (auto& v : recurrent_) std::fill(v.begin(), v.end(), 0.0f);
  for (auto& v : conv_) std::fill(v.begin(), v.end(), 0.0f);
}

int64_t RecurrentState::bytes() const {
  int64_t n = 0;
  for (size_t l = 0; l < recurrent_.size(); ++l) n += int64_t(recurrent_[l].size() + conv_[l].size()) * 4;
  return n;
}

}  // namespace moescope::cpu
