#pragma once
// What both soak drivers (soak_driver.cpp: engine + store; soak_app.cpp: the real window) share:
// their resident memory and the questions they ask in turn.
#include <fstream>
#include <string>

namespace moescope::soak {

// VmRSS of this process in kB (-1 when /proc is not there).
inline long rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmRSS:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

inline constexpr const char* kQuestions[] = {
    "What is a mixture of experts?",
    "What is 23 + 58?",
    "Why do some experts get more tokens than others?",
    "Reverse the word router.",
    "What does the KV cache store?",
    "Hello!",
};
inline constexpr int kQuestionCount = int(sizeof(kQuestions) / sizeof(kQuestions[0]));

}  // namespace moescope::soak
