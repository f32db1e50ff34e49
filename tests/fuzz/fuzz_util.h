#pragma once
// Helpers shared by the fuzz targets. The engine's loaders take paths, so the input is handed to
// them as an anonymous in-memory file (memfd) reached through /proc/self/fd/N: no temporary files
// to clean up, nothing left behind when a target crashes, and no refactoring of the loaders.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

namespace moescope::fuzz {

class MemFile {
public:
  MemFile(const uint8_t* data, size_t size) {
    fd_ = ::memfd_create("moescope-fuzz", MFD_CLOEXEC);
    if (fd_ < 0) std::abort();
    size_t done = 0;
    while (done < size) {
      const ssize_t n = ::write(fd_, data + done, size - done);
      if (n <= 0) std::abort();
      done += size_t(n);
    }
  }
  ~MemFile() { ::close(fd_); }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  std::string path() const { return "/proc/self/fd/" + std::to_string(fd_); }

private:
  int fd_ = -1;
};

}  // namespace moescope::fuzz
