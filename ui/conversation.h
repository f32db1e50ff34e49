#pragma once
// A conversation as the app keeps and saves it: messages, per-conversation settings (system
// prompt, sampling), the model it was held with and its routing trace. JSON format version 1.
#include <QDateTime>
#include <QString>
#include <memory>
#include <nlohmann/json.hpp>
#include <vector>

#include "moescope/routing_trace.h"

namespace moescope::ui {

struct SamplingSettings {
  double temperature = 0.7;
  double top_p = 0.95;
  int top_k = 40;
  double min_p = 0.0;
  double repetition_penalty = 1.0;
  int max_tokens = 512;
  quint64 seed = 0;
  bool random_seed = true;  // a fresh seed per answer; false: `seed` every time (reproducible)

  bool operator==(const SamplingSettings&) const = default;
  nlohmann::json to_json() const;
  static SamplingSettings from_json(const nlohmann::json& j);
};

struct Message {
  QString role;     // "user" | "assistant"
  QString content;  // raw text; an assistant's may start with a <think>…</think> section
  // Answer statistics (assistant only): tokens, tokens/s, why it stopped.
  int tokens = 0;
  double tokens_per_second = 0.0;
  QString stop_reason;
};

struct Conversation {
  QString id;
  QString title;
  QDateTime created, updated;
  QString model_dir;   // the model it was last held with
  QString model_name;
  QString system_prompt;
  SamplingSettings sampling;
  std::vector<Message> messages;
  // The routing trace after the last answer (the session's, shared and immutable), or null.
  std::shared_ptr<const RoutingTrace> trace;

  static Conversation create();  // fresh id, timestamps, "New chat"
  nlohmann::json to_json() const;
  static Conversation from_json(const nlohmann::json& j);  // throws std::exception on bad input
  // The messages as a chat template takes them (system prompt first; thinking removed from
  // earlier answers, as reasoning models expect).
  nlohmann::ordered_json template_messages() const;
  QString to_markdown() const;
  bool matches(const QString& needle) const;  // title or any message contains it
};

}  // namespace moescope::ui
