#pragma once
// The CPU backend's operations: the reference the CUDA kernels are tested against. Activations
// are fp32; weights are read in their checkpoint dtype and widened inside the loops; every sum
// accumulates in fp32.
#include <cstddef>
#include <cstdint>

#include "moescope/model_weights.h"
#include "moescope/tensor.h"
#include "moescope/thread_pool.h"

namespace moescope::cpu {

// y[n, d] = x[n, d] / sqrt(mean(x²) + eps) * (offset + w[d])      (in place allowed: y == x)
// offset: ModelSpec::norm_weight_offset (1 for the zero-centred norms of Qwen3.5).
void rmsnorm(const float* x, const TensorView& w, float eps, float* y, int n, int d, float offset = 0.0f);
// Same, over n·heads rows of width d, each scaled by the same w[d] (Qwen3's per-head q/k norm).
inline void rmsnorm_rows(float* x, const TensorView& w, float eps, int rows, int d, float offset = 0.0f) {
  rmsnorm(x, w, eps, x, rows, d, offset);
}

// y[n, out] = x[n, in] · W[out, in]ᵀ (+ b[out]). Rows of W are split over the pool's threads.
// x_stride/y_stride: distance between rows (default: in / out).
void matmul(ThreadPool& pool, const float* x, int n, const TensorView& w, const TensorView* bias, float* y,
            int x_stride = 0, int y_stride = 0);
inline void linear(ThreadPool& pool, const float* x, int n, const Linear& l, float* y) {
  matmul(pool, x, n, l.w, l.has_bias() ? &l.b : nullptr, y);
}
// dot(x[len], w[len]) with w in any dtype (fp32 accumulation).
float dot(const float* x, const void* w, DType dt, int len);
// y[len] += a · w[len], w in any dtype.
void axpy(float a, const void* w, DType dt, float* y, int len);

// Asks for [p, p + bytes) in L2 ahead of use (a hint: no effect on results).
void prefetch(const void* p, size_t bytes);

// Sum of x[n]: the bandwidth calibration's read loop (vectorised, several loads in flight).
float read_sum(const float* x, size_t n);

// Rotary embedding of one head vector x[dim] in place with cos/sin[dim/2] for its position.
// interleaved: pairs (x[2i], x[2i+1]) (DeepSeek); otherwise halves (x[i], x[i + dim/2]).
void rope(float* x, const float* cos, const float* sin, int dim, bool interleaved);
// cos/sin tables [n, dim/2] for positions pos[n]: angle = pos · inv_freq, times attention_factor.
void rope_tables(const int* pos, int n, const float* inv_freq, int half, float attention_factor, float* cos,
                 float* sin);

// g[n] = silu(g[n]) * u[n]
void silu_mul(float* g, const float* u, int n);
// gpt-oss' clamped SwiGLU (transformers' GptOssExperts): with g' = min(g, limit) and
// u' = clamp(u, -limit, limit), g[n] = (u' + 1) · g' · sigmoid(alpha · g').
void clamped_swiglu(float* g, const float* u, int n, float alpha, float limit);
// Softmax over x[n] in place (max-subtracted).
void softmax(float* x, int n);
// out[hidden] = embedding row `id` of table [vocab, hidden].
void embed(const TensorView& table, int id, float* out);

}  // namespace moescope::cpu
