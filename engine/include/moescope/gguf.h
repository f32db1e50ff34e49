#pragma once
// GGUF files (llama.cpp's format; what LM Studio, Ollama and Jan keep on disk), versions 2 and 3:
// header, metadata key/values of every type (arrays included), tensor infos and memory-mapped
// tensor data, for one file or a split set NAME-00001-of-0000N.gguf. Every count, length, offset,
// dimension and type is checked against the file before use; tensors are then handed out as views
// into the mapping (no copies). Format: llama.cpp's docs/gguf.md and ggml/src/gguf.cpp.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "moescope/tensor.h"

namespace moescope {

class MappedFile;

// The metadata value types of the format (gguf_type).
enum class GgufType : uint32_t {
  UInt8 = 0, Int8 = 1, UInt16 = 2, Int16 = 3, UInt32 = 4, Int32 = 5, Float32 = 6, Bool = 7,
  String = 8, Array = 9, UInt64 = 10, Int64 = 11, Float64 = 12,
};
const char* gguf_type_name(GgufType t);

// One metadata value. Integers and booleans are kept in `i` (UInt64 values above INT64_MAX in
// `u`), floats in `f`, strings in `s`; an array keeps its element type and its elements in the
// vector that fits (`ints`, `floats` or `strings`). Arrays of arrays are rejected when reading.
struct GgufValue {
  GgufType type = GgufType::UInt8;
  GgufType elem = GgufType::UInt8;  // Array only
  int64_t i = 0;
  uint64_t u = 0;
  double f = 0.0;
  std::string s;
  std::vector<int64_t> ints;
  std::vector<double> floats;
  std::vector<std::string> strings;

  bool is_integer() const;  // an integer or bool scalar
  bool is_number() const;   // integer or float scalar
  size_t size() const;      // elements of an array, 1 otherwise
};

struct GgufTensor {
  std::string name;
  uint32_t ggml_type = 0;      // the type id in the file
  std::vector<int64_t> ne;     // ggml order: ne[0] is the contiguous (innermost) dimension
  DType dtype = DType::F32;
  size_t nbytes = 0;
  size_t file_index = 0;       // which part of a split set holds it
  const void* data = nullptr;  // into the mapping

  // A row-major view with the dimensions outermost first (the reverse of ne), the layout the
  // engine's TensorView and safetensors use: a GGUF [ne0=in, ne1=out] matrix is [out, in].
  TensorView view() const;
};

class GgufFile {
public:
  // Opens a .gguf file, an Ollama blob (a GGUF file without an extension) or any part of a split
  // set (all its parts are opened). Throws Error with one line naming the file and the problem.
  static std::unique_ptr<GgufFile> open(const std::filesystem::path& path);
  ~GgufFile();

  // True when `path` is a regular file that starts with the GGUF magic.
  static bool looks_like_gguf(const std::filesystem::path& path);

  const std::filesystem::path& path() const { return path_; }  // the first part
  uint32_t version() const { return version_; }
  size_t file_count() const { return files_.size(); }
  size_t total_bytes() const { return total_bytes_; }

  const std::map<std::string, GgufValue>& metadata() const { return kv_; }
  const GgufValue* find(const std::string& key) const;
  // Checked reads: Error("FILE: metadata 'KEY' ...") when missing (the plain ones), of the wrong
  // type or outside [lo, hi].
  std::string get_string(const std::string& key) const;
  std::string get_string_or(const std::string& key, const std::string& fallback) const;
  int64_t get_int(const std::string& key, int64_t lo, int64_t hi) const;
  int64_t get_int_or(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const;
  double get_float_or(const std::string& key, double fallback, double lo, double hi) const;
  bool get_bool_or(const std::string& key, bool fallback) const;

  bool has_tensor(const std::string& name) const { return tensors_.count(name) > 0; }
  const GgufTensor& tensor(const std::string& name) const;  // Error("... missing tensor NAME")
  const std::vector<std::string>& tensor_names() const { return order_; }  // in file order
  std::string describe() const;  // "FILE (GGUF v3, N tensors, Q4_K 120 · F32 61 ...)"

private:
  GgufFile() = default;
  void read_part(const std::filesystem::path& file, bool first);

  std::filesystem::path path_;
  uint32_t version_ = 0;
  std::vector<std::unique_ptr<MappedFile>> files_;
  std::map<std::string, GgufValue> kv_;
  std::map<std::string, GgufTensor> tensors_;
  std::vector<std::string> order_;
  // Copies of tensors whose data is not 4-byte aligned in the mapping (possible only with a
  // general.alignment below 4): floats are not read through misaligned pointers.
  std::vector<std::unique_ptr<uint8_t[]>> aligned_copies_;
  size_t total_bytes_ = 0;
};

// The GGUF type id's name ("Q4_K", "IQ2_XXS", "type 99" for an unknown id).
std::string ggml_type_name(uint32_t id);

}  // namespace moescope
