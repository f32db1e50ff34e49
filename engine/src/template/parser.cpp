// Recursive-descent parser for the Jinja subset. Operator precedence and the statement grammar
// follow jinja2's parser (jinja2/parser.py), lowest first:
//   cond-expr (a if b else c) < or < and < not < compare (== != < <= > >= in, not in)
//   < + - < ~ < * / // % < ** < unary - + < primary with postfix (. [] ()) and | filter, is test
#include "moescope/chat_template.h"
#include "template/ast.h"

namespace moescope::tmpl {
namespace {

constexpr int kMaxNesting = 128;  // expression and block nesting; deeper is an error, not a crash

class Parser {
public:
  explicit Parser(std::vector<Token> tokens) : toks_(std::move(tokens)) {}

  Body parse_all() {
    Body body = parse_body({});
    return body;
  }

private:
  std::vector<Token> toks_;
  size_t pos_ = 0;
  int depth_ = 0;
  int loop_depth_ = 0;
  std::vector<std::string> open_blocks_;

  struct DepthGuard {
    Parser& p;
    explicit DepthGuard(Parser& parser, int line) : p(parser) {
      if (++p.depth_ > kMaxNesting) throw TemplateError("template nested too deeply", line);
    }
    ~DepthGuard() { --p.depth_; }
  };

  const Token& cur() const { return toks_[pos_]; }
  const Token& peek(size_t n = 1) const { return toks_[std::min(pos_ + n, toks_.size() - 1)]; }
  const Token& next() { return toks_[pos_ < toks_.size() - 1 ? pos_++ : pos_]; }

  [[noreturn]] void fail(const std::string& msg, int line) const { throw TemplateError(msg, line); }

  static std::string describe(const Token& t) {
    switch (t.type) {
      case Token::Type::Eof: return "end of template";
      case Token::Type::BlockEnd: return "end of statement block";
      case Token::Type::VarEnd: return "end of print statement";
      case Token::Type::String: return "string";
      case Token::Type::Int: return "integer";
      case Token::Type::Float: return "float";
      case Token::Type::Name:
      case Token::Type::Op: return "'" + t.text + "'";
      default: return "template data";
    }
  }

  bool is_op(const char* op) const { return cur().type == Token::Type::Op && cur().text == op; }
  bool is_name(const char* n) const { return cur().type == Token::Type::Name && cur().text == n; }
  bool skip_op(const char* op) {
    if (!is_op(op)) return false;
    next();
    return true;
  }
  bool skip_name(const char* n) {
    if (!is_name(n)) return false;
    next();
    return true;
  }
  void expect_op(const char* op) {
    if (!skip_op(op)) fail(std::string("expected token '") + op + "', got " + describe(cur()), cur().line);
  }
  std::string expect_name() {
    if (cur().type != Token::Type::Name) fail("expected a name, got " + describe(cur()), cur().line);
    return next().text;
  }
  void expect_block_end() {
    if (cur().type != Token::Type::BlockEnd)
      fail("expected end of statement block, got " + describe(cur()), cur().line);
    next();
  }

  // ---- statements -----------------------------------------------------------------------------

  // Parses nodes until a block tag whose name is in `end_tags` (left unconsumed, pointing at the
  // name) or the end of the template (an error when end_tags is not empty).
  Body parse_body(const std::vector<std::string>& end_tags) {
    Body body;
    while (true) {
      const Token& t = cur();
      if (t.type == Token::Type::Eof) {
        if (!end_tags.empty()) {
          fail("Unexpected end of template. Jinja was looking for the following tags: " + tag_list(end_tags) +
                   ". The innermost block that needs to be closed is '" + open_blocks_.back() + "'.",
               t.line);
        }
        return body;
      }
      if (t.type == Token::Type::Text) {
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::Text;
        n->line = t.line;
        n->text = t.text;
        body.push_back(std::move(n));
        next();
      } else if (t.type == Token::Type::VarBegin) {
        next();
        auto n = std::make_unique<Node>();
        n->kind = Node::Kind::Output;
        n->line = t.line;
        n->expr = parse_tuple(true);
        if (cur().type != Token::Type::VarEnd)
          fail("expected end of print statement, got " + describe(cur()), cur().line);
        next();
        body.push_back(std::move(n));
      } else if (t.type == Token::Type::BlockBegin) {
        next();
        if (cur().type != Token::Type::Name) fail("tag name expected", cur().line);
        const std::string& name = cur().text;
        for (const auto& e : end_tags)
          if (name == e) return body;
        body.push_back(parse_statement(end_tags));
      } else {
        fail("unexpected " + describe(t), t.line);
      }
    }
  }

  static std::string tag_list(const std::vector<std::string>& tags) {
    std::string out;
    for (size_t k = 0; k < tags.size(); ++k) out += (k ? " or '" : "'") + tags[k] + "'";
    return out;
  }

  NodePtr parse_statement(const std::vector<std::string>& outer_end_tags) {
    const Token& t = cur();
    DepthGuard guard(*this, t.line);
    auto n = std::make_unique<Node>();
    n->line = t.line;
    const std::string name = t.text;
    if (name == "if") {
      next();
      n->kind = Node::Kind::If;
      open_blocks_.push_back("if");
      while (true) {
        ExprPtr cond = parse_tuple(true);
        expect_block_end();
        Body body = parse_body({"elif", "else", "endif"});
        n->branches.emplace_back(std::move(cond), std::move(body));
        std::string tag = next().text;
        if (tag == "elif") continue;
        if (tag == "else") {
          expect_block_end();
          n->else_body = parse_body({"endif"});
          next();
        }
        break;
      }
      open_blocks_.pop_back();
      expect_block_end();
    } else if (name == "for") {
      next();
      n->kind = Node::Kind::For;
      n->targets = parse_targets("in");
      if (!skip_name("in")) fail("expected 'in', got " + describe(cur()), cur().line);
      n->expr = parse_tuple(false);
      if (skip_name("if")) n->cond = parse_tuple(true);
      if (is_name("recursive")) fail("recursive for loops are not supported", cur().line);
      expect_block_end();
      open_blocks_.push_back("for");
      ++loop_depth_;
      n->body = parse_body({"endfor", "else"});
      --loop_depth_;
      if (next().text == "else") {
        expect_block_end();
        n->else_body = parse_body({"endfor"});
        next();
      }
      open_blocks_.pop_back();
      expect_block_end();
    } else if (name == "set") {
      next();
      if (cur().type == Token::Type::Name && peek().type == Token::Type::Op && peek().text == "." &&
          peek(2).type == Token::Type::Name) {
        n->kind = Node::Kind::Set;
        n->targets.push_back(next().text);
        next();
        n->attr = next().text;
        expect_op("=");
        n->expr = parse_tuple(true);
        expect_block_end();
      } else {
        n->targets = parse_targets("=");
        if (skip_op("=")) {
          n->kind = Node::Kind::Set;
          n->expr = parse_tuple(true);
          expect_block_end();
        } else {
          if (n->targets.size() != 1) fail("a block set takes one name", n->line);
          n->kind = Node::Kind::SetBlock;
          expect_block_end();
          open_blocks_.push_back("set");
          n->body = parse_body({"endset"});
          open_blocks_.pop_back();
          next();
          expect_block_end();
        }
      }
    } else if (name == "macro") {
      next();
      n->kind = Node::Kind::Macro;
      n->name = expect_name();
      expect_op("(");
      while (!skip_op(")")) {
        if (!n->params.empty()) expect_op(",");
        if (skip_op(")")) break;
        std::string param = expect_name();
        ExprPtr def;
        if (skip_op("=")) def = parse_expression(true);
        n->params.emplace_back(param, std::move(def));
      }
      expect_block_end();
      open_blocks_.push_back("macro");
      int saved_loops = loop_depth_;
      loop_depth_ = 0;
      n->body = parse_body({"endmacro"});
      loop_depth_ = saved_loops;
      open_blocks_.pop_back();
      next();
      if (cur().type == Token::Type::Name && cur().text == n->name) next();
      expect_block_end();
    } else if (name == "break" || name == "continue") {
      next();
      if (loop_depth_ == 0) fail("'" + name + "' outside of a loop", n->line);
      n->kind = name == "break" ? Node::Kind::Break : Node::Kind::Continue;
      expect_block_end();
    } else if (name == "generation") {
      next();
      n->kind = Node::Kind::Scope;
      expect_block_end();
      open_blocks_.push_back("generation");
      n->body = parse_body({"endgeneration"});
      open_blocks_.pop_back();
      next();
      expect_block_end();
    } else {
      std::string msg = "Encountered unknown tag '" + name + "'.";
      if (!outer_end_tags.empty())
        msg += " Jinja was looking for the following tags: " + tag_list(outer_end_tags) +
               ". The innermost block that needs to be closed is '" + open_blocks_.back() + "'.";
      fail(msg, t.line);
    }
    return n;
  }

  // `x`, `a, b` or `(a, b)` before `in` / `=`.
  std::vector<std::string> parse_targets(const char* end) {
    std::vector<std::string> names;
    bool paren = skip_op("(");
    while (true) {
      names.push_back(expect_name());
      if (!skip_op(",")) break;
      if (is_name(end) || is_op(end) || is_op(")")) break;
    }
    if (paren) expect_op(")");
    return names;
  }

  // ---- expressions ----------------------------------------------------------------------------

  ExprPtr make(Expr::Kind kind, int line) {
    auto e = std::make_unique<Expr>();
    e->kind = kind;
    e->line = line;
    return e;
  }

  // An expression, or a tuple of them separated by commas (`{{ a, b }}`, `set x = 1, 2`).
  ExprPtr parse_tuple(bool with_condexpr, bool explicit_parens = false) {
    int line = cur().line;
    std::vector<ExprPtr> items;
    bool saw_comma = false;
    while (true) {
      if (!items.empty()) {
        if (!skip_op(",")) break;
        saw_comma = true;
      }
      if (tuple_ends()) break;
      items.push_back(parse_expression(with_condexpr));
    }
    if (items.empty() && !explicit_parens)
      fail("Expected an expression, got " + describe(cur()), cur().line);
    if (items.size() == 1 && !saw_comma) return std::move(items[0]);
    auto t = make(Expr::Kind::Tuple, line);
    t->args = std::move(items);
    return t;
  }

  bool tuple_ends() const {
    const Token& t = cur();
    if (t.type == Token::Type::VarEnd || t.type == Token::Type::BlockEnd || t.type == Token::Type::Eof) return true;
    if (t.type == Token::Type::Op && (t.text == ")" || t.text == "]" || t.text == "}")) return true;
    return t.type == Token::Type::Name && (t.text == "if" || t.text == "recursive");
  }

  ExprPtr parse_expression(bool with_condexpr) {
    return with_condexpr ? parse_condexpr() : parse_or();
  }

  ExprPtr parse_condexpr() {
    ExprPtr e = parse_or();
    while (is_name("if")) {
      int line = next().line;
      auto c = make(Expr::Kind::Cond, line);
      ExprPtr test = parse_or();
      ExprPtr other = skip_name("else") ? parse_condexpr() : nullptr;
      c->args.push_back(std::move(test));
      c->args.push_back(std::move(e));
      c->args.push_back(std::move(other));
      e = std::move(c);
    }
    return e;
  }

  ExprPtr binary(Expr::Kind kind, std::string op, ExprPtr l, ExprPtr r, int line) {
    auto e = make(kind, line);
    e->name = std::move(op);
    e->args.push_back(std::move(l));
    e->args.push_back(std::move(r));
    return e;
  }

  ExprPtr parse_or() {
    ExprPtr e = parse_and();
    while (is_name("or")) {
      int line = next().line;
      e = binary(Expr::Kind::Or, "or", std::move(e), parse_and(), line);
    }
    return e;
  }

  ExprPtr parse_and() {
    ExprPtr e = parse_not();
    while (is_name("and")) {
      int line = next().line;
      e = binary(Expr::Kind::And, "and", std::move(e), parse_not(), line);
    }
    return e;
  }

  ExprPtr parse_not() {
    if (is_name("not")) {
      int line = next().line;
      DepthGuard guard(*this, line);
      auto e = make(Expr::Kind::Not, line);
      e->args.push_back(parse_not());
      return e;
    }
    return parse_compare();
  }

  ExprPtr parse_compare() {
    int line = cur().line;
    ExprPtr first = parse_math1();
    ExprPtr cmp;
    while (true) {
      std::string op;
      const Token& t = cur();
      if (t.type == Token::Type::Op &&
          (t.text == "==" || t.text == "!=" || t.text == "<" || t.text == "<=" || t.text == ">" || t.text == ">=")) {
        op = t.text;
        next();
      } else if (is_name("in")) {
        op = "in";
        next();
      } else if (is_name("not") && peek().type == Token::Type::Name && peek().text == "in") {
        op = "not in";
        next();
        next();
      } else {
        break;
      }
      if (!cmp) {
        cmp = make(Expr::Kind::Compare, line);
        cmp->args.push_back(std::move(first));
      }
      cmp->ops.push_back(op);
      cmp->args.push_back(parse_math1());
    }
    return cmp ? std::move(cmp) : std::move(first);
  }

  ExprPtr parse_math1() {
    ExprPtr e = parse_concat();
    while (is_op("+") || is_op("-")) {
      const Token& t = next();
      e = binary(Expr::Kind::Binary, t.text, std::move(e), parse_concat(), t.line);
    }
    return e;
  }

  ExprPtr parse_concat() {
    ExprPtr e = parse_math2();
    while (is_op("~")) {
      const Token& t = next();
      e = binary(Expr::Kind::Binary, "~", std::move(e), parse_math2(), t.line);
    }
    return e;
  }

  ExprPtr parse_math2() {
    ExprPtr e = parse_pow();
    while (is_op("*") || is_op("/") || is_op("//") || is_op("%")) {
      const Token& t = next();
      e = binary(Expr::Kind::Binary, t.text, std::move(e), parse_pow(), t.line);
    }
    return e;
  }

  ExprPtr parse_pow() {
    ExprPtr e = parse_unary(true);
    while (is_op("**")) {
      const Token& t = next();
      e = binary(Expr::Kind::Binary, "**", std::move(e), parse_unary(true), t.line);
    }
    return e;
  }

  ExprPtr parse_unary(bool with_filter) {
    int line = cur().line;
    DepthGuard guard(*this, line);
    ExprPtr e;
    if (is_op("-") || is_op("+")) {
      std::string op = next().text;
      e = make(Expr::Kind::Unary, line);
      e->name = op;
      e->args.push_back(parse_unary(false));
    } else {
      e = parse_primary();
    }
    e = parse_postfix(std::move(e));
    if (with_filter) e = parse_filter_expr(std::move(e));
    return e;
  }

  ExprPtr literal(Value v, int line) {
    auto e = make(Expr::Kind::Literal, line);
    e->value = std::move(v);
    return e;
  }

  ExprPtr parse_primary() {
    const Token& t = cur();
    int line = t.line;
    switch (t.type) {
      case Token::Type::Name: {
        next();
        if (t.text == "true" || t.text == "True") return literal(Value::boolean(true), line);
        if (t.text == "false" || t.text == "False") return literal(Value::boolean(false), line);
        if (t.text == "none" || t.text == "None") return literal(Value::none(), line);
        auto e = make(Expr::Kind::Name, line);
        e->name = t.text;
        return e;
      }
      case Token::Type::String: {
        std::string s = next().text;
        while (cur().type == Token::Type::String) s += next().text;  // 'a' 'b' is 'ab'
        return literal(Value::string(std::move(s)), line);
      }
      case Token::Type::Int: return literal(Value::integer(next().ival), line);
      case Token::Type::Float: return literal(Value::real(next().fval), line);
      case Token::Type::Op:
        if (t.text == "(") {
          next();
          ExprPtr e = parse_tuple(true, true);
          expect_op(")");
          return e;
        }
        if (t.text == "[") {
          next();
          auto e = make(Expr::Kind::List, line);
          while (!is_op("]")) {
            if (!e->args.empty()) expect_op(",");
            if (is_op("]")) break;
            e->args.push_back(parse_expression(true));
          }
          next();
          return e;
        }
        if (t.text == "{") {
          next();
          auto e = make(Expr::Kind::Dict, line);
          while (!is_op("}")) {
            if (!e->args.empty()) expect_op(",");
            if (is_op("}")) break;
            e->args.push_back(parse_expression(true));
            expect_op(":");
            e->args.push_back(parse_expression(true));
          }
          next();
          return e;
        }
        break;
      default: break;
    }
    fail("Expected an expression, got " + describe(t), line);
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (is_op(".")) {
        int line = next().line;
        if (cur().type == Token::Type::Name) {
          auto a = make(Expr::Kind::Attr, line);
          a->name = next().text;
          a->args.push_back(std::move(e));
          e = std::move(a);
        } else if (cur().type == Token::Type::Int) {
          auto a = make(Expr::Kind::Item, line);
          a->args.push_back(std::move(e));
          a->args.push_back(literal(Value::integer(next().ival), line));
          e = std::move(a);
        } else {
          fail("expected name or number after '.', got " + describe(cur()), line);
        }
      } else if (is_op("[")) {
        e = parse_subscript(std::move(e));
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }

  ExprPtr parse_subscript(ExprPtr obj) {
    int line = next().line;  // '['
    ExprPtr parts[3];
    bool is_slice = false;
    int part = 0;
    while (!is_op("]")) {
      if (is_op(":")) {
        next();
        is_slice = true;
        if (++part > 2) fail("invalid slice", line);
        continue;
      }
      if (parts[part]) fail("expected ']' or ':', got " + describe(cur()), cur().line);
      parts[part] = part == 0 && !is_slice ? parse_tuple(true, false) : parse_expression(true);
    }
    next();
    if (!is_slice) {
      if (!parts[0]) fail("expected a subscript", line);
      auto e = make(Expr::Kind::Item, line);
      e->args.push_back(std::move(obj));
      e->args.push_back(std::move(parts[0]));
      return e;
    }
    auto e = make(Expr::Kind::Slice, line);
    e->args.push_back(std::move(obj));
    for (auto& p : parts) e->args.push_back(std::move(p));
    return e;
  }

  void parse_args(Expr& e) {
    expect_op("(");
    bool first = true;
    while (!skip_op(")")) {
      if (!first) {
        expect_op(",");
        if (skip_op(")")) break;
      }
      first = false;
      if (is_op("*") || is_op("**")) fail("*args and **kwargs are not supported", cur().line);
      if (cur().type == Token::Type::Name && peek().type == Token::Type::Op && peek().text == "=") {
        std::string key = next().text;
        next();
        e.kwargs.emplace_back(key, parse_expression(true));
      } else {
        if (!e.kwargs.empty()) fail("positional argument after keyword argument", cur().line);
        e.args.push_back(parse_expression(true));
      }
    }
  }

  ExprPtr parse_call(ExprPtr callee) {
    auto e = make(Expr::Kind::Call, cur().line);
    e->args.push_back(std::move(callee));
    parse_args(*e);
    return e;
  }

  std::string dotted_name() {
    std::string name = expect_name();
    while (is_op(".") && peek().type == Token::Type::Name) {
      next();
      name += "." + next().text;
    }
    return name;
  }

  ExprPtr parse_filter_expr(ExprPtr e) {
    while (true) {
      if (is_op("|")) {
        int line = next().line;
        auto f = make(Expr::Kind::Filter, line);
        f->name = dotted_name();
        if (!is_known_filter(f->name)) fail("No filter named '" + f->name + "'.", line);
        f->args.push_back(std::move(e));
        if (is_op("(")) parse_args(*f);
        e = std::move(f);
      } else if (is_name("is")) {
        int line = next().line;
        auto t = make(Expr::Kind::Test, line);
        t->negated = skip_name("not");
        t->name = dotted_name();
        if (!is_known_test(t->name)) fail("No test named '" + t->name + "'.", line);
        t->args.push_back(std::move(e));
        const Token& c = cur();
        if (is_op("(")) {
          parse_args(*t);
        } else if ((c.type == Token::Type::Name || c.type == Token::Type::String || c.type == Token::Type::Int ||
                    c.type == Token::Type::Float || is_op("[") || is_op("{")) &&
                   !is_name("else") && !is_name("or") && !is_name("and")) {
          if (is_name("is")) fail("You cannot chain multiple tests with is", c.line);
          t->args.push_back(parse_postfix(parse_primary()));
        }
        e = std::move(t);
      } else if (is_op("(")) {
        e = parse_call(std::move(e));
      } else {
        return e;
      }
    }
  }
};

}  // namespace

std::shared_ptr<Program> parse_program(const std::string& source) {
  auto program = std::make_shared<Program>();
  program->body = Parser(tokenize(source)).parse_all();
  return program;
}

}  // namespace moescope::tmpl
