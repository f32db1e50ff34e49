#pragma once
// out[t, :] = table[ids[t], :] widened to fp32; table is BF16 [vocab, hidden] (or fp32: the
// checkpoint's values kept for F32/F16/block-type embeddings), ids on the device.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::kernels {

void embed(const uint16_t* table, const int32_t* ids, float* out, int n_tokens, int hidden, cudaStream_t stream);
void embed(const float* table, const int32_t* ids, float* out, int n_tokens, int hidden, cudaStream_t stream);

}  // namespace moescope::kernels
