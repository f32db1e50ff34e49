// moescope::Tokenizer: encode / decode over the Pipeline, and the from_dir rules that follow
// transformers' AutoTokenizer.
#include "moescope/tokenizer.h"

#include <spdlog/spdlog.h>

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "moescope/error.h"
#include "moescope/gguf.h"
#include "tokenizer/gguf_vocab.h"
#include "tokenizer/pipeline.h"
#include "tokenizer/unicode.h"

namespace moescope {

using json = nlohmann::json;

namespace tok {

std::vector<int32_t> Pipeline::encode(std::string_view text, bool add_special) const {
  if (const size_t bad = utf8_error_offset(text); bad != std::string_view::npos)
    throw Error("input text is not valid UTF-8 (byte offset " + std::to_string(bad) + ")");
  std::vector<int32_t> ids;
  ids.reserve(text.size() / 3 + 4);
  std::vector<Segment> segments;
  split_added(raw_matcher, added, text, segments);
  for (const auto& s : segments) {
    if (s.token >= 0) ids.push_back(added[size_t(s.token)].id);
    else encode_normalized(text.substr(s.start, s.end - s.start), s.start == 0, ids);
  }
  if (add_special && post_processor) post_processor->process(ids);
  return ids;
}

void Pipeline::encode_normalized(std::string_view text, bool at_start,
                                 std::vector<int32_t>& out) const {
  std::string s(text);
  if (normalizer) normalizer->normalize(s);
  if (normalized_matcher.empty()) {
    encode_segment(std::move(s), at_start, out);
    return;
  }
  std::vector<Segment> segments;
  split_added(normalized_matcher, added, s, segments);
  for (const auto& seg : segments) {
    if (seg.token >= 0) out.push_back(added[size_t(seg.token)].id);
    else encode_segment(s.substr(seg.start, seg.end - seg.start), at_start && seg.start == 0, out);
  }
}

void Pipeline::encode_segment(std::string&& text, bool at_start, std::vector<int32_t>& out) const {
  if (text.empty()) return;
  std::vector<Piece> pieces;
  pieces.push_back({std::move(text), at_start});
  if (pre_tokenizer) pre_tokenizer->pre_tokenize(pieces);
  for (const auto& p : pieces) model->tokenize(p.text, out);
}

std::string Pipeline::decode(const int32_t* ids, size_t n, bool skip_special) const {
  const auto& vocab = model->id_to_token();
  std::vector<std::string> tokens;
  tokens.reserve(n);
  for (size_t k = 0; k < n; ++k) {
    const int32_t id = ids[k];
    if (id < 0 || id >= vocab_size)
      throw Error("token id " + std::to_string(id) + " is outside the vocabulary [0, " +
                  std::to_string(vocab_size) + ")");
    if (const auto it = added_by_id.find(id); it != added_by_id.end()) {
      if (!(skip_special && added[it->second].special)) tokens.push_back(added[it->second].text);
      continue;
    }
    if (size_t(id) >= vocab.size() || vocab[size_t(id)].empty()) continue;
    // HF skips by content: a vocabulary entry spelled like a special added token is special too.
    if (skip_special && !added_by_content.empty()) {
      const auto it = added_by_content.find(vocab[size_t(id)]);
      if (it != added_by_content.end() && added[added_by_id.at(it->second)].special) continue;
    }
    tokens.push_back(vocab[size_t(id)]);
  }
  std::string text;
  if (decoder) {
    decoder->decode(tokens);
    for (const auto& t : tokens) text += t;
  } else {
    for (size_t k = 0; k < tokens.size(); ++k) {
      if (k) text += ' ';
      text += tokens[k];
    }
  }
  return text;
}

}  // namespace tok

namespace {

std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(path.string() + ": cannot open file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return std::move(ss).str();
}

// bos_token / eos_token in tokenizer_config.json: a string or {"content": ...}.
std::optional<std::string> config_token(const json& config, const char* key) {
  if (!config.contains(key)) return std::nullopt;
  const json& v = config.at(key);
  if (v.is_string()) return v.get<std::string>();
  if (v.is_object() && v.contains("content") && v.at("content").is_string())
    return v.at("content").get<std::string>();
  return std::nullopt;
}

bool config_bool(const json& config, const char* key, bool fallback) {
  return config.contains(key) && config.at(key).is_boolean() ? config.at(key).get<bool>() : fallback;
}

}  // namespace

Tokenizer::Tokenizer(std::unique_ptr<tok::Pipeline> p) : p_(std::move(p)) {}
Tokenizer::Tokenizer(Tokenizer&&) noexcept = default;
Tokenizer& Tokenizer::operator=(Tokenizer&&) noexcept = default;
Tokenizer::~Tokenizer() = default;

Tokenizer Tokenizer::from_file(const std::filesystem::path& tokenizer_json) {
  const auto t0 = std::chrono::steady_clock::now();
  auto p = tok::load_tokenizer_json(read_file(tokenizer_json), tokenizer_json.string());
  spdlog::debug("tokenizer: loaded {} ({} ids) in {:.0f} ms", tokenizer_json.string(), p->vocab_size,
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  return Tokenizer(std::move(p));
}

// What transformers' AutoTokenizer (5.x) makes of a directory, for the cases we reproduce:
//  - tokenizer_class LlamaTokenizer[Fast] with a non-byte-level tokenizer.json: the class
//    rebuilds the pipeline around the file's BPE model (models/llama/tokenization_llama.py): no
//    normaliser, Metaspace pre-tokenizer (prepend "always" with legacy, "first" otherwise,
//    "never" without add_prefix_space), Replace/ByteFallback/Fuse/Strip decoder, and BOS/EOS
//    per add_bos_token (default true) / add_eos_token (default false).
//  - anything else (byte-level files, including DeepSeek's that claim LlamaTokenizerFast) is
//    used as tokenizer.json says; add_bos_token is not applied there (AutoTokenizer doesn't).
std::filesystem::path tokenizer_dir_of(const std::filesystem::path& model) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_regular_file(model, ec)) return model;
  const fs::path dir = model.has_parent_path() ? model.parent_path() : fs::path(".");
  if (fs::exists(dir / "tokenizer.json", ec)) return dir;
  if (GgufFile::looks_like_gguf(model)) return {};  // the file's own tokenizer metadata
  throw Error(model.string() + ": no tokenizer.json beside the file");
}

Tokenizer Tokenizer::from_gguf(const std::filesystem::path& gguf) { return from_gguf(*GgufFile::open(gguf)); }

Tokenizer Tokenizer::from_gguf(const GgufFile& file) {
  const auto t0 = std::chrono::steady_clock::now();
  const std::filesystem::path& gguf = file.path();
  auto p = tok::load_tokenizer_json(tok::tokenizer_json_from_gguf(file), gguf.string() + " (tokenizer metadata)");
  auto id = [&](const char* key) -> std::optional<int32_t> {
    const GgufValue* v = file.find(key);
    if (!v || !v->is_integer() || v->i < 0 || v->i >= p->vocab_size) return std::nullopt;
    return int32_t(v->i);
  };
  p->bos = id("tokenizer.ggml.bos_token_id");
  p->eos = id("tokenizer.ggml.eos_token_id");
  if (file.get_string_or("tokenizer.ggml.model", "") == "llama") {
    // What AutoTokenizer makes of a Llama tokenizer (see from_dir): Metaspace with the prefix
    // space on every segment (legacy, the setting of the Llama-2 and Mixtral files; GGUF does not
    // record it), byte fallback, BOS/EOS as the file says (llama.cpp's defaults: BOS, no EOS).
    const bool prefix_space = file.get_bool_or("tokenizer.ggml.add_space_prefix", true);
    p->normalizer.reset();
    p->pre_tokenizer =
        tok::make_metaspace("\xE2\x96\x81", prefix_space ? tok::PrependScheme::Always : tok::PrependScheme::Never, false);
    p->decoder = tok::make_llama_decoder(prefix_space);
    p->post_processor =
        tok::make_bos_eos_processor(file.get_bool_or("tokenizer.ggml.add_bos_token", true) ? p->bos : std::nullopt,
                                    file.get_bool_or("tokenizer.ggml.add_eos_token", false) ? p->eos : std::nullopt);
    p->build_matchers();
  }
  spdlog::debug("tokenizer: from the metadata of {} ({} ids) in {:.0f} ms", gguf.string(), p->vocab_size,
                std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
  return Tokenizer(std::move(p));
}

Tokenizer Tokenizer::from_dir(const std::filesystem::path& model_path) {
  const std::filesystem::path dir = tokenizer_dir_of(model_path);
  if (dir.empty()) return from_gguf(model_path);
  const auto json_path = dir / "tokenizer.json";
  if (!std::filesystem::exists(json_path))
    throw Error(dir.string() + ": no tokenizer.json in this directory");
  const std::string text = read_file(json_path);
  auto p = tok::load_tokenizer_json(text, json_path.string());

  const auto config_path = dir / "tokenizer_config.json";
  if (std::filesystem::exists(config_path)) {
    json config;
    try {
      config = json::parse(read_file(config_path));
    } catch (const json::parse_error& e) {
      throw Error(config_path.string() + ": malformed JSON: " + tok::fix_json_error(e.what()));
    }
    if (!config.is_object()) throw Error(config_path.string() + ": top level is not an object");
    const auto lookup = [&](const char* key) -> std::optional<int32_t> {
      const auto name = config_token(config, key);
      if (!name) return std::nullopt;
      auto it = p->added_by_content.find(*name);
      if (it != p->added_by_content.end()) return it->second;
      return p->model->token_to_id(*name);
    };
    p->bos = lookup("bos_token");
    p->eos = lookup("eos_token");

    std::string cls = config.value("tokenizer_class", "");
    if (cls.ends_with("Fast")) cls.resize(cls.size() - 4);
    const bool byte_level = text.find("\"ByteLevel\"") != std::string::npos;
    if (cls == "LlamaTokenizer" && !byte_level) {
      const bool prefix_space = config_bool(config, "add_prefix_space", true);
      const bool legacy = config_bool(config, "legacy", false);
      const auto scheme = !prefix_space ? tok::PrependScheme::Never
                          : legacy      ? tok::PrependScheme::Always
                                        : tok::PrependScheme::First;
      p->normalizer.reset();
      p->pre_tokenizer = tok::make_metaspace("\xE2\x96\x81", scheme, false);
      p->decoder = tok::make_llama_decoder(prefix_space);
      p->post_processor = tok::make_bos_eos_processor(
          config_bool(config, "add_bos_token", true) ? p->bos : std::nullopt,
          config_bool(config, "add_eos_token", false) ? p->eos : std::nullopt);
      p->build_matchers();
    }
  }
  return Tokenizer(std::move(p));
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_special_tokens) const {
  return p_->encode(text, add_special_tokens);
}

std::string Tokenizer::decode(std::span<const int32_t> ids, bool skip_special_tokens) const {
  return p_->decode(ids.data(), ids.size(), skip_special_tokens);
}

int32_t Tokenizer::vocab_size() const { return p_->vocab_size; }

std::optional<int32_t> Tokenizer::token_to_id(std::string_view token) const {
  if (const auto it = p_->added_by_content.find(token); it != p_->added_by_content.end())
    return it->second;
  return p_->model->token_to_id(token);
}

std::string Tokenizer::id_to_token(int32_t id) const {
  if (const auto it = p_->added_by_id.find(id); it != p_->added_by_id.end())
    return p_->added[it->second].text;
  const auto& vocab = p_->model->id_to_token();
  return id >= 0 && size_t(id) < vocab.size() ? vocab[size_t(id)] : std::string();
}

bool Tokenizer::is_special(int32_t id) const {
  const auto it = p_->added_by_id.find(id);
  return it != p_->added_by_id.end() && p_->added[it->second].special;
}

std::optional<int32_t> Tokenizer::bos_id() const { return p_->bos; }
std::optional<int32_t> Tokenizer::eos_id() const { return p_->eos; }

}  // namespace moescope
