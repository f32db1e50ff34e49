#pragma once
// Element types and non-owning views of tensors as they sit in a checkpoint (row-major).
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace moescope {

enum class DType : uint8_t { F32, F16, BF16 };

size_t dtype_size(DType t);
const char* dtype_name(DType t);  // "F32", "F16", "BF16" (the safetensors spelling)

// A view of a tensor owned elsewhere (a memory-mapped checkpoint, a backend buffer).
struct TensorView {
  DType dtype = DType::F32;
  std::vector<int64_t> shape;
  const void* data = nullptr;

  int64_t numel() const {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    return n;
  }
  size_t nbytes() const { return size_t(numel()) * dtype_size(dtype); }
  int64_t dim(int i) const { return shape.at(size_t(i)); }
  std::string shape_string() const;  // "[64, 128]"
};

// ---- scalar conversions (BF16 is the upper half of an IEEE float) ----------------------------
inline float bf16_to_f32(uint16_t h) { return std::bit_cast<float>(uint32_t(h) << 16); }

inline uint16_t f32_to_bf16(float f) {  // round to nearest even, NaN kept quiet
  uint32_t u = std::bit_cast<uint32_t>(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return uint16_t(u >> 16);
}

float f16_to_f32(uint16_t h);
uint16_t f32_to_f16(float f);

// Widens n elements of any dtype to float.
void to_f32(DType t, const void* src, float* dst, int64_t n);

}  // namespace moescope
