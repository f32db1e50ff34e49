#include "moescope/npy.h"

#include <cstring>
#include <fstream>
#include <string>

#include "moescope/error.h"

namespace moescope {

void write_npy(const std::filesystem::path& path, const float* data, const std::vector<int64_t>& shape) {
  std::string dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (";
  int64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    dict += std::to_string(shape[i]) + (shape.size() == 1 || i + 1 < shape.size() ? "," : "");
    if (i + 1 < shape.size()) dict += " ";
    n *= shape[i];
  }
  dict += "), }";
  // Pad with spaces so that magic + header is a multiple of 64, ending in '\n'.
  const size_t pre = 10;
  size_t total = pre + dict.size() + 1;
  dict.append((64 - total % 64) % 64, ' ');
  dict += '\n';
  std::ofstream out(path, std::ios::binary);
  if (!out) throw Error("cannot write " + path.string());
  const char magic[] = "\x93NUMPY\x01\x00";
  out.write(magic, 8);
  const uint16_t hlen = uint16_t(dict.size());
  out.write(reinterpret_cast<const char*>(&hlen), 2);
  out.write(dict.data(), std::streamsize(dict.size()));
  out.write(reinterpret_cast<const char*>(data), std::streamsize(size_t(n) * sizeof(float)));
  if (!out) throw Error("failed writing " + path.string());
}

NpyArray read_npy(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error("cannot open " + path.string());
  char magic[8];
  in.read(magic, 8);
  if (!in || std::memcmp(magic, "\x93NUMPY", 6) != 0) throw Error(path.string() + ": not a .npy file");
  uint32_t hlen = 0;
  if (magic[6] == 1) {
    uint16_t h16 = 0;
    in.read(reinterpret_cast<char*>(&h16), 2);
    hlen = h16;
  } else {
    in.read(reinterpret_cast<char*>(&hlen), 4);
  }
  if (hlen > (1u << 20)) throw Error(path.string() + ": absurd .npy header");
  std::string header(hlen, '\0');
  in.read(header.data(), hlen);
  if (!in) throw Error(path.string() + ": truncated .npy header");
  if (header.find("'<f4'") == std::string::npos) throw Error(path.string() + ": only float32 '<f4' .npy is supported");
  if (header.find("'fortran_order': True") != std::string::npos) throw Error(path.string() + ": Fortran order unsupported");
  NpyArray a;
  const size_t lp = header.find('('), rp = header.find(')');
  if (lp == std::string::npos || rp == std::string::npos) throw Error(path.string() + ": no shape in .npy header");
  std::string dims = header.substr(lp + 1, rp - lp - 1);
  int64_t n = 1;
  size_t i = 0;
  while (i < dims.size()) {
    while (i < dims.size() && (dims[i] == ' ' || dims[i] == ',')) ++i;
    if (i >= dims.size()) break;
    size_t used = 0;
    int64_t d = std::stoll(dims.substr(i), &used);
    if (d < 0 || d > (int64_t(1) << 34)) throw Error(path.string() + ": absurd .npy shape");
    a.shape.push_back(d);
    n *= d;
    i += used;
  }
  a.data.resize(size_t(n));
  in.read(reinterpret_cast<char*>(a.data.data()), std::streamsize(size_t(n) * sizeof(float)));
  if (!in) throw Error(path.string() + ": truncated .npy data");
  return a;
}

}  // namespace moescope
