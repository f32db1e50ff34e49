#include "argmax.cuh"
#include "kernel_common.cuh"

namespace moescope::kernels {
namespace {

__global__ void argmax_kernel(const float* __restrict__ logits, int V, int32_t* out) {
  __shared__ float sv[32];
  __shared__ int si[32];
  const float* row = logits + size_t(blockIdx.x) * V;
  float bv = -INFINITY;
  int bi = -1;
  for (int i = threadIdx.x; i < V; i += blockDim.x)
    if (row[i] > bv || bi < 0) bv = row[i], bi = i;
  auto better = [](float v, int i, float w, int j) { return j >= 0 && (i < 0 || w > v || (w == v && j < i)); };
  for (int o = 16; o > 0; o >>= 1) {
    const float ov = __shfl_xor_sync(0xffffffffu, bv, o);
    const int oi = __shfl_xor_sync(0xffffffffu, bi, o);
    if (better(bv, bi, ov, oi)) bv = ov, bi = oi;
  }
  const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
  if (lane == 0) sv[warp] = bv, si[warp] = bi;
  __syncthreads();
  if (threadIdx.x == 0) {
    for (int w = 1; w < int(blockDim.x >> 5); ++w)
      if (better(bv, bi, sv[w], si[w])) bv = sv[w], bi = si[w];
    out[blockIdx.x] = bi;
  }
}

}  // namespace

void argmax(const float* logits, int vocab, int n_rows, int32_t* out, cudaStream_t stream) {
  argmax_kernel<<<n_rows, 1024, 0, stream>>>(logits, vocab, out);
}

}  // namespace moescope::kernels
