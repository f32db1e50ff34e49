#pragma once
// A minimal GGUF writer for the tests: builds files byte by byte, good ones and, by editing the
// bytes afterwards, bad ones (test_gguf.cpp, the fuzz seeds). Little-endian, as the format is.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "moescope/gguf.h"

namespace moescope::test {

struct GgufOut {
  std::string name;
  uint32_t type = 0;          // ggml type id
  std::vector<int64_t> ne;    // innermost first
  std::vector<uint8_t> data;  // already in the type's layout
  int64_t offset = -1;        // data offset to write; -1: the next aligned one
};

class GgufBytes {
public:
  std::vector<uint8_t> b;
  template <class T>
  void put(T v) {
    const auto* p = reinterpret_cast<const uint8_t*>(&v);
    b.insert(b.end(), p, p + sizeof(T));
  }
  void str(const std::string& s) {
    put<uint64_t>(s.size());
    b.insert(b.end(), s.begin(), s.end());
  }
  void scalar(GgufType t, const GgufValue& v, size_t k = 0, bool elem = false) {
    const bool is_float = t == GgufType::Float32 || t == GgufType::Float64;
    const int64_t i = !elem ? v.i : (is_float || t == GgufType::String) ? 0 : v.ints.at(k);
    const double f = !elem ? v.f : is_float ? v.floats.at(k) : 0.0;
    switch (t) {
      case GgufType::UInt8: case GgufType::Bool: put<uint8_t>(uint8_t(i)); break;
      case GgufType::Int8: put<int8_t>(int8_t(i)); break;
      case GgufType::UInt16: put<uint16_t>(uint16_t(i)); break;
      case GgufType::Int16: put<int16_t>(int16_t(i)); break;
      case GgufType::UInt32: put<uint32_t>(uint32_t(i)); break;
      case GgufType::Int32: put<int32_t>(int32_t(i)); break;
      case GgufType::UInt64: put<uint64_t>(elem ? uint64_t(i) : (v.u ? v.u : uint64_t(i))); break;
      case GgufType::Int64: put<int64_t>(i); break;
      case GgufType::Float32: put<float>(float(f)); break;
      case GgufType::Float64: put<double>(f); break;
      case GgufType::String: str(elem ? v.strings.at(k) : v.s); break;
      case GgufType::Array: break;
    }
  }
  void value(const GgufValue& v) {
    put<uint32_t>(uint32_t(v.type));
    if (v.type != GgufType::Array) return scalar(v.type, v);
    put<uint32_t>(uint32_t(v.elem));
    put<uint64_t>(v.size());
    for (size_t k = 0; k < v.size(); ++k) scalar(v.elem, v, k, true);
  }
};

inline GgufValue gv_u32(uint32_t x) { GgufValue v; v.type = GgufType::UInt32; v.i = x; return v; }
inline GgufValue gv_i32(int32_t x) { GgufValue v; v.type = GgufType::Int32; v.i = x; return v; }
inline GgufValue gv_f32(float x) { GgufValue v; v.type = GgufType::Float32; v.f = x; return v; }
inline GgufValue gv_bool(bool x) { GgufValue v; v.type = GgufType::Bool; v.i = x; return v; }
inline GgufValue gv_str(std::string s) { GgufValue v; v.type = GgufType::String; v.s = std::move(s); return v; }
inline GgufValue gv_strs(std::vector<std::string> s) {
  GgufValue v; v.type = GgufType::Array; v.elem = GgufType::String; v.strings = std::move(s); return v;
}
inline GgufValue gv_ints(GgufType elem, std::vector<int64_t> x) {
  GgufValue v; v.type = GgufType::Array; v.elem = elem; v.ints = std::move(x); return v;
}
inline GgufValue gv_floats(std::vector<double> x) {
  GgufValue v; v.type = GgufType::Array; v.elem = GgufType::Float32; v.floats = std::move(x); return v;
}

// The whole file: header, metadata (in the given order), tensor infos, padding, data.
inline std::vector<uint8_t> gguf_file(const std::vector<std::pair<std::string, GgufValue>>& kv,
                                      const std::vector<GgufOut>& tensors, uint32_t alignment = 32,
                                      uint32_t version = 3) {
  GgufBytes o;
  o.put<uint32_t>(0x46554747);
  o.put<uint32_t>(version);
  o.put<uint64_t>(tensors.size());
  o.put<uint64_t>(kv.size());
  for (const auto& [k, v] : kv) {
    o.str(k);
    o.value(v);
  }
  uint64_t offset = 0;
  for (const auto& t : tensors) {
    o.str(t.name);
    o.put<uint32_t>(uint32_t(t.ne.size()));
    for (int64_t d : t.ne) o.put<uint64_t>(uint64_t(d));
    o.put<uint32_t>(t.type);
    o.put<uint64_t>(t.offset >= 0 ? uint64_t(t.offset) : offset);
    offset += (t.data.size() + alignment - 1) / alignment * alignment;
  }
  while (o.b.size() % alignment) o.b.push_back(0);
  for (const auto& t : tensors) {
    o.b.insert(o.b.end(), t.data.begin(), t.data.end());
    while (o.b.size() % alignment) o.b.push_back(0);
  }
  return o.b;
}

inline void write_file(const std::filesystem::path& p, const std::vector<uint8_t>& bytes) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

// A copy of an opened GGUF file's metadata and tensors, for rewriting (e.g. quantising) them.
inline std::vector<std::pair<std::string, GgufValue>> metadata_of(const GgufFile& g) {
  std::vector<std::pair<std::string, GgufValue>> kv;
  for (const auto& [k, v] : g.metadata())
    if (k != "general.alignment") kv.emplace_back(k, v);
  return kv;
}

}  // namespace moescope::test
