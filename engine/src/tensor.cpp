#include "moescope/tensor.h"

#include <cmath>

#include "moescope/error.h"

namespace moescope {

namespace {

struct DTypeInfo {
  const char* name;
  int64_t block_elems;
  size_t block_bytes;
};

// Block sizes as ggml defines them (ggml.c type_traits; gguf's GGML_QUANT_SIZES).
DTypeInfo info(DType t) {
  switch (t) {
    case DType::F32: return {"F32", 1, 4};
    case DType::F16: return {"F16", 1, 2};
    case DType::BF16: return {"BF16", 1, 2};
    case DType::Q8_0: return {"Q8_0", 32, 34};
    case DType::Q4_0: return {"Q4_0", 32, 18};
    case DType::Q4_1: return {"Q4_1", 32, 20};
    case DType::Q5_0: return {"Q5_0", 32, 22};
    case DType::Q5_1: return {"Q5_1", 32, 24};
    case DType::Q2_K: return {"Q2_K", 256, 84};
    case DType::Q3_K: return {"Q3_K", 256, 110};
    case DType::Q4_K: return {"Q4_K", 256, 144};
    case DType::Q5_K: return {"Q5_K", 256, 176};
    case DType::Q6_K: return {"Q6_K", 256, 210};
    case DType::IQ4_NL: return {"IQ4_NL", 32, 18};
    case DType::IQ4_XS: return {"IQ4_XS", 256, 136};
    case DType::MXFP4: return {"MXFP4", 32, 17};
    case DType::U8: return {"U8", 1, 1};
  }
  return {"?", 1, 1};
}

}  // namespace

bool dtype_is_quantized(DType t) { return info(t).block_elems > 1; }
int64_t dtype_block_elems(DType t) { return info(t).block_elems; }
size_t dtype_block_bytes(DType t) { return info(t).block_bytes; }
const char* dtype_name(DType t) { return info(t).name; }

size_t dtype_size(DType t) {
  if (dtype_is_quantized(t))
    throw Error(std::string("tensors of type ") + dtype_name(t) +
                " (block-quantised) are not supported by this operation yet");
  return info(t).block_bytes;
}

size_t dtype_bytes(DType t, int64_t n) {
  const DTypeInfo i = info(t);
  if (n < 0 || n % i.block_elems != 0)
    throw Error(std::string(i.name) + ": " + std::to_string(n) + " elements are not a whole number of " +
                std::to_string(i.block_elems) + "-element blocks");
  return size_t(n / i.block_elems) * i.block_bytes;
}

std::string TensorView::shape_string() const {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

float f16_to_f32(uint16_t h) {
  const uint32_t sign = uint32_t(h & 0x8000) << 16;
  const uint32_t exp = (h >> 10) & 0x1f;
  const uint32_t man = h & 0x3ff;
  if (exp == 0) {  // zero or subnormal: man * 2^-24
    float v = std::ldexp(float(man), -24);
    return sign ? -v : v;
  }
  if (exp == 31) return std::bit_cast<float>(sign | 0x7f800000u | (man << 13));
  return std::bit_cast<float>(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t f32_to_f16(float f) {
  const uint32_t u = std::bit_cast<uint32_t>(f);
  const uint16_t sign = uint16_t((u >> 16) & 0x8000);
  const float a = std::fabs(f);
  if (std::isnan(f)) return sign | 0x7e00;
  if (a >= 65520.0f) return sign | 0x7c00;  // overflow to inf
  if (a < 6.103515625e-05f) {                 // subnormal range: round to multiple of 2^-24
    return sign | uint16_t(std::nearbyint(a * 16777216.0f));
  }
  uint32_t v = std::bit_cast<uint32_t>(a);
  uint32_t exp = (v >> 23) - 112;
  uint32_t man = v & 0x7fffff;
  uint32_t h = (exp << 10) | (man >> 13);
  const uint32_t rest = man & 0x1fff;
  if (rest > 0x1000 || (rest == 0x1000 && (h & 1))) ++h;  // round to nearest even
  return sign | uint16_t(h);
}

void to_f32(DType t, const void* src, float* dst, int64_t n) {
  if (n <= 0) return;  // an empty tensor may have null pointers (memcpy must not see them)
  switch (t) {
    case DType::F32:
      std::memcpy(dst, src, size_t(n) * 4);
      return;
    case DType::BF16: {
      auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = bf16_to_f32(s[i]);
      return;
    }
    case DType::F16: {
      auto* s = static_cast<const uint16_t*>(src);
      for (int64_t i = 0; i < n; ++i) dst[i] = f16_to_f32(s[i]);
      return;
    }
    default:
      dequantize_blocks(t, src, dst, int64_t(dtype_bytes(t, n) / dtype_block_bytes(t)));
      return;
  }
}

}  // namespace moescope
