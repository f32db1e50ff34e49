// libFuzzer target: a tokenizer.json loaded with Tokenizer::from_file; a tokenizer that loads is
// then used: a fixed mixed-script text is encoded, decoded, streamed back, and the first ids of
// the vocabulary are decoded one by one.
#include <cstdint>
#include <string>
#include <vector>

#include "fuzz_util.h"
#include "moescope/error.h"
#include "moescope/tokenizer.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  moescope::fuzz::MemFile file(data, size);
  try {
    const moescope::Tokenizer tok = moescope::Tokenizer::from_file(file.path());
    const std::string text = "Hello, world!  ä€𝄞 你好 123\n\t<s></s><|im_start|> x";
    const std::vector<int32_t> ids = tok.encode(text, true);
    (void)tok.decode(ids);
    (void)tok.decode(ids, true);
    moescope::StreamingDecoder stream(tok);
    for (int32_t id : ids) (void)stream.push(id);
    (void)stream.flush();
    const int32_t n = std::min<int32_t>(tok.vocab_size(), 300);
    for (int32_t id = 0; id < n; ++id) {
      const int32_t one[1] = {id};
      (void)tok.decode(one);
      (void)tok.id_to_token(id);
    }
  } catch (const moescope::Error&) {
  }
  return 0;
}
