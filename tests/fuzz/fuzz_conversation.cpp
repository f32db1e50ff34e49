// libFuzzer target: a conversation file as ConversationStore::load_all reads it (JSON, then
// Conversation::from_json), written back with to_json and read again. from_json's contract is
// "throws std::exception on bad input" (the store then moves the file aside), so any
// std::exception is an accepted outcome; crashes, leaks and non-exception failures are findings.
#include <cstdint>
#include <exception>
#include <nlohmann/json.hpp>

#include "ui/conversation.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const auto c = moescope::ui::Conversation::from_json(nlohmann::json::parse(data, data + size));
    (void)moescope::ui::Conversation::from_json(c.to_json());
    (void)c.template_messages();
  } catch (const std::exception&) {
  }
  return 0;
}
