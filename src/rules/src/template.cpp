#include "metrics/rules/template.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <ctime>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace metrics::rules {

// --- humanize (Prometheus template/template.go) -----------------------------

std::string humanize(double v) {
  if (v == 0 || std::isnan(v) || std::isinf(v)) return go_format_float(v, 'g', 4);
  if (std::fabs(v) >= 1) {
    std::string prefix;
    for (const char* p : {"k", "M", "G", "T", "P", "E", "Z", "Y"}) {
      if (std::fabs(v) < 1000) break;
      prefix = p;
      v /= 1000;
    }
    return go_format_float(v, 'g', 4) + prefix;
  }
  std::string prefix;
  for (const char* p : {"m", "u", "n", "p", "f", "a", "z", "y"}) {
    if (std::fabs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return go_format_float(v, 'g', 4) + prefix;
}

std::string humanize1024(double v) {
  if (std::fabs(v) <= 1 || std::isnan(v) || std::isinf(v)) return go_format_float(v, 'g', 4);
  std::string prefix;
  for (const char* p : {"ki", "Mi", "Gi", "Ti", "Pi", "Ei", "Zi", "Yi"}) {
    if (std::fabs(v) < 1024) break;
    prefix = p;
    v /= 1024;
  }
  return go_format_float(v, 'g', 4) + prefix;
}

std::string humanize_duration(double v) {
  if (std::isnan(v) || std::isinf(v)) return go_format_float(v, 'g', 4);
  if (v == 0) return go_format_float(v, 'g', 4) + "s";
  if (std::fabs(v) >= 1) {
    std::string sign;
    if (v < 0) {
      sign = "-";
      v = -v;
    }
    // Go's int64(v): out-of-range conversions give the minimum int64 on amd64.
    const auto duration = v >= 9.2233720368547758e18 ? INT64_MIN : static_cast<std::int64_t>(v);
    const std::int64_t seconds = duration % 60;
    const std::int64_t minutes = (duration / 60) % 60;
    const std::int64_t hours = (duration / 60 / 60) % 24;
    const std::int64_t days = duration / 60 / 60 / 24;
    const auto s = [](std::int64_t x) { return std::to_string(x); };
    if (days != 0)
      return sign + s(days) + "d " + s(hours) + "h " + s(minutes) + "m " + s(seconds) + "s";
    if (hours != 0) return sign + s(hours) + "h " + s(minutes) + "m " + s(seconds) + "s";
    if (minutes != 0) return sign + s(minutes) + "m " + s(seconds) + "s";
    return sign + go_format_float(v, 'g', 4) + "s";
  }
  std::string prefix;
  for (const char* p : {"m", "u", "n", "p", "f", "a", "z", "y"}) {
    if (std::fabs(v) >= 1) break;
    prefix = p;
    v *= 1000;
  }
  return go_format_float(v, 'g', 4) + prefix + "s";
}

std::string humanize_percentage(double v) {
  return go_format_float(v * 100, 'g', 4) + "%";
}

// --- the tree ---------------------------------------------------------------

namespace {

struct Pipeline;

struct Operand {
  enum Kind { variable, dot, field, function, literal, nil, sub } kind = literal;
  std::string name;                 // variable ("$x"), function
  std::vector<std::string> fields;  // .a.b after the term (or the field chain itself)
  GoArg value;                      // literal
  std::shared_ptr<Pipeline> pipe;   // sub
};

struct Command {
  std::vector<Operand> args;
};

struct Pipeline {
  std::vector<std::string> decl;
  bool assign = false;  // = rather than :=
  std::vector<Command> cmds;
  int line = 1;
};

struct Node;
using List = std::vector<Node>;

struct Node {
  enum Kind { k_text, k_action, k_if, k_with, k_range, k_template } kind = k_text;
  std::string text;
  Pipeline pipe;
  std::shared_ptr<List> then;
  std::shared_ptr<List> otherwise;
};

// Prometheus 2.42's function map and text/template's builtins: what
// parsing accepts.
const std::set<std::string, std::less<>>& known_functions() {
  static const std::set<std::string, std::less<>> names{
      "and", "call", "html", "index", "slice", "js", "len", "not", "or", "print", "printf",
      "println", "urlquery", "eq", "ge", "gt", "le", "lt", "ne",
      // Prometheus
      "query", "first", "label", "value", "strvalue", "args", "reReplaceAll", "safeHtml", "match",
      "title", "toUpper", "toLower", "graphLink", "tableLink", "sortByLabel", "stripPort",
      "stripDomain", "humanize", "humanize1024", "humanizeDuration", "humanizePercentage",
      "humanizeTimestamp", "toTime", "pathPrefix", "externalURL", "parseDuration"};
  return names;
}

}  // namespace

struct Template::Tree {
  std::string name;
  List root;
};

namespace {

// --- lexing and parsing -------------------------------------------------------

enum class Tok {
  variable,
  field,
  dot,
  ident,
  string,
  number,
  pipe,
  lparen,
  rparen,
  declare,
  assign,
  comma,
  right,  // }}
  eof
};

struct Token {
  Tok kind;
  std::string text;
  bool spaced = false;  // whitespace before it
  int line = 1;
};

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}
bool is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
         static_cast<unsigned char>(c) >= 0x80;
}

class Parser {
 public:
  Parser(std::string_view src, std::string name) : src_(src), name_(std::move(name)) {
    vars_ = {"$", "$labels", "$externalLabels", "$externalURL", "$value"};
  }

  List parse_all() {
    List out;
    const auto end = parse_list(out);
    if (end) fail("unexpected {{" + *end + "}}");
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& what) const {
    throw TemplateError("template: " + name_ + ":" + std::to_string(line_) + ": " + what);
  }

  // Parses until EOF or a {{else}}/{{end}} (returned, with the action consumed
  // up to but not including the rest of an "else if").
  std::optional<std::string> parse_list(List& out) {
    while (pos_ < src_.size()) {
      const auto open = src_.find("{{", pos_);
      std::string text(src_.substr(pos_, open == std::string_view::npos ? open : open - pos_));
      if (open == std::string_view::npos) {
        append_text(out, text);
        count_lines(src_.substr(pos_));
        pos_ = src_.size();
        break;
      }
      bool trim_left = false;
      std::size_t p = open + 2;
      if (p + 1 < src_.size() && src_[p] == '-' && is_space(src_[p + 1])) {
        trim_left = true;
        p += 2;
      }
      if (trim_left) {
        while (!text.empty() && is_space(text.back()))
          text.pop_back();
      }
      append_text(out, text);
      count_lines(src_.substr(pos_, p - pos_));
      pos_ = p;
      // A comment: {{/* ... */}}.
      std::size_t q = pos_;
      while (q < src_.size() && is_space(src_[q]))
        ++q;
      if (src_.substr(q, 2) == "/*") {
        const auto close = src_.find("*/", q + 2);
        if (close == std::string_view::npos) fail("unclosed comment");
        count_lines(src_.substr(pos_, close + 2 - pos_));
        pos_ = close + 2;
        if (src_.substr(pos_, 3) == " -}" && src_.substr(pos_, 4) == " -}}") {
          pos_ += 4;
          trim_right();
        } else if (src_.substr(pos_, 2) == "}}") {
          pos_ += 2;
        } else {
          fail("comment ends before closing delimiter");
        }
        continue;
      }
      tokens_.clear();
      tok_ = 0;
      lex_action();
      if (auto end = parse_action(out)) return end;
    }
    return std::nullopt;
  }

  void append_text(List& out, const std::string& text) {
    if (text.empty()) return;
    Node n;
    n.kind = Node::k_text;
    n.text = text;
    out.push_back(std::move(n));
  }

  void count_lines(std::string_view s) {
    line_ += static_cast<int>(std::count(s.begin(), s.end(), '\n'));
  }

  void trim_right() {
    while (pos_ < src_.size() && is_space(src_[pos_])) {
      if (src_[pos_] == '\n') ++line_;
      ++pos_;
    }
  }

  void lex_action() {
    bool spaced = true;
    while (true) {
      if (pos_ >= src_.size()) fail("unclosed action");
      const char c = src_[pos_];
      if (is_space(c)) {
        if (c == '\n') ++line_;
        // " -}}": a right trim marker.
        if (src_.substr(pos_ + 1, 3) == "-}}") {
          pos_ += 4;
          tokens_.push_back({Tok::right, "}}", true, line_});
          trim_right();
          return;
        }
        ++pos_;
        spaced = true;
        continue;
      }
      Token t{Tok::eof, "", spaced, line_};
      spaced = false;
      if (src_.substr(pos_, 2) == "}}") {
        pos_ += 2;
        t.kind = Tok::right;
        tokens_.push_back(t);
        return;
      }
      if (c == '|') {
        t.kind = Tok::pipe;
        ++pos_;
      } else if (c == '(') {
        t.kind = Tok::lparen;
        ++pos_;
      } else if (c == ')') {
        t.kind = Tok::rparen;
        ++pos_;
      } else if (c == ',') {
        t.kind = Tok::comma;
        ++pos_;
      } else if (src_.substr(pos_, 2) == ":=") {
        t.kind = Tok::declare;
        pos_ += 2;
      } else if (c == '=') {
        t.kind = Tok::assign;
        ++pos_;
      } else if (c == '$') {
        std::size_t e = pos_ + 1;
        while (e < src_.size() && is_alnum(src_[e]))
          ++e;
        t.kind = Tok::variable;
        t.text = std::string(src_.substr(pos_, e - pos_));
        pos_ = e;
      } else if (c == '.' &&
                 !(pos_ + 1 < src_.size() && src_[pos_ + 1] >= '0' && src_[pos_ + 1] <= '9')) {
        std::size_t e = pos_ + 1;
        while (e < src_.size() && is_alnum(src_[e]))
          ++e;
        if (e == pos_ + 1) {
          t.kind = Tok::dot;
        } else {
          t.kind = Tok::field;
          t.text = std::string(src_.substr(pos_ + 1, e - pos_ - 1));
        }
        pos_ = e;
      } else if (c == '"') {
        t.kind = Tok::string;
        t.text = lex_quoted();
      } else if (c == '`') {
        const auto close = src_.find('`', pos_ + 1);
        if (close == std::string_view::npos) fail("unterminated raw quoted string");
        t.kind = Tok::string;
        t.text = std::string(src_.substr(pos_ + 1, close - pos_ - 1));
        count_lines(t.text);
        pos_ = close + 1;
      } else if (c == '\'') {
        // A character constant is an int.
        std::size_t e = pos_ + 1;
        if (e < src_.size() && src_[e] == '\\') ++e;
        ++e;
        if (e >= src_.size() || src_[e] != '\'') fail("unterminated character constant");
        t.kind = Tok::number;
        t.text = std::to_string(static_cast<unsigned char>(src_[e - 1]));
        pos_ = e + 1;
      } else if ((c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.') {
        std::size_t e = pos_ + 1;
        while (e < src_.size() &&
               (is_alnum(src_[e]) || src_[e] == '.' ||
                ((src_[e] == '+' || src_[e] == '-') && (src_[e - 1] == 'e' || src_[e - 1] == 'E'))))
          ++e;
        t.kind = Tok::number;
        t.text = std::string(src_.substr(pos_, e - pos_));
        pos_ = e;
      } else if (is_alnum(c)) {
        std::size_t e = pos_;
        while (e < src_.size() && is_alnum(src_[e]))
          ++e;
        t.kind = Tok::ident;
        t.text = std::string(src_.substr(pos_, e - pos_));
        pos_ = e;
      } else {
        fail(std::string("unexpected ") + go_quote(std::string(1, c)) + " in command");
      }
      tokens_.push_back(std::move(t));
    }
  }

  std::string lex_quoted() {
    std::string out;
    std::size_t i = pos_ + 1;
    while (true) {
      if (i >= src_.size() || src_[i] == '\n') fail("unterminated quoted string");
      const char c = src_[i];
      if (c == '"') break;
      if (c != '\\') {
        out += c;
        ++i;
        continue;
      }
      if (i + 1 >= src_.size()) fail("unterminated quoted string");
      const char e = src_[i + 1];
      i += 2;
      switch (e) {
        case 'n':
          out += '\n';
          break;
        case 't':
          out += '\t';
          break;
        case 'r':
          out += '\r';
          break;
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'v':
          out += '\v';
          break;
        case '\\':
          out += '\\';
          break;
        case '"':
          out += '"';
          break;
        case '\'':
          fail("invalid syntax");
        case 'x': {
          if (i + 2 > src_.size()) fail("invalid syntax");
          unsigned v = 0;
          const auto r = std::from_chars(src_.data() + i, src_.data() + i + 2, v, 16);
          if (r.ptr != src_.data() + i + 2) fail("invalid syntax");
          out += static_cast<char>(v);
          i += 2;
          break;
        }
        case 'u':
        case 'U': {
          const std::size_t n = e == 'u' ? 4 : 8;
          if (i + n > src_.size()) fail("invalid syntax");
          unsigned v = 0;
          const auto r = std::from_chars(src_.data() + i, src_.data() + i + n, v, 16);
          if (r.ptr != src_.data() + i + n || v > 0x10FFFF) fail("invalid syntax");
          i += n;
          if (v < 0x80) {
            out += static_cast<char>(v);
          } else if (v < 0x800) {
            out += static_cast<char>(0xC0 | (v >> 6));
            out += static_cast<char>(0x80 | (v & 0x3F));
          } else if (v < 0x10000) {
            out += static_cast<char>(0xE0 | (v >> 12));
            out += static_cast<char>(0x80 | ((v >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (v & 0x3F));
          } else {
            out += static_cast<char>(0xF0 | (v >> 18));
            out += static_cast<char>(0x80 | ((v >> 12) & 0x3F));
            out += static_cast<char>(0x80 | ((v >> 6) & 0x3F));
            out += static_cast<char>(0x80 | (v & 0x3F));
          }
          break;
        }
        default:
          if (e >= '0' && e <= '7') {
            if (i + 2 > src_.size()) fail("invalid syntax");
            unsigned v = 0;
            const auto r = std::from_chars(src_.data() + i - 1, src_.data() + i + 2, v, 8);
            if (r.ptr != src_.data() + i + 2 || v > 255) fail("invalid syntax");
            out += static_cast<char>(v);
            i += 2;
            break;
          }
          fail("invalid syntax");
      }
    }
    pos_ = i + 1;
    return out;
  }

  const Token& peek() const { return tokens_[tok_]; }
  Token next() { return tokens_[tok_ < tokens_.size() - 1 ? tok_++ : tok_]; }

  // One {{ ... }} whose tokens are in tokens_; returns "else"/"end" when it
  // closes the list being parsed.
  std::optional<std::string> parse_action(List& out) {
    const Token& first = peek();
    if (first.kind == Tok::ident) {
      const std::string& kw = first.text;
      if (kw == "end") {
        next();
        expect_right("end");
        return "end";
      }
      if (kw == "else") {
        next();
        if (peek().kind == Tok::ident && peek().text == "if") {
          // "else if": leave "if ..." for the caller to parse as a nested if.
          return "else if";
        }
        expect_right("else");
        return "else";
      }
      if (kw == "if" || kw == "with" || kw == "range") {
        next();
        parse_control(out, kw);
        return std::nullopt;
      }
      if (kw == "template") {
        // {{template "name" [pipeline]}}: parses; executing it fails, as no
        // template defines other templates here (Go: "no such template").
        next();
        const Token name = next();
        if (name.kind != Tok::string) fail("unexpected " + describe(name) + " in template clause");
        Node n;
        n.kind = Node::k_template;
        n.text = name.text;
        n.pipe.line = name.line;
        if (peek().kind != Tok::right) n.pipe = parse_pipeline("template clause", false);
        expect_right("template clause");
        out.push_back(std::move(n));
        return std::nullopt;
      }
      if (kw == "define" || kw == "block" || kw == "break" || kw == "continue") {
        fail("{{" + kw + "}} is not supported");
      }
    }
    Node n;
    n.kind = Node::k_action;
    n.pipe = parse_pipeline("command", false);
    expect_right("command");
    out.push_back(std::move(n));
    return std::nullopt;
  }

  void expect_right(const std::string& context) {
    const Token t = next();
    if (t.kind != Tok::right) fail("unexpected " + describe(t) + " in " + context);
  }

  static std::string describe(const Token& t) {
    switch (t.kind) {
      case Tok::right:
        return "\"}}\"";
      case Tok::eof:
        return "EOF";
      case Tok::rparen:
        return "\")\"";
      case Tok::pipe:
        return "\"|\"";
      default:
        return "<" + t.text + ">";
    }
  }

  void parse_control(List& out, const std::string& kw) {
    const std::size_t scope = vars_.size();
    Node n;
    n.kind = kw == "if" ? Node::k_if : kw == "with" ? Node::k_with : Node::k_range;
    n.pipe = parse_pipeline(kw, kw == "range");
    expect_right(kw);
    n.then = std::make_shared<List>();
    n.otherwise = std::make_shared<List>();
    auto end = parse_list(*n.then);
    if (!end) fail("unexpected EOF");
    if (*end == "else if") {
      if (kw == "range") fail("unexpected {{else if}} in range");
      vars_.resize(scope);
      next();  // "if"
      parse_control(*n.otherwise, "if");
    } else if (*end == "else") {
      vars_.resize(scope);
      const std::size_t scope2 = vars_.size();
      end = parse_list(*n.otherwise);
      if (!end || *end != "end")
        fail(end ? "expected end; found {{" + *end + "}}" : "unexpected EOF");
      vars_.resize(scope2);
    }
    vars_.resize(scope);
    out.push_back(std::move(n));
  }

  Pipeline parse_pipeline(const std::string& context, bool range) {
    Pipeline p;
    p.line = peek().line;
    // Declarations: $x := / $x = / (range) $k, $v :=
    if (peek().kind == Tok::variable) {
      const std::size_t save = tok_;
      std::vector<std::string> names{next().text};
      if (range && peek().kind == Tok::comma) {
        next();
        if (peek().kind != Tok::variable) fail("range can only initialize variables");
        names.push_back(next().text);
      }
      if (peek().kind == Tok::declare || peek().kind == Tok::assign) {
        p.assign = next().kind == Tok::assign;
        if (p.assign) {
          for (const auto& v : names)
            check_var(v);
        }
        p.decl = names;
      } else {
        tok_ = save;
      }
    }
    while (true) {
      Command c = parse_command();
      if (c.args.empty()) fail("missing value for " + context);
      if (!p.cmds.empty() && (c.args[0].kind == Operand::literal ||
                              c.args[0].kind == Operand::nil || c.args[0].kind == Operand::dot))
        fail("non executable command in pipeline stage " + std::to_string(p.cmds.size() + 1));
      p.cmds.push_back(std::move(c));
      if (peek().kind != Tok::pipe) break;
      next();
    }
    if (!p.assign) {
      for (const auto& v : p.decl)
        vars_.push_back(v);
    }
    return p;
  }

  void check_var(const std::string& v) const {
    if (std::find(vars_.begin(), vars_.end(), v) == vars_.end())
      fail("undefined variable " + go_quote(v));
  }

  Command parse_command() {
    Command c;
    while (true) {
      const Token& t = peek();
      if (t.kind == Tok::right || t.kind == Tok::pipe || t.kind == Tok::rparen ||
          t.kind == Tok::eof)
        break;
      if (!c.args.empty() && !t.spaced && t.kind != Tok::lparen) fail("missing space?");
      c.args.push_back(parse_operand());
    }
    return c;
  }

  Operand parse_operand() {
    Token t = next();
    Operand o;
    switch (t.kind) {
      case Tok::variable:
        check_var(t.text);
        o.kind = Operand::variable;
        o.name = t.text;
        break;
      case Tok::dot:
        o.kind = Operand::dot;
        break;
      case Tok::field:
        o.kind = Operand::field;
        o.fields.push_back(t.text);
        break;
      case Tok::string:
        o.value = t.text;
        break;
      case Tok::number:
        o.value = parse_number(t.text);
        break;
      case Tok::ident:
        if (t.text == "true" || t.text == "false") {
          o.value = t.text == "true";
        } else if (t.text == "nil") {
          o.kind = Operand::nil;
        } else if (known_functions().contains(t.text)) {
          o.kind = Operand::function;
          o.name = t.text;
        } else if (t.text == "if" || t.text == "else" || t.text == "end" || t.text == "range" ||
                   t.text == "with" || t.text == "define" || t.text == "template" ||
                   t.text == "block") {
          fail("unexpected <" + t.text + "> in command");
        } else {
          fail("function " + go_quote(t.text) + " not defined");
        }
        break;
      case Tok::lparen: {
        o.kind = Operand::sub;
        o.pipe = std::make_shared<Pipeline>(parse_pipeline("parenthesized pipeline", false));
        if (next().kind != Tok::rparen) fail("unclosed left paren");
        break;
      }
      default:
        fail("unexpected " + describe(t) + " in operand");
    }
    // A field chain right after the term.
    while (peek().kind == Tok::field && !peek().spaced) {
      if (o.kind == Operand::function || o.kind == Operand::nil || (o.kind == Operand::literal))
        fail("unexpected . after term");
      o.fields.push_back(next().text);
    }
    return o;
  }

  GoArg parse_number(const std::string& text) {
    std::string s = text;
    bool neg = false;
    std::size_t start = 0;
    if (!s.empty() && (s[0] == '+' || s[0] == '-')) {
      neg = s[0] == '-';
      start = 1;
    }
    std::string body = s.substr(start);
    std::erase(body, '_');
    if (body.empty()) fail("bad number syntax: " + go_quote(text));
    const bool is_float = body.find_first_of(".eEpP") != std::string::npos &&
                          !(body.size() > 1 && (body[1] == 'x' || body[1] == 'X') &&
                            body.find_first_of("pP") == std::string::npos);
    if (!is_float) {
      int base = 10;
      std::string digits = body;
      if (digits.size() > 1 && digits[0] == '0') {
        const char b = static_cast<char>(digits[1] | 0x20);
        if (b == 'x') {
          base = 16;
          digits = digits.substr(2);
        } else if (b == 'b') {
          base = 2;
          digits = digits.substr(2);
        } else if (b == 'o') {
          base = 8;
          digits = digits.substr(2);
        } else {
          base = 8;
          digits = digits.substr(1);
        }
      }
      std::int64_t v = 0;
      const auto r = std::from_chars(digits.data(), digits.data() + digits.size(), v, base);
      if (r.ec == std::errc() && r.ptr == digits.data() + digits.size() && !digits.empty())
        return neg ? -v : v;
      if (r.ec == std::errc::result_out_of_range) {
        // Too big for int: Go keeps it as a float.
        return (neg ? -1.0 : 1.0) * std::stod(body);
      }
      fail("bad number syntax: " + go_quote(text));
    }
    double v = 0;
    const auto r = std::from_chars(body.data(), body.data() + body.size(), v);
    if (r.ec != std::errc() || r.ptr != body.data() + body.size())
      fail("bad number syntax: " + go_quote(text));
    return neg ? -v : v;
  }

  std::string_view src_;
  std::string name_;
  std::size_t pos_ = 0;
  int line_ = 1;
  std::vector<Token> tokens_;
  std::size_t tok_ = 0;
  std::vector<std::string> vars_;
};

// --- execution ------------------------------------------------------------------

// A value during execution: a Go value or the root data.
struct Val {
  GoArg v;
  const TemplateData* data = nullptr;
  bool missing = false;  // no value (printed "<no value>")
};

class Exec {
 public:
  Exec(const Template::Tree& tree, const TemplateData& data) : tree_(tree), data_(data) {
    vars_ = {{"$", Val{GoNil{}, &data_}},
             {"$labels", Val{data_.labels}},
             {"$externalLabels", Val{data_.external_labels}},
             {"$externalURL", Val{data_.external_url}},
             {"$value", Val{data_.value}}};
  }

  std::string run() {
    std::string out;
    walk(tree_.root, Val{GoNil{}, &data_}, out);
    return out;
  }

 private:
  [[noreturn]] void fail(int line, const std::string& what) const {
    throw TemplateError("template: " + tree_.name + ":" + std::to_string(line) + ": executing \"" +
                        tree_.name + "\": " + what);
  }

  void walk(const List& list, const Val& dot, std::string& out) {
    for (const Node& n : list) {
      switch (n.kind) {
        case Node::k_text:
          out += n.text;
          break;
        case Node::k_template:
          fail(n.pipe.line, "template: no such template " + go_quote(n.text));
        case Node::k_action: {
          Val v = pipeline(n.pipe, dot);
          if (n.pipe.decl.empty()) out += print(v);
          break;
        }
        case Node::k_if:
        case Node::k_with: {
          const std::size_t scope = vars_.size();
          Val v = pipeline(n.pipe, dot);
          if (truth(v)) {
            walk(*n.then, n.kind == Node::k_with ? v : dot, out);
          } else {
            vars_.resize(scope);
            walk(*n.otherwise, dot, out);
          }
          vars_.resize(scope);
          break;
        }
        case Node::k_range: {
          const std::size_t scope = vars_.size();
          Pipeline p = n.pipe;
          const auto names = p.decl;
          p.decl.clear();
          Val v = pipeline(p, dot);
          const auto* m = std::get_if<GoMap>(&v.v);
          if (m == nullptr && !std::holds_alternative<GoNil>(v.v))
            fail(p.line, "range can't iterate over " + go_print(v.v));
          if (m == nullptr || m->empty()) {
            walk(*n.otherwise, dot, out);
          } else {
            for (const auto& [k, val] : *m) {
              vars_.resize(scope);
              if (names.size() == 1) vars_.emplace_back(names[0], Val{val});
              if (names.size() == 2) {
                vars_.emplace_back(names[0], Val{k});
                vars_.emplace_back(names[1], Val{val});
              }
              walk(*n.then, Val{val}, out);
            }
          }
          vars_.resize(scope);
          break;
        }
      }
    }
  }

  static bool truth(const Val& v) {
    if (v.data != nullptr) return true;
    if (v.missing) return false;
    return std::visit(
        [](const auto& x) -> bool {
          using T = std::decay_t<decltype(x)>;
          if constexpr (std::is_same_v<T, GoNil>) {
            return false;
          } else if constexpr (std::is_same_v<T, bool>) {
            return x;
          } else if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, double>) {
            return x != 0;
          } else {
            return !x.empty();
          }
        },
        v.v);
  }

  std::string print(const Val& v) const {
    if (v.missing) return "<no value>";
    if (v.data != nullptr) {
      return "{" + go_print(v.data->labels) + " " + go_print(v.data->external_labels) + " " +
             v.data->external_url + " " + go_format_float(v.data->value, 'g', -1) + "}";
    }
    if (std::holds_alternative<GoNil>(v.v)) return "<no value>";
    return go_print(v.v);
  }

  Val pipeline(const Pipeline& p, const Val& dot) {
    std::optional<Val> piped;
    for (const Command& c : p.cmds) {
      piped = command(c, dot, piped, p.line);
    }
    Val result = piped ? *piped : Val{};
    if (!p.decl.empty()) {
      if (p.assign) {
        for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
          if (it->first == p.decl[0]) {
            it->second = result;
            break;
          }
        }
      } else {
        vars_.emplace_back(p.decl[0], result);
      }
    }
    return result;
  }

  Val field(Val v, const std::string& name, int line) const {
    if (v.data != nullptr) {
      if (name == "Labels") return Val{v.data->labels};
      if (name == "ExternalLabels") return Val{v.data->external_labels};
      if (name == "ExternalURL") return Val{v.data->external_url};
      if (name == "Value") return Val{v.data->value};
      fail(line, "can't evaluate field " + name + " in type *template.tmplData");
    }
    if (const auto* m = std::get_if<GoMap>(&v.v)) {
      const auto it = m->find(name);
      return Val{it == m->end() ? std::string() : it->second};
    }
    if (std::holds_alternative<GoNil>(v.v) || v.missing)
      fail(line, "nil pointer evaluating interface {}." + name);
    fail(line, "can't evaluate field " + name + " in type " + std::string(go_type_name(v.v)));
  }

  Val operand(const Operand& o, const Val& dot, int line) {
    Val v;
    switch (o.kind) {
      case Operand::variable: {
        for (auto it = vars_.rbegin(); it != vars_.rend(); ++it) {
          if (it->first == o.name) {
            v = it->second;
            break;
          }
        }
        break;
      }
      case Operand::dot:
      case Operand::field:
        v = dot;
        break;
      case Operand::literal:
        v = Val{o.value};
        break;
      case Operand::nil:
        fail(line, "nil is not a command");
      case Operand::sub:
        v = pipeline(*o.pipe, dot);
        break;
      case Operand::function:
        v = call(o.name, {}, line);
        break;
    }
    for (const auto& f : o.fields)
      v = field(v, f, line);
    return v;
  }

  Val command(const Command& c, const Val& dot, const std::optional<Val>& piped, int line) {
    const Operand& head = c.args[0];
    if (head.kind == Operand::function) {
      std::vector<Val> args;
      for (std::size_t i = 1; i < c.args.size(); ++i)
        args.push_back(operand(c.args[i], dot, line));
      if (piped) args.push_back(*piped);
      Val r = call(head.name, args, line);
      for (const auto& f : head.fields)
        r = field(r, f, line);
      return r;
    }
    if (c.args.size() > 1 || piped) {
      fail(line, "can't give argument to non-function " + describe(head));
    }
    return operand(head, dot, line);
  }

  static std::string describe(const Operand& o) {
    switch (o.kind) {
      case Operand::variable:
        return o.name;
      case Operand::dot:
        return ".";
      default:
        return "value";
    }
  }

  double to_float(const Val& v, int line) const {
    if (const auto* d = std::get_if<double>(&v.v)) return *d;
    if (const auto* i = std::get_if<std::int64_t>(&v.v)) return static_cast<double>(*i);
    if (const auto* s = std::get_if<std::string>(&v.v)) {
      // strconv.ParseFloat: decimal, hex, Inf/NaN spellings, underscores not allowed.
      std::string t = *s;
      std::string lower = t;
      std::transform(lower.begin(), lower.end(), lower.begin(),
                     [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
      for (const auto& [name, value] :
           std::array<std::pair<const char*, double>, 7>{{{"inf", INFINITY},
                                                          {"+inf", INFINITY},
                                                          {"-inf", -INFINITY},
                                                          {"infinity", INFINITY},
                                                          {"+infinity", INFINITY},
                                                          {"-infinity", -INFINITY},
                                                          {"nan", NAN}}}) {
        if (lower == name) return value;
      }
      double d = 0;
      const char* b = t.data();
      if (!t.empty() && t[0] == '+') ++b;
      const auto r = std::from_chars(b, t.data() + t.size(), d);
      if (r.ec == std::errc() && r.ptr == t.data() + t.size() && !t.empty()) return d;
      fail(line, "error calling function: strconv.ParseFloat: parsing " + go_quote(t) +
                     ": invalid syntax");
    }
    fail(line,
         "error calling function: can't convert " + std::string(go_type_name(v.v)) + " to float");
  }

  static GoArg plain(const Val& v) {
    if (v.data != nullptr || v.missing) return GoNil{};
    return v.v;
  }

  void arity(const std::string& name, const std::vector<Val>& args, std::size_t n, int line) const {
    if (args.size() != n)
      fail(line, "wrong number of args for " + name + ": want " + std::to_string(n) + " got " +
                     std::to_string(args.size()));
  }

  int compare(const Val& a, const Val& b, int line) const {
    const GoArg x = plain(a), y = plain(b);
    if (x.index() != y.index())
      fail(line, "error calling function: incompatible types for comparison");
    if (const auto* s = std::get_if<std::string>(&x)) {
      const auto& t = std::get<std::string>(y);
      return *s < t ? -1 : *s == t ? 0 : 1;
    }
    if (const auto* d = std::get_if<double>(&x)) {
      const double e = std::get<double>(y);
      return *d < e ? -1 : *d == e ? 0 : 1;
    }
    if (const auto* i = std::get_if<std::int64_t>(&x)) {
      const auto j = std::get<std::int64_t>(y);
      return *i < j ? -1 : *i == j ? 0 : 1;
    }
    if (const auto* bl = std::get_if<bool>(&x)) return *bl == std::get<bool>(y) ? 0 : 2;
    fail(line, "error calling function: invalid type for comparison");
  }

  Val call(const std::string& name, const std::vector<Val>& args, int line) {
    const auto one = [&](std::string (*f)(double)) {
      arity(name, args, 1, line);
      return Val{f(to_float(args[0], line))};
    };
    if (name == "humanize") return one(humanize);
    if (name == "humanize1024") return one(humanize1024);
    if (name == "humanizeDuration") return one(humanize_duration);
    if (name == "humanizePercentage") return one(humanize_percentage);
    if (name == "humanizeTimestamp") {
      arity(name, args, 1, line);
      const double v = to_float(args[0], line);
      if (std::isnan(v) || std::isinf(v)) return Val{go_format_float(v, 'g', 4)};
      // Prometheus's floatToTime: nanoseconds in an int64, then model.Time
      // (milliseconds, truncated).
      const double ns = v * 1e9;
      if (ns >= 9.2233720368547758e18 || ns < -9.2233720368547758e18)
        fail(line,
             "error calling humanizeTimestamp: " + go_format_float(v, 'g', -1) +
                 " cannot be represented as a nanoseconds timestamp since it overflows int64");
      return Val{format_unix_ms(static_cast<std::int64_t>(ns) / 1'000'000)};
    }
    if (name == "printf" || name == "print" || name == "println") {
      std::vector<GoArg> plain_args;
      for (const auto& a : args)
        plain_args.push_back(plain(a));
      if (name == "printf") {
        if (plain_args.empty())
          fail(line, "wrong number of args for printf: want at least 1 got 0");
        const auto* f = std::get_if<std::string>(&plain_args[0]);
        if (f == nullptr)
          fail(line, "wrong type for value; expected string; got " +
                         std::string(go_type_name(plain_args[0])));
        return Val{go_sprintf(*f, std::span(plain_args).subspan(1))};
      }
      std::string out;
      for (std::size_t i = 0; i < plain_args.size(); ++i) {
        const bool is_str = std::holds_alternative<std::string>(plain_args[i]);
        if (i > 0 && (name == "println" ||
                      (!is_str && !std::holds_alternative<std::string>(plain_args[i - 1]))))
          out += ' ';
        out += go_print(plain_args[i]);
      }
      if (name == "println") out += '\n';
      return Val{out};
    }
    if (name == "toUpper" || name == "toLower" || name == "title" || name == "stripPort") {
      arity(name, args, 1, line);
      const auto* s = std::get_if<std::string>(&args[0].v);
      if (s == nullptr)
        fail(line,
             "wrong type for value; expected string; got " + std::string(go_type_name(args[0].v)));
      std::string r = *s;
      if (name == "toUpper") {
        for (char& c : r)
          if (c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
      } else if (name == "toLower") {
        for (char& c : r)
          if (c >= 'A' && c <= 'Z') c = static_cast<char>(c + 32);
      } else if (name == "title") {
        bool start = true;
        for (char& c : r) {
          if (start && c >= 'a' && c <= 'z') c = static_cast<char>(c - 32);
          start = !is_alnum(c) && c != '\'';
        }
      } else {
        // net.SplitHostPort: "host:port" or "[v6]:port"; otherwise unchanged.
        if (!r.empty() && r[0] == '[') {
          const auto close = r.find("]:");
          if (close != std::string::npos) r = r.substr(1, close - 1);
        } else {
          const auto colon = r.rfind(':');
          if (colon != std::string::npos && r.find(':') == colon) r = r.substr(0, colon);
        }
      }
      return Val{r};
    }
    if (name == "eq" || name == "ne") {
      if (args.size() < 2) fail(line, "wrong number of args for " + name);
      bool eq = false;
      for (std::size_t i = 1; i < args.size(); ++i)
        eq = eq || compare(args[0], args[i], line) == 0;
      if (name == "ne" && args.size() != 2) fail(line, "wrong number of args for ne: want 2");
      return Val{name == "eq" ? eq : !eq};
    }
    if (name == "lt" || name == "le" || name == "gt" || name == "ge") {
      arity(name, args, 2, line);
      const int c = compare(args[0], args[1], line);
      if (c == 2) fail(line, "error calling " + name + ": invalid type for comparison");
      const bool r = name == "lt" ? c < 0 : name == "le" ? c <= 0 : name == "gt" ? c > 0 : c >= 0;
      return Val{r};
    }
    if (name == "and" || name == "or") {
      if (args.empty()) fail(line, "wrong number of args for " + name);
      for (std::size_t i = 0; i + 1 < args.size(); ++i) {
        if (truth(args[i]) == (name == "or")) return args[i];
      }
      return args.back();
    }
    if (name == "not") {
      arity(name, args, 1, line);
      return Val{!truth(args[0])};
    }
    if (name == "len") {
      arity(name, args, 1, line);
      if (const auto* s = std::get_if<std::string>(&args[0].v))
        return Val{static_cast<std::int64_t>(s->size())};
      if (const auto* m = std::get_if<GoMap>(&args[0].v))
        return Val{static_cast<std::int64_t>(m->size())};
      fail(line, "error calling len: len of type " + std::string(go_type_name(args[0].v)));
    }
    if (name == "index") {
      if (args.empty()) fail(line, "wrong number of args for index");
      Val v = args[0];
      for (std::size_t i = 1; i < args.size(); ++i) {
        const auto* m = std::get_if<GoMap>(&v.v);
        const auto* k = std::get_if<std::string>(&args[i].v);
        if (m == nullptr || k == nullptr) fail(line, "error calling index: cannot index");
        const auto it = m->find(*k);
        v = Val{it == m->end() ? std::string() : it->second};
      }
      return v;
    }
    if (name == "externalURL") {
      arity(name, args, 0, line);
      return Val{data_.external_url};
    }
    fail(line, "function " + go_quote(name) + " is not supported by this server");
  }

  // time.Unix(ms/1000, ms%1000*1e6).UTC().String():
  // "2006-01-02 15:04:05.999999999 +0000 UTC".
  static std::string format_unix_ms(std::int64_t ms) {
    std::int64_t secs = ms / 1000;
    std::int64_t frac = ms % 1000;
    if (frac < 0) {
      frac += 1000;
      --secs;
    }
    const auto s = static_cast<std::time_t>(secs);
    std::tm tm{};
    gmtime_r(&s, &tm);
    char buf[64];
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
    std::string out = buf;
    if (frac != 0) {
      char f[16];
      std::snprintf(f, sizeof f, ".%03lld", static_cast<long long>(frac));
      std::string fs = f;
      while (fs.back() == '0')
        fs.pop_back();
      out += fs;
    }
    return out + " +0000 UTC";
  }

  const Template::Tree& tree_;
  const TemplateData& data_;
  std::vector<std::pair<std::string, Val>> vars_;
};

}  // namespace

Template Template::parse(std::string_view text, std::string name) {
  auto tree = std::make_shared<Tree>();
  tree->name = name;
  Parser p(text, std::move(name));
  tree->root = p.parse_all();
  return Template(std::move(tree));
}

std::string Template::expand(const TemplateData& data) const {
  Exec e(*tree_, data);
  return e.run();
}

std::string Template::expand_or_error(const TemplateData& data) const {
  try {
    return expand(data);
  } catch (const TemplateError& e) {
    return std::string("<error expanding template: ") + e.what() + ">";
  }
}

}  // namespace metrics::rules
