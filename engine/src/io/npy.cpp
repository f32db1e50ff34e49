#include "moescope/npy.h"

#include <algorithm>
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

// ---- MappedNpy -----------------------------------------------------------------------------------

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "moescope/mapped_files.h"

namespace moescope {

namespace {
// The value of 'key' in the header dict: a quoted string, or what runs to the next ',' / ')'.
std::string header_value(const std::string& h, const std::string& key, const std::string& path) {
  const size_t k = h.find("'" + key + "'");
  if (k == std::string::npos) throw Error(path + ": .npy header has no '" + key + "'");
  size_t v = h.find(':', k);
  if (v == std::string::npos) throw Error(path + ": malformed .npy header");
  ++v;
  while (v < h.size() && h[v] == ' ') ++v;
  if (v < h.size() && (h[v] == '\'' || h[v] == '"')) {
    const size_t end = h.find(h[v], v + 1);
    if (end == std::string::npos) throw Error(path + ": malformed .npy header");
    return h.substr(v + 1, end - v - 1);
  }
  if (v < h.size() && h[v] == '(') {
    const size_t end = h.find(')', v);
    if (end == std::string::npos) throw Error(path + ": malformed .npy header");
    return h.substr(v + 1, end - v - 1);
  }
  const size_t end = h.find_first_of(",}", v);
  return h.substr(v, end == std::string::npos ? std::string::npos : end - v);
}
}  // namespace

MappedNpy::MappedNpy(const std::filesystem::path& path) {
  const std::string p = path.string();
  fd_ = ::open(p.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd_ < 0) throw Error("cannot open " + p);
  struct stat st {};
  if (::fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd_);
    throw Error(p + ": not a regular file");
  }
  map_size_ = size_t(st.st_size);
  auto fail = [&](const std::string& why) {
    if (map_) ::munmap(map_, map_size_);
    ::close(fd_);
    return Error(p + ": " + why);
  };
  if (map_size_ < 10) throw fail("not a .npy file (too short)");
  map_ = ::mmap(nullptr, map_size_, PROT_READ, MAP_PRIVATE, fd_, 0);
  if (map_ == MAP_FAILED) {
    map_ = nullptr;
    throw fail("cannot map the file");
  }
  const uint8_t* b = static_cast<const uint8_t*>(map_);
  if (std::memcmp(b, "\x93NUMPY", 6) != 0) throw fail("not a .npy file");
  size_t hlen = 0, pre = 0;
  if (b[6] == 1) {
    hlen = size_t(b[8]) | size_t(b[9]) << 8;
    pre = 10;
  } else if ((b[6] == 2 || b[6] == 3) && map_size_ >= 12) {
    hlen = size_t(b[8]) | size_t(b[9]) << 8 | size_t(b[10]) << 16 | size_t(b[11]) << 24;
    pre = 12;
  } else {
    throw fail("unsupported .npy version " + std::to_string(int(b[6])));
  }
  if (hlen > (1u << 20) || pre + hlen > map_size_) throw fail("truncated .npy header");
  const std::string header(reinterpret_cast<const char*>(b + pre), hlen);
  std::string descr, order, dims;
  try {
    descr = header_value(header, "descr", p);
    order = header_value(header, "fortran_order", p);
    dims = header_value(header, "shape", p);
  } catch (const Error&) {
    ::munmap(map_, map_size_);
    ::close(fd_);
    throw;
  }
  if (order.find("True") != std::string::npos) throw fail("Fortran-order arrays are not supported");
  if (descr.size() != 3 || (descr[0] != '<' && descr[0] != '|') || (descr[1] != 'i' && descr[1] != 'u') ||
      (descr[2] != '1' && descr[2] != '2' && descr[2] != '4' && descr[2] != '8') || (descr[0] == '|' && descr[2] != '1'))
    throw fail("dtype '" + descr + "' is not a little-endian integer (expert ids: int16, int32, ...)");
  signed_ = descr[1] == 'i';
  bytes_ = descr[2] - '0';
  count_ = 1;
  for (size_t i = 0; i < dims.size();) {
    while (i < dims.size() && (dims[i] == ' ' || dims[i] == ',')) ++i;
    if (i >= dims.size()) break;
    size_t used = 0;
    int64_t d = -1;
    try {
      d = std::stoll(dims.substr(i), &used);
    } catch (const std::exception&) {
      throw fail("malformed .npy shape '" + dims + "'");
    }
    if (d < 0 || d > (int64_t(1) << 40)) throw fail("absurd .npy shape");
    shape_.push_back(d);
    if (d && count_ > (size_t(1) << 42) / size_t(d)) throw fail("absurd .npy shape");
    count_ *= size_t(d);
    i += used;
  }
  const size_t need = pre + hlen + count_ * size_t(bytes_);
  if (need > map_size_)
    throw fail("truncated .npy data (" + std::to_string(map_size_) + " bytes, the shape needs " + std::to_string(need) + ")");
  data_ = b + pre + hlen;
  ::madvise(map_, map_size_, MADV_SEQUENTIAL);
  register_mapped_file(map_, map_size_, fd_, p);
}

MappedNpy::~MappedNpy() {
  if (map_) {
    unregister_mapped_file(map_);
    ::munmap(map_, map_size_);
  }
  if (fd_ >= 0) ::close(fd_);
}

void MappedNpy::release_before(size_t i) const {
  const size_t page = size_t(::sysconf(_SC_PAGESIZE));
  const size_t end = size_t(data_ - static_cast<const uint8_t*>(map_)) + std::min(i, count_) * size_t(bytes_);
  const size_t len = end / page * page;
  if (len) ::madvise(map_, len, MADV_DONTNEED);
}

int64_t MappedNpy::at(size_t i) const {
  const uint8_t* p = data_ + i * size_t(bytes_);
  uint64_t u = 0;
  for (int k = 0; k < bytes_; ++k) u |= uint64_t(p[k]) << (8 * k);
  if (signed_ && bytes_ < 8 && (u >> (8 * bytes_ - 1)) & 1) u |= ~uint64_t(0) << (8 * bytes_);
  return int64_t(u);
}

}  // namespace moescope
