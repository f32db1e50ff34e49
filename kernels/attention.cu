#include <cfloat>

#include "attention.cuh"
#include "kernel_common.cuh"

namespace moescope::kernels {
namespace {

constexpr int kThreads = 128;
constexpr int kSmemFloats = 12 * 1024;  // 48 KiB: no opt-in needed on any architecture

// Query heads handled by one block: as many of the group as fit beside the span's scores.
int heads_per_block(const AttentionArgs& a, int chunk) {
  int gh = kSmemFloats / (a.dk + chunk);
  gh = gh < 16 ? gh : 16;
  gh = gh < a.group ? gh : a.group;
  return gh < 1 ? 1 : gh;
}

__device__ __forceinline__ const float* kv_row(const KvLayer& kv, int p) {
  return kv.base + kv.block_table[p / kv.block_tokens] * kv.block_stride + size_t(p % kv.block_tokens) * kv.values;
}

// grid (n_kv · head_tiles, splits, n_tokens). partial per (token, head, split): [dv] output,
// then max and sum.
__global__ void attention_split_kernel(AttentionArgs a, int chunk, int splits, int gh, float* __restrict__ partial) {
  extern __shared__ float smem[];
  const int tiles = (a.group + gh - 1) / gh;
  const int g = blockIdx.x / tiles, h0 = g * a.group + (blockIdx.x % tiles) * gh;
  const int nh = min(gh, g * a.group + a.group - h0);
  const int t = blockIdx.z, split = blockIdx.y;
  const int p = *a.pos0 + a.first + t;
  const int lo = a.window > 0 ? max(0, p - a.window + 1) : 0;
  const int begin = lo + split * chunk, end = min(p + 1, begin + chunk);
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, nwarps = blockDim.x >> 5;
  const size_t part_stride = size_t(a.dv) + 2;

  if (begin >= end) {  // span past the end: mark empty
    for (int i = threadIdx.x; i < nh; i += blockDim.x) {
      float* pt = partial + ((size_t(t) * a.n_heads + h0 + i) * splits + split) * part_stride;
      pt[a.dv] = -FLT_MAX;
      pt[a.dv + 1] = 0.0f;
    }
    return;
  }
  const int n = end - begin;
  float* qs = smem;               // [nh][dk]
  float* sc = smem + nh * a.dk;   // [nh][chunk]
  for (int i = threadIdx.x; i < nh * a.dk; i += blockDim.x) {
    const int hh = i / a.dk, d = i % a.dk;
    qs[i] = a.q[size_t(t) * a.q_stride + size_t(h0 + hh) * a.q_head_stride + d];
  }
  __syncthreads();

  // scores[h][j] = q_h · k_j · scale
  for (int j = warp; j < n; j += nwarps) {
    const float* k = kv_row(a.kv, begin + j) + a.k_offset + g * a.k_head_stride;
    for (int hh = 0; hh < nh; ++hh) {
      float s = 0.0f;
      for (int d = lane; d < a.dk; d += 32) s += qs[hh * a.dk + d] * k[d];
      s = detail::warp_sum(s);
      if (lane == 0) sc[hh * chunk + j] = s * a.scale;
    }
  }
  __syncthreads();

  // softmax statistics of this span; scores become exp(s - max)
  for (int hh = warp; hh < nh; hh += nwarps) {
    float m = -FLT_MAX;
    for (int j = lane; j < n; j += 32) m = fmaxf(m, sc[hh * chunk + j]);
    m = detail::warp_max(m);
    float l = 0.0f;
    for (int j = lane; j < n; j += 32) {
      const float e = expf(sc[hh * chunk + j] - m);
      sc[hh * chunk + j] = e;
      l += e;
    }
    l = detail::warp_sum(l);
    if (lane == 0) {
      float* pt = partial + ((size_t(t) * a.n_heads + h0 + hh) * splits + split) * part_stride;
      pt[a.dv] = m;
      pt[a.dv + 1] = l;
    }
  }
  __syncthreads();

  // unnormalised output: Σ_j e_j · v_j
  for (int i = threadIdx.x; i < nh * a.dv; i += blockDim.x) {
    const int hh = i / a.dv, d = i % a.dv;
    float acc = 0.0f;
    for (int j = 0; j < n; ++j) acc += sc[hh * chunk + j] * kv_row(a.kv, begin + j)[a.v_offset + g * a.v_head_stride + d];
    partial[((size_t(t) * a.n_heads + h0 + hh) * splits + split) * part_stride + d] = acc;
  }
}

// grid (n_heads, n_tokens): out = Σ_s o_s e^{m_s - M} / (Σ_s l_s e^{m_s - M} [+ e^{sink_h - M}])
__global__ void attention_merge_kernel(AttentionArgs a, int splits, const float* __restrict__ partial) {
  const int h = blockIdx.x, t = blockIdx.y;
  const size_t part_stride = size_t(a.dv) + 2;
  const float* base = partial + (size_t(t) * a.n_heads + h) * splits * part_stride;
  float m = -FLT_MAX;
  for (int s = 0; s < splits; ++s)
    if (base[s * part_stride + a.dv + 1] > 0.0f) m = fmaxf(m, base[s * part_stride + a.dv]);
  float l = 0.0f;
  for (int s = 0; s < splits; ++s) {
    const float ls = base[s * part_stride + a.dv + 1];
    if (ls > 0.0f) l += ls * expf(base[s * part_stride + a.dv] - m);
  }
  // The sink joins the sum at the scores' max m, as cpu/attention_impl.h adds exp(sink - m).
  if (a.sinks) l += expf(a.sinks[h] - m);
  const float inv = 1.0f / l;
  for (int d = threadIdx.x; d < a.dv; d += blockDim.x) {
    float acc = 0.0f;
    for (int s = 0; s < splits; ++s) {
      const float* pt = base + s * part_stride;
      if (pt[a.dv + 1] > 0.0f) acc += pt[d] * expf(pt[a.dv] - m);
    }
    a.out[size_t(t) * a.out_stride + size_t(h) * a.dv + d] = acc * inv;
  }
}

}  // namespace

long long attention_partial_floats(const AttentionArgs& a, int splits) {
  return (long long)a.n_tokens * a.n_heads * splits * (a.dv + 2);
}

void attention(const AttentionArgs& a, int chunk, int splits, float* partial, cudaStream_t stream) {
  const int gh = heads_per_block(a, chunk);
  const int n_kv = a.n_heads / a.group, tiles = (a.group + gh - 1) / gh;
  const size_t smem = sizeof(float) * size_t(gh) * (a.dk + chunk);
  attention_split_kernel<<<dim3(n_kv * tiles, splits, a.n_tokens), kThreads, smem, stream>>>(a, chunk, splits, gh,
                                                                                             partial);
  attention_merge_kernel<<<dim3(a.n_heads, a.n_tokens), 128, 0, stream>>>(a, splits, partial);
}

}  // namespace moescope::kernels
