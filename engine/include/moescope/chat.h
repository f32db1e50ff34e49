#pragma once
// Everything needed to chat with a checkpoint directory: the model, its tokenizer and its chat
// template, and the step from a conversation (messages) to prompt token ids. Shared by
// `moescope-cli generate --chat` and the desktop app.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "moescope/chat_template.h"
#include "moescope/model_weights.h"
#include "moescope/tokenizer.h"

namespace moescope {

struct ChatPrompt {
  std::string text;             // the rendered prompt
  std::vector<int32_t> ids;     // its tokens
  bool used_fallback = false;   // the checkpoint's template was missing or failed
  std::string fallback_reason;  // why, for the user
};

class ChatFormat {
public:
  // Reads DIR/tokenizer.json (required) and DIR/tokenizer_config.json (template, bos/eos; a
  // missing or broken template is not fatal: the plain fallback format is used and reported).
  static ChatFormat from_dir(const std::filesystem::path& dir);

  const Tokenizer& tokenizer() const { return *tokenizer_; }
  std::shared_ptr<const Tokenizer> tokenizer_ptr() const { return tokenizer_; }
  bool has_template() const { return config_.has_value(); }
  // gpt-oss' harmony format (the vocabulary has <|start|>, <|channel|>, <|message|>, <|end|> and
  // <|return|>): an answer is a run of messages on channels, analysis (the reasoning) before final
  // (the answer), so its text is shown with those special tokens kept (ui/thinking.h).
  bool harmony() const { return harmony_; }
  const std::string& template_problem() const { return template_problem_; }

  // messages: [{"role": "system"|"user"|"assistant", "content": "..."}], as transformers takes
  // them. Renders with the checkpoint's template, or with the fallback when it is missing or
  // raises (the reason is reported in the result).
  ChatPrompt render(const nlohmann::ordered_json& messages, bool add_generation_prompt = true,
                    const nlohmann::ordered_json& extra = nlohmann::ordered_json::object()) const;
  // Ids that end an assistant turn: the tokenizer's eos and the template's end-of-turn markers
  // that exist in the vocabulary (<|im_end|>, <|eot_id|>, <｜end▁of▁sentence｜>, </s>, ...);
  // for harmony <|return|> and <|call|>, not <|end|>, which closes the analysis message.
  std::vector<int32_t> stop_ids() const;
  // The plain format used when there is no usable template:
  //   "<role>: <content>\n\n" per message, then "assistant: " for the generation prompt.
  static std::string fallback_render(const nlohmann::ordered_json& messages, bool add_generation_prompt);

private:
  std::shared_ptr<const Tokenizer> tokenizer_;
  std::optional<ChatTemplateConfig> config_;
  std::string template_problem_;
  bool harmony_ = false;
};

}  // namespace moescope
