#pragma once
// Chat templates: a Jinja interpreter for the subset that checkpoints' `chat_template` strings use,
// rendering byte-for-byte as transformers' `apply_chat_template(..., tokenize=False)` does (a
// sandboxed jinja2 environment with trim_blocks, lstrip_blocks, loop controls, `namespace()`, a
// `tojson` that keeps non-ASCII text, and `raise_exception`). The language notes and limits are
// in engine/src/template/README.md.
#include <ctime>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>

#include "moescope/error.h"

namespace moescope {

// A template that failed to parse or render: syntax errors, `raise_exception(...)`, type errors,
// undefined values used where jinja2 raises, and the safety limits (output size, loop work,
// recursion). `line()` is the 1-based template line, 0 when not tied to a line.
class TemplateError : public Error {
public:
  TemplateError(const std::string& message, int line);
  int line() const { return line_; }
  // The message without the " (template line N)" suffix, e.g. what raise_exception was given.
  const std::string& detail() const { return detail_; }

private:
  std::string detail_;
  int line_ = 0;
};

namespace tmpl {
struct Program;
}

class ChatTemplate {
public:
  static ChatTemplate parse(std::string source);  // throws TemplateError on syntax errors

  // Variables are the template's globals. Objects keep their key order only with
  // nlohmann::ordered_json (plain nlohmann::json stores keys sorted), which `tojson` and `items`
  // expose, so pass ordered_json where the output must match transformers exactly.
  // strftime_now() reports `now` (a local time) when given, else the clock, as transformers'
  // datetime.now() does.
  std::string render(const nlohmann::json& variables, const std::optional<std::tm>& now = std::nullopt) const;
  std::string render(const nlohmann::ordered_json& variables, const std::optional<std::tm>& now = std::nullopt) const;

private:
  std::shared_ptr<const tmpl::Program> program_;
};

struct ChatTemplateConfig {
  std::string source;
  std::string bos_token, eos_token;  // empty: absent (null) in tokenizer_config.json
  // The time strftime_now() reports (gpt-oss writes "Current date: ..." into its system message);
  // unset: the clock. Fixed for prompts that must not change from day to day (the goldens).
  std::optional<std::tm> now;
};

// Reads tokenizer_config.json: chat_template as a string, or a list of {"name","template"} (the
// one called `name`); bos_token/eos_token as a string or an object with "content". Throws Error
// with a clear message if the file or the template is absent or malformed.
ChatTemplateConfig load_chat_template_config(const std::filesystem::path& tokenizer_config_json,
                                             const std::string& name = "default");

// transformers' apply_chat_template(messages, add_generation_prompt=..., tokenize=False, **extra):
// drops message keys whose value is null, aliases reasoning fields (reasoning_content / thinking /
// reasoning), passes tools/documents (null when absent), bos/eos tokens and the extra variables.
std::string apply_chat_template(const ChatTemplateConfig& config, const nlohmann::json& messages,
                                bool add_generation_prompt,
                                const nlohmann::json& extra_variables = nlohmann::json::object());
std::string apply_chat_template(const ChatTemplateConfig& config,
                                const nlohmann::ordered_json& messages, bool add_generation_prompt,
                                const nlohmann::ordered_json& extra_variables = nlohmann::ordered_json::object());

}  // namespace moescope
