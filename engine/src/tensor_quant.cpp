// Reference dequantisers of llama.cpp's block types: the unpacking of quant_blocks.h (where the
// block layouts are described) followed by s·q (+ o) per weight.
//
// Bit-exact with dequantize_blocks in the PyPI `gguf` package (gguf/quants.py), which follows
// ggml-quants.c: every product and sum is the one numpy evaluates, in float32, in the same
// association (e.g. Q4_K is (d·sc)·q − dmin·m, not d·(sc·q) − …). This file is compiled with
// -ffp-contract=off (engine/CMakeLists.txt) so that no a·b+c is fused into one rounding.
// The goldens that hold it to that are made by tests/tools/gen_quant_goldens.py.
#include "moescope/error.h"
#include "moescope/tensor.h"
#include "quant_blocks.h"

namespace moescope {

void dequantize_blocks(DType t, const void* src, float* dst, int64_t n_blocks) {
  const auto* p = static_cast<const uint8_t*>(src);
  const bool known = quant::with_block_type(t, [&]<DType T>() {
    constexpr size_t bytes = quant::kBlockBytes<T>;
    constexpr int elems = quant::kBlockElems<T>;
    int8_t q[elems];
    float s[elems / quant::kGroup], o[elems / quant::kGroup];
    for (int64_t i = 0; i < n_blocks; ++i) {
      quant::unpack<T>(p + size_t(i) * bytes, q, s, o);
      float* y = dst + i * elems;
      for (int e = 0; e < elems; ++e) {
        const int g = e / quant::kGroup;
        if constexpr (quant::has_addend(T)) y[e] = s[g] * float(q[e]) + o[g];
        else y[e] = s[g] * float(q[e]);
      }
    }
  });
  if (!known) throw Error(std::string("dequantize_blocks: ") + dtype_name(t) + " is not a block type");
}

}  // namespace moescope
