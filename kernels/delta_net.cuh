#pragma once
// Gated DeltaNet linear attention (Qwen3.5, ModelSpec::linear; the CPU reference is
// CpuBackend::linear_attention): a causal depthwise convolution with a state of the last
// conv_kernel - 1 inputs, then the gated delta rule, one token after the other, over a
// [dk, dv] state matrix per value head. Both states live in device memory and are updated in
// place, so a prompt and a token-by-token decode give the same state. No host round trip: the
// decode step stays capturable.
#include <cuda_runtime_api.h>

namespace moescope::kernels {

// out[t, c] = silu(Σ_j w[c, j] · in[t - (Kc - 1) + j, c]) for t < n_tokens, c < channels, where
// rows before 0 come from state [Kc - 1][channels]; afterwards state holds the last Kc - 1
// inputs. in: row t at in + t·in_stride; w: fp32 [channels][Kc]; out: row t at out + t·out_stride.
// One thread per channel (blocks of 128), the tokens in order.
void delta_conv(const float* in, int in_stride, const float* w, float* state, float* out, int out_stride,
                int n_tokens, int channels, int kernel, cudaStream_t stream);

struct DeltaRuleArgs {
  // After delta_conv: row t = [q (nk·dk) | k (nk·dk) | v (nv·dv)] at conv + t·conv_stride.
  const float* conv;
  int conv_stride;
  const float* z;     // output gate of value head h: z + t·z_stride + h·dv
  int z_stride;
  const float* beta;  // raw in_proj_b output: beta + t·gate_stride + h (sigmoid taken here)
  const float* a;     // raw in_proj_a output: a + t·gate_stride + h
  int gate_stride;
  const float* a_log;    // [nv]: the decay is g = -exp(A_log) · softplus(a + dt_bias)
  const float* dt_bias;  // [nv]
  const float* norm;     // [dv] the gated RMSNorm's weight (plain w, no offset)
  float eps;
  float* state;  // [nv][dk][dv], updated in place
  float* out;    // value head h of token t: out + t·out_stride + h·dv
  int out_stride;
  int nk, nv, dk, dv;  // key heads, value heads (a multiple of nk), their dims
  int n_tokens;
};

// Per value head h (key head h / (nv / nk)) and token t in order: q, k L2-normalised
// (x / sqrt(Σx² + 1e-6)), q also by 1/sqrt(dk); S ← exp(g)·S; S ← S + k ⊗ β(v − Sᵀk); o = Sᵀq;
// out = o / rms(o) · norm · silu(z). Grid: one block of 128 threads per value head, each thread
// owning columns d of S; dynamic shared memory (2·dk + dv) floats, at most
// kDeltaRuleMaxSmemFloats: with block_sum's 32 floats of static shared memory that stays under
// the 48 KiB a launch may use without opt-in. The caller checks that bound and that nv is a
// multiple of nk. Prefill runs the tokens one after the other in each block (nv blocks): correct,
// not fast; a chunked (WY) form is the faster prefill.
constexpr int kDeltaRuleMaxSmemFloats = 12 * 1024 - 64;
void delta_rule(const DeltaRuleArgs& args, cudaStream_t stream);

}  // namespace moescope::kernels
