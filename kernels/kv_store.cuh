#pragma once
// Appends n_tokens rows to a paged KV cache layer: cache row of position p lives in physical
// block block_table[p / block_tokens] at slot p % block_tokens; a layer's block holds
// [block_tokens, values] fp32. Source row t: src + t·src_stride (values floats); p = *pos0 + t.
#include <cuda_runtime_api.h>

#include <cstdint>

namespace moescope::kernels {

struct KvLayer {
  float* base;               // this layer's first block (physical block 0)
  const int32_t* block_table;
  int block_tokens;
  int values;                // floats per position
  long long block_stride;    // floats between physical blocks of this layer
};

void kv_store(const KvLayer& kv, const float* src, int src_stride, const int* pos0, int n_tokens, cudaStream_t stream);

}  // namespace moescope::kernels
