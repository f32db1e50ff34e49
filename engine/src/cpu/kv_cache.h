#pragma once
// The CPU backend's KV cache: fixed-size blocks of positions, allocated as the sequence grows and
// kept for reuse when it shrinks. One block holds `block_tokens` positions of every layer:
// [n_layers][block_tokens][values_per_token] fp32.
#include <algorithm>
#include <memory>
#include <vector>

#include "moescope/backend.h"

namespace moescope::cpu {

class PagedKvCache {
public:
  PagedKvCache(int n_layers, int values_per_token, int capacity, int block_tokens = 16);

  // Makes room for positions [0, n); allocates only when a new block is entered.
  void ensure(int n);
  void truncate(int n) { size_ = std::min(size_, n); }
  void set_size(int n) { size_ = n; }
  int size() const { return size_; }
  int capacity() const { return capacity_; }
  int values_per_token() const { return values_; }

  // fn(first, count, row) over [lo, hi) in runs that lie in one block: row points at position
  // `first` of `layer`, and the run's positions follow values_per_token() floats apart.
  template <class F>
  void for_runs(int layer, int lo, int hi, F&& fn) const {
    for (int j = lo; j < hi;) {
      const int n = std::min(hi, (j / block_tokens_ + 1) * block_tokens_) - j;
      fn(j, n, at(layer, j));
      j += n;
    }
  }

  float* at(int layer, int pos) {
    return blocks_[size_t(pos / block_tokens_)].get() +
           (size_t(layer) * block_tokens_ + size_t(pos % block_tokens_)) * values_;
  }
  const float* at(int layer, int pos) const { return const_cast<PagedKvCache*>(this)->at(layer, pos); }

  KvStats stats(int mha_values_per_token) const;

private:
  int n_layers_, values_, capacity_, block_tokens_;
  int size_ = 0;
  std::vector<std::unique_ptr<float[]>> blocks_;  // logical block i -> storage
};

}  // namespace moescope::cpu
