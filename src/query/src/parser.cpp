// The PromQL lexer and a recursive-descent parser with Prometheus's
// precedence (or < and/unless < comparisons < + - < * / % < ^, right-
// associative; unary minus binds like *), type checks and error messages.
#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <string>

#include "metrics/query/ast.hpp"
#include "metrics/query/error.hpp"
#include "metrics/query/value.hpp"

namespace metrics::query {
namespace {

enum class Tok {
  eof,
  ident,
  number,
  duration,
  string,
  lbrace,
  rbrace,
  lparen,
  rparen,
  lbracket,
  rbracket,
  comma,
  colon,
  at,
  add,
  sub,
  mul,
  div,
  mod,
  pow,
  eqlc,
  neq,
  lss,
  lte,
  gtr,
  gte,
  assign,
  eql_regex,
  neq_regex
};

struct Token {
  Tok kind = Tok::eof;
  std::size_t pos = 0;
  std::string text;  // source text (strings: the unquoted value)
  double number = 0;
};

[[noreturn]] void fail(std::string_view query, std::size_t pos, const std::string& msg) {
  std::size_t line = 1;
  std::size_t last_break = std::string_view::npos;
  for (std::size_t i = 0; i < pos && i < query.size(); ++i) {
    if (query[i] == '\n') {
      ++line;
      last_break = i;
    }
  }
  std::size_t col = last_break == std::string_view::npos ? pos + 1 : pos - last_break;
  throw QueryError(ErrorType::bad_data,
                   std::to_string(line) + ":" + std::to_string(col) + ": parse error: " + msg, pos);
}

bool is_alpha(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_';
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_alnum(char c) {
  return is_alpha(c) || is_digit(c);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

// Go's strconv.ParseInt(s, 0, 64) (prefixes 0x, 0o, 0b and a leading 0 for
// octal), then ParseFloat: PromQL's parseNumber.
bool parse_number(const std::string& s, double& out) {
  if (!s.empty() && s.find_first_of(".eEpP") == std::string::npos) {
    int base = 10;
    std::size_t start = 0;
    if (s.size() > 1 && s[0] == '0') {
      char p = static_cast<char>(s[1] | 0x20);
      if (p == 'x') {
        base = 16;
        start = 2;
      } else if (p == 'o') {
        base = 8;
        start = 2;
      } else if (p == 'b') {
        base = 2;
        start = 2;
      } else {
        base = 8;
        start = 1;
      }
    }
    std::string digits = s.substr(start);
    if (!digits.empty()) {
      errno = 0;
      char* end = nullptr;
      long long v = std::strtoll(digits.c_str(), &end, base);
      if (errno == 0 && end == digits.c_str() + digits.size()) {
        out = static_cast<double>(v);
        return true;
      }
    }
  }
  if (s.size() > 1 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X')) {
    // Go accepts hex floats only with a 'p' exponent, which the lexer never passes.
    return false;
  }
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(s.c_str(), &end);
  if (end != s.c_str() + s.size() || s.empty()) return false;
  if (errno == ERANGE && std::isinf(v)) return false;  // Go: "value out of range"
  out = v;
  return true;
}

// model.ParseDuration: [0-9]+ followed by ms|s|m|h|d|w|y, units descending, no repeats.
bool parse_duration(std::string_view s, std::int64_t& ms) {
  static constexpr std::pair<std::string_view, std::int64_t> units[] = {
      {"y", 365LL * 24 * 3600 * 1000},
      {"w", 7LL * 24 * 3600 * 1000},
      {"d", 24LL * 3600 * 1000},
      {"h", 3600LL * 1000},
      {"m", 60LL * 1000},
      {"s", 1000},
      {"ms", 1}};
  std::size_t i = 0;
  std::size_t next_unit = 0;
  std::int64_t total = 0;
  if (s.empty()) return false;
  while (i < s.size()) {
    std::size_t start = i;
    while (i < s.size() && is_digit(s[i]))
      ++i;
    if (i == start) return false;
    std::string_view digits = s.substr(start, i - start);
    std::size_t ustart = i;
    while (i < s.size() && !is_digit(s[i]))
      ++i;
    std::string_view unit = s.substr(ustart, i - ustart);
    std::size_t u = next_unit;
    while (u < std::size(units) && units[u].first != unit)
      ++u;
    if (u == std::size(units)) return false;
    next_unit = u + 1;
    std::int64_t n = 0;
    for (char c : digits) {
      if (n > std::numeric_limits<std::int64_t>::max() / 10) return false;
      n = n * 10 + (c - '0');
    }
    if (n > std::numeric_limits<std::int64_t>::max() / units[u].second) return false;
    total += n * units[u].second;
    // Go's time.Duration (nanoseconds) ends at about 292 years; bounding it
    // here also keeps time arithmetic far from int64 overflow.
    if (total > std::numeric_limits<std::int64_t>::max() / 1'000'000) return false;
  }
  ms = total;
  return true;
}

class Lexer {
 public:
  explicit Lexer(std::string_view q) : q_(q) {}

  Token next() {
    skip_space();
    Token t;
    t.pos = pos_;
    if (pos_ >= q_.size()) return t;
    char c = q_[pos_];
    auto single = [&](Tok k, std::size_t n = 1) {
      t.kind = k;
      t.text = std::string(q_.substr(pos_, n));
      pos_ += n;
      return t;
    };
    auto peek = [&](std::size_t off) { return pos_ + off < q_.size() ? q_[pos_ + off] : '\0'; };
    switch (c) {
      case '{':
        return single(Tok::lbrace);
      case '}':
        return single(Tok::rbrace);
      case '(':
        return single(Tok::lparen);
      case ')':
        return single(Tok::rparen);
      case '[':
        return single(Tok::lbracket);
      case ']':
        return single(Tok::rbracket);
      case ',':
        return single(Tok::comma);
      case ':':
        return single(Tok::colon);
      case '@':
        return single(Tok::at);
      case '+':
        return single(Tok::add);
      case '-':
        return single(Tok::sub);
      case '*':
        return single(Tok::mul);
      case '/':
        return single(Tok::div);
      case '%':
        return single(Tok::mod);
      case '^':
        return single(Tok::pow);
      case '=':
        if (peek(1) == '=') return single(Tok::eqlc, 2);
        if (peek(1) == '~') return single(Tok::eql_regex, 2);
        return single(Tok::assign);
      case '!':
        if (peek(1) == '=') return single(Tok::neq, 2);
        if (peek(1) == '~') return single(Tok::neq_regex, 2);
        fail(q_, pos_, "unexpected character after '!': " + std::string(1, peek(1)));
      case '<':
        if (peek(1) == '=') return single(Tok::lte, 2);
        return single(Tok::lss);
      case '>':
        if (peek(1) == '=') return single(Tok::gte, 2);
        return single(Tok::gtr);
      case '"':
      case '\'':
      case '`':
        return lex_string(t);
      default:
        break;
    }
    if (is_digit(c) || (c == '.' && is_digit(peek(1)))) return lex_number(t);
    if (is_alpha(c)) {
      std::size_t start = pos_;
      while (pos_ < q_.size() && (is_alnum(q_[pos_]) || q_[pos_] == ':'))
        ++pos_;
      t.text = std::string(q_.substr(start, pos_ - start));
      std::string low = lower(t.text);
      if (low == "inf" || low == "nan") {
        t.kind = Tok::number;
        t.number = low == "inf" ? std::numeric_limits<double>::infinity()
                                : std::numeric_limits<double>::quiet_NaN();
        return t;
      }
      t.kind = Tok::ident;
      return t;
    }
    fail(q_, pos_, "unexpected character: '" + std::string(1, c) + "'");
  }

 private:
  void skip_space() {
    while (pos_ < q_.size()) {
      char c = q_[pos_];
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        ++pos_;
      } else if (c == '#') {  // a comment runs to the end of the line
        while (pos_ < q_.size() && q_[pos_] != '\n')
          ++pos_;
      } else {
        break;
      }
    }
  }

  Token lex_number(Token& t) {
    std::size_t start = pos_;
    // Prometheus's scanNumber.
    std::string_view digits = "0123456789";
    auto accept = [&](std::string_view set) {
      if (pos_ < q_.size() && set.find(q_[pos_]) != std::string_view::npos) {
        ++pos_;
        return true;
      }
      return false;
    };
    auto accept_run = [&](std::string_view set) {
      while (accept(set)) {
      }
    };
    if (accept("0") && accept("xX")) digits = "0123456789abcdefABCDEF";
    accept_run(digits);
    if (accept(".")) accept_run(digits);
    if (accept("eE")) {
      accept("+-");
      accept_run("0123456789");
    }
    if (pos_ >= q_.size() || !is_alnum(q_[pos_])) {
      t.kind = Tok::number;
      t.text = std::string(q_.substr(start, pos_ - start));
      if (!parse_number(t.text, t.number)) {
        fail(q_, start, "error parsing number: invalid syntax: \"" + t.text + "\"");
      }
      return t;
    }
    // Not a number: a duration like 1h30m.
    pos_ = start;
    while (pos_ < q_.size() && is_alnum(q_[pos_]))
      ++pos_;
    t.text = std::string(q_.substr(start, pos_ - start));
    std::int64_t ms = 0;
    if (!parse_duration(t.text, ms)) {
      fail(q_, start, "bad number or duration syntax: \"" + t.text + "\"");
    }
    t.kind = Tok::duration;
    t.number = static_cast<double>(ms);
    return t;
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }

  // Go's unquoting rules (strconv.UnquoteChar) for "…" and '…'; `…` is raw.
  Token lex_string(Token& t) {
    char quote = q_[pos_];
    std::size_t start = pos_++;
    std::string out;
    while (true) {
      if (pos_ >= q_.size()) fail(q_, start, "unterminated quoted string");
      char c = q_[pos_];
      if (c == quote) {
        ++pos_;
        break;
      }
      if (quote != '`' && c == '\n') fail(q_, start, "unterminated quoted string");
      if (quote == '`' || c != '\\') {
        out += c;
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= q_.size()) fail(q_, start, "unterminated quoted string");
      char e = q_[pos_++];
      auto hexval = [&](int n) {
        std::uint32_t v = 0;
        for (int i = 0; i < n; ++i) {
          if (pos_ >= q_.size()) fail(q_, start, "unterminated quoted string");
          char h = q_[pos_++];
          int d = (h >= '0' && h <= '9')   ? h - '0'
                  : (h >= 'a' && h <= 'f') ? h - 'a' + 10
                  : (h >= 'A' && h <= 'F') ? h - 'A' + 10
                                           : -1;
          if (d < 0) fail(q_, start, "invalid syntax");
          v = v * 16 + static_cast<std::uint32_t>(d);
        }
        return v;
      };
      switch (e) {
        case 'a':
          out += '\a';
          break;
        case 'b':
          out += '\b';
          break;
        case 'f':
          out += '\f';
          break;
        case 'n':
          out += '\n';
          break;
        case 'r':
          out += '\r';
          break;
        case 't':
          out += '\t';
          break;
        case 'v':
          out += '\v';
          break;
        case '\\':
          out += '\\';
          break;
        case 'x':
          out += static_cast<char>(hexval(2));
          break;
        case 'u':
          append_utf8(out, hexval(4));
          break;
        case 'U': {
          std::uint32_t cp = hexval(8);
          if (cp > 0x10FFFF) fail(q_, start, "invalid syntax");
          append_utf8(out, cp);
          break;
        }
        case '0':
        case '1':
        case '2':
        case '3':
        case '4':
        case '5':
        case '6':
        case '7': {
          std::uint32_t v = static_cast<std::uint32_t>(e - '0');
          for (int i = 0; i < 2; ++i) {
            if (pos_ >= q_.size() || q_[pos_] < '0' || q_[pos_] > '7') {
              fail(q_, start, "invalid syntax");
            }
            v = v * 8 + static_cast<std::uint32_t>(q_[pos_++] - '0');
          }
          if (v > 255) fail(q_, start, "invalid syntax");
          out += static_cast<char>(v);
          break;
        }
        default:
          if (e == quote) {
            out += e;
            break;
          }
          fail(q_, pos_ - 2, "unknown escape sequence '\\" + std::string(1, e) + "'");
      }
    }
    t.kind = Tok::string;
    t.text = std::move(out);
    return t;
  }

  std::string_view q_;
  std::size_t pos_ = 0;
};

// Prometheus functions and aggregations outside the subset: named as not
// supported rather than unknown.
constexpr std::string_view kUnsupportedFunctions[] = {"acos",
                                                      "acosh",
                                                      "asin",
                                                      "asinh",
                                                      "atan",
                                                      "atanh",
                                                      "cos",
                                                      "cosh",
                                                      "day_of_month",
                                                      "day_of_week",
                                                      "day_of_year",
                                                      "days_in_month",
                                                      "deg",
                                                      "exp",
                                                      "histogram_count",
                                                      "histogram_fraction",
                                                      "histogram_quantile",
                                                      "histogram_sum",
                                                      "holt_winters",
                                                      "hour",
                                                      "ln",
                                                      "log10",
                                                      "log2",
                                                      "minute",
                                                      "month",
                                                      "pi",
                                                      "present_over_time",
                                                      "rad",
                                                      "sgn",
                                                      "sin",
                                                      "sinh",
                                                      "sqrt",
                                                      "stdvar_over_time",
                                                      "tan",
                                                      "tanh",
                                                      "year"};

const std::pair<std::string_view, AggregateOp> kAggregates[] = {
    {"sum", AggregateOp::sum},           {"avg", AggregateOp::avg},
    {"min", AggregateOp::min},           {"max", AggregateOp::max},
    {"count", AggregateOp::count},       {"stddev", AggregateOp::stddev},
    {"topk", AggregateOp::topk},         {"bottomk", AggregateOp::bottomk},
    {"quantile", AggregateOp::quantile}, {"count_values", AggregateOp::count_values},
    {"group", AggregateOp::group}};

constexpr std::string_view kKeywords[] = {
    "and",         "or",   "unless", "by",    "without", "on",    "ignoring", "group_left",
    "group_right", "bool", "offset", "atan2", "stdvar",  "start", "end"};

bool is_keyword(std::string_view low) {
  return std::find(std::begin(kKeywords), std::end(kKeywords), low) != std::end(kKeywords);
}

std::string describe(const Token& t) {
  switch (t.kind) {
    case Tok::eof:
      return "end of input";
    case Tok::ident: {
      std::string low = lower(t.text);
      if (is_keyword(low)) return low;
      return "identifier \"" + t.text + "\"";
    }
    case Tok::number:
      return "number \"" + t.text + "\"";
    case Tok::duration:
      return "duration \"" + t.text + "\"";
    case Tok::string:
      return "string";
    case Tok::lbrace:
      return "\"{\"";
    case Tok::rbrace:
      return "\"}\"";
    case Tok::lparen:
      return "\"(\"";
    case Tok::rparen:
      return "\")\"";
    case Tok::lbracket:
      return "\"[\"";
    case Tok::rbracket:
      return "\"]\"";
    case Tok::comma:
      return "\",\"";
    case Tok::colon:
      return "\":\"";
    case Tok::at:
      return "@";
    default:
      return "\"" + t.text + "\"";
  }
}

struct BinInfo {
  BinaryOp op;
  int prec;
};

class Parser {
 public:
  explicit Parser(std::string_view q) : q_(q), lex_(q) { advance(); }

  ExprPtr parse_all() {
    if (tok_.kind == Tok::eof) fail(q_, 0, "no expression found in input");
    ExprPtr e = parse_expr(1);
    if (tok_.kind != Tok::eof) fail(q_, tok_.pos, "unexpected " + describe(tok_));
    return e;
  }

 private:
  void advance() { tok_ = lex_.next(); }

  [[noreturn]] void unexpected(std::string_view context) {
    fail(q_, tok_.pos, "unexpected " + describe(tok_) + " in " + std::string(context));
  }

  void expect(Tok k, std::string_view context) {
    if (tok_.kind != k) unexpected(context);
    advance();
  }

  bool at_keyword(std::string_view kw) const {
    return tok_.kind == Tok::ident && lower(tok_.text) == kw;
  }

  std::optional<BinInfo> binary_op() const {
    switch (tok_.kind) {
      case Tok::add:
        return BinInfo{BinaryOp::add, 4};
      case Tok::sub:
        return BinInfo{BinaryOp::sub, 4};
      case Tok::mul:
        return BinInfo{BinaryOp::mul, 5};
      case Tok::div:
        return BinInfo{BinaryOp::div, 5};
      case Tok::mod:
        return BinInfo{BinaryOp::mod, 5};
      case Tok::pow:
        return BinInfo{BinaryOp::pow, 6};
      case Tok::eqlc:
        return BinInfo{BinaryOp::eq, 3};
      case Tok::neq:
        return BinInfo{BinaryOp::ne, 3};
      case Tok::gtr:
        return BinInfo{BinaryOp::gt, 3};
      case Tok::lss:
        return BinInfo{BinaryOp::lt, 3};
      case Tok::gte:
        return BinInfo{BinaryOp::ge, 3};
      case Tok::lte:
        return BinInfo{BinaryOp::le, 3};
      case Tok::ident: {
        std::string low = lower(tok_.text);
        if (low == "and") return BinInfo{BinaryOp::land, 2};
        if (low == "unless") return BinInfo{BinaryOp::lunless, 2};
        if (low == "or") return BinInfo{BinaryOp::lor, 1};
        if (low == "atan2") fail(q_, tok_.pos, "the operator \"atan2\" is not supported");
        return std::nullopt;
      }
      default:
        return std::nullopt;
    }
  }

  ExprPtr parse_expr(int min_prec) {
    // The client controls the nesting: bound it rather than the stack.
    if (++depth_ > kMaxDepth) fail(q_, tok_.pos, "expression nested too deeply");
    struct Leave {
      int& d;
      ~Leave() { --d; }
    } leave{depth_};
    ExprPtr lhs = parse_unary();
    while (true) {
      auto info = binary_op();
      if (!info || info->prec < min_prec) return lhs;
      std::size_t op_pos = tok_.pos;
      advance();
      auto bin = std::make_unique<Binary>(lhs->pos, info->op);
      bool has_matching_clause = false;
      if (at_keyword("bool")) {
        bin->return_bool = true;
        advance();
      }
      if (at_keyword("on") || at_keyword("ignoring")) {
        bin->matching.on = at_keyword("on");
        has_matching_clause = true;
        advance();
        bin->matching.labels = parse_label_list("grouping opts");
        if (at_keyword("group_left") || at_keyword("group_right")) {
          bin->matching.card =
              at_keyword("group_left") ? Cardinality::many_to_one : Cardinality::one_to_many;
          advance();
          if (tok_.kind == Tok::lparen) bin->matching.include = parse_label_list("grouping opts");
        }
      } else if (at_keyword("group_left") || at_keyword("group_right")) {
        unexpected("binary expression");
      }
      int next = info->op == BinaryOp::pow ? info->prec : info->prec + 1;
      bin->rhs = parse_expr(next);
      bin->lhs = std::move(lhs);
      check_binary(*bin, op_pos, has_matching_clause);
      lhs = std::move(bin);
    }
  }

  void check_binary(Binary& b, std::size_t op_pos, bool has_matching_clause) {
    ValueType lt = b.lhs->type();
    ValueType rt = b.rhs->type();
    if (b.return_bool && !is_comparison(b.op)) {
      fail(q_, op_pos, "bool modifier can only be used on comparison operators");
    }
    if (is_comparison(b.op) && !b.return_bool && lt == ValueType::scalar &&
        rt == ValueType::scalar) {
      fail(q_, op_pos, "comparisons between scalars must use BOOL modifier");
    }
    if (is_set_operator(b.op) && b.matching.card == Cardinality::one_to_one) {
      b.matching.card = Cardinality::many_to_many;
    }
    if (b.matching.on) {
      for (const auto& l1 : b.matching.labels) {
        for (const auto& l2 : b.matching.include) {
          if (l1 == l2) {
            fail(q_, op_pos, "label \"" + l1 + "\" must not occur in ON and GROUP clause at once");
          }
        }
      }
    }
    if (lt != ValueType::scalar && lt != ValueType::vector) {
      fail(q_, b.lhs->pos, "binary expression must contain only scalar and instant vector types");
    }
    if (rt != ValueType::scalar && rt != ValueType::vector) {
      fail(q_, b.rhs->pos, "binary expression must contain only scalar and instant vector types");
    }
    if (lt != ValueType::vector || rt != ValueType::vector) {
      if (has_matching_clause && !b.matching.labels.empty()) {
        fail(q_, b.pos, "vector matching only allowed between instant vectors");
      }
      b.matching = VectorMatching{};
    } else if (is_set_operator(b.op)) {
      if (b.matching.card == Cardinality::one_to_many ||
          b.matching.card == Cardinality::many_to_one) {
        fail(q_, b.pos, "no grouping allowed for \"" + op_name(b.op) + "\" operation");
      }
    }
    if ((lt == ValueType::scalar || rt == ValueType::scalar) && is_set_operator(b.op)) {
      fail(q_, b.pos,
           "set operator \"" + op_name(b.op) + "\" not allowed in binary scalar expression");
    }
  }

  static std::string op_name(BinaryOp op) {
    switch (op) {
      case BinaryOp::land:
        return "and";
      case BinaryOp::lor:
        return "or";
      case BinaryOp::lunless:
        return "unless";
      default:
        return "";
    }
  }

  ExprPtr parse_unary() {
    if (tok_.kind == Tok::sub || tok_.kind == Tok::add) {
      bool negate = tok_.kind == Tok::sub;
      std::size_t pos = tok_.pos;
      advance();
      ExprPtr operand = parse_expr(6);  // only ^ binds tighter
      ValueType t = operand->type();
      if (t != ValueType::scalar && t != ValueType::vector) {
        fail(q_, pos,
             "unary expression only allowed on expressions of type scalar or instant vector, got "
             "\"" +
                 std::string(value_type_name(t)) + "\"");
      }
      if (operand->kind == ExprKind::number) {
        auto& n = static_cast<NumberLiteral&>(*operand);
        if (negate) n.value = -n.value;
        n.pos = pos;
        return operand;
      }
      if (!negate) return operand;
      return std::make_unique<Unary>(pos, std::move(operand));
    }
    return parse_postfix(parse_primary());
  }

  std::int64_t parse_duration_token(std::string_view context) {
    if (tok_.kind != Tok::duration) unexpected(context);
    auto ms = static_cast<std::int64_t>(tok_.number);
    advance();
    return ms;
  }

  ExprPtr parse_postfix(ExprPtr e) {
    while (true) {
      if (tok_.kind == Tok::lbracket) {
        std::size_t pos = tok_.pos;
        advance();
        std::int64_t range = parse_duration_token("range or subquery");
        if (tok_.kind == Tok::colon) {
          advance();
          std::int64_t step = 0;
          if (tok_.kind == Tok::duration) step = parse_duration_token("subquery");
          expect(Tok::rbracket, "subquery selector");
          if (e->type() != ValueType::vector) {
            fail(q_, e->pos,
                 "subquery is only allowed on instant vector, got " +
                     std::string(value_type_name(e->type())) + " instead");
          }
          if (range == 0) fail(q_, pos, "range must be greater than 0");
          std::size_t start = e->pos;
          e = std::make_unique<Subquery>(start, std::move(e), range, step);
          continue;
        }
        expect(Tok::rbracket, "matrix selector");
        if (e->kind != ExprKind::vector_selector) {
          fail(q_, e->pos, "ranges only allowed for vector selectors");
        }
        auto* vs = static_cast<VectorSelector*>(e.get());
        if (vs->offset_set || vs->at.set()) {
          fail(q_, pos, "no offset or @ modifiers allowed before range");
        }
        if (range == 0) fail(q_, pos, "range must be greater than 0");
        std::size_t start = e->pos;
        std::unique_ptr<VectorSelector> owned(static_cast<VectorSelector*>(e.release()));
        e = std::make_unique<MatrixSelector>(start, std::move(owned), range);
        continue;
      }
      if (at_keyword("offset")) {
        std::size_t pos = tok_.pos;
        advance();
        bool neg = false;
        if (tok_.kind == Tok::sub) {
          neg = true;
          advance();
        }
        std::int64_t off = parse_duration_token("offset");
        if (neg) off = -off;
        auto [o, set] = offset_slot(*e, pos, "offset");
        if (*set) fail(q_, pos, "offset may not be set multiple times");
        *o = off;
        *set = true;
        continue;
      }
      if (tok_.kind == Tok::at) {
        std::size_t pos = tok_.pos;
        advance();
        AtModifier at;
        if (at_keyword("start") || at_keyword("end")) {
          at.kind = at_keyword("start") ? AtModifier::Kind::start : AtModifier::Kind::end;
          advance();
          expect(Tok::lparen, "@ modifier");
          expect(Tok::rparen, "@ modifier");
        } else {
          double sign = 1;
          if (tok_.kind == Tok::sub || tok_.kind == Tok::add) {
            if (tok_.kind == Tok::sub) sign = -1;
            advance();
          }
          if (tok_.kind != Tok::number) unexpected("@");
          double ts = sign * tok_.number;
          advance();
          if (std::isinf(ts) || std::isnan(ts) || ts >= 9.2e15 || ts <= -9.2e15) {
            fail(q_, pos, "timestamp out of bounds for @ modifier: " + std::to_string(ts));
          }
          at.kind = AtModifier::Kind::time;
          at.ms = static_cast<std::int64_t>(std::round(ts * 1000));
        }
        AtModifier* slot = at_slot(*e, pos);
        if (slot->set()) fail(q_, pos, "@ <timestamp> may not be set multiple times");
        *slot = at;
        continue;
      }
      return e;
    }
  }

  std::pair<std::int64_t*, bool*> offset_slot(Expr& e, std::size_t pos, std::string_view what) {
    switch (e.kind) {
      case ExprKind::vector_selector: {
        auto& v = static_cast<VectorSelector&>(e);
        return {&v.offset_ms, &v.offset_set};
      }
      case ExprKind::matrix_selector: {
        auto& v = *static_cast<MatrixSelector&>(e).vs;
        return {&v.offset_ms, &v.offset_set};
      }
      case ExprKind::subquery: {
        auto& s = static_cast<Subquery&>(e);
        return {&s.offset_ms, &s.offset_set};
      }
      default:
        fail(q_, pos,
             std::string(what) +
                 " modifier must be preceded by an instant vector selector or range vector "
                 "selector or a subquery");
    }
  }

  AtModifier* at_slot(Expr& e, std::size_t pos) {
    switch (e.kind) {
      case ExprKind::vector_selector:
        return &static_cast<VectorSelector&>(e).at;
      case ExprKind::matrix_selector:
        return &static_cast<MatrixSelector&>(e).vs->at;
      case ExprKind::subquery:
        return &static_cast<Subquery&>(e).at;
      default:
        fail(q_, pos,
             "@ modifier must be preceded by an instant vector selector or range vector selector "
             "or a subquery");
    }
  }

  ExprPtr parse_primary() {
    switch (tok_.kind) {
      case Tok::number: {
        auto n = std::make_unique<NumberLiteral>(tok_.pos, tok_.number);
        advance();
        return n;
      }
      case Tok::string: {
        auto s = std::make_unique<StringLiteral>(tok_.pos, tok_.text);
        advance();
        return s;
      }
      case Tok::lparen: {
        std::size_t pos = tok_.pos;
        advance();
        ExprPtr inner = parse_expr(1);
        expect(Tok::rparen, "paren expression");
        return std::make_unique<Paren>(pos, std::move(inner));
      }
      case Tok::lbrace: {
        auto vs = std::make_unique<VectorSelector>(tok_.pos);
        parse_matchers(*vs);
        finish_selector(*vs);
        return vs;
      }
      case Tok::ident:
        return parse_identifier();
      case Tok::duration:
        fail(q_, tok_.pos, "unexpected " + describe(tok_));
      case Tok::eof:
        fail(q_, tok_.pos, "unexpected end of input");
      default:
        fail(q_, tok_.pos, "unexpected " + describe(tok_));
    }
  }

  ExprPtr parse_identifier() {
    std::string name = tok_.text;
    std::string low = lower(name);
    std::size_t pos = tok_.pos;
    if (low == "stdvar") fail(q_, pos, "the aggregation \"stdvar\" is not supported");
    for (const auto& [agg_name, op] : kAggregates) {
      if (low == agg_name) return parse_aggregate(op, pos);
    }
    if (is_keyword(low) && low != "start" && low != "end") {
      fail(q_, pos, "unexpected " + low);
    }
    advance();
    if (tok_.kind == Tok::lparen) return parse_call(name, pos);
    auto vs = std::make_unique<VectorSelector>(pos);
    vs->name = name;
    if (tok_.kind == Tok::lbrace) parse_matchers(*vs);
    for (const auto& m : vs->matchers) {
      if (m.name() == kMetricName) {
        fail(q_, pos,
             "metric name must not be set twice: \"" + name + "\" or \"" + m.value() + "\"");
      }
    }
    vs->matchers.push_back(Matcher::make(MatchType::equal, std::string(kMetricName), name));
    finish_selector(*vs);
    return vs;
  }

  void finish_selector(VectorSelector& vs) {
    bool non_empty = std::any_of(vs.matchers.begin(), vs.matchers.end(),
                                 [](const Matcher& m) { return !m.matches(""); });
    if (!non_empty) {
      fail(q_, vs.pos, "vector selector must contain at least one non-empty matcher");
    }
  }

  void parse_matchers(VectorSelector& vs) {
    expect(Tok::lbrace, "label matching");
    while (tok_.kind != Tok::rbrace) {
      if (tok_.kind != Tok::ident) unexpected("label matching");
      std::string name = tok_.text;
      std::size_t name_pos = tok_.pos;
      if (name.find(':') != std::string::npos) {
        fail(q_, name_pos, "invalid label name \"" + name + "\"");
      }
      advance();
      MatchType type;
      switch (tok_.kind) {
        case Tok::assign:
          type = MatchType::equal;
          break;
        case Tok::neq:
          type = MatchType::not_equal;
          break;
        case Tok::eql_regex:
          type = MatchType::regex;
          break;
        case Tok::neq_regex:
          type = MatchType::not_regex;
          break;
        default:
          unexpected("label matching, expected one of \"=\", \"!=\", \"=~\" or \"!~\"");
      }
      advance();
      if (tok_.kind != Tok::string) unexpected("label matching, expected string");
      std::size_t value_pos = tok_.pos;
      try {
        vs.matchers.push_back(Matcher::make(type, name, tok_.text));
      } catch (const QueryError& e) {
        fail(q_, value_pos, e.what());
      }
      advance();
      if (tok_.kind == Tok::comma) {
        advance();
      } else if (tok_.kind != Tok::rbrace) {
        unexpected("label matching, expected \",\" or \"}\"");
      }
    }
    advance();
  }

  std::vector<std::string> parse_label_list(std::string_view context) {
    expect(Tok::lparen, context);
    std::vector<std::string> out;
    while (tok_.kind != Tok::rparen) {
      if (tok_.kind != Tok::ident || tok_.text.find(':') != std::string::npos) {
        unexpected(context);
      }
      out.push_back(tok_.text);
      advance();
      if (tok_.kind == Tok::comma) {
        advance();
      } else if (tok_.kind != Tok::rparen) {
        unexpected(context);
      }
    }
    advance();
    return out;
  }

  ExprPtr parse_aggregate(AggregateOp op, std::size_t pos) {
    advance();
    auto agg = std::make_unique<Aggregate>(pos, op);
    bool grouped = false;
    auto grouping = [&] {
      if (at_keyword("by") || at_keyword("without")) {
        if (grouped) unexpected("aggregation");
        agg->without = at_keyword("without");
        advance();
        agg->grouping = parse_label_list("grouping opts");
        std::sort(agg->grouping.begin(), agg->grouping.end());
        grouped = true;
      }
    };
    grouping();
    if (tok_.kind != Tok::lparen) unexpected("aggregation");
    advance();
    std::vector<ExprPtr> args;
    while (tok_.kind != Tok::rparen) {
      args.push_back(parse_expr(1));
      if (tok_.kind == Tok::comma) {
        advance();
      } else if (tok_.kind != Tok::rparen) {
        unexpected("aggregation");
      }
    }
    advance();
    grouping();
    bool has_param = op == AggregateOp::topk || op == AggregateOp::bottomk ||
                     op == AggregateOp::quantile || op == AggregateOp::count_values;
    std::size_t want = has_param ? 2 : 1;
    if (args.size() == 0) fail(q_, pos, "no arguments for aggregate expression provided");
    if (args.size() != want) {
      fail(q_, pos,
           "wrong number of arguments for aggregate expression provided, expected " +
               std::to_string(want) + ", got " + std::to_string(args.size()));
    }
    if (has_param) {
      agg->param = std::move(args[0]);
      ValueType want_type = op == AggregateOp::count_values ? ValueType::string : ValueType::scalar;
      if (agg->param->type() != want_type) {
        fail(q_, agg->param->pos,
             "expected type " + std::string(value_type_name(want_type)) +
                 " in aggregation parameter, got " +
                 std::string(value_type_name(agg->param->type())));
      }
    }
    agg->expr = std::move(args.back());
    if (agg->expr->type() != ValueType::vector) {
      fail(q_, agg->expr->pos,
           "expected type instant vector in aggregation expression, got " +
               std::string(value_type_name(agg->expr->type())));
    }
    return agg;
  }

  ExprPtr parse_call(const std::string& name, std::size_t pos) {
    const FunctionInfo* f = find_function(name);
    if (f == nullptr) {
      if (std::find(std::begin(kUnsupportedFunctions), std::end(kUnsupportedFunctions), name) !=
          std::end(kUnsupportedFunctions)) {
        fail(q_, pos, "the function \"" + name + "\" is not supported");
      }
      fail(q_, pos, "unknown function with name \"" + name + "\"");
    }
    advance();  // (
    auto call = std::make_unique<Call>(pos, f);
    while (tok_.kind != Tok::rparen) {
      call->args.push_back(parse_expr(1));
      if (tok_.kind == Tok::comma) {
        advance();
      } else if (tok_.kind != Tok::rparen) {
        unexpected("function call arguments");
      }
    }
    advance();
    std::size_t n = call->args.size();
    std::size_t want = f->args.size();
    std::string q = "\"" + name + "\"";
    if (f->variadic == 0) {
      if (n != want) {
        fail(q_, pos,
             "expected " + std::to_string(want) + " argument(s) in call to " + q + ", got " +
                 std::to_string(n));
      }
    } else {
      std::size_t min = want - static_cast<std::size_t>(f->variadic > 0 ? f->variadic : 1);
      if (f->variadic < 0) min = want - 1;
      if (n < min) {
        fail(q_, pos,
             "expected at least " + std::to_string(min) + " argument(s) in call to " + q +
                 ", got " + std::to_string(n));
      }
      if (f->variadic > 0 && n > want) {
        fail(q_, pos,
             "expected at most " + std::to_string(want) + " argument(s) in call to " + q +
                 ", got " + std::to_string(n));
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      ValueType expected = i < want ? f->args[i] : f->args.back();
      if (call->args[i]->type() != expected) {
        fail(q_, call->args[i]->pos,
             "expected type " + std::string(value_type_name(expected)) + " in call to function " +
                 q + ", got " + std::string(value_type_name(call->args[i]->type())));
      }
    }
    return call;
  }

  static constexpr int kMaxDepth = 500;
  std::string_view q_;
  Lexer lex_;
  Token tok_;
  int depth_ = 0;
};

}  // namespace

std::string_view value_type_name(ValueType t) noexcept {
  switch (t) {
    case ValueType::scalar:
      return "scalar";
    case ValueType::string:
      return "string";
    case ValueType::vector:
      return "instant vector";
    case ValueType::matrix:
      return "range vector";
  }
  return "";
}

std::string_view error_type_name(ErrorType type) noexcept {
  switch (type) {
    case ErrorType::bad_data:
      return "bad_data";
    case ErrorType::execution:
      return "execution";
    case ErrorType::timeout:
      return "timeout";
    case ErrorType::canceled:
      return "canceled";
  }
  return "";
}

ValueType Expr::type() const noexcept {
  switch (kind) {
    case ExprKind::number:
      return ValueType::scalar;
    case ExprKind::string:
      return ValueType::string;
    case ExprKind::vector_selector:
      return ValueType::vector;
    case ExprKind::matrix_selector:
    case ExprKind::subquery:
      return ValueType::matrix;
    case ExprKind::call:
      return static_cast<const Call*>(this)->func->returns;
    case ExprKind::aggregate:
      return ValueType::vector;
    case ExprKind::binary: {
      auto* b = static_cast<const Binary*>(this);
      return b->lhs->type() == ValueType::scalar && b->rhs->type() == ValueType::scalar
                 ? ValueType::scalar
                 : ValueType::vector;
    }
    case ExprKind::unary:
      return static_cast<const Unary*>(this)->expr->type();
    case ExprKind::paren:
      return static_cast<const Paren*>(this)->expr->type();
  }
  return ValueType::scalar;
}

bool is_comparison(BinaryOp op) noexcept {
  switch (op) {
    case BinaryOp::eq:
    case BinaryOp::ne:
    case BinaryOp::gt:
    case BinaryOp::lt:
    case BinaryOp::ge:
    case BinaryOp::le:
      return true;
    default:
      return false;
  }
}

bool is_set_operator(BinaryOp op) noexcept {
  return op == BinaryOp::land || op == BinaryOp::lor || op == BinaryOp::lunless;
}

const FunctionInfo* find_function(std::string_view name) noexcept {
  using V = ValueType;
  static const FunctionInfo table[] = {
      {"abs", Function::abs, {V::vector}, 0, V::vector},
      {"absent", Function::absent, {V::vector}, 0, V::vector},
      {"absent_over_time", Function::absent_over_time, {V::matrix}, 0, V::vector},
      {"avg_over_time", Function::avg_over_time, {V::matrix}, 0, V::vector},
      {"ceil", Function::ceil, {V::vector}, 0, V::vector},
      {"changes", Function::changes, {V::matrix}, 0, V::vector},
      {"clamp", Function::clamp, {V::vector, V::scalar, V::scalar}, 0, V::vector},
      {"clamp_max", Function::clamp_max, {V::vector, V::scalar}, 0, V::vector},
      {"clamp_min", Function::clamp_min, {V::vector, V::scalar}, 0, V::vector},
      {"count_over_time", Function::count_over_time, {V::matrix}, 0, V::vector},
      {"delta", Function::delta, {V::matrix}, 0, V::vector},
      {"deriv", Function::deriv, {V::matrix}, 0, V::vector},
      {"floor", Function::floor, {V::vector}, 0, V::vector},
      {"idelta", Function::idelta, {V::matrix}, 0, V::vector},
      {"increase", Function::increase, {V::matrix}, 0, V::vector},
      {"irate", Function::irate, {V::matrix}, 0, V::vector},
      {"label_join",
       Function::label_join,
       {V::vector, V::string, V::string, V::string},
       -1,
       V::vector},
      {"label_replace",
       Function::label_replace,
       {V::vector, V::string, V::string, V::string, V::string},
       0,
       V::vector},
      {"last_over_time", Function::last_over_time, {V::matrix}, 0, V::vector},
      {"max_over_time", Function::max_over_time, {V::matrix}, 0, V::vector},
      {"min_over_time", Function::min_over_time, {V::matrix}, 0, V::vector},
      {"predict_linear", Function::predict_linear, {V::matrix, V::scalar}, 0, V::vector},
      {"quantile_over_time", Function::quantile_over_time, {V::scalar, V::matrix}, 0, V::vector},
      {"rate", Function::rate, {V::matrix}, 0, V::vector},
      {"resets", Function::resets, {V::matrix}, 0, V::vector},
      {"round", Function::round, {V::vector, V::scalar}, 1, V::vector},
      {"scalar", Function::scalar, {V::vector}, 0, V::scalar},
      {"sort", Function::sort, {V::vector}, 0, V::vector},
      {"sort_desc", Function::sort_desc, {V::vector}, 0, V::vector},
      {"stddev_over_time", Function::stddev_over_time, {V::matrix}, 0, V::vector},
      {"sum_over_time", Function::sum_over_time, {V::matrix}, 0, V::vector},
      {"time", Function::time, {}, 0, V::scalar},
      {"timestamp", Function::timestamp, {V::vector}, 0, V::vector},
      {"vector", Function::vector, {V::scalar}, 0, V::vector},
  };
  for (const auto& f : table) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

ExprPtr parse(std::string_view query) {
  return Parser(query).parse_all();
}

}  // namespace metrics::query
