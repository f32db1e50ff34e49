#pragma once
// Reasoning models write `<think>…</think>` before the answer; gpt-oss writes harmony messages,
// `<|channel|>analysis<|message|>…<|end|><|start|>assistant<|channel|>final<|message|>…<|return|>`
// (analysis, commentary and tool calls are the thinking, final the answer). Splits a (possibly
// still growing) answer into its thinking and the answer proper.
#include <QString>

namespace moescope::ui {

struct ThinkingSplit {
  QString thinking;           // without the tags, trimmed
  QString answer;             // the rest, trimmed at the start
  bool has_thinking = false;
  bool thinking_done = false; // the closing tag arrived (the answer has started)
};

ThinkingSplit split_thinking(const QString& text);

}  // namespace moescope::ui
