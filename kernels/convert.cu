#include <cuda_fp16.h>

#include "convert.cuh"
#include "kernel_common.cuh"

namespace moescope::kernels {
namespace {

__global__ void convert_kernel(const void* src, int src_type, void* dst, bool dst_f32, long long n) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    float v;
    if (src_type == 0) v = static_cast<const float*>(src)[i];
    else if (src_type == 1) v = __half2float(static_cast<const __half*>(src)[i]);
    else v = detail::bf16f(static_cast<const uint16_t*>(src)[i]);
    if (dst_f32) static_cast<float*>(dst)[i] = v;
    else static_cast<uint16_t*>(dst)[i] = detail::f2bf16(v);
  }
}

__global__ void to_bf16_rows_kernel(const float* __restrict__ src, int src_stride, uint16_t* __restrict__ dst,
                                    int cols) {
  const float* s = src + size_t(blockIdx.x) * src_stride;
  uint16_t* d = dst + size_t(blockIdx.x) * cols;
  for (int i = threadIdx.x; i < cols; i += blockDim.x) d[i] = detail::f2bf16(s[i]);
}

}  // namespace

void convert(const void* src, SrcType src_type, void* dst, bool dst_f32, long long n, cudaStream_t stream) {
  const long long blocks = n / 256 + 1;
  convert_kernel<<<unsigned(blocks < 8192 ? blocks : 8192), 256, 0, stream>>>(src, int(src_type), dst, dst_f32, n);
}

void to_bf16_rows(const float* src, int src_stride, uint16_t* dst, int rows, int cols, cudaStream_t stream) {
  to_bf16_rows_kernel<<<rows, 256, 0, stream>>>(src, src_stride, dst, cols);
}

}  // namespace moescope::kernels
