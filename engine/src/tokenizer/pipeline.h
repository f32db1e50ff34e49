#pragma once
// The pieces of a Hugging Face tokenizer pipeline, in the order encode() runs them:
//   added tokens split off the raw text -> normaliser -> added tokens (normalised forms) ->
//   pre-tokenizer -> BPE model -> post-processor (only with add_special_tokens)
// and decode() runs: ids -> token strings -> decoder chain. Each component follows the class
// of the same name in HF tokenizers (tokenizers/src/{normalizers,pre_tokenizers,models/bpe,
// processors,decoders}); only what ends up in ids and text is reproduced, not offsets.
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <nlohmann/json_fwd.hpp>

struct pcre2_real_code_8;

namespace moescope::tok {

// Hash map keyed by std::string that can be looked up with a std::string_view.
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const noexcept { return std::hash<std::string_view>{}(s); }
};
template <class V>
using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

// A compiled PCRE2 pattern (UTF + UCP, JIT when available). HF compiles with Oniguruma; the
// patterns shipped in real tokenizer.json files behave the same under PCRE2.
class Regex {
public:
  explicit Regex(const std::string& pattern);
  ~Regex();
  Regex(const Regex&) = delete;
  Regex& operator=(const Regex&) = delete;
  // Non-empty matches, left to right, as [start, end) byte offsets into `s`.
  void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;

private:
  pcre2_real_code_8* code_ = nullptr;
};

// HF's `pattern` field: {"String": "..."} (literal) or {"Regex": "..."}.
class Pattern {
public:
  explicit Pattern(const nlohmann::json& j, const std::string& where);
  void find_all(std::string_view s, std::vector<std::pair<size_t, size_t>>& out) const;

private:
  std::string literal_;
  std::unique_ptr<Regex> regex_;
};

// ---- normalizers --------------------------------------------------------------------------------
class Normalizer {
public:
  virtual ~Normalizer() = default;
  virtual void normalize(std::string& s) const = 0;
};
std::unique_ptr<Normalizer> make_normalizer(const nlohmann::json& j);  // null for JSON null

// ---- pre-tokenizers -----------------------------------------------------------------------------
struct Piece {
  std::string text;
  bool at_start;  // starts at offset 0 of the original text (Metaspace prepend_scheme "first")
};
class PreTokenizer {
public:
  virtual ~PreTokenizer() = default;
  virtual void pre_tokenize(std::vector<Piece>& pieces) const = 0;
};
std::unique_ptr<PreTokenizer> make_pre_tokenizer(const nlohmann::json& j);
enum class PrependScheme { First, Always, Never };
std::unique_ptr<PreTokenizer> make_metaspace(std::string replacement, PrependScheme scheme,
                                             bool split);

// ---- model --------------------------------------------------------------------------------------
class Bpe {
public:
  explicit Bpe(const nlohmann::json& model);
  // Appends the ids of one pre-tokenized word.
  void tokenize(std::string_view word, std::vector<int32_t>& out) const;
  std::optional<int32_t> token_to_id(std::string_view token) const;
  const std::vector<std::string>& id_to_token() const { return id_to_token_; }
  size_t vocab_count() const { return vocab_.size(); }  // entries, not max id + 1
  void disable_unk() { unk_id_.reset(); }

private:
  struct MergeEntry {
    uint64_t key;  // (left id << 32) | right id; 0 marks an empty slot (id pairs are offset by 1)
    int32_t rank;
    int32_t new_id;
  };
  const MergeEntry* find_merge(int32_t left, int32_t right) const;
  void add_merge(int32_t left, int32_t right, int32_t rank, int32_t new_id);
  void merge_word(std::string_view word, std::vector<int32_t>& out) const;
  void initial_symbols(std::string_view word, std::vector<int32_t>& ids,
                       std::vector<uint32_t>& lens) const;

  StringMap<int32_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::vector<int32_t> char_ids_;  // code point (< 0x10000) -> id of the one-character token
  std::vector<MergeEntry> merges_;  // open addressing, power-of-two size
  std::optional<int32_t> unk_id_;
  bool fuse_unk_ = false;
  bool byte_fallback_ = false;
  bool ignore_merges_ = false;
  std::vector<int32_t> byte_ids_;  // <0xXX> token ids when byte_fallback (-1 if missing)

  // Words seen before (HF keeps the same kind of bounded cache).
  static constexpr size_t kCacheCapacity = 20000;
  mutable std::mutex cache_mutex_;
  mutable StringMap<std::vector<int32_t>> cache_;
};

// ---- post-processors ----------------------------------------------------------------------------
class PostProcessor {
public:
  virtual ~PostProcessor() = default;
  virtual void process(std::vector<int32_t>& ids) const = 0;  // single sequence, specials on
};
std::unique_ptr<PostProcessor> make_post_processor(const nlohmann::json& j);
std::unique_ptr<PostProcessor> make_bos_eos_processor(std::optional<int32_t> bos,
                                                      std::optional<int32_t> eos);

// ---- decoders -----------------------------------------------------------------------------------
class Decoder {
public:
  virtual ~Decoder() = default;
  virtual void decode(std::vector<std::string>& tokens) const = 0;  // HF's decode_chain
};
std::unique_ptr<Decoder> make_decoder(const nlohmann::json& j);
std::unique_ptr<Decoder> make_llama_decoder(bool strip_leading_space);

// ---- added tokens -------------------------------------------------------------------------------
struct AddedToken {
  std::string content;
  std::string text;  // what decode() and id_to_token() give: normalised content if `normalized`
  int32_t id;
  bool special, lstrip, rstrip, normalized, single_word;
};

// Finds added tokens in text: leftmost-longest, non-overlapping, like HF's aho-corasick pass.
class AddedTokenMatcher {
public:
  void add(std::string pattern, size_t token_index);
  bool empty() const { return nodes_.size() <= 1; }
  // Appends (start, end, token index) for each match.
  struct Match { size_t start, end, token; };
  void find(std::string_view s, std::vector<Match>& out) const;

private:
  struct Node {
    std::vector<std::pair<unsigned char, int32_t>> next;
    int64_t token = -1;
  };
  std::vector<Node> nodes_{1};
  bool first_byte_[256] = {};
};

// ---- the whole pipeline -------------------------------------------------------------------------
struct Pipeline {
  std::unique_ptr<Normalizer> normalizer;
  std::unique_ptr<PreTokenizer> pre_tokenizer;
  std::unique_ptr<Bpe> model;
  std::unique_ptr<PostProcessor> post_processor;
  std::unique_ptr<Decoder> decoder;

  std::vector<AddedToken> added;
  std::unordered_map<int32_t, size_t> added_by_id;
  StringMap<int32_t> added_by_content;
  AddedTokenMatcher raw_matcher;         // tokens with normalized == false, on the raw text
  AddedTokenMatcher normalized_matcher;  // tokens with normalized == true, on normalised text

  int32_t vocab_size = 0;
  std::optional<int32_t> bos, eos;

  void build_matchers();
  std::vector<int32_t> encode(std::string_view text, bool add_special) const;
  std::string decode(const int32_t* ids, size_t n, bool skip_special) const;

private:
  void encode_normalized(std::string_view text, bool at_start, std::vector<int32_t>& out) const;
  void encode_segment(std::string&& text, bool at_start, std::vector<int32_t>& out) const;
};

// Splits `text` around the matches of `matcher`, applying HF's lstrip / rstrip / single_word
// rules (tokenizers/src/tokenizer/added_vocabulary.rs, find_matches). Segments come in order;
// token is -1 for plain text, else an index into `tokens`.
struct Segment {
  size_t start, end;
  int64_t token;
};
void split_added(const AddedTokenMatcher& matcher, const std::vector<AddedToken>& tokens,
                 std::string_view text, std::vector<Segment>& out);

std::unique_ptr<Pipeline> load_tokenizer_json(const std::string& json_text,
                                              const std::string& where);
std::string fix_json_error(const std::string& what);

}  // namespace moescope::tok
