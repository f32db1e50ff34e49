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

// The fixed-size state of the linear-attention layers (ModelSpec::linear), in place of their KV
// cache: per layer the recurrent state [n_v_heads][k_head_dim][v_head_dim] and the convolution's
// last conv_kernel - 1 inputs [conv_kernel - 1][conv_dim], fp32. It sums up the whole sequence
// so far, so it cannot be rewound to an earlier position; it can only be cleared.
class RecurrentState {
public:
  RecurrentState(int n_layers, const LinearAttentionSpec& spec);
  float* recurrent(int layer) { return recurrent_[size_t(layer)].data(); }
  float* conv(int layer) { return conv_[size_t(layer)].data(); }
  void clear();
  int n_layers() const { return int(recurrent_.size()); }
  int64_t bytes() const;  // all layers

private:
  std::vector<std::vector<float>> recurrent_, conv_;
};

}  // namespace moescope::cpu
