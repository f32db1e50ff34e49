// Incremental detokenisation. Decoding a token alone is not enough: byte-level and byte-fallback
// tokens may hold part of a UTF-8 character, and decoders treat the first token specially
// (Llama's Strip drops its leading space). So, like HF's DecodeStream, each step decodes a small
// window of ids twice, with and without the new ones, and emits the difference once it no
// longer ends in an incomplete character (U+FFFD).
#include "moescope/tokenizer.h"

namespace moescope {

namespace {

bool ends_with_replacement(const std::string& s) {
  return s.size() >= 3 && s.compare(s.size() - 3, 3, "\xEF\xBF\xBD") == 0;
}

}  // namespace

StreamingDecoder::StreamingDecoder(const Tokenizer& tokenizer, bool skip_special_tokens)
    : tokenizer_(tokenizer), skip_special_(skip_special_tokens) {}

std::string StreamingDecoder::push(int32_t id) {
  ids_.push_back(id);
  const std::span<const int32_t> all(ids_);
  const std::string before = tokenizer_.decode(all.subspan(0, read_), skip_special_);
  const std::string now = tokenizer_.decode(all, skip_special_);
  // Wait while the new text is empty or ends in an incomplete character. `before` is a prefix
  // of `now` for every decoder HF has (the only context effects are at the window's start).
  if (now.size() <= before.size() || ends_with_replacement(now) ||
      now.compare(0, before.size(), before) != 0)
    return {};
  std::string piece = now.substr(before.size());
  // The ids just emitted become the context of the next step; older ones are not needed.
  ids_.erase(ids_.begin(), ids_.begin() + long(read_));
  read_ = ids_.size();
  return piece;
}

std::string StreamingDecoder::flush() {
  const std::span<const int32_t> all(ids_);
  const std::string before = tokenizer_.decode(all.subspan(0, read_), skip_special_);
  const std::string now = tokenizer_.decode(all, skip_special_);
  ids_.clear();
  read_ = 0;
  if (now.size() <= before.size() || now.compare(0, before.size(), before) != 0) return {};
  return now.substr(before.size());
}

}  // namespace moescope
