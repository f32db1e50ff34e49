#include "kv_store.cuh"

namespace moescope::kernels {
namespace {

__global__ void kv_store_kernel(KvLayer kv, const float* __restrict__ src, int src_stride, const int* __restrict__ pos0) {
  const int p = *pos0 + int(blockIdx.x);
  float* dst = kv.base + kv.block_table[p / kv.block_tokens] * kv.block_stride +
               size_t(p % kv.block_tokens) * kv.values;
  const float* s = src + size_t(blockIdx.x) * src_stride;
  for (int i = threadIdx.x; i < kv.values; i += blockDim.x) dst[i] = s[i];
}

}  // namespace

void kv_store(const KvLayer& kv, const float* src, int src_stride, const int* pos0, int n_tokens, cudaStream_t stream) {
  kv_store_kernel<<<n_tokens, 128, 0, stream>>>(kv, src, src_stride, pos0);
}

}  // namespace moescope::kernels
