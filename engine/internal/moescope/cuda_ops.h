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
// The same with W block-quantised (w.dtype a block type, the blocks as a GGUF file has them), kept
// in blocks on the device as the backend keeps it, through the backend's cuda::linear: n <= 4 runs
// the block matvec (quant_gemv), larger n widens W to BF16 on the device and runs cuBLAS (x
// rounded to BF16).
std::vector<float> quant_matmul(const std::vector<float>& x, int n, const TensorView& w,
                                const std::vector<float>* bias);
// The blocks of w (a block type) dequantised on the device (quant_dequantize): fp32, or BF16
// widened back.
std::vector<float> quant_dequantize(const TensorView& w, bool to_f32);
// Rotary embedding in place on [n_tokens, heads, dim] at positions pos0 + t.
std::vector<float> rope(const std::vector<float>& x, int n_tokens, int heads, int dim, bool interleaved,
                        const std::vector<float>& inv_freq, float attention_factor, int pos0);
// [n, 2·width] = [gate | up] → silu(gate) · up
std::vector<float> swiglu(const std::vector<float>& gate_up, int n, int width);
// Same layout → gpt-oss' clamped SwiGLU (cpu::clamped_swiglu).
std::vector<float> swiglu_clamped(const std::vector<float>& gate_up, int n, int width, float alpha, float limit);
// Rows of a table: F32 kept in fp32, any other dtype rounded to BF16 (as the upload stores them).
std::vector<float> embed(const TensorView& table, const std::vector<int32_t>& ids);

struct Routes {
  std::vector<int32_t> ids;   // [n_tokens, k]
  std::vector<float> weights; // [n_tokens, k]
  std::vector<float> probs;   // [n_tokens, E]
};
Routes route(const RouterSpec& r, const std::vector<float>& logits, int n_tokens, const std::vector<float>* bias,
             const RoutingControl& control, int layer);

// Causal GQA attention of n_tokens queries q [n_tokens, nh·hd] at positions pos0 + t over a
// paged cache holding k, v [pos0 + n_tokens, n_kv·hd]; `span` positions per split. sinks: null,
// or gpt-oss' sink logits [n_heads] in each softmax's denominator.
std::vector<float> attention(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                             int n_tokens, int pos0, int n_heads, int n_kv, int head_dim, float scale, int window,
                             int span, const std::vector<float>* sinks = nullptr);
// Qwen3.5's gated attention output: att [n, heads·d] · sigmoid(gate), the gates read from q_proj's
// output qg [n, heads, 2, d] (per head: query, then gate).
std::vector<float> output_gate(const std::vector<float>& att, const std::vector<float>& qg, int n_tokens, int heads,
                               int d);

// Index of the largest value of each row (lowest on ties).
std::vector<int32_t> argmax(const std::vector<float>& logits, int rows, int vocab);

// y[n, out] + bias[out] (the bias add after a cuBLAS matmul).
std::vector<float> add_bias(const std::vector<float>& y, const std::vector<float>& bias, int n_tokens, int out);
// clamp(x, -limit, limit) (OLMoE's clip_qkv).
std::vector<float> clamp(const std::vector<float>& x, float limit);
// A checkpoint tensor of any dtype converted on the device to BF16 (widened back on the host for
// the comparison) or to fp32, as the weight upload does.
std::vector<float> convert(const TensorView& src, bool to_f32);
// fp32 rows [rows, stride] → contiguous BF16 [rows, cols] (the cuBLAS activations), widened back.
std::vector<float> to_bf16_rows(const std::vector<float>& x, int stride, int rows, int cols);
// Appends rows [n_tokens, values] at positions pos0.. to a paged cache whose block table runs in
// reverse, and returns the cache read back in logical order, [pos0 + n_tokens, values] (positions
// before pos0: zeros).
std::vector<float> kv_store(const std::vector<float>& rows, int n_tokens, int values, int pos0, int block_tokens);
// Absorbed MLA's per-head projections with kv_b [nh·(N+Dv), C] (any dtype, rounded to BF16):
// q [n, nh·(N+R)] → qcat [n, nh, C+R]; o_lat [n, nh, C] → out [n, nh·Dv].
std::vector<float> mla_q_absorb(const std::vector<float>& q, const TensorView& kv_b, int n_tokens, int n_heads,
                                int nope, int rope, int v_head);
std::vector<float> mla_v_up(const std::vector<float>& o_lat, const TensorView& kv_b, int n_tokens, int n_heads,
                            int nope, int v_head);
// Decode's routed experts: gate_up [E·2W, H] and down [E·H, W] (rounded to BF16; a block type is
// kept in blocks and runs quant_moe_gate_up / quant_moe_down), ids/weights [n, k]. Returns
// h [n, k, W] of moe_gate_up and y [n, H] of moe_down.
struct MoeDecode {
  std::vector<float> h, y;
};
// extras (gpt-oss): per-expert biases gate_up_bias [E·2W] (gate, then up, per expert) and
// down_bias [E·H] (either may be empty), and the clamped SwiGLU.
struct MoeExtras {
  std::vector<float> gate_up_bias, down_bias;
  bool clamped = false;
  float alpha = 0.0f, limit = 0.0f;
};
MoeDecode moe_experts(const std::vector<float>& x, int n_tokens, const TensorView& gate_up, const TensorView& down,
                      int n_experts, const std::vector<int32_t>& ids, const std::vector<float>& weights, int top_k,
                      const MoeExtras* extras = nullptr);
// Prefill's bookkeeping: the (token, slot) pairs grouped by expert, the gather of their rows as
// BF16, and the weighted combine of expert outputs [n_tokens·top_k, H] (row i: pair rows[i]).
struct MoeGroups {
  std::vector<int32_t> counts, offsets, rows, slot_row;
  std::vector<float> gathered;  // [total pairs, H], BF16 widened
  std::vector<float> combined;  // [n_tokens, H]
};
MoeGroups moe_group(const std::vector<int32_t>& ids, const std::vector<float>& weights, int n_tokens, int top_k,
                    int n_experts, const std::vector<float>& x, int hidden, const std::vector<float>& expert_out);
// The shared expert's output added behind its gate: y + sigmoid(gate · x) · s (gate empty: 1).
// gates_out (with a gate): the n_tokens gate values the kernel recorded.
std::vector<float> shared_expert_add(const std::vector<float>& x, const std::vector<float>& gate,
                                     const std::vector<float>& s, const std::vector<float>& y, int hidden,
                                     int n_tokens, std::vector<float>* gates_out = nullptr);
// x + value (the norm-weight offset added at upload).
std::vector<float> add_constant(const std::vector<float>& x, float value);

// Gated DeltaNet (delta_net.cuh) over n_tokens rows proj [n_tokens, A], A = Cc + VD + 2·nv, each
// [q, k, v (Cc) | z (VD) | b (nv) | a (nv)] as the backend's fused projection, fed in forwards of
// `chunks` tokens (summing to n_tokens) from zero states: delta_conv then delta_rule per chunk.
// conv_w [Cc·Kc], a_log and dt_bias [nv], norm [dv]. Returns the outputs [n_tokens, VD] and the
// final states.
struct DeltaNetDims {
  int nk, nv, dk, dv, kernel;
};
struct DeltaNetResult {
  std::vector<float> out;        // [n_tokens, nv·dv]
  std::vector<float> recurrent;  // [nv, dk, dv]
  std::vector<float> conv;       // [kernel - 1, Cc]
};
DeltaNetResult delta_net(const std::vector<float>& proj, int n_tokens, const DeltaNetDims& d,
                         const std::vector<float>& conv_w, const std::vector<float>& a_log,
                         const std::vector<float>& dt_bias, const std::vector<float>& norm, float eps,
                         const std::vector<int>& chunks);
// Synthetic weights of the benchmarks: n values uniform in ±scale from (seed, index), as fp32 or
// BF16 (widened), or a constant.
std::vector<float> fill_uniform(long long n, uint64_t seed, float scale, bool f32);
std::vector<float> fill_constant(long long n, float value, bool f32);

// Kernel timing, for the performance table of tests/test_cuda_ops.cpp (MOESCOPE_CUDA_PERF=1):
// with reps > 0, each op above, after its checked run, launches its kernel(s) once more to warm
// up and then `reps` times between two CUDA events; last_kernel_ms() is the mean time of one
// launch (0 when timing is off). Host-device copies are not timed.
void set_timing_reps(int reps);
double last_kernel_ms();

}  // namespace moescope::cuda_ops
