#pragma once
// The decode matmuls straight from llama.cpp's block-quantised rows (GGUF's Q8_0, Q4_0, Q4_1,
// Q5_0, Q5_1, Q2_K..Q6_K, IQ4_NL, IQ4_XS, MXFP4): the blocks are decoded on the fly in registers
// (quant_blocks.cuh), fp32 accumulation, no widened copy of the weights. A row of `in` weights is
// in / block_elems blocks (in a multiple of the block size); rows follow each other from a 16-byte
// aligned start (every device allocation and stack of whole blocks here). Same
// contracts as gemv.cuh and moe_gemv.cuh otherwise; x and y are fp32.
#include <cuda_runtime_api.h>

#include <cstdint>

#include "gemv.cuh"
#include "moe_gemv.cuh"
#include "moescope/tensor.h"

namespace moescope::kernels {

// The block types these kernels (and quant_dequantize) read.
bool quant_supported(DType t);

// y[t, r] (+)= dot(x[t, :], W[r, :]) + b[r] for t < n_tokens <= kGemvMaxTokens.
void quant_gemv(const float* x, int x_stride, const void* w, DType wt, int out, int in, const float* bias, float* y,
                int y_stride, int n_tokens, bool accumulate, cudaStream_t stream);

// moe_gate_up / moe_down with block-quantised experts: gate_up [E][2W rows of H] (gate rows, then
// up rows, one type), down [E][H rows of W] (its own type).
void quant_moe_gate_up(const float* x, int hidden, const void* gate_up, DType wt, int width, const int32_t* ids,
                       const float* weights, int id_stride, int top_k, float* h, int n_tokens, cudaStream_t stream,
                       const ExpertExtras& extras = {});
void quant_moe_down(const float* h, int width, const void* down, DType wt, int hidden, const int32_t* ids,
                    const float* weights, int id_stride, int top_k, float* y, int n_tokens, bool accumulate,
                    cudaStream_t stream, const ExpertExtras& extras = {});

}  // namespace moescope::kernels
