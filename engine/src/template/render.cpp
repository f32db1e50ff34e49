// The tree-walking renderer. Scoping follows jinja2: the template's variables and its top-level
// `set`s share one frame; every for-loop iteration gets a fresh frame (a `set` inside a loop body
// is gone at the next iteration and after the loop, hence `namespace()`); `if` adds no frame; a
// macro call sees the top-level frame plus its own.
#include <algorithm>
#include <unordered_map>

#include "moescope/chat_template.h"
#include "template/ast.h"
#include "template/builtins.h"

namespace moescope {

static std::string with_line(const std::string& message, int line) {
  if (line <= 0) return "chat template error: " + message;
  return "chat template error at line " + std::to_string(line) + ": " + message;
}

TemplateError::TemplateError(const std::string& message, int line)
    : Error(with_line(message, line)), detail_(message), line_(line) {}

namespace tmpl {
namespace {

using Frame = std::unordered_map<std::string, Value>;

class Interpreter {
public:
  Interpreter(Dict variables, const std::optional<std::tm>& now) {
    reset_work();
    auto root = std::make_shared<Frame>();
    for (auto& [k, v] : variables) (*root)[k] = std::move(v);
    scopes_.push_back(std::move(root));
    for (auto& [k, v] : make_globals(now)) globals_[k] = std::move(v);
  }

  std::string run(const Program& program) {
    std::string out;
    out_ = &out;
    exec(program.body);
    return out;
  }

private:
  enum class Flow { Normal, Break, Continue };

  std::vector<std::shared_ptr<Frame>> scopes_;
  Frame globals_;
  std::string* out_ = nullptr;
  int64_t iterations_ = 0;
  int call_depth_ = 0;
  int depth_ = 0;

  struct DepthGuard {
    int& d;
    DepthGuard(int& depth, int line) : d(depth) {
      if (++d > kMaxEvalDepth) throw TemplateError("template nested too deeply", line);
    }
    ~DepthGuard() { --d; }
  };

  void write(const std::string& s, int line) {
    if (out_->size() + s.size() > kMaxStringBytes)
      throw TemplateError("template output longer than " + std::to_string(kMaxStringBytes >> 20) + " MiB", line);
    *out_ += s;
  }

  Value lookup(const std::string& name) const {
    for (auto it = scopes_.rbegin(); it != scopes_.rend(); ++it) {
      auto f = (*it)->find(name);
      if (f != (*it)->end()) {
        charge(f->second.s.size());  // the string is copied
        return f->second;
      }
    }
    auto g = globals_.find(name);
    if (g != globals_.end()) return g->second;
    return Value::undefined("'" + name + "' is undefined");
  }

  void assign(const std::vector<std::string>& targets, const Value& v, Frame& frame) {
    if (targets.size() == 1) {
      frame[targets[0]] = v;
      return;
    }
    List items = iterate(v);
    if (items.size() > targets.size())
      throw EvalError("too many values to unpack (expected " + std::to_string(targets.size()) + ")");
    if (items.size() < targets.size())
      throw EvalError("not enough values to unpack (expected " + std::to_string(targets.size()) + ", got " +
                      std::to_string(items.size()) + ")");
    for (size_t k = 0; k < targets.size(); ++k) frame[targets[k]] = items[k];
  }

  // ---- statements -----------------------------------------------------------------------------

  Flow exec(const Body& body) {
    for (const auto& n : body) {
      Flow f = exec(*n);
      if (f != Flow::Normal) return f;
    }
    return Flow::Normal;
  }

  Flow exec(const Node& n) {
    DepthGuard guard(depth_, n.line);
    try {
      return exec_node(n);
    } catch (const EvalError& e) {
      throw TemplateError(e.what(), n.line);
    }
  }

  Flow exec_node(const Node& n) {
    switch (n.kind) {
      case Node::Kind::Text: write(n.text, n.line); return Flow::Normal;
      case Node::Kind::Output: write(to_str(eval(*n.expr)), n.line); return Flow::Normal;
      case Node::Kind::If:
        for (const auto& [cond, body] : n.branches)
          if (truthy(eval(*cond))) return exec(body);
        return exec(n.else_body);
      case Node::Kind::For: return exec_for(n);
      case Node::Kind::Set: {
        Value v = eval(*n.expr);
        if (n.attr.empty()) {
          assign(n.targets, v, *scopes_.back());
          return Flow::Normal;
        }
        Value target = lookup(n.targets[0]);
        if (target.kind != Value::Kind::Namespace) throw EvalError("cannot assign attribute on non-namespace object");
        if (n.attr[0] == '_')
          throw EvalError("Chat templates cannot store underscore-prefixed attributes on a namespace, but got '" +
                          n.attr + "'. Please rename the attribute.");
        for (auto& kv : target.ns->attrs)
          if (kv.first == n.attr) {
            kv.second = v;
            return Flow::Normal;
          }
        target.ns->attrs.emplace_back(n.attr, v);
        return Flow::Normal;
      }
      case Node::Kind::SetBlock: {
        std::string buf;
        std::string* saved = out_;
        out_ = &buf;
        try {
          exec(n.body);
        } catch (...) {
          out_ = saved;
          throw;
        }
        out_ = saved;
        (*scopes_.back())[n.targets[0]] = Value::string(std::move(buf));
        return Flow::Normal;
      }
      case Node::Kind::Macro: (*scopes_.back())[n.name] = make_macro(n); return Flow::Normal;
      case Node::Kind::Break: return Flow::Break;
      case Node::Kind::Continue: return Flow::Continue;
      case Node::Kind::Scope: return exec(n.body);
    }
    return Flow::Normal;
  }

  Flow exec_for(const Node& n) {
    List items = iterate(eval(*n.expr));
    if (n.cond) {  // `for x in xs if cond`: loop.length and loop.last count the kept items only
      List kept;
      for (auto& item : items) {
        scopes_.push_back(std::make_shared<Frame>());
        assign(n.targets, item, *scopes_.back());
        bool keep;
        try {
          keep = truthy(eval(*n.cond));
        } catch (...) {
          scopes_.pop_back();
          throw;
        }
        scopes_.pop_back();
        if (keep) kept.push_back(std::move(item));
      }
      items = std::move(kept);
    }
    if (items.empty()) return exec(n.else_body);
    const auto len = static_cast<int64_t>(items.size());
    for (int64_t k = 0; k < len; ++k) {
      if (++iterations_ > kMaxLoopIterations)
        throw TemplateError("template ran more than " + std::to_string(kMaxLoopIterations) + " loop iterations", n.line);
      auto frame = std::make_shared<Frame>();
      assign(n.targets, items[k], *frame);
      (*frame)["loop"] = loop_object(items, k);
      scopes_.push_back(std::move(frame));
      Flow f;
      try {
        f = exec(n.body);
      } catch (...) {
        scopes_.pop_back();
        throw;
      }
      scopes_.pop_back();
      if (f == Flow::Break) break;
    }
    return Flow::Normal;
  }

  static Value loop_object(const List& items, int64_t k) {
    const auto len = static_cast<int64_t>(items.size());
    Dict d;
    d.emplace_back("index", Value::integer(k + 1));
    d.emplace_back("index0", Value::integer(k));
    d.emplace_back("revindex", Value::integer(len - k));
    d.emplace_back("revindex0", Value::integer(len - k - 1));
    d.emplace_back("first", Value::boolean(k == 0));
    d.emplace_back("last", Value::boolean(k == len - 1));
    d.emplace_back("length", Value::integer(len));
    d.emplace_back("depth", Value::integer(1));
    d.emplace_back("depth0", Value::integer(0));
    d.emplace_back("previtem", k > 0 ? items[k - 1] : Value::undefined("there is no previous item"));
    d.emplace_back("nextitem", k + 1 < len ? items[k + 1] : Value::undefined("there is no next item"));
    d.emplace_back("cycle", Value::callable("loop.cycle", [k](const List& args, const KwArgs&) {
                     if (args.empty()) throw EvalError("no items for cycling given");
                     return args[static_cast<size_t>(k) % args.size()];
                   }));
    return Value::make_dict(std::move(d));
  }

  Value make_macro(const Node& n) {
    const Node* node = &n;
    return Value::callable(n.name, [this, node](const List& args, const KwArgs& kwargs) {
      return call_macro(*node, args, kwargs);
    });
  }

  Value call_macro(const Node& n, const List& args, const KwArgs& kwargs) {
    if (args.size() > n.params.size())
      throw EvalError("macro '" + n.name + "' takes not more than " + std::to_string(n.params.size()) +
                      " argument(s)");
    if (call_depth_ >= kMaxCallDepth)
      throw EvalError("macro '" + n.name + "' nested deeper than " + std::to_string(kMaxCallDepth) + " calls");
    auto frame = std::make_shared<Frame>();
    for (const auto& [key, val] : kwargs) {
      bool known = false;
      for (const auto& p : n.params) known |= p.first == key;
      if (!known) throw EvalError("macro '" + n.name + "' takes no keyword argument '" + key + "'");
    }
    std::vector<std::shared_ptr<Frame>> saved_scopes = scopes_;
    std::string* saved_out = out_;
    std::string buf;
    scopes_ = {saved_scopes.front(), frame};
    out_ = &buf;
    ++call_depth_;
    try {
      for (size_t k = 0; k < n.params.size(); ++k) {
        const auto& [pname, def] = n.params[k];
        const Value* given = k < args.size() ? &args[k] : nullptr;
        for (const auto& [key, val] : kwargs)
          if (key == pname) given = &val;
        (*frame)[pname] = given ? *given : def ? eval(*def) : Value::undefined("parameter '" + pname + "' was not provided");
      }
      exec(n.body);
    } catch (...) {
      --call_depth_;
      scopes_ = std::move(saved_scopes);
      out_ = saved_out;
      throw;
    }
    --call_depth_;
    scopes_ = std::move(saved_scopes);
    out_ = saved_out;
    return Value::string(std::move(buf));
  }

  // ---- expressions ----------------------------------------------------------------------------

  Value eval(const Expr& e) {
    DepthGuard guard(depth_, e.line);
    try {
      return eval_node(e);
    } catch (const EvalError& err) {
      throw TemplateError(err.what(), e.line);
    }
  }

  void eval_args(const Expr& e, size_t first, List& args, KwArgs& kwargs) {
    for (size_t k = first; k < e.args.size(); ++k) args.push_back(eval(*e.args[k]));
    for (const auto& [key, val] : e.kwargs) kwargs.emplace_back(key, eval(*val));
  }

  Value eval_node(const Expr& e) {
    using K = Expr::Kind;
    switch (e.kind) {
      case K::Literal: return e.value;
      case K::Name: return lookup(e.name);
      case K::Attr: return get_attr(eval(*e.args[0]), e.name);
      case K::Item: {
        Value obj = eval(*e.args[0]);
        return get_item(obj, eval(*e.args[1]));
      }
      case K::Slice: {
        Value obj = eval(*e.args[0]);
        Value parts[3];
        for (int k = 0; k < 3; ++k) parts[k] = e.args[k + 1] ? eval(*e.args[k + 1]) : Value::none();
        return slice(obj, parts[0], parts[1], parts[2]);
      }
      case K::Unary: return unary_op(e.name, eval(*e.args[0]));
      case K::Binary: {
        Value a = eval(*e.args[0]);
        return binary_op(e.name, a, eval(*e.args[1]));
      }
      case K::And: {
        Value a = eval(*e.args[0]);
        return truthy(a) ? eval(*e.args[1]) : a;
      }
      case K::Or: {
        Value a = eval(*e.args[0]);
        return truthy(a) ? a : eval(*e.args[1]);
      }
      case K::Not: return Value::boolean(!truthy(eval(*e.args[0])));
      case K::Compare: {
        Value left = eval(*e.args[0]);
        for (size_t k = 0; k < e.ops.size(); ++k) {
          Value right = eval(*e.args[k + 1]);
          if (!compare(e.ops[k], left, right)) return Value::boolean(false);
          left = std::move(right);
        }
        return Value::boolean(true);
      }
      case K::Cond:
        if (truthy(eval(*e.args[0]))) return eval(*e.args[1]);
        return e.args[2] ? eval(*e.args[2]) : Value::undefined("the inline if-expression evaluated to false and no else section was defined.");
      case K::List:
      case K::Tuple: {
        List items;
        for (const auto& a : e.args) items.push_back(eval(*a));
        return Value::make_list(std::move(items), e.kind == K::Tuple);
      }
      case K::Dict: {
        Dict d;
        for (size_t k = 0; k + 1 < e.args.size(); k += 2) {
          Value key = eval(*e.args[k]);
          if (key.kind != Value::Kind::String) throw EvalError("dict literal keys must be strings here, got " + type_name(key));
          Value val = eval(*e.args[k + 1]);
          auto it = std::find_if(d.begin(), d.end(), [&](const auto& kv) { return kv.first == key.s; });
          if (it != d.end()) it->second = std::move(val);
          else d.emplace_back(key.s, std::move(val));
        }
        return Value::make_dict(std::move(d));
      }
      case K::Call: {
        Value fn = eval(*e.args[0]);
        List args;
        KwArgs kwargs;
        eval_args(e, 1, args, kwargs);
        return call(fn, args, kwargs);
      }
      case K::Filter: {
        Value subject = eval(*e.args[0]);
        List args;
        KwArgs kwargs;
        eval_args(e, 1, args, kwargs);
        return apply_filter(e.name, subject, args, kwargs);
      }
      case K::Test: {
        Value subject = eval(*e.args[0]);
        List args;
        KwArgs kwargs;
        eval_args(e, 1, args, kwargs);
        return Value::boolean(apply_test(e.name, subject, args) != e.negated);
      }
    }
    return Value::undefined();
  }
};

}  // namespace

std::string render_program(const Program& program, Dict variables, const std::optional<std::tm>& now) {
  try {
    return Interpreter(std::move(variables), now).run(program);
  } catch (const EvalError& e) {
    throw TemplateError(e.what(), 0);
  } catch (const std::bad_alloc&) {
    throw TemplateError("out of memory while rendering the template", 0);
  } catch (const std::length_error&) {
    throw TemplateError("string or list too long while rendering the template", 0);
  }
}

}  // namespace tmpl

// ---- ChatTemplate -------------------------------------------------------------------------------

ChatTemplate ChatTemplate::parse(std::string source) {
  ChatTemplate t;
  t.program_ = tmpl::parse_program(source);
  return t;
}

template <class J>
static std::string render_json(const tmpl::Program* program, const J& variables, const std::optional<std::tm>& now) {
  if (!program) throw TemplateError("render() called on a template that was never parsed", 0);
  if (!variables.is_object()) throw TemplateError("template variables must be a JSON object", 0);
  tmpl::Value v;
  try {
    v = tmpl::from_json(variables);
  } catch (const std::invalid_argument& e) {
    throw TemplateError(e.what(), 0);
  }
  return tmpl::render_program(*program, *v.dict, now);
}

std::string ChatTemplate::render(const nlohmann::json& variables, const std::optional<std::tm>& now) const {
  return render_json(program_.get(), variables, now);
}

std::string ChatTemplate::render(const nlohmann::ordered_json& variables, const std::optional<std::tm>& now) const {
  return render_json(program_.get(), variables, now);
}

}  // namespace moescope
