#pragma once
// gpt-oss' harmony format, read from the generated token ids. An answer is a run of messages,
//   [<|start|>ROLE[ to=RECIPIENT]]<|channel|>NAME[ to=RECIPIENT][ <|constrain|>TYPE]<|message|>BODY
//   (<|end|> | <|return|> | <|call|>)
// (the generation prompt ends in "<|start|>assistant", so the first message has no <|start|>).
// As vLLM serves gpt-oss: the body of a `final` message is the answer (content), `analysis` the
// reasoning (reasoning_content), and `commentary` (preambles, tool calls, which moescope does not
// execute) is counted as reasoning too; several reasoning messages are joined with "\n". None of
// the special tokens and none of the header text ever reaches either string.
//
// Incremental: push() one id at a time, the pieces it returns concatenate to what parse() returns
// for the whole sequence. Output that never opens a message (a model not following the format) is
// given back as content by flush(), so nothing the model wrote is lost.
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "moescope/tokenizer.h"

namespace moescope {

struct HarmonyText {
  std::string reasoning;
  std::string content;
  bool has_final = false;  // a `final` message was opened
};

class HarmonyParser {
public:
  // The tokenizer must have the harmony tokens (ChatFormat::harmony()); Error otherwise.
  explicit HarmonyParser(const Tokenizer& tok);

  // The text the id adds (either string may be empty).
  HarmonyText push(int32_t id);
  // The end of the generation: what is still held back.
  HarmonyText flush();

  static HarmonyText parse(const Tokenizer& tok, std::span<const int32_t> ids);

private:
  enum class Target { None, Reasoning, Content };
  void open_message();
  void append(HarmonyText& out, const std::string& text);

  const Tokenizer& tok_;
  int32_t start_, channel_, message_, end_, return_, call_;
  std::optional<int32_t> constrain_;
  bool in_body_ = false;
  bool in_channel_ = false;  // header text after <|channel|>
  bool any_message_ = false;
  bool reasoning_written_ = false;
  bool pending_separator_ = false;  // a reasoning message after another: "\n" before its text
  bool has_final_ = false;
  Target target_ = Target::None;
  std::string role_, header_;             // header text before / after <|channel|>
  std::vector<int32_t> header_ids_;       // header ids before any message (given back if none opens)
  std::optional<StreamingDecoder> body_;  // the current message body's text
};

}  // namespace moescope
