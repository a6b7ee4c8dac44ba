#include "metrics/core/value_format.hpp"

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
  // Shortest round-trip digits from Dragonbox (the algorithm behind fmt's
  // "{}", several times faster than std::to_chars in fixed notation), laid
  // out in plain decimal here: value = significand * 10^exponent.
  if (std::signbit(value)) out.push_back('-');
  const auto dec = fmt::detail::dragonbox::to_decimal(std::fabs(value));
  std::array<char, 24> buf;
  const auto end = std::to_chars(buf.data(), buf.data() + buf.size(), dec.significand).ptr;
  const std::string_view digits(buf.data(), static_cast<std::size_t>(end - buf.data()));
  const long point = static_cast<long>(digits.size()) + dec.exponent;  // digits before the point
  if (point <= 0) {
    out.append("0.");
    out.append(static_cast<std::size_t>(-point), '0');
    out.append(digits);
  } else if (static_cast<std::size_t>(point) >= digits.size()) {
    out.append(digits);
    out.append(static_cast<std::size_t>(point) - digits.size(), '0');
  } else {
    out.append(digits.substr(0, static_cast<std::size_t>(point)));
    out.push_back('.');
    out.append(digits.substr(static_cast<std::size_t>(point)));
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
