#pragma once
// Synthetic weights made on the device (benchmarks of real shapes without a checkpoint):
// uniform values in ±scale from a counter-based hash of (seed, index), or a constant.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::kernels {

void fill_uniform(void* dst, bool dst_f32, long long n, uint64_t seed, float scale, cudaStream_t stream);
void fill_constant(void* dst, bool dst_f32, long long n, float value, cudaStream_t stream);
// x[i] += value for i < n, fp32 (norm weights stored as w and used as offset + w, at upload).
void add_constant(float* x, long long n, float value, cudaStream_t stream);

}  // namespace moescope::kernels
