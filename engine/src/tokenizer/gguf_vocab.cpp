#include "tokenizer/gguf_vocab.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <vector>

#include "moescope/error.h"

namespace moescope::tok {

namespace {

using ojson = nlohmann::json;  // not ordered_json: its objects search linearly (150k tokens)

// llama.cpp's token types (llama_token_type / gguf.TokenType).
enum TokenType : int64_t { kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6 };

ojson byte_level(bool use_regex) {
  return {{"type", "ByteLevel"}, {"add_prefix_space", false}, {"trim_offsets", false}, {"use_regex", use_regex}};
}

ojson split(const char* regex) {
  return {{"type", "Split"}, {"pattern", {{"Regex", regex}}}, {"behavior", "Isolated"}, {"invert", false}};
}

// The normaliser and pre-tokenizer of the Hugging Face tokenizer behind each tokenizer.ggml.pre
// name (the regular expressions are those of the models' own tokenizer.json files).
bool pre_tokenizer_of(const std::string& pre, ojson& normalizer, ojson& pre_tokenizer) {
  if (pre == "qwen2") {  // Qwen2, Qwen2.5, Qwen3 and their MoE models
    normalizer = {{"type", "NFC"}};
    pre_tokenizer = {{"type", "Sequence"},
                     {"pretokenizers",
                      {split("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*|"
                             "\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+"),
                       byte_level(false)}}};
    return true;
  }
  // DeepSeek-V3, R1; llama.cpp's converter names the same tokenizer "joyai-llm" when it
  // recognises it by its hash (the two share the definition in llama.cpp too)
  if (pre == "deepseek-v3" || pre == "joyai-llm") {
    normalizer = nullptr;
    pre_tokenizer = {{"type", "Sequence"},
                     {"pretokenizers",
                      {split("\\p{N}{1,3}"), split("[\xE4\xB8\x80-\xE9\xBE\xA5\xE3\x81\x80-\xE3\x82\x9F\xE3\x82\xA0-\xE3\x83\xBF]+"),
                       split("[!\"#$%&'()*+,\\-./:;<=>?@\\[\\\\\\]^_`{|}~][A-Za-z]+|[^\r\n\\p{L}\\p{P}\\p{S}]?[\\p{L}\\p{M}]+|"
                             " ?[\\p{P}\\p{S}]+[\r\n]*|\\s*[\r\n]+|\\s+(?!\\S)|\\s+"),
                       byte_level(false)}}};
    return true;
  }
  return false;
}

// An added_tokens entry: matched on the raw text (llama.cpp does); special unless the converter
// called it USER_DEFINED.
ojson added_token(size_t id, const std::string& content, int64_t type) {
  return {{"id", id},       {"content", content}, {"single_word", false}, {"lstrip", false},
          {"rstrip", false}, {"normalized", false}, {"special", type != kUserDefined}};
}

// A BPE model section: byte_fallback and fuse_unk for SentencePiece vocabularies.
ojson bpe_model(ojson unk, bool sentencepiece, ojson vocab, ojson merges) {
  return {{"type", "BPE"},           {"dropout", nullptr},         {"unk_token", std::move(unk)},
          {"continuing_subword_prefix", nullptr}, {"end_of_word_suffix", nullptr},
          {"fuse_unk", sentencepiece}, {"byte_fallback", sentencepiece}, {"ignore_merges", false},
          {"vocab", std::move(vocab)}, {"merges", std::move(merges)}};
}

// A tokenizer.json document around its parts.
ojson document(ojson added, ojson normalizer, ojson pre_tokenizer, ojson post_processor, ojson decoder, ojson model) {
  return {{"version", "1.0"},          {"truncation", nullptr},        {"padding", nullptr},
          {"added_tokens", std::move(added)}, {"normalizer", std::move(normalizer)},
          {"pre_tokenizer", std::move(pre_tokenizer)}, {"post_processor", std::move(post_processor)},
          {"decoder", std::move(decoder)}, {"model", std::move(model)}};
}

const GgufValue& array_of(const GgufFile& g, const std::string& key, GgufType elem) {
  const GgufValue* v = g.find(key);
  if (!v) throw Error(g.path().string() + ": no " + key + " in the metadata, so the file has no usable tokenizer");
  if (v->type != GgufType::Array || v->elem != elem)
    throw Error(g.path().string() + ": metadata '" + key + "' is not an array of " + gguf_type_name(elem));
  return *v;
}

}  // namespace

namespace {

// Byte-level BPE ("gpt2"): the vocabulary, the merges and the pre-tokenizer named by
// tokenizer.ggml.pre.
ojson gpt2_document(const GgufFile& g, const std::vector<std::string>& tokens, const std::vector<int64_t>* types,
                    const std::string& beside) {
  const std::string file = g.path().string();
  const std::string pre = g.get_string_or("tokenizer.ggml.pre", "default");
  ojson normalizer, pre_tokenizer;
  if (!pre_tokenizer_of(pre, normalizer, pre_tokenizer))
    throw Error(file + ": its pre-tokenizer (tokenizer.ggml.pre '" + pre +
                "') is not one moescope knows (qwen2, deepseek-v3)" + beside);
  const auto& merges = array_of(g, "tokenizer.ggml.merges", GgufType::String).strings;
  ojson vocab = ojson::object(), added = ojson::array();
  for (size_t id = 0; id < tokens.size(); ++id) {
    const int64_t type = types ? (*types)[id] : kNormal;
    switch (type) {
      case kUnused: break;  // the converter's [PADn] fillers up to the model's vocabulary size
      case kControl:
      case kUnknown:
      case kUserDefined:
        added.push_back(added_token(id, tokens[id], type));
        // also in the vocabulary, as in the Hugging Face files: the tokenizer keeps an added
        // token's id only when the vocabulary has it (else it numbers it after the vocabulary)
        vocab.emplace(tokens[id], id);
        break;
      default:
        if (!vocab.emplace(tokens[id], id).second)
          throw Error(file + ": token " + std::to_string(id) + " repeats an earlier token of the vocabulary");
    }
  }
  return document(std::move(added), normalizer, pre_tokenizer, byte_level(false), byte_level(false),
                  bpe_model(nullptr, false, std::move(vocab), merges));
}

// Where the UTF-8 characters of s start (and s.size() at the end).
std::vector<size_t> char_starts(const std::string& s) {
  std::vector<size_t> at;
  for (size_t i = 0; i < s.size(); ++i)
    if ((uint8_t(s[i]) & 0xC0) != 0x80) at.push_back(i);
  at.push_back(s.size());
  return at;
}

// SentencePiece BPE ("llama"): GGUF keeps the pieces and their scores but not the merges, so they
// are rebuilt as transformers' converter builds them from a SentencePiece model: for every piece,
// every split into two pieces of the vocabulary is a merge (ordered within the piece by the two
// halves' ids), and the merges are ordered by the merged piece's score, highest first, ties in
// vocabulary order (with every score equal, which convert_hf_to_gguf.py writes when it converted
// from tokenizer.json, that is the order of the ids, SentencePiece's own order). The Llama
// tokenizer's pipeline (prefix space, byte fallback, BOS) is set by Tokenizer::from_gguf.
ojson llama_document(const GgufFile& g, const std::vector<std::string>& tokens, const std::vector<int64_t>* types) {
  const std::string file = g.path().string();
  const GgufValue* scores_v = g.find("tokenizer.ggml.scores");
  std::vector<double> scores(tokens.size(), 0.0);
  if (scores_v) {
    if (scores_v->type != GgufType::Array || scores_v->floats.size() != tokens.size())
      throw Error(file + ": metadata 'tokenizer.ggml.scores' does not have one number per token (" +
                  std::to_string(tokens.size()) + " tokens)");
    scores = scores_v->floats;
  }
  std::unordered_map<std::string, int64_t> ids;
  ojson vocab = ojson::object(), added = ojson::array();
  for (size_t id = 0; id < tokens.size(); ++id) {
    const int64_t type = types ? (*types)[id] : kNormal;
    if (type == kUnused) continue;
    ids.emplace(tokens[id], int64_t(id));
    vocab.emplace(tokens[id], id);
    if (type == kControl || type == kUnknown || type == kUserDefined)
      added.push_back(added_token(id, tokens[id], type));
  }
  struct Merge {
    int64_t l, r;
    double score;
    size_t order;
  };
  std::vector<Merge> merges;
  for (size_t id = 0; id < tokens.size(); ++id) {
    const int64_t type = types ? (*types)[id] : kNormal;
    if (type != kNormal && type != kUndefined) continue;
    const std::string& piece = tokens[id];
    const std::vector<size_t> at = char_starts(piece);
    std::vector<Merge> local;
    for (size_t c = 1; c + 1 < at.size(); ++c) {
      auto l = ids.find(piece.substr(0, at[c])), r = ids.find(piece.substr(at[c]));
      if (l != ids.end() && r != ids.end()) local.push_back({l->second, r->second, scores[id], 0});
    }
    std::sort(local.begin(), local.end(), [](const Merge& a, const Merge& b) { return std::pair(a.l, a.r) < std::pair(b.l, b.r); });
    for (Merge& m : local) m.order = merges.size(), merges.push_back(m);
  }
  std::stable_sort(merges.begin(), merges.end(), [](const Merge& a, const Merge& b) { return a.score > b.score; });
  ojson merge_list = ojson::array();
  for (const Merge& m : merges) merge_list.push_back(ojson::array({tokens[size_t(m.l)], tokens[size_t(m.r)]}));
  const GgufValue* unk = g.find("tokenizer.ggml.unknown_token_id");
  const bool has_unk = unk && unk->is_integer() && unk->i >= 0 && size_t(unk->i) < tokens.size();
  return document(std::move(added), nullptr, nullptr, nullptr, nullptr,
                  bpe_model(has_unk ? ojson(tokens[size_t(unk->i)]) : ojson(nullptr), true, std::move(vocab),
                            std::move(merge_list)));
}

}  // namespace

std::string tokenizer_json_from_gguf(const GgufFile& g) {
  const std::string file = g.path().string();
  const std::string model = g.get_string_or("tokenizer.ggml.model", "");
  const std::string beside = "; put the model's tokenizer.json (and tokenizer_config.json) beside the file";
  if (model.empty() || model == "none")
    throw Error(file + ": the file carries no tokenizer (tokenizer.ggml.model " + (model.empty() ? "absent" : "'none'") +
                ")" + beside);
  if (model != "gpt2" && model != "llama")
    throw Error(file + ": its tokenizer (tokenizer.ggml.model '" + model +
                "') cannot be read from GGUF metadata yet (byte-level BPE 'gpt2' and SentencePiece 'llama' can)" +
                beside);
  const auto& tokens = array_of(g, "tokenizer.ggml.tokens", GgufType::String).strings;
  const GgufValue* types_v = g.find("tokenizer.ggml.token_type");
  if (types_v && (types_v->type != GgufType::Array || types_v->ints.size() != tokens.size()))
    throw Error(file + ": metadata 'tokenizer.ggml.token_type' does not have one integer per token (" +
                std::to_string(tokens.size()) + " tokens)");
  const std::vector<int64_t>* types = types_v ? &types_v->ints : nullptr;
  const ojson doc = model == "gpt2" ? gpt2_document(g, tokens, types, beside) : llama_document(g, tokens, types);
  try {
    return doc.dump();
  } catch (const nlohmann::json::exception&) {  // type_error 316: a string that is not UTF-8
    throw Error(file + ": the tokenizer metadata holds a token or merge that is not valid UTF-8");
  }
}

ChatTemplateConfig chat_config_from_gguf(const GgufFile& g) {
  ChatTemplateConfig c;
  c.source = g.get_string_or("tokenizer.chat_template", "");
  const GgufValue* tokens = g.find("tokenizer.ggml.tokens");
  auto token = [&](const char* key) -> std::string {
    const GgufValue* id = g.find(key);
    if (!id || !id->is_integer() || !tokens || id->i < 0 || size_t(id->i) >= tokens->strings.size()) return "";
    return tokens->strings[size_t(id->i)];
  };
  c.bos_token = token("tokenizer.ggml.bos_token_id");
  c.eos_token = token("tokenizer.ggml.eos_token_id");
  return c;
}

}  // namespace moescope::tok
