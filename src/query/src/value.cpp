// Label-set helpers and Go's number formatting for the query values.
#include "metrics/query/value.hpp"

#include <algorithm>
#include <charconv>
#include <cmath>

namespace metrics::query {

LabelSet make_labels(std::vector<core::Label> labels) {
  std::stable_sort(labels.begin(), labels.end(),
                   [](const core::Label& a, const core::Label& b) { return a.name < b.name; });
  LabelSet out;
  out.reserve(labels.size());
  for (auto& l : labels) {
    if (!out.empty() && out.back().name == l.name) out.pop_back();
    if (!l.value.empty()) out.push_back(std::move(l));
  }
  return out;
}

std::string_view get(const LabelSet& labels, std::string_view name) noexcept {
  auto it = std::lower_bound(labels.begin(), labels.end(), name,
                             [](const core::Label& l, std::string_view n) { return l.name < n; });
  if (it != labels.end() && it->name == name) return it->value;
  return {};
}

void set(LabelSet& labels, std::string_view name, std::string_view value) {
  auto it = std::lower_bound(labels.begin(), labels.end(), name,
                             [](const core::Label& l, std::string_view n) { return l.name < n; });
  bool found = it != labels.end() && it->name == name;
  if (value.empty()) {
    if (found) labels.erase(it);
    return;
  }
  if (found) {
    it->value = std::string(value);
  } else {
    labels.insert(it, core::Label{std::string(name), std::string(value)});
  }
}

void remove(LabelSet& labels, std::string_view name) {
  set(labels, name, {});
}

int compare(const LabelSet& a, const LabelSet& b) noexcept {
  std::size_t n = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < n; ++i) {
    if (a[i].name != b[i].name) return a[i].name < b[i].name ? -1 : 1;
    if (a[i].value != b[i].value) return a[i].value < b[i].value ? -1 : 1;
  }
  if (a.size() == b.size()) return 0;
  return a.size() < b.size() ? -1 : 1;
}

std::string key_of(const LabelSet& labels) {
  std::string key;
  for (const auto& l : labels) {
    key += l.name;
    key += '\xff';
    key += l.value;
    key += '\xff';
  }
  return key;
}

// Go's strconv.Quote for the ASCII and UTF-8 that label values hold.
void go_quote(std::string& out, std::string_view s) {
  static const char* hex = "0123456789abcdef";
  out += '"';
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
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
      case '\t':
        out += "\\t";
        break;
      case '\r':
        out += "\\r";
        break;
      default:
        if (c < 0x20 || c == 0x7f) {
          out += "\\x";
          out += hex[c >> 4];
          out += hex[c & 15];
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
}

std::string to_string(const LabelSet& labels) {
  std::string out = "{";
  for (std::size_t i = 0; i < labels.size(); ++i) {
    if (i > 0) out += ", ";
    out += labels[i].name;
    out += '=';
    go_quote(out, labels[i].value);
  }
  out += '}';
  return out;
}

std::string format_label_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  // Go's 'f' with precision -1: the shortest round-trip digits, placed by
  // the exponent and padded with zeros (std::to_chars's fixed form would
  // print the exact integer of a large value instead: 999999999999999868928
  // where Go prints 999999999999999900000).
  char buf[64];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
  std::string_view sci(buf, static_cast<std::size_t>(r.ptr - buf));
  std::string out;
  if (sci.front() == '-') {
    out += '-';
    sci.remove_prefix(1);
  }
  std::size_t e_pos = sci.find('e');
  std::string digits;
  for (char c : sci.substr(0, e_pos)) {
    if (c != '.') digits += c;
  }
  int exp = std::stoi(std::string(sci.substr(e_pos + 1)));
  auto n = static_cast<int>(digits.size());
  if (exp >= n - 1) {
    out += digits;
    out.append(static_cast<std::size_t>(exp - (n - 1)), '0');
  } else if (exp >= 0) {
    out += digits.substr(0, static_cast<std::size_t>(exp + 1));
    out += '.';
    out += digits.substr(static_cast<std::size_t>(exp + 1));
  } else {
    out += "0.";
    out.append(static_cast<std::size_t>(-exp - 1), '0');
    out += digits;
  }
  return out;
}

std::string format_value(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  double abs = std::abs(v);
  if (abs != 0 && (abs < 1e-6 || abs >= 1e21)) {
    // Go's 'e' with precision -1: shortest digits, an exponent of at least
    // two digits ("1e-07", "2.5e+202"), as std::to_chars writes it.
    char buf[64];
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    return std::string(buf, r.ptr);
  }
  return format_label_value(v);
}

std::string format_timestamp(std::int64_t ms) {
  std::string out;
  std::uint64_t t;
  if (ms < 0) {
    out += '-';
    t = static_cast<std::uint64_t>(-(ms + 1)) + 1;
  } else {
    t = static_cast<std::uint64_t>(ms);
  }
  out += std::to_string(t / 1000);
  std::uint64_t fraction = t % 1000;
  if (fraction != 0) {
    out += '.';
    if (fraction < 100) out += '0';
    if (fraction < 10) out += '0';
    out += std::to_string(fraction);
  }
  return out;
}

}  // namespace metrics::query
