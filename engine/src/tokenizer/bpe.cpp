// The BPE model (HF tokenizers/src/models/bpe/{model,word}.rs): a word starts as one symbol per
// character (or per byte with byte_fallback) and the lowest-ranked adjacent pair is merged until
// no pair has a merge. Symbols form a linked list and candidate merges a min-heap keyed by
// (rank, position), so a word of n characters costs O(n log n), not repeated rescans.
#include <spdlog/spdlog.h>

#include <algorithm>
#include <bit>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "moescope/error.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/unicode.h"

namespace moescope::tok {

namespace {

using json = nlohmann::json;

uint64_t pair_key(int32_t left, int32_t right) {
  // +1 so that the pair (0, 0) is not the empty-slot key 0.
  return (uint64_t(uint32_t(left) + 1) << 32) | uint64_t(uint32_t(right) + 1);
}

// Fibonacci hashing: the top bits of key * 2^64/phi mix both ids of the pair.
size_t slot_of(uint64_t key, size_t mask) {
  const uint64_t h = key * 0x9E3779B97F4A7C15ull;
  return size_t(h >> (64 - std::popcount(mask))) & mask;
}

struct Symbol {
  int32_t id;
  int32_t prev, next;  // neighbour indices, -1 at the ends
  uint32_t len;        // bytes of the word covered; 0 once merged into its left neighbour
};

struct Candidate {
  int32_t rank;
  int32_t pos;  // index of the left symbol
  int32_t new_id;
  // The std heap functions build a max-heap: "greater" means lower rank, then leftmost position.
  bool operator<(const Candidate& o) const {
    return rank != o.rank ? rank > o.rank : pos > o.pos;
  }
};

}  // namespace

Bpe::Bpe(const json& model) {
  const std::string type = model.value("type", "BPE");
  if (type != "BPE") throw Error("unsupported model type '" + type + "'");
  for (const char* field : {"continuing_subword_prefix", "end_of_word_suffix"}) {
    if (model.contains(field) && model.at(field).is_string() &&
        !model.at(field).get_ref<const std::string&>().empty())
      throw Error(std::string("unsupported BPE option '") + field + "'");
  }
  if (model.contains("dropout") && !model.at("dropout").is_null())
    spdlog::warn("tokenizer: BPE dropout is ignored (deterministic encoding)");

  const json& vocab = model.at("vocab");
  if (!vocab.is_object()) throw Error("model.vocab must be an object");
  vocab_.reserve(vocab.size());
  int32_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    // An integer: get<int64_t>() of a float outside int64's range is undefined behaviour (fuzz
    // finding: an id of 2.6e56).
    if (!it.value().is_number_integer()) throw Error("model.vocab: the id of '" + it.key() + "' is not an integer");
    const auto id = it.value().get<int64_t>();
    if (id < 0 || id > 0x7FFFFFF) throw Error("model.vocab: id " + std::to_string(id) + " out of range");
    vocab_.emplace(it.key(), int32_t(id));
    max_id = std::max(max_id, int32_t(id));
  }
  id_to_token_.resize(size_t(max_id + 1));
  char_ids_.assign(0x10000, -1);
  for (const auto& [token, id] : vocab_) {
    id_to_token_[size_t(id)] = token;
    size_t i = 0;
    if (!token.empty() && utf8_error_offset(token) == std::string::npos) {
      const char32_t cp = next_code_point(token, i);
      if (i == token.size() && cp < 0x10000) char_ids_[cp] = id;
    }
  }

  if (model.contains("unk_token") && model.at("unk_token").is_string()) {
    const auto& unk = model.at("unk_token").get_ref<const std::string&>();
    if (auto u = token_to_id(unk)) unk_id_ = *u;
    else throw Error("model.unk_token '" + unk + "' is not in the vocabulary");
  }
  fuse_unk_ = model.value("fuse_unk", false);
  byte_fallback_ = model.value("byte_fallback", false);
  ignore_merges_ = model.value("ignore_merges", false);
  if (byte_fallback_) {
    byte_ids_.assign(256, -1);
    char name[8];
    for (int b = 0; b < 256; ++b) {
      std::snprintf(name, sizeof name, "<0x%02X>", b);
      if (auto id = token_to_id(name)) byte_ids_[size_t(b)] = *id;
    }
  }

  // Merges: "a b" strings (older files) or ["a", "b"] pairs (newer ones); rank = position.
  const json& merges = model.value("merges", json::array());
  merges_.assign(std::bit_ceil(std::max<size_t>(16, merges.size() * 2)), MergeEntry{0, 0, 0});
  std::string joined;
  int32_t rank = 0;
  for (const auto& m : merges) {
    std::string_view a, b;
    if (m.is_string()) {
      const auto& s = m.get_ref<const std::string&>();
      const size_t sp = s.find(' ', 1);
      if (sp == std::string::npos) throw Error("model.merges: '" + s + "' is not 'a b'");
      a = std::string_view(s).substr(0, sp);
      b = std::string_view(s).substr(sp + 1);
    } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
      a = m[0].get_ref<const std::string&>();
      b = m[1].get_ref<const std::string&>();
    } else {
      throw Error("model.merges: entry " + std::to_string(rank) + " is neither 'a b' nor [a, b]");
    }
    joined.assign(a);
    joined += b;
    const auto ia = token_to_id(a), ib = token_to_id(b), ij = token_to_id(joined);
    if (!ia || !ib || !ij)
      throw Error("model.merges: '" + std::string(a) + " " + std::string(b) +
                  "' uses a token missing from the vocabulary");
    add_merge(*ia, *ib, rank, *ij);  // a repeated pair keeps its last rank, as HF's map does
    ++rank;
  }
  cache_.reserve(kCacheCapacity);
}

const Bpe::MergeEntry* Bpe::find_merge(int32_t left, int32_t right) const {
  const uint64_t key = pair_key(left, right);
  const size_t mask = merges_.size() - 1;
  for (size_t s = slot_of(key, mask);; s = (s + 1) & mask) {
    if (merges_[s].key == key) return &merges_[s];
    if (merges_[s].key == 0) return nullptr;
  }
}

void Bpe::add_merge(int32_t left, int32_t right, int32_t rank, int32_t new_id) {
  const uint64_t key = pair_key(left, right);
  const size_t mask = merges_.size() - 1;
  size_t s = slot_of(key, mask);
  while (merges_[s].key != 0 && merges_[s].key != key) s = (s + 1) & mask;
  merges_[s] = {key, rank, new_id};
}

std::optional<int32_t> Bpe::token_to_id(std::string_view token) const {
  const auto it = vocab_.find(token);
  if (it == vocab_.end()) return std::nullopt;
  return it->second;
}

// One symbol per character; characters missing from the vocabulary become their <0xXX> byte
// tokens (byte_fallback) or the unknown token (fused into one with fuse_unk), or vanish.
void Bpe::initial_symbols(std::string_view word, std::vector<int32_t>& ids,
                          std::vector<uint32_t>& lens) const {
  bool last_unk = false;
  size_t i = 0;
  while (i < word.size()) {
    const size_t start = i;
    const char32_t cp = next_code_point(word, i);
    int32_t id = cp < 0x10000 ? char_ids_[cp] : -1;
    if (id < 0 && cp >= 0x10000) {
      if (auto f = token_to_id(word.substr(start, i - start))) id = *f;
    }
    const uint32_t len = uint32_t(i - start);
    if (id >= 0) {
      ids.push_back(id);
      lens.push_back(len);
      last_unk = false;
      continue;
    }
    if (byte_fallback_) {
      bool all = true;
      for (size_t k = start; k < i; ++k) all = all && byte_ids_[static_cast<unsigned char>(word[k])] >= 0;
      if (all) {
        for (size_t k = start; k < i; ++k) {
          ids.push_back(byte_ids_[static_cast<unsigned char>(word[k])]);
          lens.push_back(1);
        }
        last_unk = false;
        continue;
      }
    }
    if (unk_id_) {
      if (fuse_unk_ && last_unk) {
        lens.back() += len;
      } else {
        ids.push_back(*unk_id_);
        lens.push_back(len);
      }
      last_unk = true;
    }
  }
}

void Bpe::merge_word(std::string_view word, std::vector<int32_t>& out) const {
  thread_local std::vector<int32_t> ids;
  thread_local std::vector<uint32_t> lens;
  thread_local std::vector<Symbol> sym;
  thread_local std::vector<Candidate> heap;  // a binary heap via std::push_heap / pop_heap
  ids.clear();
  lens.clear();
  initial_symbols(word, ids, lens);
  const int32_t n = int32_t(ids.size());
  sym.resize(size_t(n));
  for (int32_t k = 0; k < n; ++k) sym[size_t(k)] = {ids[size_t(k)], k - 1, k + 1 < n ? k + 1 : -1, lens[size_t(k)]};

  heap.clear();
  const auto push = [&](Candidate c) {
    heap.push_back(c);
    std::push_heap(heap.begin(), heap.end());
  };
  for (int32_t k = 0; k + 1 < n; ++k)
    if (const auto* m = find_merge(sym[size_t(k)].id, sym[size_t(k + 1)].id))
      push({m->rank, k, m->new_id});

  while (!heap.empty()) {
    std::pop_heap(heap.begin(), heap.end());
    const Candidate top = heap.back();
    heap.pop_back();
    Symbol& left = sym[size_t(top.pos)];
    if (left.len == 0 || left.next < 0) continue;  // merged away, or now the last symbol
    Symbol& right = sym[size_t(left.next)];
    const auto* m = find_merge(left.id, right.id);
    if (!m || m->new_id != top.new_id) continue;  // stale: a neighbour changed since the push
    left.id = top.new_id;
    left.len += right.len;
    right.len = 0;
    left.next = right.next;
    if (left.next >= 0) sym[size_t(left.next)].prev = top.pos;
    if (left.prev >= 0)
      if (const auto* pm = find_merge(sym[size_t(left.prev)].id, left.id))
        push({pm->rank, left.prev, pm->new_id});
    if (left.next >= 0)
      if (const auto* nm = find_merge(left.id, sym[size_t(left.next)].id))
        push({nm->rank, top.pos, nm->new_id});
  }
  for (int32_t k = 0; k >= 0 && k < n; k = sym[size_t(k)].next) out.push_back(sym[size_t(k)].id);
}

void Bpe::tokenize(std::string_view word, std::vector<int32_t>& out) const {
  if (word.empty()) return;
  if (ignore_merges_) {
    if (auto id = token_to_id(word)) {
      out.push_back(*id);
      return;
    }
  }
  constexpr size_t kMaxCachedWord = 256;  // bytes; longer words are rare and not worth keeping
  const bool cacheable = word.size() <= kMaxCachedWord;
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    const auto it = cache_.find(word);
    if (it != cache_.end()) {
      out.insert(out.end(), it->second.begin(), it->second.end());
      return;
    }
  }
  const size_t before = out.size();
  merge_word(word, out);
  if (cacheable) {
    std::lock_guard lock(cache_mutex_);
    if (cache_.size() < kCacheCapacity)
      cache_.emplace(std::string(word), std::vector<int32_t>(out.begin() + long(before), out.end()));
  }
}

}  // namespace moescope::tok
