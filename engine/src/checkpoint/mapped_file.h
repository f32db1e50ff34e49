#pragma once
// One read-only memory-mapped file, registered with the truncation guard (moescope/mapped_files.h).
// The checkpoint readers (safetensors.cpp, gguf.cpp) hand out views into it.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>

#include "moescope/error.h"
#include "moescope/mapped_files.h"

namespace moescope {

class MappedFile {
public:
  explicit MappedFile(const std::filesystem::path& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw Error("cannot open " + path.string() + ": " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd_, &st) != 0) {
      ::close(fd_);
      throw Error("cannot stat " + path.string());
    }
    size_ = size_t(st.st_size);
    if (size_ == 0) return;
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd_, 0);
    if (p == MAP_FAILED) {
      const int err = errno;
      ::close(fd_);
      throw Error("cannot memory-map " + path.string() + ": " + std::strerror(err));
    }
    data_ = static_cast<const uint8_t*>(p);
    register_mapped_file(data_, size_, fd_, path.string());  // truncation after this: mapped_files.h
  }
  ~MappedFile() {
    if (data_) unregister_mapped_file(data_);
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
    if (fd_ >= 0) ::close(fd_);
  }
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::filesystem::path& path() const { return path_; }

private:
  std::filesystem::path path_;
  int fd_ = -1;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace moescope
