// Added tokens (special tokens and the like) are cut out of the text before the model sees it.
// Follows HF tokenizers/src/tokenizer/added_vocabulary.rs: leftmost-longest matches, then the
// single_word / lstrip / rstrip rules of each token.
#include <algorithm>

#include "tokenizer/pipeline.h"
#include "tokenizer/unicode.h"

namespace moescope::tok {

void AddedTokenMatcher::add(std::string pattern, size_t token_index) {
  if (pattern.empty()) return;
  size_t node = 0;
  for (const char ch : pattern) {
    const auto c = static_cast<unsigned char>(ch);
    auto& next = nodes_[node].next;
    auto it = std::find_if(next.begin(), next.end(), [c](const auto& e) { return e.first == c; });
    if (it == next.end()) {
      next.emplace_back(c, int32_t(nodes_.size()));
      const auto child = int32_t(nodes_.size());
      nodes_.emplace_back();
      node = size_t(child);
    } else {
      node = size_t(it->second);
    }
  }
  // A later token with the same content wins, as in HF's map from content to token.
  nodes_[node].token = int64_t(token_index);
  first_byte_[static_cast<unsigned char>(pattern[0])] = true;
}

void AddedTokenMatcher::find(std::string_view s, std::vector<Match>& out) const {
  size_t i = 0;
  while (i < s.size()) {
    if (!first_byte_[static_cast<unsigned char>(s[i])]) {
      ++i;
      continue;
    }
    size_t node = 0, best_end = 0;
    int64_t best = -1;
    for (size_t k = i; k < s.size(); ++k) {
      const auto c = static_cast<unsigned char>(s[k]);
      const auto& next = nodes_[node].next;
      auto it = std::find_if(next.begin(), next.end(), [c](const auto& e) { return e.first == c; });
      if (it == next.end()) break;
      node = size_t(it->second);
      if (nodes_[node].token >= 0) {
        best = nodes_[node].token;
        best_end = k + 1;
      }
    }
    if (best >= 0) {
      out.push_back({i, best_end, size_t(best)});
      i = best_end;
    } else {
      ++i;
    }
  }
}

namespace {

char32_t last_code_point(std::string_view s) {
  size_t k = s.size() - 1;
  while (k > 0 && (static_cast<unsigned char>(s[k]) & 0xC0) == 0x80) --k;
  return next_code_point(s, k);
}

}  // namespace

void split_added(const AddedTokenMatcher& matcher, const std::vector<AddedToken>& tokens,
                 std::string_view text, std::vector<Segment>& out) {
  std::vector<AddedTokenMatcher::Match> matches;
  if (!matcher.empty()) matcher.find(text, matches);
  size_t start_offset = 0;
  for (const auto& m : matches) {
    const AddedToken& t = tokens[m.token];
    size_t start = m.start, stop = m.end;
    if (start < start_offset) continue;  // swallowed by the previous token's rstrip
    if (t.single_word) {
      size_t j = stop;
      const bool space_before = start == 0 || !is_word_char(last_code_point(text.substr(0, start)));
      const bool space_after = stop == text.size() || !is_word_char(next_code_point(text, j));
      if (!space_before || !space_after) continue;
    }
    if (t.lstrip) {
      size_t s = start;
      while (s > start_offset) {
        size_t k = s - 1;
        while (k > 0 && (static_cast<unsigned char>(text[k]) & 0xC0) == 0x80) --k;
        size_t j = k;
        if (!is_whitespace(next_code_point(text, j))) break;
        s = k;
      }
      start = s;
    }
    if (t.rstrip) {
      while (stop < text.size()) {
        size_t j = stop;
        if (!is_whitespace(next_code_point(text, j))) break;
        stop = j;
      }
    }
    if (start > start_offset) out.push_back({start_offset, start, -1});
    out.push_back({start, stop, int64_t(m.token)});
    start_offset = stop;
  }
  if (start_offset < text.size()) out.push_back({start_offset, text.size(), -1});
}

}  // namespace moescope::tok
