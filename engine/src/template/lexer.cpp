// Template lexer. Whitespace handling follows jinja2's lexer (jinja2/lexer.py, `tokeniter`) with
// transformers' settings: trim_blocks drops the first newline after a block or comment tag,
// lstrip_blocks drops the spaces before a block or comment tag that starts its line, `-` strips
// all whitespace on its side, `+` turns lstrip/trim off for that tag.
#include <algorithm>
#include <cstring>

#include "moescope/chat_template.h"
#include "template/ast.h"

namespace moescope::tmpl {
namespace {

class Lexer {
public:
  explicit Lexer(std::string src) : src_(std::move(src)) {
    for (size_t k = 0; k < src_.size(); ++k)
      if (src_[k] == '\n') line_starts_.push_back(k + 1);
  }

  std::vector<Token> run() {
    size_t pos = 0;
    bool line_starting = true;
    while (pos < src_.size()) {
      size_t start = find_tag(pos);
      if (start == std::string::npos) {
        emit_text(src_.substr(pos), pos);
        break;
      }
      std::string text = src_.substr(pos, start - pos);
      char kind = src_[start + 1];  // '{', '%' or '#'
      char sign = start + 2 < src_.size() ? src_[start + 2] : '\0';
      if (sign != '-' && sign != '+') sign = '\0';
      if (sign == '-') {
        text = rstrip_space(text);
      } else if (sign != '+' && kind != '{') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if ((l_pos > 0 || line_starting) && l_pos < text.size() && all_space(text, l_pos))
          text.resize(l_pos);
      }
      emit_text(text, pos);
      size_t after = start + 2 + (sign ? 1 : 0);
      if (kind == '#') {
        pos = end_comment(after, start);
      } else if (kind == '%' && is_raw(after)) {
        pos = raw_block(after, start);
      } else {
        pos = tag(kind == '%', after, start);
      }
      line_starting = pos > 0 && src_[pos - 1] == '\n';
    }
    tokens_.push_back({Token::Type::Eof, "", line_of(src_.size())});
    return std::move(tokens_);
  }

private:
  std::string src_;
  std::vector<size_t> line_starts_{0};
  std::vector<Token> tokens_;

  int line_of(size_t pos) const {
    return static_cast<int>(std::upper_bound(line_starts_.begin(), line_starts_.end(), pos) -
                            line_starts_.begin());
  }

  [[noreturn]] void fail(const std::string& msg, size_t pos) const {
    throw TemplateError(msg, line_of(pos));
  }

  size_t find_tag(size_t from) const {
    for (size_t k = src_.find('{', from); k != std::string::npos; k = src_.find('{', k + 1)) {
      if (k + 1 < src_.size() && std::strchr("{%#", src_[k + 1]) && src_[k + 1] != '\0') return k;
    }
    return std::string::npos;
  }

  void emit_text(const std::string& text, size_t pos) {
    if (!text.empty()) tokens_.push_back({Token::Type::Text, text, line_of(pos)});
  }

  // Python's str.isspace over UTF-8 (\s in jinja2's regexes).
  static size_t space_len(const std::string& s, size_t k) {
    auto c = static_cast<unsigned char>(s[k]);
    if (c < 0x80) return is_py_space(c) ? 1 : 0;
    size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 1;
    if (k + len > s.size()) return 0;
    std::u32string u = utf8_decode(s.substr(k, len));
    return u.size() == 1 && is_py_space(u[0]) ? len : 0;
  }
  static bool all_space(const std::string& s, size_t from) {
    for (size_t k = from; k < s.size();) {
      size_t n = space_len(s, k);
      if (!n) return false;
      k += n;
    }
    return true;
  }
  static std::string rstrip_space(const std::string& s) {
    std::u32string u = utf8_decode(s);
    while (!u.empty() && is_py_space(u.back())) u.pop_back();
    return utf8_encode(u);
  }
  size_t skip_space(size_t k) const {
    while (k < src_.size()) {
      size_t n = space_len(src_, k);
      if (!n) break;
      k += n;
    }
    return k;
  }

  // After a block or comment end: `-` eats all whitespace, `+` nothing, plain one newline.
  size_t after_block_end(size_t end, char sign) const {
    if (sign == '-') return skip_space(end);
    if (sign == '+') return end;
    return end < src_.size() && src_[end] == '\n' ? end + 1 : end;
  }

  size_t end_comment(size_t from, size_t start) {
    size_t k = src_.find("#}", from);
    if (k == std::string::npos) fail("Missing end of comment tag", start);
    char sign = k > from && (src_[k - 1] == '-' || src_[k - 1] == '+') ? src_[k - 1] : '\0';
    return after_block_end(k + 2, sign);
  }

  bool word_at(size_t k, const char* w) const {
    size_t n = std::strlen(w);
    if (src_.compare(k, n, w) != 0) return false;
    return k + n >= src_.size() || !(std::isalnum(static_cast<unsigned char>(src_[k + n])) || src_[k + n] == '_');
  }

  bool is_raw(size_t k) const {
    k = skip_space(k);
    if (!word_at(k, "raw")) return false;
    k = skip_space(k + 3);
    return src_.compare(k, 2, "%}") == 0 || src_.compare(k, 3, "-%}") == 0;
  }

  size_t raw_block(size_t k, size_t start) {
    k = skip_space(skip_space(k) + 3);
    k = src_[k] == '-' ? skip_space(k + 3) : k + 2;
    for (size_t e = src_.find("{%", k); e != std::string::npos; e = src_.find("{%", e + 1)) {
      size_t p = e + 2;
      char sign = p < src_.size() && (src_[p] == '-' || src_[p] == '+') ? src_[p++] : '\0';
      p = skip_space(p);
      if (!word_at(p, "endraw")) continue;
      p = skip_space(p + 6);
      char end_sign = '\0';
      if (src_[p] == '-' || src_[p] == '+') end_sign = src_[p++];
      if (src_.compare(p, 2, "%}") != 0) continue;
      std::string text = src_.substr(k, e - k);
      if (sign == '-') {
        text = rstrip_space(text);
      } else if (sign != '+') {
        size_t l_pos = text.rfind('\n');
        l_pos = l_pos == std::string::npos ? 0 : l_pos + 1;
        if (l_pos > 0 && l_pos < text.size() && all_space(text, l_pos)) text.resize(l_pos);
      }
      emit_text(text, k);
      return after_block_end(p + 2, end_sign);
    }
    fail("Missing end of raw directive", start);
  }

  // The expression tokens of a {{ }} or {% %} tag; returns the position after its end.
  size_t tag(bool block, size_t k, size_t start) {
    tokens_.push_back({block ? Token::Type::BlockBegin : Token::Type::VarBegin, "", line_of(start)});
    std::vector<char> balance;
    while (true) {
      k = skip_space(k);
      if (k >= src_.size()) {
        tokens_.push_back({Token::Type::Eof, "", line_of(k)});
        return k;
      }
      if (balance.empty()) {
        const char* close = block ? "%}" : "}}";
        for (char sign : {'-', '+', '\0'}) {
          if (!block && sign == '+') continue;
          size_t p = k + (sign ? 1 : 0);
          if ((sign && src_[k] != sign) || src_.compare(p, 2, close) != 0) continue;
          tokens_.push_back({block ? Token::Type::BlockEnd : Token::Type::VarEnd, "", line_of(k)});
          if (block) return after_block_end(p + 2, sign);
          return sign == '-' ? skip_space(p + 2) : p + 2;
        }
      }
      k = expr_token(k, balance);
    }
  }

  size_t expr_token(size_t k, std::vector<char>& balance) {
    const char c = src_[k];
    const int line = line_of(k);
    auto is_digit = [&](size_t p) { return p < src_.size() && std::isdigit(static_cast<unsigned char>(src_[p])); };
    if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t e = k;
      while (e < src_.size() && (std::isalnum(static_cast<unsigned char>(src_[e])) || src_[e] == '_')) ++e;
      tokens_.push_back({Token::Type::Name, src_.substr(k, e - k), line});
      return e;
    }
    if (is_digit(k)) {
      auto digits = [&](size_t p) {  // (\d+_)*\d+
        while (is_digit(p) || (src_[p] == '_' && is_digit(p + 1) && p > 0 && is_digit(p - 1))) ++p;
        return p;
      };
      size_t e = digits(k);
      bool is_float = false;
      if (e < src_.size() && src_[e] == '.' && is_digit(e + 1)) {
        e = digits(e + 1);
        is_float = true;
      }
      if (e < src_.size() && (src_[e] == 'e' || src_[e] == 'E')) {
        size_t p = e + 1;
        if (p < src_.size() && (src_[p] == '+' || src_[p] == '-')) ++p;
        if (is_digit(p)) {
          e = digits(p);
          is_float = true;
        }
      }
      std::string num;
      for (size_t p = k; p < e; ++p)
        if (src_[p] != '_') num.push_back(src_[p]);
      Token t{is_float ? Token::Type::Float : Token::Type::Int, num, line};
      try {
        if (is_float) t.fval = std::stod(num);
        else t.ival = std::stoll(num);
      } catch (const std::exception&) {
        fail("number literal out of range: " + num, k);
      }
      tokens_.push_back(std::move(t));
      return e;
    }
    if (c == '\'' || c == '"') return string_literal(k);
    static const char* const kOps[] = {"//", "**", "==", "!=", "<=", ">=", "+", "-", "/", "*",
                                       "%",  "~",  "[",  "]",  "(",  ")",  "{", "}", "<", ">",
                                       "=",  ".",  ":",  "|",  ",",  ";"};
    for (const char* op : kOps) {
      size_t n = std::strlen(op);
      if (src_.compare(k, n, op) != 0) continue;
      if (n == 1 && std::strchr("([{", c)) balance.push_back(c == '(' ? ')' : c == '[' ? ']' : '}');
      if (n == 1 && std::strchr(")]}", c)) {
        if (balance.empty()) fail(std::string("unexpected '") + c + "'", k);
        if (balance.back() != c)
          fail(std::string("unexpected '") + c + "', expected '" + balance.back() + "'", k);
        balance.pop_back();
      }
      tokens_.push_back({Token::Type::Op, op, line});
      return k + n;
    }
    std::u32string u = utf8_decode(src_.substr(k, 4));
    fail("unexpected char '" + utf8_encode(u.substr(0, 1)) + "'", k);
  }

  // A quoted string with Python's escapes (jinja2 decodes literals with "unicode-escape").
  size_t string_literal(size_t k) {
    const char quote = src_[k];
    const int line = line_of(k);
    std::u32string out;
    size_t p = k + 1;
    auto hex = [&](size_t at, int n) -> long {
      if (at + n > src_.size()) return -1;
      long v = 0;
      for (int d = 0; d < n; ++d) {
        char h = src_[at + d];
        if (!std::isxdigit(static_cast<unsigned char>(h))) return -1;
        v = v * 16 + (std::isdigit(static_cast<unsigned char>(h)) ? h - '0' : (std::tolower(h) - 'a' + 10));
      }
      return v;
    };
    while (true) {
      if (p >= src_.size()) fail("unexpected end of string literal", k);
      char c = src_[p];
      if (c == quote) break;
      if (c != '\\') {
        size_t e = p + 1;
        while (e < src_.size() && src_[e] != quote && src_[e] != '\\') ++e;
        out += utf8_decode(src_.substr(p, e - p));
        p = e;
        continue;
      }
      if (p + 1 >= src_.size()) fail("unexpected end of string literal", k);
      char e = src_[p + 1];
      p += 2;
      switch (e) {
        case '\n': break;
        case '\\': out += U'\\'; break;
        case '\'': out += U'\''; break;
        case '"': out += U'"'; break;
        case 'a': out += U'\a'; break;
        case 'b': out += U'\b'; break;
        case 'f': out += U'\f'; break;
        case 'n': out += U'\n'; break;
        case 'r': out += U'\r'; break;
        case 't': out += U'\t'; break;
        case 'v': out += U'\v'; break;
        case 'x':
        case 'u':
        case 'U': {
          int n = e == 'x' ? 2 : e == 'u' ? 4 : 8;
          long v = hex(p, n);
          if (v < 0 || v > 0x10ffff) fail(std::string("invalid \\") + e + " escape in string literal", p);
          out += static_cast<char32_t>(v);
          p += n;
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            int v = e - '0';
            for (int d = 0; d < 2 && p < src_.size() && src_[p] >= '0' && src_[p] <= '7'; ++d)
              v = v * 8 + (src_[p++] - '0');
            out += static_cast<char32_t>(v);
          } else {
            out += U'\\';  // unknown escapes stay as written
            p -= 1;
          }
      }
    }
    tokens_.push_back({Token::Type::String, utf8_encode(out), line});
    return p + 1;
  }
};

// jinja2 normalises \r\n and \r to \n and drops one trailing newline (keep_trailing_newline=False).
std::string normalize_newlines(const std::string& s) {
  std::string out;
  out.reserve(s.size());
  for (size_t k = 0; k < s.size(); ++k) {
    if (s[k] == '\r') {
      out.push_back('\n');
      if (k + 1 < s.size() && s[k + 1] == '\n') ++k;
    } else {
      out.push_back(s[k]);
    }
  }
  if (!out.empty() && out.back() == '\n') out.pop_back();
  return out;
}

}  // namespace

std::vector<Token> tokenize(const std::string& source) {
  return Lexer(normalize_newlines(source)).run();
}

}  // namespace moescope::tmpl
