#pragma once
// Greedy sampling on the device: out[t] = index of the largest logits[t, :] (lowest index on
// ties, like torch.argmax and moescope::argmax).
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::kernels {

void argmax(const float* logits, int vocab, int n_rows, int32_t* out, cudaStream_t stream);

}  // namespace moescope::kernels
