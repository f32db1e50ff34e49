#pragma once
// Guards the memory-mapped checkpoint files against being truncated or replaced while in use.
//
// The weights are never copied (a model needs about its file size in RAM), so a .safetensors file
// that shrinks after it was mapped turns the next read of the lost pages into SIGBUS, which would
// kill the program with a bare "Bus error". moescope handles that in two layers:
//   1. check_mapped_files() compares every mapped file's current size with the mapped size and
//      throws a clear Error. Session calls it before every prefill (each generate and forward), so
//      a file changed between answers is reported and the model can be reloaded.
//   2. A file truncated during a forward pass is caught by a SIGBUS handler installed with the
//      first mapping: if the faulting address lies in a registered mapping it writes one line
//      naming the file to stderr and exits with status kTruncatedExitCode. (Recovering by longjmp
//      out of a compute thread would leave locks and the KV cache in an unknown state.) A SIGBUS
//      elsewhere is passed on to the previous handler / default action.
// A file deleted (unlinked) while mapped is harmless: the mapping keeps the inode alive.
#include <cstddef>
#include <string>

namespace moescope {

inline constexpr int kTruncatedExitCode = 75;  // EX_TEMPFAIL

// Called by the checkpoint reader for every mapping; fd stays open while registered.
void register_mapped_file(const void* base, size_t size, int fd, const std::string& path);
void unregister_mapped_file(const void* base);

// Throws moescope::Error("checkpoint file X changed on disk ...") if a mapped file is now smaller
// than when it was mapped (or cannot be checked).
void check_mapped_files();

}  // namespace moescope
