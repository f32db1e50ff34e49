#include <cfloat>

#include "kernel_common.cuh"
#include "router.cuh"

namespace moescope::kernels {
namespace {

constexpr int kWarps = 4;  // tokens per block

// Best (value, index) over the warp: larger value, lower index on ties; index -1 when every
// value is -inf (as route_token's strict comparison starting from -inf).
__device__ __forceinline__ int warp_argmax(const float* v, int n, int lane) {
  float bv = -INFINITY;
  int bi = -1;
  for (int e = lane; e < n; e += 32)
    if (v[e] > bv) bv = v[e], bi = e;
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (oi >= 0 && (bi < 0 || ov > bv || (ov == bv && oi < bi))) bv = ov, bi = oi;
  }
  return bi;
}

__global__ void route_kernel(RouterParams p, const float* __restrict__ logits, const float* __restrict__ bias,
                             int n_tokens, int32_t* ids, float* weights, int out_stride, float* probs,
                             int probs_stride) {
  extern __shared__ float smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int t = blockIdx.x * kWarps + warp;
  if (t >= n_tokens) return;
  const int E = p.n_experts, K = p.top_k;
  float* scores = smem + warp * (2 * E + kRouterMaxGroups);  // [E]
  float* choice = scores + E;                                // [E]
  float* group_best = choice + E;                            // [n_group]
  const float* lg = logits + size_t(t) * E;

  // ---- scores ----
  if (!p.sigmoid) {
    float mx = -INFINITY;
    for (int e = lane; e < E; e += 32) mx = fmaxf(mx, lg[e]);
    mx = detail::warp_max(mx);
    float sum = 0.0f;
    for (int e = lane; e < E; e += 32) sum += (scores[e] = expf(lg[e] - mx));
    sum = detail::warp_sum(sum);
    for (int e = lane; e < E; e += 32) scores[e] /= sum;
  } else {
    for (int e = lane; e < E; e += 32) scores[e] = 1.0f / (1.0f + expf(-lg[e]));
  }
  for (int e = lane; e < E; e += 32) {
    if (probs) probs[size_t(t) * probs_stride + e] = scores[e];
    float c = bias ? scores[e] + bias[e] : scores[e];
    if (p.disabled && p.disabled[e]) c = -INFINITY;
    choice[e] = c;
  }
  __syncwarp();

  // ---- group-limited selection: keep the topk_group best groups, -inf elsewhere ----
  if (p.group_score != 0 && p.n_group > 1) {
    const int per = E / p.n_group;
    if (lane < p.n_group) {
      const float* c = choice + lane * per;
      float a = -INFINITY, b = -INFINITY;
      for (int i = 0; i < per; ++i) {
        if (c[i] > a) b = a, a = c[i];
        else if (c[i] > b) b = c[i];
      }
      group_best[lane] = p.group_score == 1 ? a : a + b;
    }
    __syncwarp();
    // Rank like a stable descending sort: repeatedly the first strictly best remaining group.
    uint32_t kept = 0;
    for (int r = 0; r < p.topk_group && r < p.n_group; ++r) {
      int best = -1;
      for (int g = 0; g < p.n_group; ++g)
        if (!(kept >> g & 1u) && (best < 0 || group_best[g] > group_best[best])) best = g;
      kept |= 1u << best;
    }
    for (int e = lane; e < E; e += 32)
      if (!(kept >> (e / per) & 1u)) choice[e] = -INFINITY;
    __syncwarp();
  }

  // ---- top-k in descending selection score ----
  int32_t* my_ids = ids + size_t(t) * out_stride;
  float* my_w = weights + size_t(t) * out_stride;
  int n_sel = 0;
  if (p.forced_expert >= 0 && p.forced_expert < E) {
    if (lane == 0) {
      my_ids[0] = p.forced_expert;
      choice[p.forced_expert] = -INFINITY;
    }
    n_sel = 1;
    __syncwarp();
  }
  for (; n_sel < K; ++n_sel) {
    const int best = warp_argmax(choice, E, lane);
    if (best < 0) break;  // fewer than k selectable experts (interventions)
    if (lane == 0) {
      my_ids[n_sel] = best;
      choice[best] = -INFINITY;
    }
    __syncwarp();
  }

  // ---- weights from the unbiased scores ----
  if (lane == 0) {
    for (int i = n_sel; i < K; ++i) my_ids[i] = n_sel > 0 ? my_ids[0] : 0;
    float sum = 0.0f;
    for (int i = 0; i < n_sel; ++i) sum += (my_w[i] = scores[my_ids[i]]);
    if (p.renormalize && n_sel > 0) {
      const float denom = p.sigmoid ? sum + 1e-20f : sum;
      for (int i = 0; i < n_sel; ++i) my_w[i] /= denom;
      if (p.scale_after_renorm)
        for (int i = 0; i < n_sel; ++i) my_w[i] *= p.scaling;
    } else {
      for (int i = 0; i < n_sel; ++i) my_w[i] *= p.scaling;
    }
    for (int i = n_sel; i < K; ++i) my_w[i] = 0.0f;
  }
}

}  // namespace

void route(const RouterParams& p, const float* logits, const float* bias, int n_tokens, int32_t* ids, float* weights,
           int out_stride, float* probs, int probs_stride, cudaStream_t stream) {
  const size_t smem = sizeof(float) * kWarps * (2 * size_t(p.n_experts) + kRouterMaxGroups);
  route_kernel<<<detail::ceil_div(n_tokens, kWarps), 32 * kWarps, smem, stream>>>(p, logits, bias, n_tokens, ids,
                                                                                  weights, out_stride, probs,
                                                                                  probs_stride);
}

}  // namespace moescope::kernels
