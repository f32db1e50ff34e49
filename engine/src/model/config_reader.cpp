#include "model/config_reader.h"

#include <cmath>

#include "moescope/error.h"

namespace moescope::detail {

namespace {
[[noreturn]] void bad(const char* key, const std::string& why) {
  throw Error(std::string("config.json: field '") + key + "' " + why);
}
}  // namespace

bool ConfigReader::present(const char* key) const {
  return j_.is_object() && j_.contains(key) && !j_.at(key).is_null();
}

const nlohmann::json& ConfigReader::field(const char* key) const {
  if (!present(key)) bad(key, "is missing");
  return j_.at(key);
}

int ConfigReader::integer(const char* key, long long lo, long long hi) const {
  const auto& v = field(key);
  long long x = 0;
  if (v.is_number_integer()) {
    x = v.get<long long>();
  } else if (v.is_number_float() && std::floor(v.get<double>()) == v.get<double>() &&
             std::fabs(v.get<double>()) < 9e18) {
    x = static_cast<long long>(v.get<double>());
  } else {
    bad(key, "must be an integer, got " + v.dump());
  }
  if (x < lo || x > hi)
    bad(key, "is " + std::to_string(x) + ", outside the supported range [" + std::to_string(lo) +
                 ", " + std::to_string(hi) + "]");
  return static_cast<int>(x);
}

int ConfigReader::integer_or(const char* key, int fallback, long long lo, long long hi) const {
  return present(key) ? integer(key, lo, hi) : fallback;
}

float ConfigReader::number(const char* key, double lo, double hi) const {
  const auto& v = field(key);
  if (!v.is_number()) bad(key, "must be a number, got " + v.dump());
  double x = v.get<double>();
  if (!std::isfinite(x) || x < lo || x > hi)
    bad(key, "is " + v.dump() + ", outside the supported range [" + std::to_string(lo) + ", " +
                 std::to_string(hi) + "]");
  return static_cast<float>(x);
}

float ConfigReader::number_or(const char* key, float fallback, double lo, double hi) const {
  return present(key) ? number(key, lo, hi) : fallback;
}

bool ConfigReader::boolean_or(const char* key, bool fallback) const {
  if (!present(key)) return fallback;
  const auto& v = j_.at(key);
  if (!v.is_boolean()) bad(key, "must be true or false, got " + v.dump());
  return v.get<bool>();
}

std::string ConfigReader::string_or(const char* key, const std::string& fallback) const {
  if (!present(key)) return fallback;
  const auto& v = j_.at(key);
  if (!v.is_string()) bad(key, "must be a string, got " + v.dump());
  return v.get<std::string>();
}

std::vector<int> ConfigReader::int_list_or(const char* key) const {
  std::vector<int> out;
  if (!present(key)) return out;
  const auto& v = j_.at(key);
  if (!v.is_array()) bad(key, "must be a list of integers");
  for (const auto& e : v) {
    if (!e.is_number_integer()) bad(key, "must be a list of integers");
    out.push_back(e.get<int>());
  }
  return out;
}

std::vector<int> ConfigReader::int_or_list(const char* key) const {
  if (!present(key)) return {};
  const auto& v = j_.at(key);
  if (v.is_number_integer()) return {v.get<int>()};
  return int_list_or(key);
}

}  // namespace moescope::detail
