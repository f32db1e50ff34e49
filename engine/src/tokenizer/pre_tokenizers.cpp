// Pre-tokenizers (HF tokenizers/src/pre_tokenizers): each splits pieces into smaller pieces
// and may rewrite them (ByteLevel maps bytes to its alphabet, Metaspace spaces to U+2581).
#include <algorithm>

#include <nlohmann/json.hpp>

#include "moescope/error.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/unicode.h"

namespace moescope::tok {

namespace {

using json = nlohmann::json;

// HF's SplitDelimiterBehavior.
enum class Behavior { Removed, Isolated, MergedWithPrevious, MergedWithNext, Contiguous };

Behavior parse_behavior(const std::string& b) {
  if (b == "Removed") return Behavior::Removed;
  if (b == "Isolated") return Behavior::Isolated;
  if (b == "MergedWithPrevious") return Behavior::MergedWithPrevious;
  if (b == "MergedWithNext") return Behavior::MergedWithNext;
  if (b == "Contiguous") return Behavior::Contiguous;
  throw Error("unsupported split behavior '" + b + "'");
}

struct Span {
  size_t start, end;
  bool is_match;
};

// Turns the matches of one piece into the pieces HF's NormalizedString::split produces.
void split_piece(const Piece& piece, const std::vector<std::pair<size_t, size_t>>& matches,
                 Behavior behavior, bool invert, std::vector<Piece>& out) {
  const std::string& s = piece.text;
  std::vector<Span> spans;
  spans.reserve(matches.size() * 2 + 1);
  size_t prev = 0;
  for (const auto& [a, b] : matches) {
    if (a > prev) spans.push_back({prev, a, invert});
    spans.push_back({a, b, !invert});
    prev = b;
  }
  if (prev < s.size()) spans.push_back({prev, s.size(), invert});

  std::vector<std::pair<size_t, size_t>> parts;
  parts.reserve(spans.size());
  switch (behavior) {
    case Behavior::Isolated:
      for (const auto& sp : spans) parts.emplace_back(sp.start, sp.end);
      break;
    case Behavior::Removed:
      for (const auto& sp : spans)
        if (!sp.is_match) parts.emplace_back(sp.start, sp.end);
      break;
    case Behavior::Contiguous: {
      bool previous_match = false;
      for (const auto& sp : spans) {
        if (sp.is_match == previous_match && !parts.empty()) parts.back().second = sp.end;
        else parts.emplace_back(sp.start, sp.end);
        previous_match = sp.is_match;
      }
      break;
    }
    case Behavior::MergedWithPrevious: {
      bool previous_match = false;
      for (const auto& sp : spans) {
        if (sp.is_match && !previous_match && !parts.empty()) parts.back().second = sp.end;
        else parts.emplace_back(sp.start, sp.end);
        previous_match = sp.is_match;
      }
      break;
    }
    case Behavior::MergedWithNext: {
      bool previous_match = false;
      for (auto it = spans.rbegin(); it != spans.rend(); ++it) {
        if (it->is_match && !previous_match && !parts.empty()) parts.back().first = it->start;
        else parts.emplace_back(it->start, it->end);
        previous_match = it->is_match;
      }
      std::reverse(parts.begin(), parts.end());
      break;
    }
  }
  for (const auto& [a, b] : parts)
    if (b > a) out.push_back({s.substr(a, b - a), piece.at_start && a == 0});
}

class SequencePre : public PreTokenizer {
public:
  explicit SequencePre(std::vector<std::unique_ptr<PreTokenizer>> parts) : parts_(std::move(parts)) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    for (const auto& p : parts_) p->pre_tokenize(pieces);
  }

private:
  std::vector<std::unique_ptr<PreTokenizer>> parts_;
};

class SplitPre : public PreTokenizer {
public:
  SplitPre(const json& pattern, Behavior behavior, bool invert)
      : pattern_(pattern, "Split pre_tokenizer"), behavior_(behavior), invert_(invert) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size() * 4);
    std::vector<std::pair<size_t, size_t>> matches;
    for (const auto& p : pieces) {
      matches.clear();
      pattern_.find_all(p.text, matches);
      split_piece(p, matches, behavior_, invert_, out);
    }
    pieces = std::move(out);
  }

private:
  Pattern pattern_;
  Behavior behavior_;
  bool invert_;
};

// GPT-2's split (HF ByteLevel with use_regex), then every byte mapped to the byte alphabet.
class ByteLevelPre : public PreTokenizer {
public:
  ByteLevelPre(bool add_prefix_space, bool use_regex) : add_prefix_space_(add_prefix_space) {
    if (use_regex)
      regex_ = std::make_unique<Regex>(
          R"('s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+)");
  }
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    if (add_prefix_space_)
      for (auto& p : pieces)
        if (p.text.empty() || p.text[0] != ' ') p.text.insert(0, 1, ' ');
    if (regex_) {
      std::vector<Piece> out;
      out.reserve(pieces.size() * 4);
      std::vector<std::pair<size_t, size_t>> matches;
      for (const auto& p : pieces) {
        matches.clear();
        regex_->find_all(p.text, matches);
        split_piece(p, matches, Behavior::Isolated, false, out);
      }
      pieces = std::move(out);
    }
    for (auto& p : pieces) {
      std::string mapped;
      mapped.reserve(p.text.size() * 2);
      for (const char c : p.text) mapped += byte_to_unicode(static_cast<uint8_t>(c));
      p.text = std::move(mapped);
    }
  }

private:
  bool add_prefix_space_;
  std::unique_ptr<Regex> regex_;
};

// Spaces become the replacement character (U+2581), which is also prepended per the scheme.
class MetaspacePre : public PreTokenizer {
public:
  MetaspacePre(std::string replacement, PrependScheme scheme, bool split)
      : rep_(std::move(replacement)), scheme_(scheme), split_(split) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    out.reserve(pieces.size());
    for (auto& p : pieces) {
      std::string s;
      s.reserve(p.text.size() + rep_.size() * 4);
      for (const char c : p.text) {
        if (c == ' ') s += rep_;
        else s += c;
      }
      const bool starts = s.compare(0, rep_.size(), rep_) == 0;
      if (!starts && (scheme_ == PrependScheme::Always ||
                      (scheme_ == PrependScheme::First && p.at_start)))
        s.insert(0, rep_);
      if (!split_) {
        out.push_back({std::move(s), p.at_start});
        continue;
      }
      // Split before every replacement character (MergedWithNext).
      size_t begin = 0;
      for (size_t pos = s.find(rep_, rep_.size() > 0 ? 1 : 0); pos != std::string::npos;
           pos = s.find(rep_, pos + rep_.size())) {
        if (pos > begin) out.push_back({s.substr(begin, pos - begin), p.at_start && begin == 0});
        begin = pos;
      }
      if (begin < s.size()) out.push_back({s.substr(begin), p.at_start && begin == 0});
    }
    pieces = std::move(out);
  }

private:
  std::string rep_;
  PrependScheme scheme_;
  bool split_;
};

// Digits apart from everything else; one piece per digit with individual_digits.
class DigitsPre : public PreTokenizer {
public:
  explicit DigitsPre(bool individual) : individual_(individual) {}
  void pre_tokenize(std::vector<Piece>& pieces) const override {
    std::vector<Piece> out;
    std::vector<std::pair<size_t, size_t>> matches;
    for (const auto& p : pieces) {
      matches.clear();
      size_t i = 0;
      while (i < p.text.size()) {
        const size_t start = i;
        if (is_numeric(next_code_point(p.text, i))) matches.emplace_back(start, i);
      }
      split_piece(p, matches, individual_ ? Behavior::Isolated : Behavior::Contiguous, false, out);
    }
    pieces = std::move(out);
  }

private:
  bool individual_;
};

PrependScheme parse_scheme(const json& j) {
  if (j.contains("prepend_scheme")) {
    const auto s = j.at("prepend_scheme").get<std::string>();
    if (s == "first") return PrependScheme::First;
    if (s == "always") return PrependScheme::Always;
    if (s == "never") return PrependScheme::Never;
    throw Error("unsupported Metaspace prepend_scheme '" + s + "'");
  }
  return j.value("add_prefix_space", true) ? PrependScheme::Always : PrependScheme::Never;
}

}  // namespace

std::unique_ptr<PreTokenizer> make_metaspace(std::string replacement, PrependScheme scheme,
                                             bool split) {
  return std::make_unique<MetaspacePre>(std::move(replacement), scheme, split);
}

std::unique_ptr<PreTokenizer> make_pre_tokenizer(const json& j) {
  if (j.is_null()) return nullptr;
  const std::string type = j.value("type", "");
  if (type == "Sequence") {
    std::vector<std::unique_ptr<PreTokenizer>> parts;
    for (const auto& p : j.at("pretokenizers"))
      if (auto q = make_pre_tokenizer(p)) parts.push_back(std::move(q));
    return std::make_unique<SequencePre>(std::move(parts));
  }
  if (type == "Split")
    return std::make_unique<SplitPre>(j.at("pattern"), parse_behavior(j.at("behavior")),
                                      j.value("invert", false));
  if (type == "ByteLevel")
    return std::make_unique<ByteLevelPre>(j.value("add_prefix_space", true), j.value("use_regex", true));
  if (type == "Metaspace") {
    std::string rep = j.value("replacement", std::string("\xE2\x96\x81"));
    return make_metaspace(std::move(rep), parse_scheme(j), j.value("split", true));
  }
  if (type == "Digits") return std::make_unique<DigitsPre>(j.value("individual_digits", false));
  throw Error("unsupported pre_tokenizer type '" + type + "'");
}

}  // namespace moescope::tok
