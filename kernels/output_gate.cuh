#pragma once
// Qwen3.5's gated attention: the attention output of each head multiplied by sigmoid of the
// gate that q_proj produced beside the query: y[t, h·d + i] *= sigmoid(g[t·g_stride + h·g_head_stride + i]).
#include <cuda_runtime_api.h>

namespace moescope::kernels {

void output_gate(float* y, int y_stride, const float* gate, int gate_stride, int gate_head_stride, int heads, int d,
                 int n_tokens, cudaStream_t stream);

}  // namespace moescope::kernels
