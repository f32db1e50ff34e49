#pragma once
// Rotary position embedding in place on heads of a [tokens, ...] buffer. Position of token t is
// *pos0 + t (device memory, so a captured decode graph can be replayed at a new position).
// cos/sin are computed here from inv_freq[dim/2] (YaRN-adjusted on the host) and multiplied by
// attention_factor, exactly as cpu::rope_tables does.
#include <cuda_runtime_api.h>

namespace moescope::kernels {

// Head h of token t starts at x + t·x_stride + offset + h·head_stride; `dim` values are rotated,
// as adjacent pairs (interleaved) or as the two halves.
void rope(float* x, int x_stride, int offset, int head_stride, int heads, int dim, bool interleaved,
          const float* inv_freq, float attention_factor, const int* pos0, int n_tokens, cudaStream_t stream);

}  // namespace moescope::kernels
