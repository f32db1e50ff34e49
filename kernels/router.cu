#include "kernel_common.cuh"
#include "router.cuh"

namespace moescope::kernels {
namespace {

constexpr int kWarps = 4;  // tokens per block

// The first best selectable expert over the warp (rules::ranks_before), -1 when none is.
__device__ __forceinline__ int warp_argmax(const float* v, int n, int lane) {
  float bv = rules::neg_inf();
  int bi = -1;
  for (int e = lane; e < n; e += 32)
    if (rules::selectable(v[e]) && rules::ranks_before(v[e], e, bv, bi)) bv = v[e], bi = e;
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (rules::ranks_before(ov, oi, bv, bi)) bv = ov, bi = oi;
  }
  return bi;
}

__global__ void route_kernel(rules::RouterRule r, const uint8_t* __restrict__ disabled,
                             const float* __restrict__ logits, const float* __restrict__ bias, int n_tokens,
                             int32_t* ids, float* weights, int out_stride, float* probs, int probs_stride) {
  extern __shared__ float smem[];
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  const int t = blockIdx.x * kWarps + warp;
  if (t >= n_tokens) return;
  const int E = r.n_experts, K = r.top_k;
  float* scores = smem + warp * (2 * E + rules::kMaxGroups);  // [E]
  float* choice = scores + E;                                 // [E]
  float* group_best = choice + E;                             // [n_group]
  const float* lg = logits + size_t(t) * E;

  // ---- scores ----
  if (rules::softmax_scores(r)) {
    float mx = rules::neg_inf();
    for (int e = lane; e < E; e += 32) mx = fmaxf(mx, lg[e]);
    mx = detail::warp_max(mx);
    float sum = 0.0f;
    for (int e = lane; e < E; e += 32) sum += (scores[e] = expf(lg[e] - mx));
    sum = detail::warp_sum(sum);
    for (int e = lane; e < E; e += 32) scores[e] /= sum;
  } else {
    for (int e = lane; e < E; e += 32) scores[e] = rules::sigmoid(lg[e]);
  }
  for (int e = lane; e < E; e += 32) {
    if (probs) probs[size_t(t) * probs_stride + e] = scores[e];
    choice[e] = rules::selection_value(r, scores[e], lg[e], bias, e, disabled);
  }
  __syncwarp();

  // ---- group-limited selection ----
  if (rules::grouped(r)) {
    const int per = rules::group_size(r);
    for (int g = lane; g < r.n_group; g += 32) group_best[g] = rules::group_value(r, choice + g * per, per);
    __syncwarp();
    const uint64_t kept = rules::kept_groups(r, group_best);
    for (int e = lane; e < E; e += 32)
      if (!rules::in_kept_group(r, kept, e)) choice[e] = rules::neg_inf();
    __syncwarp();
  }

  // ---- top-k in descending selection value ----
  int32_t* my_ids = ids + size_t(t) * out_stride;
  float* my_w = weights + size_t(t) * out_stride;
  int n_sel = 0;
  if (r.forced_expert >= 0) {
    if (lane == 0) {
      my_ids[0] = r.forced_expert;
      choice[r.forced_expert] = rules::neg_inf();
    }
    n_sel = 1;
    __syncwarp();
  }
  for (; n_sel < K; ++n_sel) {
    const int best = warp_argmax(choice, E, lane);
    if (best < 0) break;  // fewer than k selectable experts (interventions)
    if (lane == 0) {
      my_ids[n_sel] = best;
      choice[best] = rules::neg_inf();
    }
    __syncwarp();
  }
  if (lane == 0) rules::finish(r, rules::weight_source(r, scores, lg), n_sel, my_ids, my_w);
}

}  // namespace

void route(const rules::RouterRule& rule, const uint8_t* disabled, const float* logits, const float* bias,
           int n_tokens, int32_t* ids, float* weights, int out_stride, float* probs, int probs_stride,
           cudaStream_t stream) {
  const size_t smem = sizeof(float) * kWarps * (2 * size_t(rule.n_experts) + rules::kMaxGroups);
  route_kernel<<<detail::ceil_div(n_tokens, kWarps), 32 * kWarps, smem, stream>>>(
      rule, disabled, logits, bias, n_tokens, ids, weights, out_stride, probs, probs_stride);
}

}  // namespace moescope::kernels
