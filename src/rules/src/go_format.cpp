#include "metrics/rules/go_format.hpp"

#include <charconv>
#include <cmath>
#include <cstdio>
#include <string>

#include "metrics/query/value.hpp"

namespace metrics::rules {
namespace {

// A decimal: digits without trailing zeros (none for zero) and the position
// of the decimal point (value = 0.d1d2... * 10^dp), as strconv's decimalSlice.
struct Digits {
  std::string d;
  int dp = 0;
};

// Splits "d.ddde[+-]xx" (printf or to_chars scientific output, no sign).
Digits from_scientific(std::string_view s) {
  Digits out;
  const auto e = s.find_first_of("eE");
  const std::string_view mant = s.substr(0, e);
  int exp = 0;
  if (e != std::string_view::npos) {
    std::string_view x = s.substr(e + 1);
    if (!x.empty() && x[0] == '+') x.remove_prefix(1);
    std::from_chars(x.data(), x.data() + x.size(), exp);
  }
  for (const char c : mant) {
    if (c >= '0' && c <= '9') out.d += c;
  }
  while (!out.d.empty() && out.d.back() == '0')
    out.d.pop_back();
  if (out.d.empty()) return {};
  out.dp = exp + 1;
  // A leading zero only when the mantissa was 0 (handled above).
  return out;
}

Digits shortest(double a) {
  char buf[64];
  const auto r = std::to_chars(buf, buf + sizeof buf, a, std::chars_format::scientific);
  return from_scientific(std::string_view(buf, static_cast<std::size_t>(r.ptr - buf)));
}

Digits rounded(double a, int significant) {
  if (significant < 1) significant = 1;
  char buf[512];
  const int n = std::snprintf(buf, sizeof buf, "%.*e", significant - 1, a);
  return from_scientific(std::string_view(buf, static_cast<std::size_t>(n)));
}

std::string fmt_e(const Digits& d, int decimals, char e) {
  std::string out;
  out += d.d.empty() ? '0' : d.d[0];
  if (decimals > 0) {
    out += '.';
    for (int i = 1; i <= decimals; ++i)
      out += static_cast<std::size_t>(i) < d.d.size() ? d.d[static_cast<std::size_t>(i)] : '0';
  }
  int exp = d.d.empty() ? 0 : d.dp - 1;
  out += e;
  out += exp < 0 ? '-' : '+';
  if (exp < 0) exp = -exp;
  if (exp < 10) out += '0';
  out += std::to_string(exp);
  return out;
}

std::string fmt_f(const Digits& d, int decimals) {
  std::string out;
  if (d.dp > 0) {
    for (int i = 0; i < d.dp; ++i)
      out += static_cast<std::size_t>(i) < d.d.size() ? d.d[static_cast<std::size_t>(i)] : '0';
  } else {
    out += '0';
  }
  if (decimals > 0) {
    out += '.';
    for (int i = 0; i < decimals; ++i) {
      const int j = d.dp + i;
      out += j < 0 || static_cast<std::size_t>(j) >= d.d.size() ? '0'
                                                                : d.d[static_cast<std::size_t>(j)];
    }
  }
  return out;
}

}  // namespace

std::string go_format_float(double v, char fmt, int prec) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  const bool neg = std::signbit(v);
  const double a = std::fabs(v);
  std::string body;
  const bool is_shortest = prec < 0;
  if (fmt == 'f') {
    if (is_shortest) {
      const Digits d = shortest(a);
      body = fmt_f(d, std::max(static_cast<int>(d.d.size()) - d.dp, 0));
    } else {
      char buf[512];
      const int n = std::snprintf(buf, sizeof buf, "%.*f", prec, a);
      body.assign(buf, static_cast<std::size_t>(n));
    }
  } else if (fmt == 'e' || fmt == 'E') {
    if (is_shortest) {
      const Digits d = shortest(a);
      body = fmt_e(d, std::max(static_cast<int>(d.d.size()) - 1, 0), fmt);
    } else {
      body = fmt_e(rounded(a, prec + 1), prec, fmt);
    }
  } else {  // 'g' / 'G'
    const char e = fmt == 'G' ? 'E' : 'e';
    Digits d;
    int p = prec;
    if (is_shortest) {
      d = shortest(a);
      p = static_cast<int>(d.d.size());
    } else {
      if (p == 0) p = 1;
      d = rounded(a, p);
    }
    const int nd = static_cast<int>(d.d.size());
    int eprec = p;
    if (eprec > nd && nd >= d.dp) eprec = nd;
    if (is_shortest) eprec = 6;
    const int exp = d.dp - 1;
    if (nd > 0 && (exp < -4 || exp >= eprec)) {
      if (p > nd) p = nd;
      body = fmt_e(d, p - 1, e);
    } else {
      if (p > d.dp) p = nd;
      body = fmt_f(d, std::max(p - d.dp, 0));
    }
  }
  return neg ? "-" + body : body;
}

std::string_view go_type_name(const GoArg& v) {
  switch (v.index()) {
    case 0:
      return "<nil>";
    case 1:
      return "bool";
    case 2:
      return "int";
    case 3:
      return "float64";
    case 4:
      return "string";
    default:
      return "map[string]string";
  }
}

std::string go_print(const GoArg& v) {
  if (std::holds_alternative<GoNil>(v)) return "<nil>";
  if (const auto* b = std::get_if<bool>(&v)) return *b ? "true" : "false";
  if (const auto* i = std::get_if<std::int64_t>(&v)) return std::to_string(*i);
  if (const auto* d = std::get_if<double>(&v)) return go_format_float(*d, 'g', -1);
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  std::string out = "map[";
  bool first = true;
  for (const auto& [k, val] : std::get<GoMap>(v)) {
    if (!first) out += ' ';
    first = false;
    out += k;
    out += ':';
    out += val;
  }
  return out + "]";
}

std::string go_quote(std::string_view s) {
  std::string out;
  query::go_quote(out, s);
  return out;
}

namespace {

struct Spec {
  bool minus = false, plus = false, sharp = false, space = false, zero = false;
  int width = -1;
  int prec = -1;
};

std::string pad(std::string s, const Spec& spec, bool numeric) {
  if (spec.width < 0 || static_cast<int>(s.size()) >= spec.width) return s;
  const auto fill = static_cast<std::size_t>(spec.width) - s.size();
  if (spec.minus) return s + std::string(fill, ' ');
  if (spec.zero && numeric) {
    const std::size_t sign = !s.empty() && (s[0] == '-' || s[0] == '+') ? 1 : 0;
    return s.substr(0, sign) + std::string(fill, '0') + s.substr(sign);
  }
  return std::string(fill, ' ') + s;
}

std::string bad_verb(char verb, const GoArg& arg) {
  std::string out = "%!";
  out += verb;
  out += '(';
  if (std::holds_alternative<GoNil>(arg)) return out + "<nil>)";
  out += go_type_name(arg);
  out += '=';
  out += go_print(arg);
  return out + ")";
}

std::string signed_text(std::string s, const Spec& spec) {
  if (!s.empty() && s[0] != '-') {
    if (spec.plus) return "+" + s;
    if (spec.space) return " " + s;
  }
  return s;
}

std::string format_one(char verb, const Spec& spec, const GoArg& arg) {
  if (const auto* d = std::get_if<double>(&arg)) {
    char f = 0;
    int prec = spec.prec;
    if (verb == 'x' || verb == 'X') {
      // Go's hex float: C's %a with an exponent of at least two digits.
      char buf[64];
      std::snprintf(buf, sizeof buf, verb == 'x' ? "%a" : "%A", *d);
      std::string s = buf;
      const auto p = s.find_first_of("pP");
      if (p != std::string::npos && p + 2 < s.size() + 1 && s.size() - p == 3) s.insert(p + 2, "0");
      if (std::isinf(*d)) s = *d > 0 ? "+Inf" : "-Inf";
      if (std::isnan(*d)) s = "NaN";
      return pad(s, spec, false);
    }
    switch (verb) {
      case 'v':
      case 'g':
      case 'G':
        f = verb == 'G' ? 'G' : 'g';
        break;
      case 'e':
      case 'E':
        f = verb;
        if (prec < 0) prec = 6;
        break;
      case 'f':
      case 'F':
        f = 'f';
        if (prec < 0) prec = 6;
        break;
      default:
        return bad_verb(verb, arg);
    }
    std::string s = go_format_float(*d, f, prec);
    if (s == "+Inf" && !spec.plus) s = spec.space ? " Inf" : "+Inf";
    if (s == "NaN") return pad(s, Spec{.minus = spec.minus, .width = spec.width}, false);
    if (s[0] == '+' || s[0] == '-') return pad(s, spec, !std::isinf(*d));
    return pad(signed_text(s, spec), spec, true);
  }
  if (const auto* i = std::get_if<std::int64_t>(&arg)) {
    switch (verb) {
      case 'v':
      case 'd':
        return pad(signed_text(std::to_string(*i), spec), spec, true);
      case 'x':
      case 'X': {
        char buf[32];
        std::snprintf(buf, sizeof buf, verb == 'x' ? "%llx" : "%llX",
                      static_cast<unsigned long long>(*i < 0 ? -*i : *i));
        return pad((*i < 0 ? "-" : "") + std::string(buf), spec, true);
      }
      case 'f':
      case 'e':
      case 'g':
      case 's':
      case 'q':
      case 't':
        return bad_verb(verb, arg);
      default:
        return bad_verb(verb, arg);
    }
  }
  if (const auto* s = std::get_if<std::string>(&arg)) {
    switch (verb) {
      case 'v':
      case 's': {
        std::string t = *s;
        if (spec.prec >= 0 && static_cast<std::size_t>(spec.prec) < t.size())
          t.resize(static_cast<std::size_t>(spec.prec));
        return pad(t, spec, false);
      }
      case 'q':
        return pad(go_quote(*s), spec, false);
      case 'x':
      case 'X': {
        std::string out;
        char buf[4];
        for (const char c : *s) {
          std::snprintf(buf, sizeof buf, verb == 'x' ? "%02x" : "%02X",
                        static_cast<unsigned char>(c));
          out += buf;
        }
        return pad(out, spec, false);
      }
      default:
        return bad_verb(verb, arg);
    }
  }
  if (const auto* b = std::get_if<bool>(&arg)) {
    if (verb == 'v' || verb == 't') return pad(*b ? "true" : "false", spec, false);
    return bad_verb(verb, arg);
  }
  if (verb == 'v' || (verb == 's' && std::holds_alternative<GoMap>(arg)))
    return pad(go_print(arg), spec, false);
  return bad_verb(verb, arg);
}

}  // namespace

std::string go_sprintf(std::string_view format, std::span<const GoArg> args) {
  std::string out;
  std::size_t next = 0;
  for (std::size_t i = 0; i < format.size(); ++i) {
    const char c = format[i];
    if (c != '%') {
      out += c;
      continue;
    }
    ++i;
    Spec spec;
    for (; i < format.size(); ++i) {
      const char f = format[i];
      if (f == '-') {
        spec.minus = true;
      } else if (f == '+') {
        spec.plus = true;
      } else if (f == '#') {
        spec.sharp = true;
      } else if (f == ' ') {
        spec.space = true;
      } else if (f == '0') {
        spec.zero = !spec.minus;
      } else {
        break;
      }
    }
    auto number = [&](int& target) {
      if (i < format.size() && format[i] == '*') {
        ++i;
        if (next < args.size()) {
          if (const auto* n = std::get_if<std::int64_t>(&args[next])) target = static_cast<int>(*n);
          ++next;
        }
        return;
      }
      int n = 0;
      bool any = false;
      while (i < format.size() && format[i] >= '0' && format[i] <= '9') {
        n = n * 10 + (format[i] - '0');
        any = true;
        ++i;
      }
      if (any) target = n;
    };
    number(spec.width);
    if (i < format.size() && format[i] == '.') {
      ++i;
      spec.prec = 0;
      number(spec.prec);
    }
    if (i >= format.size()) {
      out += "%!(NOVERB)";
      break;
    }
    const char verb = format[i];
    if (verb == '%') {
      out += '%';
      continue;
    }
    if (next >= args.size()) {
      out += "%!";
      out += verb;
      out += "(MISSING)";
      continue;
    }
    out += format_one(verb, spec, args[next++]);
  }
  if (next < args.size()) {
    out += "%!(EXTRA ";
    for (std::size_t k = next; k < args.size(); ++k) {
      if (k > next) out += ", ";
      out += go_type_name(args[k]);
      out += '=';
      out += go_print(args[k]);
    }
    out += ')';
  }
  return out;
}

}  // namespace metrics::rules
