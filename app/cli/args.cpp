#include "args.h"

#include <charconv>
#include <cmath>

#include "moescope/error.h"

namespace moescope::cli {

Args::Args(int argc, char** argv, int first, const std::set<std::string>& flags,
           const std::set<std::string>& options) {
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0) throw Error("unexpected argument '" + a + "'");
    std::string name = a.substr(2);
    if (auto eq = name.find('='); eq != std::string::npos) {
      std::string value = name.substr(eq + 1);
      name = name.substr(0, eq);
      if (!options.count(name)) throw Error("unknown option --" + name);
      values_[name] = value;
    } else if (flags.count(name)) {
      switches_.insert(name);
    } else if (options.count(name)) {
      if (i + 1 >= argc) throw Error("option --" + name + " needs a value");
      values_[name] = argv[++i];
    } else {
      throw Error("unknown option --" + name);
    }
  }
}

bool Args::has(const std::string& name) const {
  return switches_.count(name) || values_.count(name);
}

std::optional<std::string> Args::get(const std::string& name) const {
  auto it = values_.find(name);
  if (it == values_.end()) return std::nullopt;
  return it->second;
}

std::string Args::get_or(const std::string& name, const std::string& fallback) const {
  return get(name).value_or(fallback);
}

std::string Args::require(const std::string& name) const {
  auto v = get(name);
  if (!v) throw Error("missing required option --" + name);
  return *v;
}

long long Args::get_int(const std::string& name, long long fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  long long out = 0;
  auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || p != v->data() + v->size())
    throw Error("option --" + name + " expects an integer, got '" + *v + "'");
  return out;
}

double Args::get_double(const std::string& name, double fallback) const {
  auto v = get(name);
  if (!v) return fallback;
  try {
    size_t used = 0;
    double out = std::stod(*v, &used);
    if (used != v->size()) throw std::invalid_argument("trailing");
    if (!std::isfinite(out)) throw std::out_of_range("not finite");  // nan, inf: never meant
    return out;
  } catch (const std::exception&) {
    throw Error("option --" + name + " expects a finite number, got '" + *v + "'");
  }
}

std::vector<int> Args::get_int_list(const std::string& name) const {
  std::string s = require(name);
  std::vector<int> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t end = s.find(',', start);
    if (end == std::string::npos) end = s.size();
    std::string item = s.substr(start, end - start);
    int v = 0;
    auto [p, ec] = std::from_chars(item.data(), item.data() + item.size(), v);
    if (item.empty() || ec != std::errc() || p != item.data() + item.size())
      throw Error("option --" + name + " expects comma-separated integers, got '" + s + "'");
    out.push_back(v);
    start = end + 1;
  }
  return out;
}

}  // namespace moescope::cli
