#include "moescope/chat.h"

#include <spdlog/spdlog.h>

#include "moescope/error.h"
#include "moescope/gguf.h"
#include "tokenizer/gguf_vocab.h"

namespace moescope {

namespace fs = std::filesystem;

namespace {

// gpt-oss' harmony format writes its messages with these (special) tokens.
bool has_harmony_tokens(const Tokenizer& tok) {
  for (const char* t : {"<|start|>", "<|channel|>", "<|message|>", "<|end|>", "<|return|>"})
    if (!tok.token_to_id(t)) return false;
  return true;
}

}  // namespace

ChatFormat ChatFormat::from_dir(const fs::path& model) {
  const fs::path dir = tokenizer_dir_of(model);
  ChatFormat f;
  if (dir.empty()) {  // a GGUF file with its own tokenizer and template
    const auto g = GgufFile::open(model);  // opened once for the tokenizer and the template
    f.tokenizer_ = std::make_shared<const Tokenizer>(Tokenizer::from_gguf(*g));
    f.harmony_ = has_harmony_tokens(*f.tokenizer_);
    try {
      ChatTemplateConfig c = tok::chat_config_from_gguf(*g);
      if (c.source.empty()) throw Error("the file has no tokenizer.chat_template");
      ChatTemplate::parse(c.source);
      f.config_ = std::move(c);
    } catch (const Error& e) {
      f.template_problem_ = std::string("chat template unusable: ") + e.what();
      spdlog::warn("{} ({}); using the plain fallback format", f.template_problem_, model.string());
    }
    return f;
  }
  if (!fs::exists(dir / "tokenizer.json")) throw Error("no tokenizer.json in " + dir.string());
  f.tokenizer_ = std::make_shared<const Tokenizer>(Tokenizer::from_dir(dir));
  f.harmony_ = has_harmony_tokens(*f.tokenizer_);
  const fs::path cfg = dir / "tokenizer_config.json";
  try {
    if (!fs::exists(cfg)) throw Error("no tokenizer_config.json");
    ChatTemplateConfig c = load_chat_template_config(cfg);
    ChatTemplate::parse(c.source);  // syntax errors surface now, not at the first message
    f.config_ = std::move(c);
  } catch (const Error& e) {
    f.template_problem_ = std::string("chat template unusable: ") + e.what();
    spdlog::warn("{} ({}); using the plain fallback format", f.template_problem_, dir.string());
  }
  return f;
}

std::string ChatFormat::fallback_render(const nlohmann::ordered_json& messages, bool add_generation_prompt) {
  std::string out;
  for (const auto& m : messages) {
    std::string role = m.contains("role") && m["role"].is_string() ? m["role"].get<std::string>() : "user";
    std::string content = m.contains("content") && m["content"].is_string() ? m["content"].get<std::string>() : "";
    out += role + ": " + content + "\n\n";
  }
  if (add_generation_prompt) out += "assistant: ";
  return out;
}

ChatPrompt ChatFormat::render(const nlohmann::ordered_json& messages, bool add_generation_prompt,
                              const nlohmann::ordered_json& extra) const {
  ChatPrompt p;
  if (config_) {
    try {
      p.text = apply_chat_template(*config_, messages, add_generation_prompt, extra);
    } catch (const Error& e) {  // TemplateError, or messages the template cannot take
      p.used_fallback = true;
      p.fallback_reason = std::string("chat template failed: ") + e.what();
    }
  } else {
    p.used_fallback = true;
    p.fallback_reason = template_problem_;
  }
  if (p.used_fallback) p.text = fallback_render(messages, add_generation_prompt);
  // The template writes the special tokens (bos, role markers) itself: no extra specials.
  p.ids = tokenizer_->encode(p.text, /*add_special_tokens=*/false);
  return p;
}

std::vector<int32_t> ChatFormat::stop_ids() const {
  std::vector<int32_t> ids;
  auto add = [&](std::optional<int32_t> id) {
    if (id && std::find(ids.begin(), ids.end(), *id) == ids.end()) ids.push_back(*id);
  };
  if (harmony_) {
    // One harmony answer is several messages, each closed by <|end|> (analysis, then final): the
    // turn ends at <|return|>, or at <|call|> when a tool call waits for its result.
    for (const char* t : {"<|return|>", "<|call|>", "<|endoftext|>"}) add(tokenizer_->token_to_id(t));
    if (auto e = tokenizer_->eos_id(); e && e != tokenizer_->token_to_id("<|end|>")) add(e);
    return ids;
  }
  add(tokenizer_->eos_id());
  for (const char* t : {"<|im_end|>", "<|eot_id|>", "<|end|>", "<｜end▁of▁sentence｜>", "</s>", "<|endoftext|>"})
    add(tokenizer_->token_to_id(t));
  return ids;
}

}  // namespace moescope
