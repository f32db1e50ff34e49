// libFuzzer target: a .safetensors file (8-byte header length, JSON header, data) opened with
// Checkpoint::open_file. Every accepted tensor is read end to end, so an offset or size that the
// header validation let through would show up as an out-of-bounds read under ASan.
#include <cstdint>

#include "fuzz_util.h"
#include "moescope/checkpoint.h"
#include "moescope/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  moescope::fuzz::MemFile file(data, size);
  try {
    auto ck = moescope::Checkpoint::open_file(file.path());
    unsigned sum = 0;
    for (const auto& name : ck->names()) {
      const moescope::TensorView& t = ck->get(name);
      const auto* bytes = static_cast<const uint8_t*>(t.data);
      for (size_t i = 0; i < t.nbytes(); ++i) sum += bytes[i];
    }
    volatile unsigned sink = sum;
    (void)sink;
  } catch (const moescope::Error&) {
    // The expected outcome for bad input: a one-line message.
  }
  return 0;
}
