// Operators, attribute access, filters, tests and str/dict/list methods with the semantics jinja2
// gives them on Python values (jinja2/filters.py, jinja2/tests.py, the sandbox's getattr), and the
// error messages Python would raise. Strings are UTF-8; whatever counts characters (len, slicing,
// indexing, strip(chars), find) works on code points, as Python's str does.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <ctime>
#include <limits>
#include <optional>

#include "template/ast.h"
#include "template/builtins.h"

namespace moescope::tmpl {
namespace {

using Kind = Value::Kind;

[[noreturn]] void type_error(const std::string& msg) { throw EvalError(msg); }

// ---- argument binding ---------------------------------------------------------------------------

// Binds positional and keyword arguments to named parameters, as Python would.
class Params {
public:
  Params(const std::string& fname, const List& args, const KwArgs& kwargs, std::vector<std::string> names)
      : names_(std::move(names)), values_(names_.size(), nullptr) {
    if (args.size() > names_.size())
      type_error(fname + "() takes at most " + std::to_string(names_.size()) + " argument(s) (" +
                 std::to_string(args.size()) + " given)");
    for (size_t k = 0; k < args.size(); ++k) values_[k] = &args[k];
    for (const auto& [key, val] : kwargs) {
      auto it = std::find(names_.begin(), names_.end(), key);
      if (it == names_.end()) type_error(fname + "() got an unexpected keyword argument '" + key + "'");
      values_[it - names_.begin()] = &val;
    }
  }
  const Value* get(size_t k) const { return values_[k]; }
  Value value_or(size_t k, Value fallback) const { return values_[k] ? *values_[k] : std::move(fallback); }
  bool flag(size_t k, bool fallback = false) const { return values_[k] ? truthy(*values_[k]) : fallback; }

private:
  std::vector<std::string> names_;
  std::vector<const Value*> values_;
};

const std::string& need_str(const Value& v, const char* what) {
  if (v.kind != Kind::String) type_error(std::string(what) + " must be str, not " + type_name(v));
  return v.s;
}

int64_t need_int(const Value& v, const char* what) {
  if (v.kind == Kind::Int) return v.i;
  if (v.kind == Kind::Bool) return v.b;
  type_error(std::string("'") + type_name(v) + "' object cannot be interpreted as an integer (" + what + ")");
}

double to_double(const Value& v) {
  return v.kind == Kind::Float ? v.f : v.kind == Kind::Int ? static_cast<double>(v.i) : v.b ? 1.0 : 0.0;
}

bool is_int_like(const Value& v) { return v.kind == Kind::Int || v.kind == Kind::Bool; }
int64_t int_of(const Value& v) { return v.kind == Kind::Int ? v.i : v.b; }

// ---- strings ------------------------------------------------------------------------------------

char32_t to_upper(char32_t c) {
  if (c >= 'a' && c <= 'z') return c - 32;
  if ((c >= 0xe0 && c <= 0xfe && c != 0xf7) || (c >= 0x3b1 && c <= 0x3c9 && c != 0x3c2) || (c >= 0x430 && c <= 0x44f))
    return c - 32;
  if (c >= 0x450 && c <= 0x45f) return c - 80;
  return c;
}
char32_t to_lower(char32_t c) {
  if (c >= 'A' && c <= 'Z') return c + 32;
  if ((c >= 0xc0 && c <= 0xde && c != 0xd7) || (c >= 0x391 && c <= 0x3a9 && c != 0x3a2) || (c >= 0x410 && c <= 0x42f))
    return c + 32;
  if (c >= 0x400 && c <= 0x40f) return c + 80;
  return c;
}
bool is_alpha(char32_t c) { return to_upper(c) != c || to_lower(c) != c || (c > 0x7f && c != 0xd7 && c != 0xf7 && !is_py_space(c) && c >= 0xc0); }

std::string map_chars(const std::string& s, char32_t (*f)(char32_t)) {
  std::u32string u = utf8_decode(s);
  for (auto& c : u) c = f(c);
  return utf8_encode(u);
}

std::string title_case(const std::string& s, bool only_first) {
  std::u32string u = utf8_decode(s);
  bool prev_cased = false;
  for (size_t k = 0; k < u.size(); ++k) {
    char32_t c = u[k];
    bool cased = to_upper(c) != c || to_lower(c) != c;
    if (only_first) u[k] = k == 0 ? to_upper(c) : to_lower(c);
    else u[k] = cased ? (prev_cased ? to_lower(c) : to_upper(c)) : c;
    prev_cased = cased;
  }
  return utf8_encode(u);
}

std::string strip(const std::string& s, const Value* chars, bool left, bool right) {
  std::u32string u = utf8_decode(s);
  std::u32string set;
  bool whitespace = !chars || chars->kind == Kind::None;
  if (!whitespace) set = utf8_decode(need_str(*chars, "strip arg"));
  auto drop = [&](char32_t c) { return whitespace ? is_py_space(c) : set.find(c) != std::u32string::npos; };
  size_t b = 0, e = u.size();
  if (left)
    while (b < e && drop(u[b])) ++b;
  if (right)
    while (e > b && drop(u[e - 1])) --e;
  return utf8_encode(u.substr(b, e - b));
}

List split(const std::string& s, const Value* sep_v, int64_t maxsplit, bool from_right) {
  List out;
  if (!sep_v || sep_v->kind == Kind::None) {
    std::u32string u = utf8_decode(s);
    std::vector<std::u32string> words;
    if (!from_right) {
      size_t k = 0;
      while (true) {
        while (k < u.size() && is_py_space(u[k])) ++k;
        if (k >= u.size()) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          size_t e = u.size();
          while (e > k && is_py_space(u[e - 1])) --e;
          words.push_back(u.substr(k, e - k));
          break;
        }
        size_t e = k;
        while (e < u.size() && !is_py_space(u[e])) ++e;
        words.push_back(u.substr(k, e - k));
        k = e;
      }
    } else {
      size_t k = u.size();
      while (true) {
        while (k > 0 && is_py_space(u[k - 1])) --k;
        if (k == 0) break;
        if (maxsplit >= 0 && static_cast<int64_t>(words.size()) == maxsplit) {
          size_t b = 0;
          while (b < k && is_py_space(u[b])) ++b;
          words.push_back(u.substr(b, k - b));
          break;
        }
        size_t b = k;
        while (b > 0 && !is_py_space(u[b - 1])) --b;
        words.push_back(u.substr(b, k - b));
        k = b;
      }
      std::reverse(words.begin(), words.end());
    }
    for (auto& w : words) out.push_back(Value::string(utf8_encode(w)));
    return out;
  }
  const std::string& sep = need_str(*sep_v, "separator");
  if (sep.empty()) type_error("empty separator");
  std::vector<std::string> parts;
  if (!from_right) {
    size_t k = 0;
    while (true) {
      size_t f = (maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) ? std::string::npos : s.find(sep, k);
      if (f == std::string::npos) {
        parts.push_back(s.substr(k));
        break;
      }
      parts.push_back(s.substr(k, f - k));
      k = f + sep.size();
    }
  } else {
    size_t end = s.size();
    while (true) {
      size_t f = std::string::npos;
      if (!(maxsplit >= 0 && static_cast<int64_t>(parts.size()) == maxsplit) && end >= sep.size())
        f = s.rfind(sep, end - sep.size());
      if (f == std::string::npos) {
        parts.push_back(s.substr(0, end));
        break;
      }
      parts.push_back(s.substr(f + sep.size(), end - f - sep.size()));
      end = f;
    }
    std::reverse(parts.begin(), parts.end());
  }
  for (auto& p : parts) out.push_back(Value::string(std::move(p)));
  return out;
}

std::string replace(const std::string& s, const std::string& old, const std::string& with, int64_t count) {
  std::string out;
  if (old.empty()) {
    std::u32string u = utf8_decode(s);
    int64_t n = 0;
    for (size_t k = 0; k <= u.size(); ++k) {
      if (count < 0 || n < count) {
        out += with;
        ++n;
      }
      if (k < u.size()) out += utf8_encode(u.substr(k, 1));
      check_size(out.size());
    }
    return out;
  }
  size_t k = 0;
  int64_t n = 0;
  while (count < 0 || n < count) {
    size_t f = s.find(old, k);
    if (f == std::string::npos) break;
    out.append(s, k, f - k);
    out += with;
    check_size(out.size());
    k = f + old.size();
    ++n;
  }
  out.append(s, k, std::string::npos);
  check_size(out.size());
  charge(out.size());
  return out;
}

bool prefix_match(const std::string& s, const Value& arg, bool suffix) {
  auto one = [&](const Value& p) {
    const std::string& x = need_str(p, suffix ? "endswith arg" : "startswith arg");
    if (x.size() > s.size()) return false;
    return suffix ? s.compare(s.size() - x.size(), x.size(), x) == 0 : s.compare(0, x.size(), x) == 0;
  };
  if (arg.kind == Kind::List) {
    for (const auto& p : *arg.list)
      if (one(p)) return true;
    return false;
  }
  return one(arg);
}

int64_t char_index(const std::string& s, size_t byte_pos) {
  return static_cast<int64_t>(utf8_decode(s.substr(0, byte_pos)).size());
}

std::string format_str(const std::string& fmt, const List& args, const KwArgs& kwargs) {
  std::string out;
  size_t auto_index = 0;
  for (size_t k = 0; k < fmt.size(); ++k) {
    char c = fmt[k];
    if (c == '{' && k + 1 < fmt.size() && fmt[k + 1] == '{') {
      out += '{';
      ++k;
    } else if (c == '}' && k + 1 < fmt.size() && fmt[k + 1] == '}') {
      out += '}';
      ++k;
    } else if (c == '{') {
      size_t e = fmt.find('}', k);
      if (e == std::string::npos) type_error("Single '{' encountered in format string");
      std::string field = fmt.substr(k + 1, e - k - 1);
      if (field.find_first_of(":!") != std::string::npos) type_error("format specs are not supported in str.format");
      const Value* v = nullptr;
      if (field.empty()) {
        if (auto_index >= args.size()) type_error("Replacement index " + std::to_string(auto_index) + " out of range");
        v = &args[auto_index++];
      } else if (std::all_of(field.begin(), field.end(), [](char d) { return std::isdigit(static_cast<unsigned char>(d)); })) {
        size_t idx = std::stoul(field);
        if (idx >= args.size()) type_error("Replacement index " + field + " out of range");
        v = &args[idx];
      } else {
        for (const auto& [key, val] : kwargs)
          if (key == field) v = &val;
        if (!v) type_error("'" + field + "'");
      }
      out += to_str(*v);
      k = e;
    } else if (c == '}') {
      type_error("Single '}' encountered in format string");
    } else {
      out += c;
    }
  }
  return out;
}

Value str_method(const std::string& s, const std::string& name, const List& args, const KwArgs& kwargs) {
  charge(s.size());
  auto p = [&](std::vector<std::string> names) { return Params("str." + name, args, kwargs, std::move(names)); };
  if (name == "strip" || name == "lstrip" || name == "rstrip") {
    Params a = p({"chars"});
    return Value::string(strip(s, a.get(0), name != "rstrip", name != "lstrip"));
  }
  if (name == "split" || name == "rsplit") {
    Params a = p({"sep", "maxsplit"});
    int64_t maxsplit = a.get(1) ? need_int(*a.get(1), "maxsplit") : -1;
    return Value::make_list(split(s, a.get(0), maxsplit, name == "rsplit"));
  }
  if (name == "splitlines") {
    Params a = p({"keepends"});
    List out;
    size_t k = 0;
    while (k < s.size()) {
      size_t e = s.find_first_of("\r\n", k);
      if (e == std::string::npos) {
        out.push_back(Value::string(s.substr(k)));
        break;
      }
      size_t next = e + (s[e] == '\r' && e + 1 < s.size() && s[e + 1] == '\n' ? 2 : 1);
      out.push_back(Value::string(s.substr(k, (a.flag(0) ? next : e) - k)));
      k = next;
    }
    return Value::make_list(std::move(out));
  }
  if (name == "startswith" || name == "endswith") {
    Params a = p({"prefix"});
    if (!a.get(0)) type_error(name + "() takes at least 1 argument (0 given)");
    return Value::boolean(prefix_match(s, *a.get(0), name == "endswith"));
  }
  if (name == "replace") {
    Params a = p({"old", "new", "count"});
    if (!a.get(0) || !a.get(1)) type_error("replace() takes at least 2 arguments");
    int64_t count = a.get(2) ? need_int(*a.get(2), "count") : -1;
    return Value::string(replace(s, need_str(*a.get(0), "replace arg"), need_str(*a.get(1), "replace arg"), count));
  }
  if (name == "upper") return Value::string(map_chars(s, to_upper));
  if (name == "lower") return Value::string(map_chars(s, to_lower));
  if (name == "title") return Value::string(title_case(s, false));
  if (name == "capitalize") return Value::string(title_case(s, true));
  if (name == "find" || name == "rfind" || name == "index" || name == "rindex") {
    Params a = p({"sub"});
    if (!a.get(0)) type_error(name + "() takes at least 1 argument (0 given)");
    const std::string& sub = need_str(*a.get(0), "sub");
    size_t f = name[0] == 'r' ? s.rfind(sub) : s.find(sub);
    if (f == std::string::npos) {
      if (name.find("index") != std::string::npos) type_error("substring not found");
      return Value::integer(-1);
    }
    return Value::integer(char_index(s, f));
  }
  if (name == "count") {
    Params a = p({"sub"});
    if (!a.get(0)) type_error("count() takes at least 1 argument (0 given)");
    const std::string& sub = need_str(*a.get(0), "sub");
    if (sub.empty()) return Value::integer(static_cast<int64_t>(utf8_decode(s).size()) + 1);
    int64_t n = 0;
    for (size_t f = s.find(sub); f != std::string::npos; f = s.find(sub, f + sub.size())) ++n;
    return Value::integer(n);
  }
  if (name == "join") {
    Params a = p({"iterable"});
    if (!a.get(0)) type_error("join() takes exactly one argument (0 given)");
    std::string out;
    List items = iterate(*a.get(0));
    for (size_t k = 0; k < items.size(); ++k) {
      if (items[k].kind != Kind::String)
        type_error("sequence item " + std::to_string(k) + ": expected str instance, " + type_name(items[k]) + " found");
      if (k) out += s;
      out += items[k].s;
      check_size(out.size());
    }
    return Value::string(std::move(out));
  }
  if (name == "format") return Value::string(format_str(s, args, kwargs));
  if (name == "isdigit" || name == "isalpha" || name == "isspace" || name == "isalnum" || name == "islower" ||
      name == "isupper") {
    std::u32string u = utf8_decode(s);
    if (u.empty()) return Value::boolean(false);
    bool cased = false, ok = true;
    for (char32_t c : u) {
      bool digit = c >= '0' && c <= '9';
      if (name == "isdigit") ok &= digit;
      else if (name == "isalpha") ok &= is_alpha(c);
      else if (name == "isspace") ok &= is_py_space(c);
      else if (name == "isalnum") ok &= digit || is_alpha(c);
      else if (name == "islower") {
        ok &= to_lower(c) == c;
        cased |= to_upper(c) != c;
      } else {
        ok &= to_upper(c) == c;
        cased |= to_lower(c) != c;
      }
    }
    if (name == "islower" || name == "isupper") ok &= cased;
    return Value::boolean(ok);
  }
  type_error("'str' object has no attribute '" + name + "'");
}

bool is_str_method(const std::string& n) {
  static const char* const kNames[] = {"strip",   "lstrip", "rstrip", "split",      "rsplit",  "splitlines",
                                       "startswith", "endswith", "replace", "upper", "lower",   "title",
                                       "capitalize", "find", "rfind",  "index",      "rindex",  "count",
                                       "join",    "format", "isdigit", "isalpha",   "isspace", "isalnum",
                                       "islower", "isupper"};
  return std::find(std::begin(kNames), std::end(kNames), n) != std::end(kNames);
}

Value items_of(const Value& d) {
  List out;
  for (const auto& [k, v] : *d.dict) out.push_back(Value::make_list({Value::string(k), v}, true));
  return Value::make_list(std::move(out));
}

Value dict_method(const Value& d, const std::string& name, const List& args, const KwArgs& kwargs) {
  if (name == "items") return items_of(d);
  if (name == "keys" || name == "values") {
    List out;
    for (const auto& [k, v] : *d.dict) out.push_back(name == "keys" ? Value::string(k) : v);
    return Value::make_list(std::move(out));
  }
  if (name == "get") {
    Params a("dict.get", args, kwargs, {"key", "default"});
    if (!a.get(0)) type_error("get expected at least 1 argument, got 0");
    if (a.get(0)->kind == Kind::String)
      if (const Value* v = d.find(a.get(0)->s)) return *v;
    return a.value_or(1, Value::none());
  }
  if (name == "copy") return d;
  type_error("'dict' object has no attribute '" + name + "'");
}

Value list_method(const Value& l, const std::string& name, const List& args, const KwArgs& kwargs) {
  Params a("list." + name, args, kwargs, {"value"});
  if (!a.get(0)) type_error(name + "() takes exactly one argument (0 given)");
  int64_t n = 0;
  for (size_t k = 0; k < l.list->size(); ++k) {
    if (!equal((*l.list)[k], *a.get(0))) continue;
    if (name == "index") return Value::integer(static_cast<int64_t>(k));
    ++n;
  }
  if (name == "index") type_error(repr(*a.get(0)) + " is not in list");
  return Value::integer(n);
}

Value bound(const Value& self, const std::string& name) {
  return Value::callable(type_name(self) + "." + name, [self, name](const List& args, const KwArgs& kwargs) {
    if (self.kind == Kind::String) return str_method(self.s, name, args, kwargs);
    if (self.kind == Kind::Dict) return dict_method(self, name, args, kwargs);
    return list_method(self, name, args, kwargs);
  });
}

// jinja2's object_type_repr, used in undefined messages: 'dict object', 'None'.
std::string object_repr(const Value& v) {
  if (v.kind == Kind::None) return "None";
  if (v.kind == Kind::Namespace) return "transformers.utils.chat_template_utils.TemplateNamespace object";
  return type_name(v) + " object";
}

Value no_attribute(const Value& obj, const std::string& name) {
  return Value::undefined("'" + object_repr(obj) + "' has no attribute '" + name + "'");
}

// ---- sequences ----------------------------------------------------------------------------------

// Python's slice.indices(length).
void slice_indices(int64_t len, const Value& start_v, const Value& stop_v, int64_t step, int64_t& start, int64_t& stop) {
  auto get = [&](const Value& v, int64_t def) -> std::optional<int64_t> {
    if (v.kind == Kind::None || v.kind == Kind::Undefined) return std::nullopt;
    if (!is_int_like(v)) type_error("slice indices must be integers or None");
    (void)def;
    return int_of(v);
  };
  auto clamp = [&](std::optional<int64_t> x, bool is_start) -> int64_t {
    if (!x) return step > 0 ? (is_start ? 0 : len) : (is_start ? len - 1 : -1);
    int64_t v = *x;
    if (v < 0) {
      v += len;
      if (v < 0) v = step < 0 ? -1 : 0;
    } else if (v >= len) {
      v = step < 0 ? len - 1 : len;
    }
    return v;
  };
  start = clamp(get(start_v, 0), true);
  stop = clamp(get(stop_v, 0), false);
}

std::vector<size_t> slice_positions(size_t n, const Value& start_v, const Value& stop_v, const Value& step_v) {
  int64_t step = 1;
  if (step_v.kind != Kind::None && step_v.kind != Kind::Undefined) {
    if (!is_int_like(step_v)) type_error("slice indices must be integers or None");
    step = int_of(step_v);
    if (step == 0) type_error("slice step cannot be zero");
  }
  int64_t start, stop;
  slice_indices(static_cast<int64_t>(n), start_v, stop_v, step, start, stop);
  std::vector<size_t> out;
  for (int64_t k = start; step > 0 ? k < stop : k > stop; k += step) out.push_back(static_cast<size_t>(k));
  return out;
}

bool less(const Value& a, const Value& b, bool case_insensitive = false);

bool less(const Value& a, const Value& b, bool case_insensitive) {
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  if (a.is_number() && b.is_number()) {
    if (is_int_like(a) && is_int_like(b)) return int_of(a) < int_of(b);
    return to_double(a) < to_double(b);
  }
  if (a.kind == Kind::String && b.kind == Kind::String) {
    if (case_insensitive) return map_chars(a.s, to_lower) < map_chars(b.s, to_lower);
    return a.s < b.s;  // UTF-8 byte order is code point order
  }
  if (a.kind == Kind::List && b.kind == Kind::List && a.tuple == b.tuple) {
    const List &x = *a.list, &y = *b.list;
    for (size_t k = 0; k < x.size() && k < y.size(); ++k) {
      if (equal(x[k], y[k])) continue;
      return less(x[k], y[k], case_insensitive);
    }
    return x.size() < y.size();
  }
  type_error("'<' not supported between instances of '" + type_name(a) + "' and '" + type_name(b) + "'");
}

bool contains(const Value& container, const Value& item) {
  if (container.kind == Kind::String) charge(container.s.size());
  if (container.kind == Kind::List) charge(container.list->size() * kItemWork);
  switch (container.kind) {
    case Kind::Undefined: return false;
    case Kind::String:
      if (item.kind != Kind::String)
        type_error("'in <string>' requires string as left operand, not " + type_name(item));
      return container.s.find(item.s) != std::string::npos;
    case Kind::List:
      for (const auto& v : *container.list)
        if (equal(v, item)) return true;
      return false;
    case Kind::Dict: return item.kind == Kind::String && container.find(item.s) != nullptr;
    default: type_error("argument of type '" + type_name(container) + "' is not iterable");
  }
}

int64_t checked(long double exact, int64_t result) {
  if (exact > static_cast<long double>(std::numeric_limits<int64_t>::max()) ||
      exact < static_cast<long double>(std::numeric_limits<int64_t>::min()))
    throw EvalError("integer overflow (only 64-bit integers are supported)");
  return result;
}

Value repeat(const Value& seq, int64_t n) {
  if (n <= 0) return seq.kind == Kind::String ? Value::string("") : Value::make_list({}, seq.tuple);
  if (seq.kind == Kind::String) {
    if (seq.s.size() * static_cast<double>(n) > kMaxStringBytes) check_size(kMaxStringBytes + 1);
    charge(seq.s.size() * n);
    std::string out;
    out.reserve(seq.s.size() * n);
    for (int64_t k = 0; k < n; ++k) out += seq.s;
    return Value::string(std::move(out));
  }
  if (seq.list->size() * static_cast<double>(n) > kMaxListItems)
    throw EvalError("list repetition longer than " + std::to_string(kMaxListItems) + " items");
  charge(seq.list->size() * n * kItemWork);
  List out;
  for (int64_t k = 0; k < n; ++k) out.insert(out.end(), seq.list->begin(), seq.list->end());
  return Value::make_list(std::move(out), seq.tuple);
}

// ---- filters ------------------------------------------------------------------------------------

Value attr_path(const Value& v, const std::string& path) {
  // jinja2's make_attrgetter: "a.b" walks attributes, integer parts index.
  Value cur = v;
  size_t k = 0;
  while (k <= path.size()) {
    size_t e = path.find('.', k);
    if (e == std::string::npos) e = path.size();
    std::string part = path.substr(k, e - k);
    bool digits = !part.empty() && std::all_of(part.begin(), part.end(), [](char c) { return std::isdigit(static_cast<unsigned char>(c)); });
    cur = digits ? get_item(cur, Value::integer(std::stoll(part))) : get_item(cur, Value::string(part));
    k = e + 1;
  }
  return cur;
}

std::string json_ascii(const std::string& s) {
  // ensure_ascii=True: non-ASCII as \uXXXX, astral characters as surrogate pairs.
  std::string out;
  for (char32_t c : utf8_decode(s)) {
    char buf[16];
    if (c < 0x80) {
      out += static_cast<char>(c);
    } else if (c < 0x10000) {
      std::snprintf(buf, sizeof buf, "\\u%04x", static_cast<unsigned>(c));
      out += buf;
    } else {
      char32_t v = c - 0x10000;
      std::snprintf(buf, sizeof buf, "\\u%04x\\u%04x", static_cast<unsigned>(0xd800 + (v >> 10)),
                    static_cast<unsigned>(0xdc00 + (v & 0x3ff)));
      out += buf;
    }
  }
  return out;
}

Value filter_tojson(const Value& v, const List& args, const KwArgs& kwargs) {
  Params a("tojson", args, kwargs, {"ensure_ascii", "indent", "separators", "sort_keys"});
  int indent = -1;
  std::string indent_str;
  bool use_indent_str = false;
  if (const Value* i = a.get(1); i && i->kind != Kind::None) {
    if (i->kind == Kind::String) {
      indent_str = i->s;
      use_indent_str = true;
    } else {
      indent = static_cast<int>(std::clamp<int64_t>(need_int(*i, "indent"), 0, 64));
    }
  }
  std::string item_sep, key_sep;
  bool seps = false;
  if (const Value* s = a.get(2); s && s->kind != Kind::None) {
    if (s->kind != Kind::List || s->list->size() != 2) type_error("tojson separators must be a pair of strings");
    item_sep = need_str((*s->list)[0], "separator");
    key_sep = need_str((*s->list)[1], "separator");
    seps = true;
  }
  if (v.is_undefined()) type_error("Object of type Undefined is not JSON serializable");
  std::string out;
  try {
    out = to_json(v, indent, a.flag(3), seps ? &item_sep : nullptr, seps ? &key_sep : nullptr,
                  use_indent_str ? &indent_str : nullptr);
  } catch (const std::invalid_argument& e) {
    type_error(e.what());
  }
  if (a.flag(0)) out = json_ascii(out);
  check_size(out.size());
  return Value::string(std::move(out));
}

Value to_int(const Value& v, const Value& def, int base) {
  switch (v.kind) {
    case Kind::Int: return v;
    case Kind::Bool: return Value::integer(v.b);
    case Kind::Float:
      if (std::isfinite(v.f) && std::fabs(v.f) < 9.2e18) return Value::integer(static_cast<int64_t>(v.f));
      return def;
    case Kind::String: {
      std::string s = strip(v.s, nullptr, true, true);
      std::string t;
      for (char c : s)
        if (c != '_') t.push_back(c);
      try {
        size_t used = 0;
        long long r = std::stoll(t, &used, base);
        if (used == t.size() && !t.empty()) return Value::integer(r);
      } catch (const std::exception&) {
      }
      try {
        size_t used = 0;
        double d = std::stod(t, &used);
        if (used == t.size() && std::isfinite(d) && std::fabs(d) < 9.2e18) return Value::integer(static_cast<int64_t>(d));
      } catch (const std::exception&) {
      }
      return def;
    }
    case Kind::Undefined: fail_undefined(v);
    default: return def;
  }
}

std::string html_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&#34;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

List select_items(const Value& seq, const List& args, bool by_attr, bool select) {
  List items = iterate(seq);
  size_t first_test_arg = by_attr ? 1 : 0;
  std::string attr;
  if (by_attr) {
    if (args.empty()) type_error("selectattr/rejectattr need an attribute name");
    attr = need_str(args[0], "attribute");
  }
  std::string test;
  List test_args;
  if (args.size() > first_test_arg) {
    test = need_str(args[first_test_arg], "test name");
    if (!is_known_test(test)) type_error("No test named '" + test + "'.");
    test_args.assign(args.begin() + first_test_arg + 1, args.end());
  }
  List out;
  for (const auto& item : items) {
    Value subject = by_attr ? attr_path(item, attr) : item;
    bool ok = test.empty() ? truthy(subject) : apply_test(test, subject, test_args);
    if (ok == select) out.push_back(item);
  }
  return out;
}

Value sort_items(List items, bool reverse, bool case_sensitive, const Value* attribute) {
  std::string attr = attribute && attribute->kind == Kind::String ? attribute->s : "";
  auto key = [&](const Value& v) { return attr.empty() ? v : attr_path(v, attr); };
  std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
    return reverse ? less(key(y), key(x), !case_sensitive) : less(key(x), key(y), !case_sensitive);
  });
  return Value::make_list(std::move(items));
}

}  // namespace

// ---- public -------------------------------------------------------------------------------------

namespace {
thread_local int64_t g_work = 0;
}

void reset_work() { g_work = 0; }

void charge(size_t units) {
  g_work += static_cast<int64_t>(units);
  if (g_work > kMaxWork)
    throw EvalError("template copied more than " + std::to_string(kMaxWork >> 20) +
                    " MiB of strings and lists (quadratic string or list building?)");
}

void check_size(size_t bytes) {
  if (bytes > kMaxStringBytes)
    throw EvalError("template output or string longer than " + std::to_string(kMaxStringBytes >> 20) + " MiB");
}

void fail_undefined(const Value& undefined) {
  throw EvalError(undefined.s.empty() ? std::string("value is undefined") : undefined.s);
}

Value get_attr(const Value& obj, const std::string& name) {
  switch (obj.kind) {
    case Kind::Undefined: fail_undefined(obj);
    case Kind::Dict:
      if (name == "items" || name == "keys" || name == "values" || name == "get" || name == "copy") return bound(obj, name);
      if (name == "pop" || name == "popitem" || name == "setdefault" || name == "update" || name == "clear")
        return Value::undefined("access to attribute '" + name + "' of 'dict' object is unsafe.");
      if (const Value* v = obj.find(name)) {
        charge(v->s.size());
        return *v;
      }
      return no_attribute(obj, name);
    case Kind::String:
      if (is_str_method(name)) return bound(obj, name);
      return no_attribute(obj, name);
    case Kind::List:
      if (name == "index" || name == "count") return bound(obj, name);
      return no_attribute(obj, name);
    case Kind::Namespace:
      for (const auto& [k, v] : obj.ns->attrs)
        if (k == name) {
          charge(v.s.size());
          return v;
        }
      return no_attribute(obj, name);
    default: return no_attribute(obj, name);
  }
}

Value get_item(const Value& obj, const Value& key) {
  if (obj.kind == Kind::Undefined) fail_undefined(obj);
  if (key.kind == Kind::String && obj.kind != Kind::Dict) return get_attr(obj, key.s);
  if (obj.kind == Kind::Dict) {
    if (key.kind == Kind::String) {
      if (const Value* v = obj.find(key.s)) {
        charge(v->s.size());
        return *v;
      }
      return get_attr(obj, key.s);
    }
    return Value::undefined("'dict object' has no element " + repr(key));
  }
  if ((obj.kind == Kind::List || obj.kind == Kind::String) && is_int_like(key)) {
    int64_t idx = int_of(key);
    if (obj.kind == Kind::List) {
      int64_t n = static_cast<int64_t>(obj.list->size());
      if (idx < 0) idx += n;
      if (idx >= 0 && idx < n) return (*obj.list)[idx];
    } else {
      charge(obj.s.size());
      std::u32string u = utf8_decode(obj.s);
      int64_t n = static_cast<int64_t>(u.size());
      if (idx < 0) idx += n;
      if (idx >= 0 && idx < n) return Value::string(utf8_encode(u.substr(idx, 1)));
    }
  }
  if (obj.kind == Kind::List && key.kind == Kind::List)
    type_error("list indices must be integers or slices, not " + type_name(key));
  return Value::undefined("'" + object_repr(obj) + "' has no element " + repr(key));
}

Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step) {
  if (obj.kind == Kind::Undefined) fail_undefined(obj);
  if (obj.kind == Kind::List) {
    List out;
    for (size_t k : slice_positions(obj.list->size(), start, stop, step)) out.push_back((*obj.list)[k]);
    return Value::make_list(std::move(out), obj.tuple);
  }
  if (obj.kind == Kind::String) {
    charge(obj.s.size());
    std::u32string u = utf8_decode(obj.s), out;
    for (size_t k : slice_positions(u.size(), start, stop, step)) out.push_back(u[k]);
    return Value::string(utf8_encode(out));
  }
  type_error("'" + type_name(obj) + "' object is not subscriptable");
}

List iterate(const Value& v) {
  switch (v.kind) {
    case Kind::Undefined: return {};
    case Kind::List: charge(v.list->size() * kItemWork); return *v.list;
    case Kind::Dict: {
      charge(v.dict->size() * kItemWork);
      List keys;
      for (const auto& kv : *v.dict) keys.push_back(Value::string(kv.first));
      return keys;
    }
    case Kind::String: {
      charge(v.s.size());
      List chars;
      for (char32_t c : utf8_decode(v.s)) chars.push_back(Value::string(utf8_encode(std::u32string(1, c))));
      return chars;
    }
    default: type_error("'" + type_name(v) + "' object is not iterable");
  }
}

Value unary_op(const std::string& op, const Value& a) {
  if (a.is_undefined()) fail_undefined(a);
  if (!a.is_number()) type_error("bad operand type for unary " + op + ": '" + type_name(a) + "'");
  if (op == "+") return a.kind == Kind::Bool ? Value::integer(a.b) : a;
  if (a.kind == Kind::Float) return Value::real(-a.f);
  int64_t v = int_of(a);
  return Value::integer(checked(-static_cast<long double>(v), -v));
}

Value binary_op(const std::string& op, const Value& a, const Value& b) {
  if (op == "~") {
    std::string s = to_str(a) + to_str(b);
    check_size(s.size());
    charge(s.size());
    return Value::string(std::move(s));
  }
  if (a.is_undefined()) fail_undefined(a);
  if (b.is_undefined()) fail_undefined(b);
  auto unsupported = [&]() -> Value {
    if (op == "+" && (a.kind == Kind::String || a.kind == Kind::List))
      type_error("can only concatenate " + type_name(a) + " (not \"" + type_name(b) + "\") to " + type_name(a));
    type_error("unsupported operand type(s) for " + op + ": '" + type_name(a) + "' and '" + type_name(b) + "'");
  };
  if (a.is_number() && b.is_number()) {
    bool ints = is_int_like(a) && is_int_like(b);
    if (ints) {
      int64_t x = int_of(a), y = int_of(b);
      long double lx = x, ly = y;
      if (op == "+") return Value::integer(checked(lx + ly, x + y));
      if (op == "-") return Value::integer(checked(lx - ly, x - y));
      if (op == "*") return Value::integer(checked(lx * ly, static_cast<int64_t>(lx * ly)));
      if (op == "/") {
        if (y == 0) type_error("division by zero");
        return Value::real(static_cast<double>(x) / static_cast<double>(y));
      }
      if (op == "//" || op == "%") {
        if (y == 0) type_error(op == "//" ? "integer division or modulo by zero" : "integer modulo by zero");
        int64_t q = x / y, r = x % y;
        if (r != 0 && ((r < 0) != (y < 0))) {
          --q;
          r += y;
        }
        return Value::integer(op == "//" ? q : r);
      }
      if (op == "**") {
        if (y < 0) return Value::real(std::pow(static_cast<double>(x), static_cast<double>(y)));
        long double exact = std::pow(lx, ly);
        checked(exact, 0);
        int64_t r = 1;
        for (int64_t k = 0; k < y; ++k) r *= x;
        return Value::integer(r);
      }
    } else {
      double x = to_double(a), y = to_double(b);
      if (op == "+") return Value::real(x + y);
      if (op == "-") return Value::real(x - y);
      if (op == "*") return Value::real(x * y);
      if (op == "/") {
        if (y == 0) type_error("float division by zero");
        return Value::real(x / y);
      }
      if (op == "//" || op == "%") {
        if (y == 0) type_error(op == "//" ? "float floor division by zero" : "float modulo");
        double m = std::fmod(x, y);
        if (m != 0 && ((m < 0) != (y < 0))) m += y;
        if (op == "%") return Value::real(m);
        return Value::real(std::floor((x - m) / y + 0.5));
      }
      if (op == "**") return Value::real(std::pow(x, y));
    }
    return unsupported();
  }
  if (op == "+") {
    if (a.kind == Kind::String && b.kind == Kind::String) {
      check_size(a.s.size() + b.s.size());
      charge(a.s.size() + b.s.size());
      return Value::string(a.s + b.s);
    }
    if (a.kind == Kind::List && b.kind == Kind::List && a.tuple == b.tuple) {
      if (a.list->size() + b.list->size() > kMaxListItems) throw EvalError("list too long");
      charge((a.list->size() + b.list->size()) * kItemWork);
      List out = *a.list;
      out.insert(out.end(), b.list->begin(), b.list->end());
      return Value::make_list(std::move(out), a.tuple);
    }
  }
  if (op == "*") {
    if ((a.kind == Kind::String || a.kind == Kind::List) && is_int_like(b)) return repeat(a, int_of(b));
    if ((b.kind == Kind::String || b.kind == Kind::List) && is_int_like(a)) return repeat(b, int_of(a));
  }
  if (op == "%" && a.kind == Kind::String) type_error("printf-style string formatting (%) is not supported");
  return unsupported();
}

bool compare(const std::string& op, const Value& a, const Value& b) {
  if (op == "==") return equal(a, b);
  if (op == "!=") return !equal(a, b);
  if (op == "in") return contains(b, a);
  if (op == "not in") return !contains(b, a);
  if (op == "<") return less(a, b);
  if (op == ">") return less(b, a);
  if (op == "<=") return less(a, b) || equal(a, b);
  if (op == ">=") return less(b, a) || equal(a, b);
  type_error("unknown comparison " + op);
}

Value call(const Value& fn, const List& args, const KwArgs& kwargs) {
  if (fn.is_undefined()) fail_undefined(fn);
  if (fn.kind != Kind::Callable) type_error("'" + type_name(fn) + "' object is not callable");
  return (*fn.fn)(args, kwargs);
}

bool is_known_filter(const std::string& n) {
  static const char* const kNames[] = {
      "abs",   "attr",     "batch",  "capitalize", "center",     "count",      "d",       "default", "dictsort",
      "e",     "escape",   "first",  "float",      "forceescape", "indent",    "int",     "items",   "join",
      "last",  "length",   "list",   "lower",      "map",        "max",        "min",     "reject",  "rejectattr",
      "replace", "reverse", "round", "safe",       "select",     "selectattr", "sort",    "string",  "sum",
      "title", "tojson",   "trim",   "unique",     "upper",      "wordcount"};
  return std::find(std::begin(kNames), std::end(kNames), n) != std::end(kNames);
}

bool is_known_test(const std::string& n) {
  static const char* const kNames[] = {
      "defined", "undefined", "none",  "boolean", "false", "true",  "integer",  "float",   "number",
      "string",  "mapping",   "iterable", "sequence", "callable", "odd", "even", "divisibleby", "eq",
      "equalto", "==",        "ne",    "!=",      "lt",    "lessthan", "<",     "le",      "<=",
      "gt",      "greaterthan", ">",   "ge",      ">=",    "in",    "sameas",   "lower",   "upper",
      "escaped", "filter",    "test"};
  return std::find(std::begin(kNames), std::end(kNames), n) != std::end(kNames);
}

Value apply_filter(const std::string& name, const Value& v, const List& args, const KwArgs& kwargs) {
  charge(v.kind == Kind::String ? v.s.size() : v.kind == Kind::List ? v.list->size() : 1);
  auto p = [&](std::vector<std::string> names) { return Params(name, args, kwargs, std::move(names)); };
  if (name == "default" || name == "d") {
    Params a = p({"default_value", "boolean"});
    bool use_default = v.is_undefined() || (a.flag(1) && !truthy(v));
    return use_default ? a.value_or(0, Value::string("")) : v;
  }
  if (name == "length" || name == "count") {
    switch (v.kind) {
      case Kind::Undefined: return Value::integer(0);
      case Kind::String: return Value::integer(static_cast<int64_t>(utf8_decode(v.s).size()));
      case Kind::List: return Value::integer(static_cast<int64_t>(v.list->size()));
      case Kind::Dict: return Value::integer(static_cast<int64_t>(v.dict->size()));
      default: type_error("object of type '" + type_name(v) + "' has no len()");
    }
  }
  if (name == "tojson") return filter_tojson(v, args, kwargs);
  if (name == "trim") {
    Params a = p({"chars"});
    return Value::string(strip(to_str(v), a.get(0), true, true));
  }
  if (name == "string") return Value::string(to_str(v));
  if (name == "safe") return Value::string(to_str(v));
  if (name == "e" || name == "escape" || name == "forceescape") return Value::string(html_escape(to_str(v)));
  if (name == "upper") return Value::string(map_chars(to_str(v), to_upper));
  if (name == "lower") return Value::string(map_chars(to_str(v), to_lower));
  if (name == "title") return Value::string(title_case(to_str(v), false));
  if (name == "capitalize") return Value::string(title_case(to_str(v), true));
  if (name == "int") {
    Params a = p({"default", "base"});
    int base = a.get(1) ? static_cast<int>(need_int(*a.get(1), "base")) : 10;
    return to_int(v, a.value_or(0, Value::integer(0)), base);
  }
  if (name == "float") {
    Params a = p({"default"});
    if (v.is_number()) return Value::real(to_double(v));
    if (v.kind == Kind::String) {
      try {
        size_t used = 0;
        std::string s = strip(v.s, nullptr, true, true);
        double d = std::stod(s, &used);
        if (used == s.size()) return Value::real(d);
      } catch (const std::exception&) {
      }
    }
    if (v.is_undefined()) fail_undefined(v);
    return a.value_or(0, Value::real(0.0));
  }
  if (name == "abs") {
    if (v.kind == Kind::Float) return Value::real(std::fabs(v.f));
    if (is_int_like(v)) return Value::integer(std::llabs(int_of(v)));
    type_error("bad operand type for abs(): '" + type_name(v) + "'");
  }
  if (name == "round") {
    Params a = p({"precision", "method"});
    int64_t prec = a.get(0) ? need_int(*a.get(0), "precision") : 0;
    std::string method = a.get(1) ? need_str(*a.get(1), "method") : "common";
    if (!v.is_number()) type_error("round: expected a number, got " + type_name(v));
    double x = to_double(v), scale = std::pow(10.0, static_cast<double>(prec));
    double r = method == "ceil" ? std::ceil(x * scale) / scale
               : method == "floor" ? std::floor(x * scale) / scale
                                   : std::nearbyint(x * scale) / scale;  // Python's round: half to even
    return Value::real(r);
  }
  if (name == "first" || name == "last") {
    List items = iterate(v);
    if (items.empty()) return Value::undefined("No " + name + " item, sequence was empty.");
    return name == "first" ? items.front() : items.back();
  }
  if (name == "list") return Value::make_list(iterate(v));
  if (name == "items") {
    if (v.is_undefined()) return Value::make_list({});
    if (v.kind != Kind::Dict) type_error("Can only get item pairs from a mapping.");
    return items_of(v);
  }
  if (name == "join") {
    Params a = p({"d", "attribute"});
    std::string sep = a.get(0) ? to_str(*a.get(0)) : "";
    std::string out;
    List items = iterate(v);
    for (size_t k = 0; k < items.size(); ++k) {
      if (k) out += sep;
      out += to_str(a.get(1) ? attr_path(items[k], to_str(*a.get(1))) : items[k]);
      check_size(out.size());
    }
    return Value::string(std::move(out));
  }
  if (name == "replace") {
    Params a = p({"old", "new", "count"});
    if (!a.get(0) || !a.get(1)) type_error("replace filter needs old and new strings");
    int64_t count = a.get(2) && a.get(2)->kind != Kind::None ? need_int(*a.get(2), "count") : -1;
    return Value::string(replace(to_str(v), to_str(*a.get(0)), to_str(*a.get(1)), count));
  }
  if (name == "reverse") {
    if (v.kind == Kind::String) {
      std::u32string u = utf8_decode(v.s);
      std::reverse(u.begin(), u.end());
      return Value::string(utf8_encode(u));
    }
    List items = iterate(v);
    std::reverse(items.begin(), items.end());
    return Value::make_list(std::move(items));
  }
  if (name == "sort") {
    Params a = p({"reverse", "case_sensitive", "attribute"});
    return sort_items(iterate(v), a.flag(0), a.flag(1), a.get(2));
  }
  if (name == "dictsort") {
    Params a = p({"case_sensitive", "by", "reverse"});
    if (v.kind != Kind::Dict) type_error("You can only sort by either \"key\" or \"value\"");
    std::string by = a.get(1) ? need_str(*a.get(1), "by") : "key";
    List items = *items_of(v).list;
    size_t idx = by == "value" ? 1 : 0;
    bool cs = a.flag(0), rev = a.flag(2);
    std::stable_sort(items.begin(), items.end(), [&](const Value& x, const Value& y) {
      const Value &kx = (*x.list)[idx], &ky = (*y.list)[idx];
      return rev ? less(ky, kx, !cs) : less(kx, ky, !cs);
    });
    return Value::make_list(std::move(items));
  }
  if (name == "unique") {
    Params a = p({"case_sensitive", "attribute"});
    List out, keys;
    for (const auto& item : iterate(v)) {
      Value key = a.get(1) ? attr_path(item, to_str(*a.get(1))) : item;
      if (!a.flag(0) && key.kind == Kind::String) key = Value::string(map_chars(key.s, to_lower));
      if (contains(Value::make_list(keys), key)) continue;
      keys.push_back(key);
      out.push_back(item);
    }
    return Value::make_list(std::move(out));
  }
  if (name == "max" || name == "min") {
    Params a = p({"case_sensitive", "attribute"});
    List items = iterate(v);
    if (items.empty()) return Value::undefined("No aggregated item, sequence was empty.");
    auto key = [&](const Value& x) { return a.get(1) ? attr_path(x, to_str(*a.get(1))) : x; };
    size_t best = 0;
    for (size_t k = 1; k < items.size(); ++k) {
      bool better = name == "max" ? less(key(items[best]), key(items[k]), !a.flag(0))
                                  : less(key(items[k]), key(items[best]), !a.flag(0));
      if (better) best = k;
    }
    return items[best];
  }
  if (name == "sum") {
    Params a = p({"attribute", "start"});
    Value total = a.value_or(1, Value::integer(0));
    for (const auto& item : iterate(v))
      total = binary_op("+", total, a.get(0) ? attr_path(item, to_str(*a.get(0))) : item);
    return total;
  }
  if (name == "map") {
    List out;
    std::string attribute;
    const Value* fallback = nullptr;
    for (const auto& [k, val] : kwargs) {
      if (k == "attribute") attribute = to_str(val);
      else if (k == "default") fallback = &val;
    }
    if (!attribute.empty()) {
      for (const auto& item : iterate(v)) {
        Value x = attr_path(item, attribute);
        out.push_back(x.is_undefined() && fallback ? *fallback : x);
      }
      return Value::make_list(std::move(out));
    }
    if (args.empty()) type_error("map requires a filter argument");
    std::string filter = need_str(args[0], "filter name");
    if (!is_known_filter(filter)) type_error("No filter named '" + filter + "'.");
    List fargs(args.begin() + 1, args.end());
    KwArgs fkw;
    for (const auto& kv : kwargs)
      if (kv.first != "attribute" && kv.first != "default") fkw.push_back(kv);
    for (const auto& item : iterate(v)) out.push_back(apply_filter(filter, item, fargs, fkw));
    return Value::make_list(std::move(out));
  }
  if (name == "select" || name == "reject") return Value::make_list(select_items(v, args, false, name == "select"));
  if (name == "selectattr" || name == "rejectattr")
    return Value::make_list(select_items(v, args, true, name == "selectattr"));
  if (name == "attr") {
    Params a = p({"name"});
    if (!a.get(0)) type_error("attr filter needs a name");
    return get_attr(v, to_str(*a.get(0)));
  }
  if (name == "indent") {
    Params a = p({"width", "first", "blank"});
    int64_t width = a.get(0) && a.get(0)->kind != Kind::String ? need_int(*a.get(0), "width") : 4;
    if (width < 0 || width > 4096) type_error("indent width must be between 0 and 4096");
    std::string pad = a.get(0) && a.get(0)->kind == Kind::String ? a.get(0)->s : std::string(width, ' ');
    std::string s = to_str(v), out;
    std::vector<std::string> lines;
    size_t k = 0;
    while (true) {
      size_t e = s.find('\n', k);
      lines.push_back(s.substr(k, e == std::string::npos ? std::string::npos : e - k));
      if (e == std::string::npos) break;
      k = e + 1;
    }
    for (size_t i = 0; i < lines.size(); ++i) {
      bool indent = (i == 0 ? a.flag(1) : true) && (a.flag(2) || !strip(lines[i], nullptr, true, true).empty());
      if (i) out += '\n';
      out += (indent ? pad : "") + lines[i];
      check_size(out.size());
    }
    return Value::string(out);
  }
  if (name == "center") {
    Params a = p({"width"});
    int64_t width = a.get(0) ? need_int(*a.get(0), "width") : 80;
    std::u32string u = utf8_decode(to_str(v));
    if (static_cast<int64_t>(u.size()) >= width) return Value::string(to_str(v));
    check_size(static_cast<size_t>(width));
    size_t total = width - u.size(), left = total / 2 + (total & width & 1);
    return Value::string(std::string(left, ' ') + to_str(v) + std::string(total - left, ' '));
  }
  if (name == "wordcount") return Value::integer(static_cast<int64_t>(split(to_str(v), nullptr, -1, false).size()));
  if (name == "batch") {
    Params a = p({"linecount", "fill_with"});
    int64_t n = a.get(0) ? need_int(*a.get(0), "linecount") : 0;
    if (n <= 0) type_error("batch size must be positive");
    List out, cur;
    for (const auto& item : iterate(v)) {
      cur.push_back(item);
      if (static_cast<int64_t>(cur.size()) == n) {
        out.push_back(Value::make_list(std::move(cur)));
        cur.clear();
      }
    }
    if (!cur.empty()) {
      if (a.get(1))
        while (static_cast<int64_t>(cur.size()) < n) cur.push_back(*a.get(1));
      out.push_back(Value::make_list(std::move(cur)));
    }
    return Value::make_list(std::move(out));
  }
  type_error("No filter named '" + name + "'.");
}

bool apply_test(const std::string& name, const Value& v, const List& args) {
  auto arg = [&]() -> const Value& {
    if (args.empty()) type_error("test '" + name + "' needs an argument");
    return args[0];
  };
  if (name == "defined") return !v.is_undefined();
  if (name == "undefined") return v.is_undefined();
  if (name == "none") return v.is_none();
  if (name == "boolean") return v.kind == Kind::Bool;
  if (name == "false") return v.kind == Kind::Bool && !v.b;
  if (name == "true") return v.kind == Kind::Bool && v.b;
  if (name == "integer") return v.kind == Kind::Int;
  if (name == "float") return v.kind == Kind::Float;
  if (name == "number") return v.is_number();
  if (name == "string") return v.is_string();
  if (name == "mapping") return v.is_dict();
  if (name == "iterable") return v.is_undefined() || v.is_string() || v.is_list() || v.is_dict();
  if (name == "sequence") return v.is_string() || v.is_list() || v.is_dict();
  if (name == "callable") return v.kind == Kind::Callable;
  if (name == "odd" || name == "even") {
    if (!is_int_like(v)) type_error("odd/even test needs an integer, got " + type_name(v));
    return (int_of(v) % 2 != 0) == (name == "odd");
  }
  if (name == "divisibleby") {
    Value r = binary_op("%", v, arg());
    return !truthy(r);
  }
  if (name == "eq" || name == "equalto" || name == "==") return equal(v, arg());
  if (name == "ne" || name == "!=") return !equal(v, arg());
  if (name == "lt" || name == "lessthan" || name == "<") return compare("<", v, arg());
  if (name == "le" || name == "<=") return compare("<=", v, arg());
  if (name == "gt" || name == "greaterthan" || name == ">") return compare(">", v, arg());
  if (name == "ge" || name == ">=") return compare(">=", v, arg());
  if (name == "in") return contains(arg(), v);
  if (name == "sameas") {
    const Value& o = arg();
    if (v.kind != o.kind) return false;
    if (v.kind == Kind::List) return v.list == o.list;
    if (v.kind == Kind::Dict) return v.dict == o.dict;
    if (v.kind == Kind::Namespace) return v.ns == o.ns;
    return equal(v, o);
  }
  if (name == "lower") return to_str(v) == map_chars(to_str(v), to_lower);
  if (name == "upper") return to_str(v) == map_chars(to_str(v), to_upper);
  if (name == "escaped") return false;
  if (name == "filter") return is_known_filter(to_str(v));
  if (name == "test") return is_known_test(to_str(v));
  type_error("No test named '" + name + "'.");
}

Dict make_globals(const std::optional<std::tm>& now) {
  Dict g;
  g.emplace_back("raise_exception", Value::callable("raise_exception", [](const List& args, const KwArgs& kwargs) -> Value {
                   Params a("raise_exception", args, kwargs, {"message"});
                   throw EvalError(a.get(0) ? to_str(*a.get(0)) : std::string());
                 }));
  g.emplace_back("namespace", Value::callable("namespace", [](const List& args, const KwArgs& kwargs) {
                   auto ns = std::make_shared<Namespace>();
                   auto put = [&](const std::string& k, const Value& val) {
                     // transformers' TemplateNamespace refuses underscore-prefixed names.
                     if (!k.empty() && k[0] == '_')
                       type_error("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" +
                                  k + "'. Please rename the attribute.");
                     for (auto& kv : ns->attrs)
                       if (kv.first == k) {
                         kv.second = val;
                         return;
                       }
                     ns->attrs.emplace_back(k, val);
                   };
                   if (args.size() > 1) type_error("namespace expected at most 1 argument, got " + std::to_string(args.size()));
                   if (!args.empty()) {
                     if (args[0].kind != Kind::Dict) type_error("namespace() argument must be a mapping");
                     for (const auto& [k, val] : *args[0].dict) put(k, val);
                   }
                   for (const auto& [k, val] : kwargs) put(k, val);
                   Value v;
                   v.kind = Kind::Namespace;
                   v.ns = ns;
                   return v;
                 }));
  g.emplace_back("dict", Value::callable("dict", [](const List& args, const KwArgs& kwargs) {
                   Dict d;
                   if (!args.empty()) {
                     if (args.size() > 1 || args[0].kind != Kind::Dict) type_error("dict() takes a mapping and keywords");
                     d = *args[0].dict;
                   }
                   for (const auto& kv : kwargs) {
                     auto it = std::find_if(d.begin(), d.end(), [&](const auto& e) { return e.first == kv.first; });
                     if (it != d.end()) it->second = kv.second;
                     else d.push_back(kv);
                   }
                   return Value::make_dict(std::move(d));
                 }));
  g.emplace_back("range", Value::callable("range", [](const List& args, const KwArgs& kwargs) {
                   if (!kwargs.empty() || args.empty() || args.size() > 3) type_error("range expected 1 to 3 integer arguments");
                   int64_t start = 0, stop, step = 1;
                   if (args.size() == 1) {
                     stop = need_int(args[0], "range");
                   } else {
                     start = need_int(args[0], "range");
                     stop = need_int(args[1], "range");
                     if (args.size() == 3) step = need_int(args[2], "range");
                   }
                   if (step == 0) type_error("range() arg 3 must not be zero");
                   long double n = step > 0 ? std::ceil((static_cast<long double>(stop) - start) / step)
                                            : std::ceil((static_cast<long double>(start) - stop) / -static_cast<long double>(step));
                   if (n > kMaxListItems)
                     throw EvalError("range too big (more than " + std::to_string(kMaxListItems) + " items)");
                   List out;
                   for (int64_t k = 0; k < static_cast<int64_t>(n); ++k) out.push_back(Value::integer(start + k * step));
                   return Value::make_list(std::move(out));
                 }));
  g.emplace_back("strftime_now", Value::callable("strftime_now", [now](const List& args, const KwArgs& kwargs) {
                   Params a("strftime_now", args, kwargs, {"format"});
                   if (!a.get(0)) type_error("strftime_now() missing 1 required positional argument: 'format'");
                   std::tm tm{};
                   if (now) {
                     // The fields as given; weekday and day of the year worked out from the date
                     // (timegm/gmtime leave the wall-clock time alone, whatever the time zone).
                     tm = *now;
                     tm.tm_isdst = 0;
                     const std::time_t t = timegm(&tm);
                     gmtime_r(&t, &tm);
                   } else {
                     const std::time_t t = std::time(nullptr);
                     localtime_r(&t, &tm);
                   }
                   char buf[512];
                   size_t n = std::strftime(buf, sizeof buf, need_str(*a.get(0), "format").c_str(), &tm);
                   return Value::string(std::string(buf, n));
                 }));
  return g;
}

}  // namespace moescope::tmpl
