#pragma once
// A Hugging Face checkpoint directory: one or several memory-mapped .safetensors files (with or
// without model.safetensors.index.json). Every header field, offset and size is checked when the
// files are opened; tensors are then handed out as views into the mapping (no copies).
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "moescope/tensor.h"

namespace moescope {

class MappedFile;

class Checkpoint {
public:
  // Opens DIR: uses model.safetensors.index.json when present, else every *.safetensors in DIR.
  static std::unique_ptr<Checkpoint> open(const std::filesystem::path& dir);
  // Opens one .safetensors file on its own (tests, tools).
  static std::unique_ptr<Checkpoint> open_file(const std::filesystem::path& file);
  ~Checkpoint();

  bool has(const std::string& name) const;
  // The tensor, or Error("missing tensor NAME ...").
  const TensorView& get(const std::string& name) const;
  std::vector<std::string> names() const;
  size_t total_bytes() const { return total_bytes_; }
  size_t file_count() const { return files_.size(); }

private:
  Checkpoint() = default;
  void add_file(const std::filesystem::path& file);

  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, TensorView> tensors_;
  std::map<std::string, std::string> origin_;  // tensor -> file name, for messages
  // Copies of the few tensors whose offset in the file is not a multiple of their element size
  // (safetensors does not require alignment): reading a float through a misaligned pointer is
  // undefined behaviour, and vectorised kernels may assume alignment.
  std::vector<std::unique_ptr<uint8_t[]>> aligned_copies_;
  std::filesystem::path dir_;
  size_t total_bytes_ = 0;
};

}  // namespace moescope
