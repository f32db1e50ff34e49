#pragma once
// Test-only entry points of the CUDA backend: each runs one kernel (or the backend's matmul
// path) on host buffers, so tests/test_cuda_ops.cpp can compare it with moescope::cpu::* and
// route_token(). Only built with CUDA (MOESCOPE_HAVE_CUDA); Qt-free. Every function throws
// moescope::Error on a CUDA failure.
#include <cstdint>
#include <vector>

#include "moescope/routing.h"
#include "moescope/tensor.h"

namespace moescope::cuda_ops {

// Free and total memory of the current device (cudaMemGetInfo).
void memory_info(size_t* free_bytes, size_t* total_bytes);

// y[rows, d] = rmsnorm(x) · w
std::vector<float> rmsnorm(const std::vector<float>& x, const std::vector<float>& w, float eps, int rows, int d);
// y[n, out] = x[n, in] · Wᵀ (+ b) with W (any dtype) rounded to BF16 as the backend uploads it;
// n <= 4 runs the GEMV kernel, larger n cuBLAS (x rounded to BF16).
std::vector<float> matmul(const std::vector<float>& x, int n, const TensorView& w, const std::vector<float>* bias);
// Rotary embedding in place on [n_tokens, heads, dim] at positions pos0 + t.
std::vector<float> rope(const std::vector<float>& x, int n_tokens, int heads, int dim, bool interleaved,
                        const std::vector<float>& inv_freq, float attention_factor, int pos0);
// [n, 2·width] = [gate | up] → silu(gate) · up
std::vector<float> swiglu(const std::vector<float>& gate_up, int n, int width);
// Rows of a BF16 table.
std::vector<float> embed(const TensorView& table, const std::vector<int32_t>& ids);

struct Routes {
  std::vector<int32_t> ids;   // [n_tokens, k]
  std::vector<float> weights; // [n_tokens, k]
  std::vector<float> probs;   // [n_tokens, E]
};
Routes route(const RouterSpec& r, const std::vector<float>& logits, int n_tokens, const std::vector<float>* bias,
             const RoutingControl& control, int layer);

// Causal GQA attention of n_tokens queries q [n_tokens, nh·hd] at positions pos0 + t over a
// paged cache holding k, v [pos0 + n_tokens, n_kv·hd]; `span` positions per split.
std::vector<float> attention(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                             int n_tokens, int pos0, int n_heads, int n_kv, int head_dim, float scale, int window,
                             int span);

// Index of the largest value of each row (lowest on ties).
std::vector<int32_t> argmax(const std::vector<float>& logits, int rows, int vocab);

// Kernel timing, for the performance table of tests/test_cuda_ops.cpp (MOESCOPE_CUDA_PERF=1):
// with reps > 0, each op above, after its checked run, launches its kernel(s) once more to warm
// up and then `reps` times between two CUDA events; last_kernel_ms() is the mean time of one
// launch (0 when timing is off). Host-device copies are not timed.
void set_timing_reps(int reps);
double last_kernel_ms();

}  // namespace moescope::cuda_ops
