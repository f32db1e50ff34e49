// Reference dequantisers of llama.cpp's block types: the unpacking of quant_blocks.h (where the
// block layouts are described) followed by s·q (+ o) per weight.
//
// Bit-exact with dequantize_blocks in the PyPI `gguf` package (gguf/quants.py), which follows
// ggml-quants.c: every product and sum is the one numpy evaluates, in float32, in the same
// association (e.g. Q4_K is (d·sc)·q − dmin·m, not d·(sc·q) − …). This file is compiled with
// -ffp-contract=off (engine/CMakeLists.txt) so that no a·b+c is fused into one rounding.
// The goldens that hold it to that are made by tests/tools/gen_quant_goldens.py.
#include <algorithm>
#include <cmath>
#include <cstring>

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

// The quantiser of `--weights q8_0` (model_weights.cpp), following quantize_row_q8_0_ref in
// ggml-quants.c and Q8_0.quantize_blocks in gguf/quants.py, whose float32 arithmetic it repeats:
// d = amax / 127, id = 1 / d (0 for an all-zero block), q = roundf(x · id).
void quantize_q8_0(const float* x, void* dst, int64_t n_blocks) {
  auto* out = static_cast<uint8_t*>(dst);
  for (int64_t i = 0; i < n_blocks; ++i, x += 32, out += 34) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[j]));
    const float d = amax / 127.0f;
    const float id = d != 0.0f ? 1.0f / d : 0.0f;
    const uint16_t h = f32_to_f16(d);
    std::memcpy(out, &h, 2);  // little-endian, as in a GGUF file
    for (int j = 0; j < 32; ++j) {
      // roundf(v), ties away from zero, without a libm call: |v| <= 127 (and a little) for finite
      // x, so the truncation and a - i are exact (gguf's np_roundf: floor(a) + floor(2·(a - floor(a)))).
      const float v = x[j] * id;
      const float a = std::isfinite(v) ? std::fabs(v) : 0.0f;
      int i = int(a);
      i += a - float(i) >= 0.5f ? 1 : 0;
      out[2 + j] = uint8_t(int8_t(v < 0.0f ? -i : i));
    }
  }
}

}  // namespace moescope
