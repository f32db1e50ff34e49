#pragma once
// Prefill MoE bookkeeping: group the (token, slot) pairs by expert so each expert runs one
// cuBLAS matmul over all its tokens, then combine the expert outputs back per token, weighted.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::kernels {

// From ids/weights [n_tokens][top_k] (row stride id_stride): counts[E], offsets[E] (exclusive
// prefix), rows[n] = t·top_k + k of the n pairs with weight != 0 sorted by expert and, within an
// expert, by (t, k); slot_row[t·top_k + k] = its index in rows (-1 when skipped).
void moe_group(const int32_t* ids, const float* weights, int id_stride, int n_tokens, int top_k, int n_experts,
               int32_t* counts, int32_t* offsets, int32_t* rows, int32_t* slot_row, cudaStream_t stream);
// xg[i, :] = BF16(x[rows[i] / top_k, :]) for i < n_tokens·top_k (rows past the real count are
// never read by a matmul; rows[i] < 0 gives zeros).
void moe_gather(const float* x, int hidden, const int32_t* rows, int n_rows, int top_k, uint16_t* xg,
                cudaStream_t stream);
// y[t, :] (+)= Σ_k weights[t,k] · expert_out[slot_row[t·top_k + k], :]
void moe_combine(const float* expert_out, const int32_t* slot_row, const float* weights, int id_stride, int top_k,
                 float* y, int hidden, int n_tokens, bool accumulate, cudaStream_t stream);

}  // namespace moescope::kernels
