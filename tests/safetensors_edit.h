#pragma once
// Test helper: read a .safetensors file as (header JSON, data bytes), edit either, write it back.
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <nlohmann/json.hpp>
#include <string>

namespace moescope::test {

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

inline void write_file(const std::filesystem::path& p, const std::string& s) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << s;
}

struct Safetensors {
  nlohmann::json header;
  std::string data;

  static Safetensors read(const std::filesystem::path& file) {
    std::string all = read_file(file);
    uint64_t n;
    std::memcpy(&n, all.data(), 8);
    return {nlohmann::json::parse(all.substr(8, n)), all.substr(8 + n)};
  }
  void write(const std::filesystem::path& file) const {
    std::string h = header.dump();
    uint64_t n = h.size();
    std::string out(reinterpret_cast<const char*>(&n), 8);
    write_file(file, out + h + data);
  }
  // The bytes of one tensor.
  std::string bytes(const std::string& name) const {
    const auto& off = header.at(name).at("data_offsets");
    return data.substr(off[0].get<size_t>(), off[1].get<size_t>() - off[0].get<size_t>());
  }
  // Appends a tensor at the end of the data.
  void add(const std::string& name, const std::string& dtype, const std::vector<int64_t>& shape,
           const std::string& bytes) {
    header[name] = {{"dtype", dtype}, {"shape", shape}, {"data_offsets", {data.size(), data.size() + bytes.size()}}};
    data += bytes;
  }
};

}  // namespace moescope::test
