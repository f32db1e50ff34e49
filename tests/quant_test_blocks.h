#pragma once
// Random blocks of llama.cpp's block types for the tests (test_cpu_kernels, test_gguf): random code
// bytes, with each block's scale fields (the fp16 d / dmin, MXFP4's E8M0 exponent) set so that the
// block's weights have about the asked root mean square (within a factor of 1.5 either way), as
// trained weights of that size would. The values are what the reference dequantiser makes of them.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <random>
#include <vector>

#include "moescope/tensor.h"

namespace moescope::test {

inline std::vector<uint8_t> random_blocks(DType dt, size_t n_blocks, std::mt19937& rng, float rms) {
  struct Fields { DType t; std::vector<int> at; };  // byte offsets of the fp16 scale fields
  const Fields table[] = {{DType::Q8_0, {0}},     {DType::Q4_0, {0}},     {DType::Q4_1, {0, 2}},
                          {DType::Q5_0, {0}},     {DType::Q5_1, {0, 2}},  {DType::Q2_K, {80, 82}},
                          {DType::Q3_K, {108}},   {DType::Q4_K, {0, 2}},  {DType::Q5_K, {0, 2}},
                          {DType::Q6_K, {208}},   {DType::IQ4_NL, {0}},   {DType::IQ4_XS, {0}}};
  const size_t bb = dtype_block_bytes(dt);
  const int64_t be = dtype_block_elems(dt);
  std::vector<uint8_t> out(n_blocks * bb);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> jitter(-0.58f, 0.58f);  // log2(1.5)
  std::vector<float> w(static_cast<size_t>(be), 0.0f);
  for (size_t b = 0; b < n_blocks; ++b) {
    uint8_t* blk = out.data() + b * bb;
    for (size_t i = 0; i < bb; ++i) blk[i] = uint8_t(byte(rng));
    std::vector<int> at;
    for (const auto& f : table)
      if (f.t == dt) at = f.at;
    auto set = [&](float scale) {  // every scale field to `scale` (MXFP4: 2^round(log2 scale))
      if (dt == DType::MXFP4) blk[0] = uint8_t(std::clamp(128 + int(std::lround(std::log2(scale))), 2, 254));
      const uint16_t h = f32_to_f16(scale);
      for (int o : at) std::memcpy(blk + o, &h, 2);
    };
    set(1.0f);
    dequantize_blocks(dt, blk, w.data(), 1);
    double ss = 0.0;
    for (float v : w) ss += double(v) * v;
    const float now = float(std::sqrt(ss / double(be)));
    set(now > 0.0f ? rms / now * std::exp2(jitter(rng)) : 1.0f);
  }
  return out;
}

}  // namespace moescope::test
