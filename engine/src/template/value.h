#pragma once
// The values a template computes with, modelled on the Python objects jinja2 hands around:
// Undefined (jinja2's default Undefined), None, bool, int, float, str, list/tuple, dict (insertion
// ordered), namespace (the one mutable object) and callables (globals, macros, bound methods).
// Lists and dicts are immutable once built (transformers uses jinja2's ImmutableSandboxedEnvironment)
// so copies share them.
#include <cstdint>
#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace moescope::tmpl {

struct Value;
using List = std::vector<Value>;
using Dict = std::vector<std::pair<std::string, Value>>;  // insertion order, like a Python dict
using KwArgs = std::vector<std::pair<std::string, Value>>;
using Function = std::function<Value(const List& args, const KwArgs& kwargs)>;

struct Namespace {
  Dict attrs;
};

struct Value {
  enum class Kind { Undefined, None, Bool, Int, Float, String, List, Dict, Namespace, Callable };

  Kind kind = Kind::Undefined;
  bool b = false;
  int64_t i = 0;
  double f = 0;
  bool tuple = false;  // a List shown as a tuple: (a, b)
  std::string s;       // String; for Undefined, the reason jinja2 would give when it is used
  std::shared_ptr<const List> list;
  std::shared_ptr<const Dict> dict;
  std::shared_ptr<Namespace> ns;
  std::shared_ptr<const Function> fn;  // Callable; `s` holds its name

  static Value undefined(std::string why = {});
  static Value none();
  static Value boolean(bool v);
  static Value integer(int64_t v);
  static Value real(double v);
  static Value string(std::string v);
  static Value make_list(List v, bool tuple = false);
  static Value make_dict(Dict v);
  static Value callable(std::string name, Function fn);

  bool is_undefined() const { return kind == Kind::Undefined; }
  bool is_none() const { return kind == Kind::None; }
  bool is_string() const { return kind == Kind::String; }
  bool is_list() const { return kind == Kind::List; }
  bool is_dict() const { return kind == Kind::Dict; }
  bool is_number() const { return kind == Kind::Int || kind == Kind::Float || kind == Kind::Bool; }

  // Dict lookup by key; nullptr when absent (or not a dict).
  const Value* find(const std::string& key) const;
};

// Python's name for the type, as in error messages: 'str', 'int', 'dict', 'NoneType', ...
std::string type_name(const Value& v);
bool truthy(const Value& v);
// str(v) (Undefined is ""), and repr(v) as Python prints list items and dict values.
std::string to_str(const Value& v);
std::string repr(const Value& v);
std::string float_repr(double d);  // Python's repr(float): shortest round-trip, 1e+16, 1e-05
bool equal(const Value& a, const Value& b);
// json.dumps(v, ensure_ascii=False, indent=indent, separators=..., sort_keys=sort_keys) as
// transformers' tojson filter calls it. `indent` < 0 means None; throws std::invalid_argument
// with Python's message for values JSON cannot hold.
std::string to_json(const Value& v, int indent, bool sort_keys, const std::string* item_sep = nullptr,
                    const std::string* key_sep = nullptr, const std::string* indent_str = nullptr);

Value from_json(const nlohmann::json& j);
Value from_json(const nlohmann::ordered_json& j);

// UTF-8 <-> code points, so that str indexing, slicing and len() count characters as Python does.
// Bytes that are not valid UTF-8 map to U+DC80..U+DCFF and back (Python's surrogateescape), so
// nothing is lost.
std::u32string utf8_decode(const std::string& s);
std::string utf8_encode(const std::u32string& s);
bool is_py_space(char32_t c);  // str.isspace()

}  // namespace moescope::tmpl
