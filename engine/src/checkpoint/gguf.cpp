// GGUF reader (see moescope/gguf.h). Layout, all little-endian:
//   "GGUF", u32 version, u64 n_tensors, u64 n_kv,
//   n_kv × (string key, u32 type, value), with string = u64 length + bytes and
//     array = u32 element type + u64 count + elements,
//   n_tensors × (string name, u32 n_dims, n_dims × u64 ne, u32 ggml type, u64 offset),
//   padding to general.alignment (default 32), then the tensor data; each offset is relative to
//   the start of the data and a multiple of the alignment.
// Nothing in the file is trusted: every read is checked against the bytes that remain, every
// count against what could fit in them, so a corrupt or truncated file gives one clear message.
#include "moescope/gguf.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <limits>
#include <regex>

#include "checkpoint/mapped_file.h"
#include "moescope/error.h"

namespace fs = std::filesystem;

namespace moescope {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t kDefaultAlignment = 32;
constexpr uint32_t kMaxDims = 4;                 // GGML_MAX_DIMS
constexpr uint64_t kMaxElements = 1ull << 48;    // per tensor; real ones are below 2^36
constexpr uint64_t kMaxKeyBytes = 65535;         // the format's limit on key length

struct TypeInfo {
  const char* name;
  bool supported;
  DType dtype;
};

// ggml_type ids (ggml.h) -> name, and the DType where moescope reads the type.
TypeInfo ggml_type(uint32_t id) {
  switch (id) {
    case 0: return {"F32", true, DType::F32};
    case 1: return {"F16", true, DType::F16};
    case 2: return {"Q4_0", true, DType::Q4_0};
    case 3: return {"Q4_1", true, DType::Q4_1};
    case 6: return {"Q5_0", true, DType::Q5_0};
    case 7: return {"Q5_1", true, DType::Q5_1};
    case 8: return {"Q8_0", true, DType::Q8_0};
    case 9: return {"Q8_1", false, DType::F32};
    case 10: return {"Q2_K", true, DType::Q2_K};
    case 11: return {"Q3_K", true, DType::Q3_K};
    case 12: return {"Q4_K", true, DType::Q4_K};
    case 13: return {"Q5_K", true, DType::Q5_K};
    case 14: return {"Q6_K", true, DType::Q6_K};
    case 15: return {"Q8_K", false, DType::F32};
    case 16: return {"IQ2_XXS", false, DType::F32};
    case 17: return {"IQ2_XS", false, DType::F32};
    case 18: return {"IQ3_XXS", false, DType::F32};
    case 19: return {"IQ1_S", false, DType::F32};
    case 20: return {"IQ4_NL", true, DType::IQ4_NL};
    case 21: return {"IQ3_S", false, DType::F32};
    case 22: return {"IQ2_S", false, DType::F32};
    case 23: return {"IQ4_XS", true, DType::IQ4_XS};
    case 24: return {"I8", false, DType::F32};
    case 25: return {"I16", false, DType::F32};
    case 26: return {"I32", false, DType::F32};
    case 27: return {"I64", false, DType::F32};
    case 28: return {"F64", false, DType::F32};
    case 29: return {"IQ1_M", false, DType::F32};
    case 30: return {"BF16", true, DType::BF16};
    case 34: return {"TQ1_0", false, DType::F32};
    case 35: return {"TQ2_0", false, DType::F32};
    case 39: return {"MXFP4", true, DType::MXFP4};
    case 40: return {"NVFP4", false, DType::F32};
    case 41: return {"Q1_0", false, DType::F32};
  }
  return {nullptr, false, DType::F32};
}

const char* kSupportedTypes = "F32, F16, BF16, Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q2_K, Q3_K, Q4_K, Q5_K, Q6_K, "
                              "IQ4_NL, IQ4_XS, MXFP4";

// Bytes a value of a fixed-size type takes (0 for string and array).
size_t fixed_size(GgufType t) {
  switch (t) {
    case GgufType::UInt8: case GgufType::Int8: case GgufType::Bool: return 1;
    case GgufType::UInt16: case GgufType::Int16: return 2;
    case GgufType::UInt32: case GgufType::Int32: case GgufType::Float32: return 4;
    case GgufType::UInt64: case GgufType::Int64: case GgufType::Float64: return 8;
    case GgufType::String: case GgufType::Array: return 0;
  }
  return 0;
}

// Bounds-checked reads over [p, end) of one file; every failure names the file and what was
// being read.
class Cursor {
public:
  Cursor(const uint8_t* begin, size_t size, std::string file) : begin_(begin), p_(begin), end_(begin + size),
                                                                 file_(std::move(file)) {}

  size_t pos() const { return size_t(p_ - begin_); }
  size_t left() const { return size_t(end_ - p_); }
  const std::string& file() const { return file_; }

  [[noreturn]] void fail(const std::string& why) const { throw Error(file_ + ": " + why); }

  void need(uint64_t n, const char* what) const {
    if (n > left())
      fail(std::string("truncated GGUF file: ") + what + " at byte " + std::to_string(pos()) + " needs " +
           std::to_string(n) + " bytes, " + std::to_string(left()) + " left");
  }
  template <class T>
  T read(const char* what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, p_, sizeof(T));
    p_ += sizeof(T);
    return v;
  }
  std::string string(const char* what, uint64_t max_len = std::numeric_limits<uint64_t>::max()) {
    const uint64_t n = read<uint64_t>(what);
    if (n > max_len) fail(std::string(what) + " of " + std::to_string(n) + " bytes is longer than allowed");
    need(n, what);
    std::string s(reinterpret_cast<const char*>(p_), size_t(n));
    p_ += n;
    return s;
  }

private:
  const uint8_t* begin_;
  const uint8_t* p_;
  const uint8_t* end_;
  std::string file_;
};

GgufType read_type(Cursor& c, const std::string& key) {
  const uint32_t t = c.read<uint32_t>("a metadata value type");
  if (t > uint32_t(GgufType::Float64))
    c.fail("metadata '" + key + "' has unknown value type " + std::to_string(t));
  return GgufType(t);
}

// One scalar of type t into v (integers into i/u, floats into f, strings into s).
void read_scalar(Cursor& c, GgufType t, GgufValue& v) {
  switch (t) {
    case GgufType::UInt8: v.i = c.read<uint8_t>("a metadata value"); break;
    case GgufType::Int8: v.i = c.read<int8_t>("a metadata value"); break;
    case GgufType::UInt16: v.i = c.read<uint16_t>("a metadata value"); break;
    case GgufType::Int16: v.i = c.read<int16_t>("a metadata value"); break;
    case GgufType::UInt32: v.i = c.read<uint32_t>("a metadata value"); break;
    case GgufType::Int32: v.i = c.read<int32_t>("a metadata value"); break;
    case GgufType::Int64: v.i = c.read<int64_t>("a metadata value"); break;
    case GgufType::UInt64:
      v.u = c.read<uint64_t>("a metadata value");
      v.i = v.u > uint64_t(std::numeric_limits<int64_t>::max()) ? std::numeric_limits<int64_t>::max() : int64_t(v.u);
      break;
    case GgufType::Bool: {
      const uint8_t b = c.read<uint8_t>("a metadata value");
      if (b > 1) c.fail("a boolean metadata value is " + std::to_string(b) + ", not 0 or 1");
      v.i = b;
      break;
    }
    case GgufType::Float32: v.f = c.read<float>("a metadata value"); break;
    case GgufType::Float64: v.f = c.read<double>("a metadata value"); break;
    case GgufType::String: v.s = c.string("a metadata string"); break;
    case GgufType::Array: c.fail("nested metadata arrays are not supported");
  }
}

GgufValue read_value(Cursor& c, const std::string& key) {
  GgufValue v;
  v.type = read_type(c, key);
  if (v.type != GgufType::Array) {
    read_scalar(c, v.type, v);
    return v;
  }
  v.elem = read_type(c, key);
  if (v.elem == GgufType::Array) c.fail("metadata '" + key + "' is an array of arrays, which GGUF readers do not support");
  const uint64_t n = c.read<uint64_t>("an array length");
  const size_t min_elem = v.elem == GgufType::String ? 8 : fixed_size(v.elem);
  if (n > c.left() / min_elem)
    c.fail("metadata '" + key + "' claims " + std::to_string(n) + " elements, more than the " +
           std::to_string(c.left()) + " bytes left can hold (truncated or corrupt file)");
  GgufValue e;
  if (v.elem == GgufType::String) {
    v.strings.reserve(size_t(n));
    for (uint64_t k = 0; k < n; ++k) v.strings.push_back(c.string("a metadata string"));
  } else if (v.elem == GgufType::Float32 || v.elem == GgufType::Float64) {
    v.floats.reserve(size_t(n));
    for (uint64_t k = 0; k < n; ++k) {
      read_scalar(c, v.elem, e);
      v.floats.push_back(e.f);
    }
  } else {
    v.ints.reserve(size_t(n));
    for (uint64_t k = 0; k < n; ++k) {
      read_scalar(c, v.elem, e);
      v.ints.push_back(e.i);
    }
  }
  return v;
}

std::string describe_value_type(const GgufValue& v) {
  if (v.type == GgufType::Array) return std::string("an array of ") + gguf_type_name(v.elem);
  return std::string("a ") + gguf_type_name(v.type);
}

// NAME-00001-of-00003.gguf -> {NAME, 1, 3}
struct SplitName {
  std::string prefix;
  int no = 0, count = 0;
};
bool parse_split_name(const std::string& filename, SplitName& out) {
  static const std::regex re(R"(^(.*)-([0-9]{5})-of-([0-9]{5})\.gguf$)");
  std::smatch m;
  if (!std::regex_match(filename, m, re)) return false;
  out.prefix = m[1].str();
  out.no = std::stoi(m[2].str());
  out.count = std::stoi(m[3].str());
  return true;
}
std::string split_file_name(const std::string& prefix, int no, int count) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "-%05d-of-%05d.gguf", no, count);
  return prefix + buf;
}

}  // namespace

const char* gguf_type_name(GgufType t) {
  switch (t) {
    case GgufType::UInt8: return "uint8";
    case GgufType::Int8: return "int8";
    case GgufType::UInt16: return "uint16";
    case GgufType::Int16: return "int16";
    case GgufType::UInt32: return "uint32";
    case GgufType::Int32: return "int32";
    case GgufType::Float32: return "float32";
    case GgufType::Bool: return "bool";
    case GgufType::String: return "string";
    case GgufType::Array: return "array";
    case GgufType::UInt64: return "uint64";
    case GgufType::Int64: return "int64";
    case GgufType::Float64: return "float64";
  }
  return "?";
}

std::string ggml_type_name(uint32_t id) {
  const TypeInfo t = ggml_type(id);
  return t.name ? t.name : "type " + std::to_string(id);
}

bool GgufValue::is_integer() const {
  return type != GgufType::Array && type != GgufType::String && type != GgufType::Float32 &&
         type != GgufType::Float64;
}
bool GgufValue::is_number() const { return type != GgufType::Array && type != GgufType::String; }
size_t GgufValue::size() const {
  if (type != GgufType::Array) return 1;
  return ints.size() + floats.size() + strings.size();
}

TensorView GgufTensor::view() const {
  TensorView t;
  t.dtype = dtype;
  t.shape.assign(ne.rbegin(), ne.rend());
  t.data = data;
  return t;
}

GgufFile::~GgufFile() = default;

bool GgufFile::looks_like_gguf(const fs::path& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return false;
  std::ifstream in(path, std::ios::binary);
  char magic[4] = {};
  if (!in.read(magic, 4)) return false;
  return std::memcmp(magic, "GGUF", 4) == 0;
}

void GgufFile::read_part(const fs::path& file, bool first) {
  auto mapped = std::make_unique<MappedFile>(file);
  const std::string fname = file.filename().string();
  Cursor c(mapped->data(), mapped->size(), fname);
  if (mapped->size() < 4) c.fail("not a GGUF file (" + std::to_string(mapped->size()) + " bytes)");
  const uint32_t magic = c.read<uint32_t>("the magic");
  if (magic != kMagic) c.fail("not a GGUF file (it does not start with the bytes \"GGUF\")");
  const uint32_t version = c.read<uint32_t>("the version");
  if (version == 1) c.fail("GGUF version 1 files are not supported (only versions 2 and 3; re-convert the model)");
  if (version == 0x02000000u || version == 0x03000000u) c.fail("big-endian GGUF files are not supported");
  if (version != 2 && version != 3) c.fail("unknown GGUF version " + std::to_string(version) + " (supported: 2, 3)");
  const uint64_t n_tensors = c.read<uint64_t>("the tensor count");
  const uint64_t n_kv = c.read<uint64_t>("the metadata count");
  // Each metadata entry takes at least 13 bytes (key length, type, one byte), each tensor info 28.
  if (n_kv > c.left() / 13)
    c.fail("header claims " + std::to_string(n_kv) + " metadata entries, more than the file can hold (corrupt or truncated file)");
  if (n_tensors > c.left() / 28)
    c.fail("header claims " + std::to_string(n_tensors) + " tensors, more than the file can hold (corrupt or truncated file)");

  std::map<std::string, GgufValue> kv;
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = c.string("a metadata key", kMaxKeyBytes);
    GgufValue v = read_value(c, key);
    if (kv.count(key)) c.fail("metadata key '" + key + "' appears twice");
    kv.emplace(std::move(key), std::move(v));
  }

  uint64_t alignment = kDefaultAlignment;
  if (auto it = kv.find("general.alignment"); it != kv.end()) {
    if (it->second.type != GgufType::UInt32)
      c.fail("metadata 'general.alignment' must be a uint32, is " + describe_value_type(it->second));
    alignment = uint64_t(it->second.i);
    if (alignment == 0 || (alignment & (alignment - 1)) != 0)
      c.fail("metadata 'general.alignment' is " + std::to_string(alignment) + ", not a power of two");
  }

  // Split sets: every part says which it is (llama.cpp's gguf-split keys).
  int split_no = 0, split_count = 1;
  if (auto it = kv.find("split.count"); it != kv.end()) {
    if (!it->second.is_integer() || it->second.i < 1 || it->second.i > 99999)
      c.fail("metadata 'split.count' is not a count of files");
    split_count = int(it->second.i);
    auto no = kv.find("split.no");
    if (no == kv.end() || !no->second.is_integer() || no->second.i < 0 || no->second.i >= split_count)
      c.fail("metadata 'split.no' is missing or not below split.count " + std::to_string(split_count));
    split_no = int(no->second.i);
  }
  if (first) {
    version_ = version;
    kv_ = std::move(kv);
    if (split_no != 0) c.fail("is part " + std::to_string(split_no + 1) + " of a split set, not the first");
  } else {
    const size_t want = files_.size();
    if (split_no != int(want) || split_count != int(kv_.count("split.count") ? kv_.at("split.count").i : 1))
      c.fail("says it is part " + std::to_string(split_no + 1) + " of " + std::to_string(split_count) +
             ", expected part " + std::to_string(want + 1) + " of the same split set");
  }

  struct Pending {
    GgufTensor t;
    uint64_t offset;
  };
  std::vector<Pending> pending;
  pending.reserve(size_t(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    GgufTensor t;
    t.name = c.string("a tensor name", kMaxKeyBytes);
    const std::string where = "tensor '" + t.name + "'";
    const uint32_t n_dims = c.read<uint32_t>("a tensor's dimension count");
    if (n_dims == 0 || n_dims > kMaxDims)
      c.fail(where + " has " + std::to_string(n_dims) + " dimensions (1 to 4 allowed)");
    uint64_t numel = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      const uint64_t v = c.read<uint64_t>("a tensor dimension");
      if (v > kMaxElements || (v != 0 && numel > kMaxElements / v))
        c.fail(where + " has dimensions whose product overflows (dimension " + std::to_string(d) + " is " +
               std::to_string(v) + ")");
      numel *= v;
      t.ne.push_back(int64_t(v));
    }
    t.ggml_type = c.read<uint32_t>("a tensor type");
    const TypeInfo ti = ggml_type(t.ggml_type);
    if (!ti.name)
      c.fail(where + " has unknown type id " + std::to_string(t.ggml_type) + " (supported: " + kSupportedTypes + ")");
    if (!ti.supported)
      c.fail(where + " has type " + ti.name + ", which moescope does not read (supported: " + kSupportedTypes + ")");
    t.dtype = ti.dtype;
    const int64_t block = dtype_block_elems(t.dtype);
    if (t.ne[0] % block != 0)
      c.fail(where + " has rows of " + std::to_string(t.ne[0]) + " elements, not a multiple of the " + ti.name +
             " block size " + std::to_string(block));
    t.nbytes = dtype_bytes(t.dtype, int64_t(numel));
    const uint64_t offset = c.read<uint64_t>("a tensor offset");
    if (offset % alignment != 0)
      c.fail(where + " has data offset " + std::to_string(offset) + ", not a multiple of the alignment " +
             std::to_string(alignment));
    if (tensors_.count(t.name) || std::any_of(pending.begin(), pending.end(), [&](const Pending& p) { return p.t.name == t.name; }))
      c.fail(where + " appears twice");
    pending.push_back({std::move(t), offset});
  }

  const uint64_t header_end = c.pos();
  const uint64_t data_start = (header_end + alignment - 1) / alignment * alignment;
  const uint64_t size = mapped->size();
  if (data_start > size && !pending.empty())
    c.fail("truncated GGUF file: the tensor data should start at byte " + std::to_string(data_start) + " of " +
           std::to_string(size));
  const uint64_t data_size = data_start > size ? 0 : size - data_start;
  const uint8_t* base = mapped->data() + data_start;

  std::vector<const Pending*> by_offset;
  for (auto& p : pending) {
    const std::string where = "tensor '" + p.t.name + "'";
    if (p.offset > data_size || p.t.nbytes > data_size - p.offset)
      c.fail(where + " lies at data bytes [" + std::to_string(p.offset) + ", " + std::to_string(p.offset + p.t.nbytes) +
             ") beyond the file's " + std::to_string(data_size) + " data bytes (truncated file?)");
    by_offset.push_back(&p);
  }
  std::sort(by_offset.begin(), by_offset.end(), [](const Pending* a, const Pending* b) { return a->offset < b->offset; });
  for (size_t k = 1; k < by_offset.size(); ++k) {
    const Pending& a = *by_offset[k - 1];
    const Pending& b = *by_offset[k];
    if (b.offset < a.offset + a.t.nbytes && b.t.nbytes > 0 && a.t.nbytes > 0)
      c.fail("tensors '" + a.t.name + "' and '" + b.t.name + "' overlap in the file");
  }
  for (auto& p : pending) {
    p.t.file_index = files_.size();
    p.t.data = base + p.offset;
    if (reinterpret_cast<uintptr_t>(p.t.data) % 4 != 0 && p.t.nbytes > 0) {
      auto copy = std::make_unique<uint8_t[]>(p.t.nbytes);
      std::memcpy(copy.get(), p.t.data, p.t.nbytes);
      p.t.data = copy.get();
      aligned_copies_.push_back(std::move(copy));
    }
    order_.push_back(p.t.name);
    tensors_.emplace(p.t.name, std::move(p.t));
  }
  total_bytes_ += size;
  spdlog::debug("gguf: {} (v{}, {} metadata, {} tensors, alignment {})", fname, version, n_kv, n_tensors, alignment);
  files_.push_back(std::move(mapped));
}

std::unique_ptr<GgufFile> GgufFile::open(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(path.string() + " does not exist");
  if (!fs::is_regular_file(path, ec)) throw Error(path.string() + " is not a file");
  fs::path first = path;
  SplitName split;
  const bool split_named = parse_split_name(path.filename().string(), split);
  if (split_named && split.no != 1) {  // a later part: start from the first
    first = path.parent_path() / split_file_name(split.prefix, 1, split.count);
    if (!fs::exists(first, ec))
      throw Error(path.filename().string() + " is part " + std::to_string(split.no) + " of a split set whose first part " +
                  first.filename().string() + " is missing");
  }
  std::unique_ptr<GgufFile> g(new GgufFile());
  g->path_ = first;
  g->read_part(first, true);
  int count = 1;
  if (auto v = g->find("split.count")) count = int(v->i);
  if (count > 1) {
    if (!split_named)
      throw Error(first.filename().string() + " is the first of a split set of " + std::to_string(count) +
                  " files but its name does not follow NAME-00001-of-" + split_file_name("", count, count).substr(10, 5) +
                  ".gguf, so the other parts cannot be found");
    if (split.count != count)
      throw Error(first.filename().string() + ": its name says " + std::to_string(split.count) +
                  " parts, its metadata split.count says " + std::to_string(count));
    for (int no = 2; no <= count; ++no) {
      const fs::path part = first.parent_path() / split_file_name(split.prefix, no, count);
      if (!fs::exists(part, ec))
        throw Error("split set " + first.filename().string() + ": part " + std::to_string(no) + " of " +
                    std::to_string(count) + " (" + part.filename().string() + ") is missing");
      g->read_part(part, false);
    }
    if (auto v = g->find("split.tensors.count"); v && v->is_integer() && uint64_t(v->i) != g->tensors_.size())
      throw Error("split set " + first.filename().string() + ": split.tensors.count says " + std::to_string(v->i) +
                  " tensors, the parts hold " + std::to_string(g->tensors_.size()));
  }
  spdlog::info("gguf: opened {}", g->describe());
  return g;
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = kv_.find(key);
  return it == kv_.end() ? nullptr : &it->second;
}

namespace {
[[noreturn]] void bad_key(const fs::path& file, const std::string& key, const std::string& why) {
  throw Error(file.filename().string() + ": metadata '" + key + "' " + why);
}
}  // namespace

std::string GgufFile::get_string(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) bad_key(path_, key, "is missing");
  if (v->type != GgufType::String) bad_key(path_, key, "must be a string, is " + describe_value_type(*v));
  return v->s;
}

std::string GgufFile::get_string_or(const std::string& key, const std::string& fallback) const {
  return find(key) ? get_string(key) : fallback;
}

int64_t GgufFile::get_int(const std::string& key, int64_t lo, int64_t hi) const {
  const GgufValue* v = find(key);
  if (!v) bad_key(path_, key, "is missing");
  if (!v->is_integer()) bad_key(path_, key, "must be an integer, is " + describe_value_type(*v));
  if (v->i < lo || v->i > hi || (v->type == GgufType::UInt64 && v->u > uint64_t(hi)))
    bad_key(path_, key, "is " + (v->type == GgufType::UInt64 ? std::to_string(v->u) : std::to_string(v->i)) +
                            ", outside the supported range [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
  return v->i;
}

int64_t GgufFile::get_int_or(const std::string& key, int64_t fallback, int64_t lo, int64_t hi) const {
  return find(key) ? get_int(key, lo, hi) : fallback;
}

double GgufFile::get_float_or(const std::string& key, double fallback, double lo, double hi) const {
  const GgufValue* v = find(key);
  if (!v) return fallback;
  if (!v->is_number()) bad_key(path_, key, "must be a number, is " + describe_value_type(*v));
  const double x = v->is_integer() ? double(v->i) : v->f;
  if (!(x >= lo && x <= hi))
    bad_key(path_, key, "is " + std::to_string(x) + ", outside the supported range [" + std::to_string(lo) + ", " +
                            std::to_string(hi) + "]");
  return x;
}

bool GgufFile::get_bool_or(const std::string& key, bool fallback) const {
  const GgufValue* v = find(key);
  if (!v) return fallback;
  if (v->type != GgufType::Bool) bad_key(path_, key, "must be a bool, is " + describe_value_type(*v));
  return v->i != 0;
}

const GgufTensor& GgufFile::tensor(const std::string& name) const {
  auto it = tensors_.find(name);
  if (it == tensors_.end()) throw Error(path_.filename().string() + ": missing tensor '" + name + "'");
  return it->second;
}

std::string GgufFile::describe() const {
  std::map<std::string, int> types;
  for (const auto& [name, t] : tensors_) ++types[dtype_name(t.dtype)];
  std::string s = path_.filename().string() + " (GGUF v" + std::to_string(version_) + ", " +
                  std::to_string(tensors_.size()) + " tensors";
  if (files_.size() > 1) s += " in " + std::to_string(files_.size()) + " files";
  for (const auto& [name, n] : types) s += ", " + std::to_string(n) + " " + name;
  return s + ")";
}

}  // namespace moescope
