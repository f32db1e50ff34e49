// libFuzzer target: a chat template parsed (ChatTemplate::parse) and rendered with a typical
// conversation (system, user, assistant with reasoning, tool call), as apply_chat_template does.
// Syntax errors, raise_exception and the work/recursion/output limits are TemplateErrors; anything
// else escaping, a crash or a hang is a finding.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "moescope/chat_template.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const nlohmann::ordered_json variables = nlohmann::ordered_json::parse(R"({
    "messages": [
      {"role": "system", "content": "You are helpful."},
      {"role": "user", "content": "Hi <b>there</b> ä€"},
      {"role": "assistant", "content": "Hello!", "reasoning_content": "think",
       "tool_calls": [{"type": "function", "function": {"name": "f", "arguments": {"x": 1}}}]},
      {"role": "tool", "content": "42"},
      {"role": "user", "content": ["a", "b"]}
    ],
    "add_generation_prompt": true, "bos_token": "<s>", "eos_token": "</s>",
    "tools": null, "documents": null})");
  try {
    const moescope::ChatTemplate t =
        moescope::ChatTemplate::parse(std::string(reinterpret_cast<const char*>(data), size));
    (void)t.render(variables);
  } catch (const moescope::TemplateError&) {
  }
  return 0;
}
