#pragma once
// What the template language provides beyond syntax: operators on values, attribute and item
// access, filters, tests, and the methods of str / dict / list that templates call. They throw
// EvalError (no line); the renderer adds the line of the expression being evaluated.
#include <ctime>
#include <optional>
#include <stdexcept>
#include <string>

#include "template/value.h"

namespace moescope::tmpl {

struct EvalError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// Safety limits against hostile templates; exceeding one is an EvalError naming the limit.
constexpr size_t kMaxStringBytes = 64u << 20;        // any string, the output included
constexpr int64_t kMaxLoopIterations = 1'000'000;    // loop iterations per render, all loops
constexpr size_t kMaxListItems = 5'000'000;          // range() and list repetition
constexpr int kMaxCallDepth = 64;                    // nested macro calls
constexpr int kMaxEvalDepth = 2000;                  // nested statements + expressions at runtime
// Bytes and items copied or scanned by string/list operations per render (values are copied on
// access, so reading a string counts its size): stops quadratic loops such as
// `{% set ns.s = ns.s ~ x %}` over a million iterations long before they hang.
constexpr int64_t kMaxWork = int64_t(1) << 28;

constexpr size_t kItemWork = 32;  // a list item copied costs about as much as 32 string bytes
void reset_work();          // at the start of each render (the budget is per thread)
void charge(size_t units);  // EvalError once the render has copied more than kMaxWork

void check_size(size_t bytes);
[[noreturn]] void fail_undefined(const Value& undefined);

Value get_attr(const Value& obj, const std::string& name);
Value get_item(const Value& obj, const Value& key);
Value slice(const Value& obj, const Value& start, const Value& stop, const Value& step);
List iterate(const Value& v);  // for-loop items: list items, dict keys, str characters
Value binary_op(const std::string& op, const Value& a, const Value& b);
Value unary_op(const std::string& op, const Value& a);
bool compare(const std::string& op, const Value& a, const Value& b);
Value call(const Value& fn, const List& args, const KwArgs& kwargs);

Value apply_filter(const std::string& name, const Value& subject, const List& args, const KwArgs& kwargs);
bool apply_test(const std::string& name, const Value& subject, const List& args);

// The globals transformers installs (raise_exception, namespace, strftime_now, dict) and jinja2's
// own (range). strftime_now() reports `now` when given, else the local clock.
Dict make_globals(const std::optional<std::tm>& now);

}  // namespace moescope::tmpl
