#pragma once
// llama.cpp's block types widened on the device (prefill: an expert's or a matrix's blocks into a
// BF16 scratch matrix that the cuBLAS path multiplies). The values are bit-exact with
// dequantize_blocks (tensor_quant.cpp), and their BF16 rounding with f32_to_bf16 of those.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "moescope/tensor.h"

namespace moescope::kernels {

// dst[n_blocks · block_elems(t)] (BF16, or fp32 when dst_f32; 16-byte aligned) = the weights of
// n_blocks blocks of type t at src (16-byte aligned, or at least as aligned as the block size
// allows: kQAlign in quant_blocks.cuh). t must be quant_supported (quant_gemv.cuh).
void quant_dequantize(const void* src, DType t, long long n_blocks, void* dst, bool dst_f32, cudaStream_t stream);

}  // namespace moescope::kernels
