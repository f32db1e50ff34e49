// Decoders (HF tokenizers/src/decoders): a chain that turns token strings back into text.
// Each stage works on the whole list of tokens, as HF's decode_chain does.
#include <nlohmann/json.hpp>

#include "moescope/error.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/unicode.h"

namespace moescope::tok {

namespace {

using json = nlohmann::json;
const std::string kReplacementChar = "\xEF\xBF\xBD";  // U+FFFD

class SequenceDecoder : public Decoder {
public:
  explicit SequenceDecoder(std::vector<std::unique_ptr<Decoder>> parts) : parts_(std::move(parts)) {}
  void decode(std::vector<std::string>& tokens) const override {
    for (const auto& p : parts_) p->decode(tokens);
  }

private:
  std::vector<std::unique_ptr<Decoder>> parts_;
};

// Byte alphabet back to bytes, all tokens into one lossily decoded string. A token with a
// character outside the alphabet (an added token such as "<｜User｜>") keeps its own bytes.
class ByteLevelDecoder : public Decoder {
public:
  void decode(std::vector<std::string>& tokens) const override {
    std::string bytes;
    for (const auto& t : tokens) {
      const size_t mark = bytes.size();
      bool mapped = true;
      size_t i = 0;
      while (i < t.size()) {
        const int b = unicode_to_byte(next_code_point(t, i));
        if (b < 0) {
          mapped = false;
          break;
        }
        bytes += static_cast<char>(b);
      }
      if (!mapped) {
        bytes.resize(mark);
        bytes += t;
      }
    }
    tokens.assign(1, utf8_lossy(bytes));
  }
};

class ReplaceDecoder : public Decoder {
public:
  ReplaceDecoder(const json& pattern, std::string content)
      : pattern_(pattern, "Replace decoder"), content_(std::move(content)) {}
  void decode(std::vector<std::string>& tokens) const override {
    std::vector<std::pair<size_t, size_t>> m;
    for (auto& t : tokens) {
      m.clear();
      pattern_.find_all(t, m);
      if (m.empty()) continue;
      std::string out;
      size_t prev = 0;
      for (const auto& [a, b] : m) {
        out.append(t, prev, a - prev);
        out += content_;
        prev = b;
      }
      out.append(t, prev, std::string::npos);
      t = std::move(out);
    }
  }

private:
  Pattern pattern_;
  std::string content_;
};

// Runs of <0xXX> tokens become their bytes; a run that is not valid UTF-8 becomes one U+FFFD
// per byte token (HF ByteFallback).
class ByteFallbackDecoder : public Decoder {
public:
  void decode(std::vector<std::string>& tokens) const override {
    std::vector<std::string> out;
    out.reserve(tokens.size());
    std::string bytes;
    size_t count = 0;
    const auto flush = [&] {
      if (count == 0) return;
      if (utf8_error_offset(bytes) == std::string::npos) {
        out.push_back(bytes);
      } else {
        for (size_t k = 0; k < count; ++k) out.push_back(kReplacementChar);
      }
      bytes.clear();
      count = 0;
    };
    for (auto& t : tokens) {
      const int b = parse_byte_token(t);
      if (b >= 0) {
        bytes += static_cast<char>(b);
        ++count;
      } else {
        flush();
        out.push_back(std::move(t));
      }
    }
    flush();
    tokens = std::move(out);
  }

private:
  static int hex(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    return -1;
  }
  static int parse_byte_token(const std::string& t) {  // "<0xE2>" -> 0xE2, else -1
    if (t.size() != 6 || t[0] != '<' || t[1] != '0' || t[2] != 'x' || t[5] != '>') return -1;
    const int h = hex(t[3]), l = hex(t[4]);
    return h < 0 || l < 0 ? -1 : h * 16 + l;
  }
};

class FuseDecoder : public Decoder {
public:
  void decode(std::vector<std::string>& tokens) const override {
    std::string all;
    for (const auto& t : tokens) all += t;
    tokens.assign(1, std::move(all));
  }
};

// Removes up to `start` leading and `stop` trailing copies of one character from every token.
class StripDecoder : public Decoder {
public:
  StripDecoder(std::string content, size_t start, size_t stop)
      : content_(std::move(content)), start_(start), stop_(stop) {}
  void decode(std::vector<std::string>& tokens) const override {
    const size_t w = content_.size();
    for (auto& t : tokens) {
      size_t begin = 0, end = t.size();
      for (size_t k = 0; k < start_ && begin + w <= end && t.compare(begin, w, content_) == 0; ++k)
        begin += w;
      for (size_t k = 0; k < stop_ && end >= begin + w && t.compare(end - w, w, content_) == 0; ++k)
        end -= w;
      t = t.substr(begin, end - begin);
    }
  }

private:
  std::string content_;
  size_t start_, stop_;
};

// U+2581 back to spaces; the first token loses its replacement characters unless the scheme
// never prepends one (HF Metaspace decoder).
class MetaspaceDecoder : public Decoder {
public:
  MetaspaceDecoder(std::string replacement, bool strip_first)
      : rep_(std::move(replacement)), strip_first_(strip_first) {}
  void decode(std::vector<std::string>& tokens) const override {
    for (size_t i = 0; i < tokens.size(); ++i) {
      std::string out;
      const std::string& t = tokens[i];
      for (size_t p = 0; p < t.size();) {
        if (t.compare(p, rep_.size(), rep_) == 0) {
          if (!(i == 0 && strip_first_)) out += ' ';
          p += rep_.size();
        } else {
          out += t[p++];
        }
      }
      tokens[i] = std::move(out);
    }
  }

private:
  std::string rep_;
  bool strip_first_;
};

}  // namespace

std::unique_ptr<Decoder> make_llama_decoder(bool strip_leading_space) {
  std::vector<std::unique_ptr<Decoder>> parts;
  parts.push_back(std::make_unique<ReplaceDecoder>(json{{"String", "\xE2\x96\x81"}}, " "));
  parts.push_back(std::make_unique<ByteFallbackDecoder>());
  parts.push_back(std::make_unique<FuseDecoder>());
  if (strip_leading_space) parts.push_back(std::make_unique<StripDecoder>(" ", 1, 0));
  return std::make_unique<SequenceDecoder>(std::move(parts));
}

std::unique_ptr<Decoder> make_decoder(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Decoder>> parts;
    for (const auto& d : j.at("decoders"))
      if (auto q = make_decoder(d)) parts.push_back(std::move(q));
    return std::make_unique<SequenceDecoder>(std::move(parts));
  }
  if (type == "ByteLevel") return std::make_unique<ByteLevelDecoder>();
  if (type == "Replace")
    return std::make_unique<ReplaceDecoder>(j.at("pattern"), j.at("content").get<std::string>());
  if (type == "ByteFallback") return std::make_unique<ByteFallbackDecoder>();
  if (type == "Fuse") return std::make_unique<FuseDecoder>();
  if (type == "Strip")
    return std::make_unique<StripDecoder>(j.at("content").get<std::string>(),
                                          j.value("start", size_t(0)), j.value("stop", size_t(0)));
  if (type == "Metaspace") {
    std::string rep = j.value("replacement", std::string("\xE2\x96\x81"));
    bool strip_first = j.value("add_prefix_space", true);
    if (j.contains("prepend_scheme")) strip_first = j.at("prepend_scheme") != "never";
    return std::make_unique<MetaspaceDecoder>(std::move(rep), strip_first);
  }
  throw Error("unsupported decoder type '" + type + "'");
}

}  // namespace moescope::tok
