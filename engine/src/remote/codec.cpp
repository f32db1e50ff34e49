// Base64 and Server-Sent Events: the two byte-level layers under the routed-experts parsers
// (moescope/remote_routing.h). Both are incremental so that network reads split anywhere.
#include <array>

#include "moescope/error.h"
#include "moescope/remote_routing.h"

namespace moescope::remote {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

// -1: not in the alphabet.
constexpr std::array<int8_t, 256> make_table() {
  std::array<int8_t, 256> t{};
  for (auto& v : t) v = -1;
  for (int i = 0; i < 64; ++i) t[size_t(uint8_t(kAlphabet[i]))] = int8_t(i);
  return t;
}
constexpr std::array<int8_t, 256> kTable = make_table();
}  // namespace

// ---- base64 ------------------------------------------------------------------------------------

void Base64Decoder::push(std::string_view text) {
  if (text.size() >= 4096) out_.reserve(out_.size() + text.size() / 4 * 3 + 3);  // small pushes: geometric growth
  for (const char c : text) {
    if (c == '=') {
      // padding completes a quantum of 2 or 3 characters: "xx==" or "xxx="
      if (pending_ < 2) throw Error("base64: misplaced '=' padding");
      ++padding_;
      if (pending_ + padding_ > 4) throw Error("base64: too much '=' padding");
      if (pending_ + padding_ == 4) {
        pending_ = 0;
        padding_ = -1;  // a quantum ended in padding: nothing may follow but more '=' (none allowed)
      }
      continue;
    }
    if (padding_ != 0) throw Error("base64: data after '=' padding");
    const int8_t v = kTable[size_t(uint8_t(c))];
    if (v < 0) {
      if (c == '\n' || c == '\r') continue;  // line-wrapped encoders
      throw Error("base64: character " + std::to_string(int(uint8_t(c))) + " is not in the alphabet");
    }
    bits_ = (bits_ << 6) | uint32_t(v);
    nbits_ += 6;
    if (nbits_ >= 8) {
      nbits_ -= 8;
      out_.push_back(uint8_t(bits_ >> nbits_));
      bits_ &= (1u << nbits_) - 1;
    }
    pending_ = (pending_ + 1) % 4;
  }
}

std::vector<uint8_t> Base64Decoder::finish() {
  if (padding_ > 0) throw Error("base64: truncated padding");
  if (pending_ == 1) throw Error("base64: truncated text (a dangling character)");
  // 2 or 3 characters without padding: their whole bytes are already out, the rest are fill bits
  std::vector<uint8_t> out = std::move(out_);
  *this = Base64Decoder();
  return out;
}

std::vector<uint8_t> base64_decode(std::string_view text) {
  Base64Decoder d;
  d.push(text);
  return d.finish();
}

std::string base64_encode(const uint8_t* data, size_t size) {
  std::string out;
  out.reserve((size + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= size; i += 3) {
    const uint32_t v = uint32_t(data[i]) << 16 | uint32_t(data[i + 1]) << 8 | data[i + 2];
    for (int s = 18; s >= 0; s -= 6) out += kAlphabet[(v >> s) & 63];
  }
  if (i < size) {
    uint32_t v = uint32_t(data[i]) << 16;
    if (i + 1 < size) v |= uint32_t(data[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += i + 1 < size ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

// ---- Server-Sent Events ------------------------------------------------------------------------

void SseParser::feed(std::string_view bytes, const std::function<void(const std::string&)>& on_event) {
  for (const char c : bytes) {
    if (after_cr_) {
      after_cr_ = false;
      if (c == '\n') continue;  // the \n of a \r\n that was split across two reads
    }
    if (c == '\r' || c == '\n') {
      after_cr_ = c == '\r';
      line(on_event);
      continue;
    }
    line_ += c;
    if (line_.size() + data_.size() > max_)
      throw Error("server-sent event larger than " + std::to_string(max_ >> 20) + " MiB (not an event stream?)");
  }
}

void SseParser::line(const std::function<void(const std::string&)>& on_event) {
  if (line_.empty()) {  // blank line: dispatch
    if (has_data_) on_event(data_);
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line_[0] != ':') {
    const size_t colon = line_.find(':');
    const std::string_view field = std::string_view(line_).substr(0, colon);
    std::string_view value;
    if (colon != std::string::npos) {
      value = std::string_view(line_).substr(colon + 1);
      if (!value.empty() && value[0] == ' ') value.remove_prefix(1);
    }
    if (field == "data") {
      if (has_data_) data_ += '\n';
      data_ += value;
      has_data_ = true;
    }
    // event:, id:, retry: and unknown fields carry nothing the parsers need
  }
  line_.clear();
}

}  // namespace moescope::remote
