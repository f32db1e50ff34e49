#include "kernel_common.cuh"
#include "output_gate.cuh"

namespace moescope::kernels {
namespace {

__global__ void output_gate_kernel(float* y, int y_stride, const float* __restrict__ g, int g_stride,
                                   int g_head_stride, int heads, int d, long long total) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < total; i += (long long)gridDim.x * blockDim.x) {
    const long long t = i / (heads * d);
    const int rem = int(i % (heads * d)), h = rem / d, j = rem % d;
    const float gate = g[t * g_stride + (long long)h * g_head_stride + j];
    y[t * y_stride + rem] *= 1.0f / (1.0f + expf(-gate));
  }
}

}  // namespace

void output_gate(float* y, int y_stride, const float* gate, int gate_stride, int gate_head_stride, int heads, int d,
                 int n_tokens, cudaStream_t stream) {
  const long long total = (long long)n_tokens * heads * d;
  if (total <= 0) return;
  const unsigned blocks = unsigned(total / 256 + 1 < 4096 ? total / 256 + 1 : 4096);
  output_gate_kernel<<<blocks, 256, 0, stream>>>(y, y_stride, gate, gate_stride, gate_head_stride, heads, d, total);
}

}  // namespace moescope::kernels
