// Go's encoding/json for what the rules package writes by hand: strings
// (HTML-safe escapes as Go does), float64s and label maps.
#pragma once

#include <cmath>
#include <cstdio>
#include <string>
#include <string_view>

#include "metrics/query/value.hpp"
#include "metrics/rules/go_format.hpp"

namespace metrics::rules::detail {

inline void json_string(std::string& out, std::string_view s) {
  out += '"';
  for (std::size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      case '\n':
        out += "\\n";
        break;
      case '\r':
        out += "\\r";
        break;
      case '\t':
        out += "\\t";
        break;
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      case '&':
        out += "\\u0026";
        break;
      default:
        if (c < 0x20) {
          char buf[8];
          std::snprintf(buf, sizeof buf, "\\u%04x", c);
          out += buf;
        } else if (c == 0xE2 && i + 2 < s.size() && static_cast<unsigned char>(s[i + 1]) == 0x80 &&
                   (static_cast<unsigned char>(s[i + 2]) == 0xA8 ||
                    static_cast<unsigned char>(s[i + 2]) == 0xA9)) {
          out += static_cast<unsigned char>(s[i + 2]) == 0xA8 ? "\\u2028" : "\\u2029";
          i += 2;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

// encoding/json's float64: 'f', or 'e' below 1e-6 / from 1e21 (with a
// one-digit exponent, "1e-07" -> "1e-07" as Go keeps two digits).
inline void json_number(std::string& out, double v) {
  if (!std::isfinite(v)) {
    out += "0";
    return;
  }
  const double a = std::fabs(v);
  if (a != 0 && (a < 1e-6 || a >= 1e21)) {
    std::string s = go_format_float(v, 'e', -1);
    // Go: "clean up e-09 to e-9".
    const auto n = s.size();
    if (n >= 4 && s[n - 4] == 'e' && s[n - 3] == '-' && s[n - 2] == '0') s.erase(n - 2, 1);
    out += s;
  } else {
    out += go_format_float(v, 'f', -1);
  }
}

inline void json_labels(std::string& out, const query::LabelSet& labels) {
  out += '{';
  bool first = true;
  for (const auto& l : labels) {
    if (!first) out += ',';
    first = false;
    json_string(out, l.name);
    out += ':';
    json_string(out, l.value);
  }
  out += '}';
}

}  // namespace metrics::rules::detail
