#pragma once
// Causal attention of new query tokens over a paged KV cache layer (which already holds them),
// split over the sequence (flash-decoding): each block scores one span of `chunk` positions for
// a tile of query heads that share a KV head, keeps its softmax max/sum and unnormalised
// output, and a second kernel merges the spans. Decode (one token) and prefill (many) use the
// same kernels; the number of spans is fixed at launch so that a captured decode graph stays
// valid while the length (read from *pos0) grows.
//
// The same kernels serve both attention kinds:
//   GQA: cache row = [K (n_kv·hd) | V (n_kv·hd)]; key of kv head g at g·hd, value at n_kv·hd + g·hd.
//   MLA (absorbed): one shared "kv head": key = the whole row [latent C | rope key R] scored
//   against q = [W_ukᵀ q_nope | q_rope], value = the latent (first C values).
#include <cuda_runtime_api.h>

#include "kv_store.cuh"

namespace moescope::kernels {

struct AttentionArgs {
  const float* q;          // query of token t, head h: q + t·q_stride + h·q_head_stride
  int q_stride, q_head_stride;
  KvLayer kv;
  int k_offset, k_head_stride, dk;  // key of kv head g: row + k_offset + g·k_head_stride, dk floats
  int v_offset, v_head_stride, dv;
  int n_heads, group;     // query heads, query heads per kv head
  float scale;            // multiplies q·k
  int window;             // sliding window (0: full causal)
  const int* pos0;        // device: position of the chunk's token 0
  int first;              // this launch's token t is the chunk's token first + t (position *pos0 + first + t)
  int n_tokens;
  float* out;             // out + t·out_stride + h·dv
  int out_stride;
  // gpt-oss: one learned logit per query head joins each softmax's denominator (not its output):
  // out = Σ_j e^{s_j - m} v_j / (Σ_j e^{s_j - m} + e^{sink_h - m}), m the max over the scores.
  // Null: no sinks. fp32 [n_heads], device memory.
  const float* sinks;
};

// Floats of scratch `partial` needs for n_tokens with `splits` spans.
long long attention_partial_floats(const AttentionArgs& a, int splits);
// Spans of `chunk` positions; the caller picks chunk and splits so that chunk·splits covers
// the longest visible range (capacity for a graph, pos0 + n_tokens otherwise).
void attention(const AttentionArgs& a, int chunk, int splits, float* partial, cudaStream_t stream);

}  // namespace moescope::kernels
