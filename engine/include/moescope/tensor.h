#pragma once
// Element types and non-owning views of tensors as they sit in a checkpoint (row-major).
#include <bit>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

namespace moescope {

// F32, F16 and BF16 are element types. The others are llama.cpp's block-quantised types (GGUF
// files): a row of n elements is stored as n / dtype_block_elems() blocks of dtype_block_bytes()
// bytes each; a TensorView's shape still counts elements. Layouts: engine/src/tensor_quant.cpp.
enum class DType : uint8_t {
  F32, F16, BF16,
  Q8_0, Q4_0, Q4_1, Q5_0, Q5_1,        // 32 elements a block
  Q2_K, Q3_K, Q4_K, Q5_K, Q6_K,        // 256 elements a block ("k-quants")
  IQ4_NL, IQ4_XS, MXFP4,               // 32, 256, 32
  U8,  // raw bytes: gpt-oss' MXFP4 `*_blocks` / `*_scales` tensors in safetensors, repacked at load
};

bool dtype_is_quantized(DType t);     // a block type
int64_t dtype_block_elems(DType t);    // 1 for F32/F16/BF16
size_t dtype_block_bytes(DType t);     // bytes per block (the element size for F32/F16/BF16)
// Bytes per element of F32/F16/BF16. Throws Error for a block type, which has none: code that
// addresses elements one by one cannot handle it (use dtype_bytes for row sizes).
size_t dtype_size(DType t);
// Bytes of n consecutive elements starting at a block boundary; throws Error when n is not a
// multiple of the block size.
size_t dtype_bytes(DType t, int64_t n);
const char* dtype_name(DType t);  // "F32", "F16", "BF16" (the safetensors spelling), "Q4_K", ...

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
  size_t nbytes() const { return dtype_bytes(dtype, numel()); }
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

// Widens n elements of any dtype to float; for a block type src must start at a block and n be a
// multiple of the block size (the block types are dequantised, see dequantize_blocks).
void to_f32(DType t, const void* src, float* dst, int64_t n);

// Reference dequantisation of n_blocks blocks of a block type into n_blocks * dtype_block_elems(t)
// floats, bit-exact with the dequantize_blocks of the PyPI `gguf` package (gguf/quants.py), the
// reference the goldens in tests/data/quant/ come from. Throws Error for a non-block type.
void dequantize_blocks(DType t, const void* src, float* dst, int64_t n_blocks);

// Quantises 32·n_blocks floats into n_blocks Q8_0 blocks (fp16 d = max|x|/127, then 32 int8
// round(x/d), ties away from zero), byte for byte what llama.cpp's quantize_row_q8_0_ref and the
// PyPI gguf package's quantize make of them. Non-finite products give code 0.
void quantize_q8_0(const float* x, void* dst, int64_t n_blocks);

}  // namespace moescope
