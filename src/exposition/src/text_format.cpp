#include "metrics/exposition/text_format.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <numeric>
#include <set>
#include <utility>
#include <vector>

namespace metrics::exposition {
namespace {

bool is_alpha(char c) noexcept {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}
bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

// Length of the UTF-8 character at s[i], so that one character maps to one
// '_'; a byte that starts no valid sequence counts alone.
std::size_t char_length(std::string_view s, std::size_t i) noexcept {
  const auto b = static_cast<unsigned char>(s[i]);
  std::size_t n = 1;
  if (b >= 0xF0 && b < 0xF8) {
    n = 4;
  } else if (b >= 0xE0) {
    n = b < 0xF0 ? 3 : 1;
  } else if (b >= 0xC0) {
    n = 2;
  }
  if (n > s.size() - i) return 1;
  for (std::size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xC0U) != 0x80U) return 1;
  }
  return n;
}

void append_mapped(std::string& out, std::string_view name, bool colon) {
  if (name.empty()) {
    out.push_back('_');
    return;
  }
  if (is_digit(name.front())) out.push_back('_');
  for (std::size_t i = 0; i < name.size();) {
    const char c = name[i];
    if (is_alpha(c) || is_digit(c) || c == '_' || (colon && c == ':')) {
      out.push_back(c);
      ++i;
    } else {
      out.push_back('_');
      i += char_length(name, i);
    }
  }
}

void append_help(std::string& out, std::string_view help) {
  for (char c : help) {
    if (c == '\\') {
      out.append("\\\\");
    } else if (c == '\n') {
      out.append("\\n");
    } else {
      out.push_back(c);
    }
  }
}

void append_int(std::string& out, std::int64_t v) {
  std::array<char, 24> buf;
  const auto end = std::to_chars(buf.data(), buf.data() + buf.size(), v).ptr;
  out.append(buf.data(), end);
}

}  // namespace

bool is_valid_metric_name(std::string_view name) noexcept {
  if (name.empty() || is_digit(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_alpha(c) || is_digit(c) || c == '_' || c == ':'; });
}

bool is_valid_label_name(std::string_view name) noexcept {
  if (name.empty() || is_digit(name.front())) return false;
  return std::all_of(name.begin(), name.end(),
                     [](char c) { return is_alpha(c) || is_digit(c) || c == '_'; });
}

void append_metric_name(std::string& out, std::string_view name) {
  if (is_valid_metric_name(name)) {
    out.append(name);
  } else {
    append_mapped(out, name, true);
  }
}

void append_label_name(std::string& out, std::string_view name) {
  if (is_valid_label_name(name)) {
    out.append(name);
  } else {
    append_mapped(out, name, false);
  }
}

std::string map_metric_name(std::string_view name) {
  std::string out;
  append_metric_name(out, name);
  return out;
}

std::string map_label_name(std::string_view name) {
  std::string out;
  append_label_name(out, name);
  return out;
}

void append_value(std::string& out, double value) {
  // client_golang's writeFloat: three constants first, then
  // strconv.AppendFloat(f, 'g', -1, 64). -0 compares equal to 0 and prints "0".
  if (value == 1) {
    out.push_back('1');
    return;
  }
  if (value == 0) {
    out.push_back('0');
    return;
  }
  if (value == -1) {
    out.append("-1");
    return;
  }
  if (std::isnan(value)) {
    out.append("NaN");
    return;
  }
  if (std::isinf(value)) {
    out.append(value > 0 ? "+Inf" : "-Inf");
    return;
  }
  if (std::signbit(value)) out.push_back('-');
  // The shortest digits that round-trip (Dragonbox, as in core's
  // value_format), then Go's %g layout for shortest precision: exponent
  // form when the decimal exponent is below -4 or at least 6.
  const auto dec = fmt::detail::dragonbox::to_decimal(std::fabs(value));
  std::array<char, 24> buf;
  const auto end = std::to_chars(buf.data(), buf.data() + buf.size(), dec.significand).ptr;
  std::string_view digits(buf.data(), static_cast<std::size_t>(end - buf.data()));
  int exponent = dec.exponent;
  while (digits.size() > 1 && digits.back() == '0') {
    digits.remove_suffix(1);
    ++exponent;
  }
  const int nd = static_cast<int>(digits.size());
  const int dp = nd + exponent;  // position of the decimal point
  const int exp = dp - 1;
  if (exp < -4 || exp >= 6) {
    out.push_back(digits[0]);
    if (nd > 1) {
      out.push_back('.');
      out.append(digits.substr(1));
    }
    out.push_back('e');
    out.push_back(exp < 0 ? '-' : '+');
    const int e = exp < 0 ? -exp : exp;
    if (e < 10) {
      out.push_back('0');
      out.push_back(static_cast<char>('0' + e));
    } else if (e < 100) {
      out.push_back(static_cast<char>('0' + e / 10));
      out.push_back(static_cast<char>('0' + e % 10));
    } else {
      out.push_back(static_cast<char>('0' + e / 100));
      out.push_back(static_cast<char>('0' + (e / 10) % 10));
      out.push_back(static_cast<char>('0' + e % 10));
    }
    return;
  }
  if (dp <= 0) {
    out.append("0.");
    out.append(static_cast<std::size_t>(-dp), '0');
    out.append(digits);
  } else if (dp >= nd) {
    out.append(digits);
    out.append(static_cast<std::size_t>(dp - nd), '0');
  } else {
    out.append(digits.substr(0, static_cast<std::size_t>(dp)));
    out.push_back('.');
    out.append(digits.substr(static_cast<std::size_t>(dp)));
  }
}

void append_label_value(std::string& out, std::string_view value) {
  std::size_t plain = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (c != '\\' && c != '"' && c != '\n') continue;
    out.append(value.substr(plain, i - plain));
    out.push_back('\\');
    out.push_back(c == '\n' ? 'n' : c);
    plain = i + 1;
  }
  out.append(value.substr(plain));
}

bool TextWriter::begin_family(std::string_view name, core::MetricType type, std::string_view help) {
  const std::size_t mark = out_->size();
  append_metric_name(*out_, name);
  const std::string_view mapped(out_->data() + mark, out_->size() - mark);
  if (have_family_ && !(family_ < mapped)) {
    out_->resize(mark);
    family_ok_ = false;
    ++dropped_;
    return false;
  }
  family_.assign(mapped);
  out_->resize(mark);
  have_family_ = true;
  family_ok_ = true;
  if (!help.empty()) {
    out_->append("# HELP ");
    out_->append(family_);
    out_->push_back(' ');
    append_help(*out_, help);
    out_->push_back('\n');
  }
  out_->append("# TYPE ");
  out_->append(family_);
  out_->push_back(' ');
  out_->append(core::to_string(type));
  out_->push_back('\n');
  return true;
}

bool TextWriter::open_sample() {
  if (!family_ok_) {
    ++dropped_;
    return false;
  }
  out_->append(family_);
  return true;
}

void TextWriter::write_label(std::string_view name, std::string_view value, bool& first) {
  out_->push_back(first ? '{' : ',');
  first = false;
  append_label_name(*out_, name);
  out_->append("=\"");
  append_label_value(*out_, value);
  out_->push_back('"');
}

void TextWriter::finish(std::optional<std::int64_t> timestamp_ms) {
  if (timestamp_ms) {
    out_->push_back(' ');
    append_int(*out_, *timestamp_ms);
  }
  out_->push_back('\n');
}

void TextWriter::write(const core::Labels& labels, double value,
                       std::optional<std::int64_t> timestamp_ms) {
  if (!open_sample()) return;
  bool first = true;
  for (const core::LabelView l : labels)
    write_label(l.name, l.value, first);
  if (!first) out_->push_back('}');
  out_->push_back(' ');
  append_value(*out_, value);
  finish(timestamp_ms);
}

void TextWriter::write_integer(const core::Labels& labels, std::int64_t value,
                               std::optional<std::int64_t> timestamp_ms) {
  if (!open_sample()) return;
  bool first = true;
  for (const core::LabelView l : labels)
    write_label(l.name, l.value, first);
  if (!first) out_->push_back('}');
  out_->push_back(' ');
  append_int(*out_, value);
  finish(timestamp_ms);
}

void TextWriter::write(std::span<const core::LabelView> labels, double value,
                       std::optional<std::int64_t> timestamp_ms) {
  if (!open_sample()) return;
  // Two raw names can map to one ("a-b", "a_b"): a repeated label name is a
  // parse error for Prometheus, so the later one is left out. names_ keeps
  // its capacity between samples.
  names_.clear();
  bool first = true;
  for (const core::LabelView& l : labels) {
    if (l.value.empty() || l.name == "__name__") continue;
    const std::size_t mark = out_->size();
    out_->push_back(first ? '{' : ',');
    const std::size_t start = out_->size();
    append_label_name(*out_, l.name);
    const std::string_view name(out_->data() + start, out_->size() - start);
    const bool repeated = std::any_of(names_.begin(), names_.end(), [&](const auto& n) {
      return std::string_view(out_->data() + n.first, n.second) == name;
    });
    if (repeated) {
      out_->resize(mark);
      continue;
    }
    names_.emplace_back(start, name.size());
    first = false;
    out_->append("=\"");
    append_label_value(*out_, l.value);
    out_->push_back('"');
  }
  if (!first) out_->push_back('}');
  out_->push_back(' ');
  append_value(*out_, value);
  finish(timestamp_ms);
}

TextStats write_points(std::span<const core::Point> points, std::string& out,
                       const TextOptions& options) {
  // Mapped names are computed once; only names that need mapping (rare)
  // get storage of their own.
  std::vector<std::string_view> mapped(points.size());
  std::vector<std::string> storage;
  for (std::size_t i = 0; i < points.size(); ++i) {
    if (is_valid_metric_name(points[i].id)) {
      mapped[i] = points[i].id;
    } else {
      storage.push_back(map_metric_name(points[i].id));
    }
  }
  for (std::size_t i = 0, k = 0; i < points.size(); ++i) {
    if (!is_valid_metric_name(points[i].id)) mapped[i] = storage[k++];
  }
  std::vector<std::uint32_t> order(points.size());
  std::iota(order.begin(), order.end(), 0U);
  const auto before = [&](std::uint32_t a, std::uint32_t b) {
    if (auto c = mapped[a] <=> mapped[b]; c != 0) return c < 0;
    return core::point_less(points[a], points[b]);
  };
  // The storages list their series sorted already: one pass finds that out.
  if (!std::is_sorted(order.begin(), order.end(), before))
    std::sort(order.begin(), order.end(), before);

  TextStats stats;
  TextWriter w(out);
  std::size_t i = 0;
  while (i < order.size()) {
    std::size_t end = i + 1;
    bool several_names = false;
    while (end < order.size() && mapped[order[end]] == mapped[order[i]]) {
      several_names |= points[order[end]].id != points[order[i]].id;
      ++end;
    }
    const core::MetricType type = points[order[i]].type;
    const core::MetricType family_type =
        options.family_type ? options.family_type(points[order[i]].id, type) : type;
    const std::string_view help =
        options.help ? options.help(points[order[i]].id, family_type) : std::string_view{};
    (void)w.begin_family(mapped[order[i]], family_type, help);
    ++stats.families;
    // Only when several names map to this one can label sets repeat.
    std::set<const core::Labels*,
             decltype([](const core::Labels* a, const core::Labels* b) { return *a < *b; })>
        seen;
    for (std::size_t k = i; k < end; ++k) {
      const core::Point& p = points[order[k]];
      if (p.type != type || (several_names && !seen.insert(&p.labels).second)) {
        ++stats.dropped;
        continue;
      }
      const auto ts = options.timestamps && p.timestamp_ms != 0
                          ? std::optional<std::int64_t>(p.timestamp_ms)
                          : std::nullopt;
      if (p.type == core::MetricType::counter) {
        w.write_integer(p.labels, p.total, ts);
      } else {
        w.write(p.labels, p.value, ts);
      }
      ++stats.samples;
    }
    i = end;
  }
  return stats;
}

}  // namespace metrics::exposition
