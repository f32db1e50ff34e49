#pragma once
// Tokens and the syntax tree of a parsed template.
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "template/value.h"

namespace moescope::tmpl {

struct Token {
  enum class Type { Text, VarBegin, VarEnd, BlockBegin, BlockEnd, Name, String, Int, Float, Op, Eof };
  Type type;
  std::string text;  // Text data, name, operator, or the decoded string literal
  int line = 1;
  int64_t ival = 0;
  double fval = 0;
};

// Splits a template into text and tag tokens, applying jinja2's whitespace control as
// transformers configures it (trim_blocks, lstrip_blocks, `-`/`+` markers). Throws TemplateError.
std::vector<Token> tokenize(const std::string& source);

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;
using KwExprs = std::vector<std::pair<std::string, ExprPtr>>;

struct Expr {
  enum class Kind {
    Literal,  // value
    Name,     // name
    Attr,     // args[0].name
    Item,     // args[0][args[1]]
    Slice,    // args[0][args[1]:args[2]:args[3]], absent parts are null
    Unary,    // name ("-", "+") args[0]
    Binary,   // args[0] name args[1]: + - * / // % ** ~
    And,
    Or,
    Not,
    Compare,  // args[0] ops[0] args[1] ops[1] args[2] ... (chained, as in Python)
    Cond,     // args[1] if args[0] else args[2] (args[2] null: undefined)
    List,
    Tuple,
    Dict,     // args: key0, value0, key1, value1, ...
    Call,     // args[0](args[1..], kwargs)
    Filter,   // args[0] | name(args[1..], kwargs)
    Test,     // args[0] is [not] name(args[1..])
  };
  Kind kind = Kind::Literal;
  int line = 1;
  Value value;
  std::string name;
  std::vector<ExprPtr> args;
  std::vector<std::string> ops;
  KwExprs kwargs;
  bool negated = false;
};

struct Node;
using NodePtr = std::unique_ptr<Node>;
using Body = std::vector<NodePtr>;

struct Node {
  enum class Kind {
    Text,      // text
    Output,    // {{ expr }}
    If,        // branches (cond, body); else_body
    For,       // for targets in expr [if cond]: body; else_body
    Set,       // targets = expr, or targets[0].attr = expr
    SetBlock,  // {% set targets[0] %}body{% endset %}
    Macro,     // name(params) body
    Break,
    Continue,
    Scope,     // a block rendered as is: {% generation %} (transformers' assistant tracker)
  };
  Kind kind = Kind::Text;
  int line = 1;
  std::string text;
  ExprPtr expr;
  ExprPtr cond;
  std::vector<std::pair<ExprPtr, Body>> branches;
  Body body, else_body;
  std::vector<std::string> targets;
  std::string attr;
  std::string name;
  KwExprs params;  // macro parameters; a null default means required
};

struct Program {
  Body body;
  std::string source_name;
};

// Parses a template; throws TemplateError with the line for syntax errors, unknown tags, and
// unknown filters or tests (jinja2 reports those when compiling, too).
std::shared_ptr<Program> parse_program(const std::string& source);

// Renders a parsed template with the given globals; throws TemplateError.
std::string render_program(const Program& program, Dict variables, const std::optional<std::tm>& now = std::nullopt);

bool is_known_filter(const std::string& name);
bool is_known_test(const std::string& name);

}  // namespace moescope::tmpl
