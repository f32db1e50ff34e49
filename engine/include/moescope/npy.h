#pragma once
// NumPy .npy files (format 1.0/2.0, little-endian float32, C order): the logits format of
// `moescope-cli forward` and of the golden data. MappedNpy reads integer arrays of any size
// memory-mapped (routing dumps, moescope/routing_dump.h).
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

// A .npy file (format 1.0, 2.0 or 3.0) of little-endian integers ('|i1' '<i2' '<i4' '<i8' and the
// unsigned ones), C order, mapped read-only: nothing is read until asked for. Error on another
// dtype, Fortran order, or a file shorter than its shape says.
class MappedNpy {
public:
  explicit MappedNpy(const std::filesystem::path& path);
  ~MappedNpy();
  MappedNpy(const MappedNpy&) = delete;
  MappedNpy& operator=(const MappedNpy&) = delete;
  const std::vector<int64_t>& shape() const { return shape_; }
  size_t count() const { return count_; }
  int64_t at(size_t i) const;  // element i in C order
  // The raw elements (C order, little-endian, element_bytes() each, signed or not) in the mapping.
  const uint8_t* data() const { return data_; }
  int element_bytes() const { return bytes_; }
  bool is_signed() const { return signed_; }
  // Gives back the pages of elements [0, i) (read again from the file if touched later): a
  // streamed pass keeps its resident memory small however large the file.
  void release_before(size_t i) const;

private:
  std::vector<int64_t> shape_;
  size_t count_ = 0;
  int bytes_ = 0;        // per element
  bool signed_ = true;
  const uint8_t* data_ = nullptr;
  void* map_ = nullptr;
  size_t map_size_ = 0;
  int fd_ = -1;
};

}  // namespace moescope
