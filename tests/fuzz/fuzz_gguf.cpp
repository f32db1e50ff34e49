// libFuzzer target: a GGUF file (header, metadata, tensor infos, data) opened with GgufFile::open,
// every accepted tensor read end to end (quantised ones dequantised), its tokenizer rebuilt from
// the tokenizer.ggml.* metadata and run on a short text, then mapped onto a model
// (spec_from_gguf + the weight binding). An offset, count or size that the validation let through
// shows up as an out-of-bounds read under ASan.
#include <cstdint>
#include <vector>

#include "fuzz_util.h"
#include "moescope/error.h"
#include "moescope/gguf.h"
#include "moescope/model_weights.h"
#include "moescope/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  moescope::fuzz::MemFile file(data, size);
  try {
    auto g = moescope::GgufFile::open(file.path());
    unsigned sum = 0;
    std::vector<float> widened;
    for (const auto& name : g->tensor_names()) {
      const moescope::GgufTensor& t = g->tensor(name);
      const auto* bytes = static_cast<const uint8_t*>(t.data);
      for (size_t i = 0; i < t.nbytes; ++i) sum += bytes[i];
      const moescope::TensorView v = t.view();
      if (v.numel() <= (1 << 20)) {
        widened.resize(size_t(v.numel()));
        moescope::to_f32(v.dtype, v.data, widened.data(), v.numel());
      }
    }
    for (const auto& [key, value] : g->metadata()) sum += unsigned(value.size());
    try {
      const moescope::Tokenizer tok = moescope::Tokenizer::from_gguf(file.path());
      const auto ids = tok.encode("Hi <|im_start|> 23+58 ünï\n", true);
      sum += unsigned(tok.decode(ids).size());
    } catch (const moescope::Error&) {
    }
    volatile unsigned sink = sum;
    (void)sink;
    auto model = moescope::load_model(file.path());
    (void)model;
  } catch (const moescope::Error&) {
    // The expected outcome for bad input: a one-line message.
  }
  return 0;
}
