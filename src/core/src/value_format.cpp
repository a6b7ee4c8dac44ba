#include "metrics/core/value_format.hpp"

#include <fmt/compile.h>
#include <fmt/format.h>

#include <array>
#include <charconv>
#include <cmath>
#include <system_error>

namespace metrics::core {

void append_gauge(std::string& out, double value) {
  // Shortest round-trip digits in fixed notation: the longest finite double
  // (~1.8e308) needs 309 integer digits, the smallest denormal ~330 chars of
  // fraction, so 512 bytes always suffice.
  // Integral values (most allocator statistics) take the much faster integer
  // path; below 2^53 their shortest form is exactly their integer digits.
  if (constexpr double kExactIntegers = 9007199254740992.0; std::fabs(value) < kExactIntegers &&
                                                            std::trunc(value) == value &&
                                                            !(value == 0 && std::signbit(value))) {
    append_counter(out, static_cast<std::int64_t>(value));
    return;
  }
  // fmt's shortest round-trip formatting (Dragonbox) is several times
  // faster than std::to_chars in fixed notation, but switches to exponent
  // notation for large and small magnitudes; those are rewritten in plain
  // decimal here, which changes the layout and never the digits.
  std::array<char, 64> buf;
  const auto end = fmt::format_to_n(buf.data(), buf.size(), FMT_COMPILE("{}"), value).out;
  const std::string_view text(buf.data(), static_cast<std::size_t>(end - buf.data()));
  const auto e = text.find('e');
  if (e == std::string_view::npos) {
    out.append(text);
    return;
  }
  std::string_view mantissa = text.substr(0, e);
  if (mantissa.front() == '-') {
    out.push_back('-');
    mantissa.remove_prefix(1);
  }
  int exponent = 0;
  std::string_view exp_text = text.substr(e + 1);
  if (!exp_text.empty() && exp_text.front() == '+') exp_text.remove_prefix(1);
  std::from_chars(exp_text.data(), exp_text.data() + exp_text.size(), exponent);
  std::array<char, 32> digits;
  std::size_t count = 0;
  std::size_t int_digits = mantissa.size();
  for (std::size_t i = 0; i < mantissa.size(); ++i) {
    if (mantissa[i] == '.') {
      int_digits = i;
    } else {
      digits[count++] = mantissa[i];
    }
  }
  const long point = static_cast<long>(int_digits) + exponent;  // digits before the point
  const std::string_view d(digits.data(), count);
  if (point <= 0) {
    out.append("0.");
    out.append(static_cast<std::size_t>(-point), '0');
    out.append(d);
  } else if (static_cast<std::size_t>(point) >= count) {
    out.append(d);
    out.append(static_cast<std::size_t>(point) - count, '0');
  } else {
    out.append(d.substr(0, static_cast<std::size_t>(point)));
    out.push_back('.');
    out.append(d.substr(static_cast<std::size_t>(point)));
  }
}

void append_counter(std::string& out, std::int64_t value) {
  std::array<char, 24> buf;
  const auto [end, ec] = std::to_chars(buf.data(), buf.data() + buf.size(), value);
  (void)ec;  // 24 bytes always hold an int64
  out.append(buf.data(), end);
}

std::string format_gauge(double value) {
  std::string out;
  append_gauge(out, value);
  return out;
}

std::string format_counter(std::int64_t value) {
  std::string out;
  append_counter(out, value);
  return out;
}

std::optional<double> parse_gauge(std::string_view text) noexcept {
  // from_chars accepts a leading '-' but not '+'; a sign after '+' would be
  // a second sign, which Go's ParseFloat rejects too.
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
    if (!text.empty() && text.front() == '-') return std::nullopt;
  }
  if (text.empty()) return std::nullopt;
  double value = 0;
  const char* const first = text.data();
  const char* const last = first + text.size();
  const auto [ptr, ec] = std::from_chars(first, last, value, std::chars_format::general);
  if (ec != std::errc{} || ptr != last || !std::isfinite(value)) return std::nullopt;
  return value;
}

std::optional<std::int64_t> parse_counter(std::string_view text) noexcept {
  if (!text.empty() && text.front() == '+') {
    text.remove_prefix(1);
    if (!text.empty() && text.front() == '-') return std::nullopt;
  }
  if (text.empty()) return std::nullopt;
  std::int64_t value = 0;
  const char* const first = text.data();
  const char* const last = first + text.size();
  const auto [ptr, ec] = std::from_chars(first, last, value, 10);
  if (ec != std::errc{} || ptr != last) return std::nullopt;
  return value;
}

}  // namespace metrics::core
