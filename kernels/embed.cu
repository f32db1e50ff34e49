#include "embed.cuh"
#include "kernel_common.cuh"

namespace moescope::kernels {
namespace {

template <class W>
__global__ void embed_kernel(const W* __restrict__ table, const int32_t* __restrict__ ids, float* __restrict__ out,
                             int hidden) {
  const W* row = table + size_t(ids[blockIdx.x]) * hidden;
  for (int i = threadIdx.x; i < hidden; i += blockDim.x) out[size_t(blockIdx.x) * hidden + i] = detail::load_w(row, i);
}

}  // namespace

void embed(const uint16_t* table, const int32_t* ids, float* out, int n_tokens, int hidden, cudaStream_t stream) {
  embed_kernel<<<n_tokens, 256, 0, stream>>>(table, ids, out, hidden);
}

void embed(const float* table, const int32_t* ids, float* out, int n_tokens, int hidden, cudaStream_t stream) {
  embed_kernel<<<n_tokens, 256, 0, stream>>>(table, ids, out, hidden);
}

}  // namespace moescope::kernels
