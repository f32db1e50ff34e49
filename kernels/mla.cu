#include "kernel_common.cuh"
#include "mla.cuh"

namespace moescope::kernels {
namespace {

// grid (nh, n_tokens): threads over the latent dimension c, summing over the N nope rows (read
// along c, so coalesced).
__global__ void mla_q_absorb_kernel(MlaDims d, const float* __restrict__ q, int q_stride,
                                    const uint16_t* __restrict__ kv_b, float* __restrict__ qcat) {
  extern __shared__ float qn[];  // [N + R]
  const int h = blockIdx.x, t = blockIdx.y, qh = d.nope + d.rope;
  const float* qt = q + size_t(t) * q_stride + size_t(h) * qh;
  for (int i = threadIdx.x; i < qh; i += blockDim.x) qn[i] = qt[i];
  __syncthreads();
  float* out = qcat + (size_t(t) * d.n_heads + h) * (d.latent + d.rope);
  const uint16_t* w = kv_b + size_t(h) * (d.nope + d.v_head) * d.latent;
  for (int c = threadIdx.x; c < d.latent; c += blockDim.x) {
    float acc = 0.0f;
    for (int i = 0; i < d.nope; ++i) acc += qn[i] * detail::bf16f(w[size_t(i) * d.latent + c]);
    out[c] = acc;
  }
  for (int i = threadIdx.x; i < d.rope; i += blockDim.x) out[d.latent + i] = qn[d.nope + i];
}

constexpr int kWarps = 8;

// grid (Dv / kWarps, nh, n_tokens): one warp per output value.
__global__ void mla_v_up_kernel(MlaDims d, const float* __restrict__ o_lat, const uint16_t* __restrict__ kv_b,
                                float* __restrict__ out, bool vec) {
  const int lane = threadIdx.x & 31, r = blockIdx.x * kWarps + (threadIdx.x >> 5);
  const int h = blockIdx.y, t = blockIdx.z;
  if (r >= d.v_head) return;
  const uint16_t* w = kv_b + (size_t(h) * (d.nope + d.v_head) + d.nope + r) * d.latent;
  float acc[1] = {0.0f};
  detail::lane_dot<1>(o_lat + (size_t(t) * d.n_heads + h) * d.latent, d.latent, w, d.latent, vec, lane, acc);
  const float v = detail::warp_sum(acc[0]);
  if (lane == 0) out[size_t(t) * d.n_heads * d.v_head + size_t(h) * d.v_head + r] = v;
}

}  // namespace

void mla_q_absorb(const MlaDims& d, const float* q, int q_stride, const uint16_t* kv_b, float* qcat, int n_tokens,
                  cudaStream_t stream) {
  mla_q_absorb_kernel<<<dim3(d.n_heads, n_tokens), 256, sizeof(float) * (d.nope + d.rope), stream>>>(d, q, q_stride,
                                                                                                    kv_b, qcat);
}

void mla_v_up(const MlaDims& d, const float* o_lat, const uint16_t* kv_b, float* out, int n_tokens,
              cudaStream_t stream) {
  const bool vec = detail::vector_ok(kv_b, d.latent, 2, o_lat, d.latent);
  mla_v_up_kernel<<<dim3(detail::ceil_div(d.v_head, kWarps), d.n_heads, n_tokens), 32 * kWarps, 0, stream>>>(
      d, o_lat, kv_b, out, vec);
}

}  // namespace moescope::kernels
