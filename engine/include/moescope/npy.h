#pragma once
// NumPy .npy files (format 1.0/2.0, little-endian float32, C order): the logits format of
// `moescope-cli forward` and of the golden data.
#include <cstdint>
#include <filesystem>
#include <vector>

namespace moescope {

struct NpyArray {
  std::vector<int64_t> shape;
  std::vector<float> data;
};

void write_npy(const std::filesystem::path& path, const float* data, const std::vector<int64_t>& shape);
NpyArray read_npy(const std::filesystem::path& path);  // float32 '<f4' only; Error otherwise

}  // namespace moescope
