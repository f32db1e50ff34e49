#pragma once
// Hugging Face `tokenizer.json` tokenizers (BPE, byte-level or with byte fallback), encoding and
// decoding exactly as the `tokenizers` library does. from_dir() additionally follows what
// transformers' AutoTokenizer makes of the directory's tokenizer_config.json (BOS/EOS, the Llama
// class's own pre-tokenizer); see tokenizer.cpp for the rules.
#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace moescope {

class GgufFile;

namespace tok {
struct Pipeline;  // normaliser, pre-tokenizer, model, post-processor, decoder (tokenizer/pipeline.h)
}

// Where a model's tokenizer files are: the checkpoint directory itself; for a model file, the
// directory beside it when it holds a tokenizer.json (it wins: a way to override what a file
// carries), else an empty path for a GGUF file, whose own tokenizer metadata is then used
// (Tokenizer::from_gguf); Error for any other file.
std::filesystem::path tokenizer_dir_of(const std::filesystem::path& model);

class Tokenizer {
public:
  // Both throw moescope::Error naming the file and the problem.
  static Tokenizer from_file(const std::filesystem::path& tokenizer_json);
  // tokenizer.json plus, if present, tokenizer_config.json. For a GGUF model file, the directory
  // that holds it or the file's own metadata (see tokenizer_dir_of).
  static Tokenizer from_dir(const std::filesystem::path& dir);
  // A GGUF file's tokenizer.ggml.* metadata (tokenizer/gguf_vocab.h says which vocabularies),
  // with its bos/eos ids. Encodes and decodes as the Hugging Face tokenizer it was converted from.
  static Tokenizer from_gguf(const std::filesystem::path& gguf);
  static Tokenizer from_gguf(const GgufFile& gguf);  // an already opened file

  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  // Throws moescope::Error for text that is not valid UTF-8 (naming the byte offset).
  std::vector<int32_t> encode(std::string_view text, bool add_special_tokens = false) const;
  // Ids outside [0, vocab_size()) are an error; ids inside it with no token are skipped (as HF).
  std::string decode(std::span<const int32_t> ids, bool skip_special_tokens = false) const;

  int32_t vocab_size() const;  // including added tokens (max id + 1)
  std::optional<int32_t> token_to_id(std::string_view token) const;
  std::string id_to_token(int32_t id) const;  // raw vocab string; empty for an unused id
  bool is_special(int32_t id) const;
  std::optional<int32_t> bos_id() const;  // from tokenizer_config.json bos_token / eos_token
  std::optional<int32_t> eos_id() const;

private:
  explicit Tokenizer(std::unique_ptr<tok::Pipeline> p);
  std::unique_ptr<tok::Pipeline> p_;
};

// Turns ids into text one at a time. Every piece is valid UTF-8, and the pieces of push() calls
// followed by flush() concatenate to tokenizer.decode(all ids). A piece may be empty while a
// multi-byte character (or Llama's byte-fallback tokens) is still incomplete.
class StreamingDecoder {
public:
  explicit StreamingDecoder(const Tokenizer& tokenizer, bool skip_special_tokens = false);
  std::string push(int32_t id);
  std::string flush();  // whatever is still held back (incomplete bytes decode to U+FFFD)

private:
  const Tokenizer& tokenizer_;
  bool skip_special_;
  std::vector<int32_t> ids_;  // [0, read_): last emitted ids, kept as context; then pending ids
  size_t read_ = 0;
};

}  // namespace moescope
