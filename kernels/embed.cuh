#pragma once
// out[t, :] = table[ids[t], :] widened to fp32; table is BF16 [vocab, hidden], ids on the device.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::kernels {

void embed(const uint16_t* table, const int32_t* ids, float* out, int n_tokens, int hidden, cudaStream_t stream);

}  // namespace moescope::kernels
