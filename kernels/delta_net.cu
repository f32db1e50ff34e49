#include "delta_net.cuh"
#include "kernel_common.cuh"

namespace moescope::kernels {
namespace {

constexpr int kConvThreads = 128;
constexpr int kRuleThreads = 128;            // a multiple of 32 (block_sum)

// grid ceil(channels / kConvThreads): thread c walks the tokens of channel c.
__global__ void delta_conv_kernel(const float* __restrict__ in, int in_stride, const float* __restrict__ w,
                                  float* __restrict__ state, float* __restrict__ out, int out_stride, int T, int C,
                                  int Kc) {
  const int c = blockIdx.x * blockDim.x + threadIdx.x;
  if (c >= C) return;
  // input u of this chunk (u < 0: the state's row Kc - 1 + u)
  auto at = [&](int u) { return u >= 0 ? in[size_t(u) * in_stride + c] : state[size_t(Kc - 1 + u) * C + c]; };
  const float* wc = w + size_t(c) * Kc;
  for (int t = 0; t < T; ++t) {
    float acc = 0.0f;
    for (int j = 0; j < Kc; ++j) acc += wc[j] * at(t - (Kc - 1) + j);
    out[size_t(t) * out_stride + c] = acc / (1.0f + expf(-acc));
  }
  // The new state, the last Kc - 1 inputs: row r reads row T + r (> r) before it is overwritten.
  for (int r = 0; r < Kc - 1; ++r) state[size_t(r) * C + c] = at(T - (Kc - 1) + r);
}

// grid nv, block kRuleThreads, dynamic shared memory (2·dk + dv) floats.
__global__ void delta_rule_kernel(DeltaRuleArgs p) {
  extern __shared__ float sm[];
  float* qn = sm;           // [dk]
  float* kn = sm + p.dk;    // [dk]
  float* o = kn + p.dk;     // [dv]
  const int h = blockIdx.x, kh = h / (p.nv / p.nk), KD = p.nk * p.dk;
  const int tid = threadIdx.x, nt = blockDim.x;
  float* S = p.state + size_t(h) * p.dk * p.dv;  // [dk][dv]
  const float neg_a = -expf(p.a_log[h]), dt_bias = p.dt_bias[h];
  const float q_scale = 1.0f / sqrtf(float(p.dk));
  for (int t = 0; t < p.n_tokens; ++t) {
    const float* row = p.conv + size_t(t) * p.conv_stride;
    const float* qr = row + size_t(kh) * p.dk;
    const float* kr = row + KD + size_t(kh) * p.dk;
    const float* v = row + 2 * KD + size_t(h) * p.dv;
    float sq = 0.0f, sk = 0.0f;
    for (int i = tid; i < p.dk; i += nt) sq += qr[i] * qr[i], sk += kr[i] * kr[i];
    sq = detail::block_sum(sq);
    sk = detail::block_sum(sk);
    const float iq = q_scale / sqrtf(sq + 1e-6f), ik = 1.0f / sqrtf(sk + 1e-6f);
    for (int i = tid; i < p.dk; i += nt) qn[i] = qr[i] * iq, kn[i] = kr[i] * ik;
    const float b = 1.0f / (1.0f + expf(-p.beta[size_t(t) * p.gate_stride + h]));
    const float av = p.a[size_t(t) * p.gate_stride + h] + dt_bias;
    const float decay = expf(neg_a * (av > 20.0f ? av : log1pf(expf(av))));
    __syncthreads();  // qn, kn complete
    // Column d of S belongs to one thread: decay, read Sᵀk, write the delta, read Sᵀq.
    float ss = 0.0f;
    for (int d = tid; d < p.dv; d += nt) {
      float mem = 0.0f;
      for (int i = 0; i < p.dk; ++i) {
        const float s = S[size_t(i) * p.dv + d] * decay;
        S[size_t(i) * p.dv + d] = s;
        mem += kn[i] * s;
      }
      const float delta = b * (v[d] - mem);
      float acc = 0.0f;
      for (int i = 0; i < p.dk; ++i) {
        const float s = S[size_t(i) * p.dv + d] + kn[i] * delta;
        S[size_t(i) * p.dv + d] = s;
        acc += qn[i] * s;
      }
      o[d] = acc;
      ss += acc * acc;
    }
    ss = detail::block_sum(ss);
    // gated RMSNorm over the head: o / rms(o) · w · silu(z)
    const float inv = 1.0f / sqrtf(ss / float(p.dv) + p.eps);
    const float* z = p.z + size_t(t) * p.z_stride + size_t(h) * p.dv;
    float* dst = p.out + size_t(t) * p.out_stride + size_t(h) * p.dv;
    for (int d = tid; d < p.dv; d += nt) dst[d] = o[d] * inv * p.norm[d] * (z[d] / (1.0f + expf(-z[d])));
    __syncthreads();  // qn, kn, o are rewritten for the next token
  }
}

}  // namespace

void delta_conv(const float* in, int in_stride, const float* w, float* state, float* out, int out_stride,
                int n_tokens, int channels, int kernel, cudaStream_t stream) {
  if (n_tokens <= 0 || channels <= 0) return;
  delta_conv_kernel<<<detail::ceil_div(channels, kConvThreads), kConvThreads, 0, stream>>>(
      in, in_stride, w, state, out, out_stride, n_tokens, channels, kernel);
}

void delta_rule(const DeltaRuleArgs& args, cudaStream_t stream) {
  if (args.n_tokens <= 0) return;
  const size_t smem = sizeof(float) * size_t(2 * args.dk + args.dv);
  delta_rule_kernel<<<args.nv, kRuleThreads, smem, stream>>>(args);
}

}  // namespace moescope::kernels
