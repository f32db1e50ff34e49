#include "kernel_common.cuh"
#include "random_init.cuh"

namespace moescope::kernels {
namespace {

__device__ __forceinline__ uint64_t mix64(uint64_t z) {  // splitmix64 finaliser
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

__global__ void fill_kernel(void* dst, bool dst_f32, long long n, uint64_t seed, float scale, bool random, float value) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x) {
    float v = value;
    if (random) v = (float(mix64(seed + uint64_t(i) * 0x9E3779B97F4A7C15ull) >> 40) * (1.0f / 16777216.0f) * 2.0f - 1.0f) * scale;
    if (dst_f32) static_cast<float*>(dst)[i] = v;
    else static_cast<uint16_t*>(dst)[i] = detail::f2bf16(v);
  }
}

__global__ void add_constant_kernel(float* x, long long n, float value) {
  for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
    x[i] += value;
}

unsigned blocks_for(long long n) { return unsigned(n / 256 + 1 < 16384 ? n / 256 + 1 : 16384); }

}  // namespace

void fill_uniform(void* dst, bool dst_f32, long long n, uint64_t seed, float scale, cudaStream_t stream) {
  fill_kernel<<<blocks_for(n), 256, 0, stream>>>(dst, dst_f32, n, seed, scale, true, 0.0f);
}

void fill_constant(void* dst, bool dst_f32, long long n, float value, cudaStream_t stream) {
  fill_kernel<<<blocks_for(n), 256, 0, stream>>>(dst, dst_f32, n, 0, 0.0f, false, value);
}

void add_constant(float* x, long long n, float value, cudaStream_t stream) {
  if (n <= 0) return;
  add_constant_kernel<<<blocks_for(n), 256, 0, stream>>>(x, n, value);
}

}  // namespace moescope::kernels
