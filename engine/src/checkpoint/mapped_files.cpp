// See moescope/mapped_files.h. The registry is a fixed table of slots so that the SIGBUS handler
// can read it without locks or allocation: a slot is published by storing its base address last
// (release) and retired by clearing it first; writers are serialised by a mutex.
#include "moescope/mapped_files.h"

#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <mutex>

#include "moescope/error.h"

namespace moescope {

namespace {

constexpr int kSlots = 256;  // more .safetensors shards than any supported checkpoint has
constexpr size_t kPathBytes = 512;

struct Slot {
  std::atomic<uintptr_t> base{0};
  size_t size = 0;
  int fd = -1;
  char path[kPathBytes] = {};
};

Slot g_slots[kSlots];
std::mutex g_mutex;
struct sigaction g_previous {};
std::once_flag g_handler_once;

void write_all(const char* s) {
  size_t n = std::strlen(s);
  while (n > 0) {
    const ssize_t w = ::write(STDERR_FILENO, s, n);
    if (w <= 0) return;
    s += w;
    n -= size_t(w);
  }
}

void on_sigbus(int sig, siginfo_t* info, void* context) {
  const auto addr = reinterpret_cast<uintptr_t>(info->si_addr);
  for (Slot& s : g_slots) {
    const uintptr_t base = s.base.load(std::memory_order_acquire);
    if (base != 0 && addr >= base && addr < base + s.size) {
      write_all("moescope: the checkpoint file ");
      write_all(s.path);
      write_all(" was truncated or overwritten while the model was using it; reload the model\n");
      ::_exit(kTruncatedExitCode);
    }
  }
  // Not ours: behave as if this handler were not installed.
  if (g_previous.sa_flags & SA_SIGINFO) {
    if (g_previous.sa_sigaction) return g_previous.sa_sigaction(sig, info, context);
  } else if (g_previous.sa_handler != SIG_DFL && g_previous.sa_handler != SIG_IGN) {
    return g_previous.sa_handler(sig);
  }
  ::signal(SIGBUS, SIG_DFL);
  ::raise(SIGBUS);
}

void install_handler() {
  struct sigaction sa {};
  sa.sa_sigaction = on_sigbus;
  sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
  sigemptyset(&sa.sa_mask);
  ::sigaction(SIGBUS, &sa, &g_previous);
}

}  // namespace

void register_mapped_file(const void* base, size_t size, int fd, const std::string& path) {
  if (!base || size == 0) return;
  std::call_once(g_handler_once, install_handler);
  std::lock_guard lock(g_mutex);
  for (Slot& s : g_slots) {
    if (s.base.load(std::memory_order_relaxed) != 0) continue;
    s.size = size;
    s.fd = fd;
    std::strncpy(s.path, path.c_str(), kPathBytes - 1);
    s.path[kPathBytes - 1] = '\0';
    s.base.store(reinterpret_cast<uintptr_t>(base), std::memory_order_release);
    return;
  }
  // Table full: the file still works, only without the clear message on truncation.
}

void unregister_mapped_file(const void* base) {
  std::lock_guard lock(g_mutex);
  for (Slot& s : g_slots) {
    if (s.base.load(std::memory_order_relaxed) == reinterpret_cast<uintptr_t>(base)) {
      s.base.store(0, std::memory_order_release);
      s.fd = -1;
      return;
    }
  }
}

void check_mapped_files() {
  std::lock_guard lock(g_mutex);
  for (const Slot& s : g_slots) {
    if (s.base.load(std::memory_order_relaxed) == 0) continue;
    struct stat st {};
    if (::fstat(s.fd, &st) != 0)
      throw Error(std::string("cannot check the checkpoint file ") + s.path + ": " + std::strerror(errno));
    if (size_t(st.st_size) < s.size)
      throw Error(std::string("checkpoint file ") + s.path + " changed on disk since it was loaded (" +
                  std::to_string(s.size) + " bytes, now " + std::to_string(st.st_size) + "); reload the model");
  }
}

}  // namespace moescope
