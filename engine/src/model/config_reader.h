#pragma once
// Checked access to config.json fields: every read names the field in its error and enforces a
// sane range, so an absurd value is one clear message instead of a crash or a giant allocation.
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace moescope::detail {

class ConfigReader {
public:
  explicit ConfigReader(const nlohmann::json& j) : j_(j) {}

  bool present(const char* key) const;                        // present and not null
  int integer(const char* key, long long lo, long long hi) const;  // required
  int integer_or(const char* key, int fallback, long long lo, long long hi) const;
  float number(const char* key, double lo, double hi) const;  // required
  float number_or(const char* key, float fallback, double lo, double hi) const;
  bool boolean_or(const char* key, bool fallback) const;
  std::string string_or(const char* key, const std::string& fallback) const;
  std::vector<int> int_list_or(const char* key) const;        // absent -> empty
  std::vector<int> int_or_list(const char* key) const;        // 5 or [5, 6] -> ids; absent -> empty
  const nlohmann::json& raw() const { return j_; }

private:
  const nlohmann::json& field(const char* key) const;
  const nlohmann::json& j_;
};

}  // namespace moescope::detail
