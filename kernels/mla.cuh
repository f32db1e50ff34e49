#pragma once
// The two per-head projections of absorbed multi-head latent attention (DeepSeek-V2/V3), with
// kv_b_proj = [W_uk (N rows); W_uv (Dv rows)] per head, BF16 [n_heads·(N+Dv), C]:
//   mla_q_absorb: qcat[t, h] = [W_ukᵀ q_nope (C) | q_rope (R)]   (the query scored against the
//                 cached [latent | rope key] rows)
//   mla_v_up:     out[t, h·Dv + d] = W_uv[d] · o_lat[t, h]         (latent → head output)
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::kernels {

struct MlaDims {
  int n_heads, nope, rope, v_head, latent;  // nh, N, R, Dv, C
};

// q: [n_tokens, q_stride] with head h at h·(N+R): [q_nope (N) | q_rope (R)]. qcat: [n_tokens, nh, C+R].
void mla_q_absorb(const MlaDims& d, const float* q, int q_stride, const uint16_t* kv_b, float* qcat, int n_tokens,
                  cudaStream_t stream);
// o_lat: [n_tokens, nh, C]; out: [n_tokens, nh·Dv].
void mla_v_up(const MlaDims& d, const float* o_lat, const uint16_t* kv_b, float* out, int n_tokens,
              cudaStream_t stream);

}  // namespace moescope::kernels
