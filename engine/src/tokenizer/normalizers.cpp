// Normalizers (HF tokenizers/src/normalizers): each rewrites the text of one segment.
#include <nlohmann/json.hpp>

#include "moescope/error.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/unicode.h"

namespace moescope::tok {

namespace {

using json = nlohmann::json;

class SequenceNormalizer : public Normalizer {
public:
  explicit SequenceNormalizer(std::vector<std::unique_ptr<Normalizer>> parts)
      : parts_(std::move(parts)) {}
  void normalize(std::string& s) const override {
    for (const auto& p : parts_) p->normalize(s);
  }

private:
  std::vector<std::unique_ptr<Normalizer>> parts_;
};

class UnicodeNormalizer : public Normalizer {
public:
  explicit UnicodeNormalizer(NormalForm form) : form_(form) {}
  void normalize(std::string& s) const override { s = normalize_unicode(s, form_); }

private:
  NormalForm form_;
};

class LowercaseNormalizer : public Normalizer {
public:
  void normalize(std::string& s) const override { s = to_lower(s); }
};

// Prepends only to non-empty text (HF Prepend).
class PrependNormalizer : public Normalizer {
public:
  explicit PrependNormalizer(std::string prefix) : prefix_(std::move(prefix)) {}
  void normalize(std::string& s) const override {
    if (!s.empty()) s.insert(0, prefix_);
  }

private:
  std::string prefix_;
};

class ReplaceNormalizer : public Normalizer {
public:
  ReplaceNormalizer(const json& pattern, std::string content)
      : pattern_(pattern, "Replace normalizer"), content_(std::move(content)) {}
  void normalize(std::string& s) const override {
    std::vector<std::pair<size_t, size_t>> m;
    pattern_.find_all(s, m);
    if (m.empty()) return;
    std::string out;
    out.reserve(s.size() + m.size() * content_.size());
    size_t prev = 0;
    for (const auto& [a, b] : m) {
      out.append(s, prev, a - prev);
      out += content_;
      prev = b;
    }
    out.append(s, prev, std::string::npos);
    s = std::move(out);
  }

private:
  Pattern pattern_;
  std::string content_;
};

// Strips leading and/or trailing whitespace (char::is_whitespace).
class StripNormalizer : public Normalizer {
public:
  StripNormalizer(bool left, bool right) : left_(left), right_(right) {}
  void normalize(std::string& s) const override {
    size_t begin = 0, end = s.size();
    if (left_) {
      size_t i = 0;
      while (i < s.size()) {
        size_t j = i;
        if (!is_whitespace(next_code_point(s, j))) break;
        i = j;
      }
      begin = i;
    }
    if (right_) {
      size_t e = s.size();
      while (e > begin) {
        size_t k = e - 1;
        while (k > begin && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
        size_t j = k;
        if (!is_whitespace(next_code_point(s, j))) break;
        e = k;
      }
      end = e;
    }
    s = s.substr(begin, end - begin);
  }

private:
  bool left_, right_;
};

}  // namespace

std::unique_ptr<Normalizer> make_normalizer(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    std::vector<std::unique_ptr<Normalizer>> parts;
    for (const auto& n : j.at("normalizers"))
      if (auto p = make_normalizer(n)) parts.push_back(std::move(p));
    return std::make_unique<SequenceNormalizer>(std::move(parts));
  }
  if (type == "NFC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFC);
  if (type == "NFD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFD);
  if (type == "NFKC") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKC);
  if (type == "NFKD") return std::make_unique<UnicodeNormalizer>(NormalForm::NFKD);
  if (type == "Lowercase") return std::make_unique<LowercaseNormalizer>();
  if (type == "Prepend") return std::make_unique<PrependNormalizer>(j.at("prepend").get<std::string>());
  if (type == "Replace")
    return std::make_unique<ReplaceNormalizer>(j.at("pattern"), j.at("content").get<std::string>());
  if (type == "Strip")
    return std::make_unique<StripNormalizer>(j.value("strip_left", true), j.value("strip_right", true));
  throw Error("unsupported normalizer type '" + type + "'");
}

}  // namespace moescope::tok
