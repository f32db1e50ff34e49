#pragma once
// Element type conversions on the device: weights at upload (F32/F16/BF16 → BF16 or F32) and
// fp32 activations → BF16 for the cuBLAS matmuls.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::kernels {

enum class SrcType : int { F32 = 0, F16 = 1, BF16 = 2 };  // the checkpoint's dtype

// dst[n] (BF16, or fp32 when dst_f32) = src[n] of src_type.
void convert(const void* src, SrcType src_type, void* dst, bool dst_f32, long long n, cudaStream_t stream);
// dst[rows, cols] BF16 (contiguous) = src rows (fp32, row stride src_stride).
void to_bf16_rows(const float* src, int src_stride, uint16_t* dst, int rows, int cols, cudaStream_t stream);

}  // namespace moescope::kernels
