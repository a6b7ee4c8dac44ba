#include "metrics/core/duration.hpp"

#include <cstdint>

namespace metrics::core {
namespace {

// A port of Go's time.ParseDuration, which keeps the magnitude in a uint64
// and checks each step against 2^63.
constexpr std::uint64_t kLimit = std::uint64_t{1} << 63U;

struct Cursor {
  std::string_view s;
  bool empty() const noexcept { return s.empty(); }
  char peek() const noexcept { return s.front(); }
};

bool is_digit(char c) noexcept {
  return c >= '0' && c <= '9';
}

// Consumes [0-9]*; false on overflow.
bool leading_int(Cursor& c, std::uint64_t& x) noexcept {
  x = 0;
  while (!c.empty() && is_digit(c.peek())) {
    if (x > kLimit / 10) return false;
    x = x * 10 + static_cast<std::uint64_t>(c.peek() - '0');
    if (x > kLimit) return false;
    c.s.remove_prefix(1);
  }
  return true;
}

// Consumes [0-9]* after a point; digits beyond what fits are ignored.
void leading_fraction(Cursor& c, std::uint64_t& x, double& scale) noexcept {
  x = 0;
  scale = 1;
  bool overflow = false;
  while (!c.empty() && is_digit(c.peek())) {
    const auto digit = static_cast<std::uint64_t>(c.peek() - '0');
    c.s.remove_prefix(1);
    if (overflow) continue;
    if (x > (kLimit - 1) / 10) {
      overflow = true;
      continue;
    }
    const std::uint64_t y = x * 10 + digit;
    if (y > kLimit) {
      overflow = true;
      continue;
    }
    x = y;
    scale *= 10;
  }
}

std::uint64_t unit_nanos(std::string_view unit) noexcept {
  if (unit == "ns") return 1;
  if (unit == "us" || unit == "\xC2\xB5s" || unit == "\xCE\xBCs") return 1'000;
  if (unit == "ms") return 1'000'000;
  if (unit == "s") return 1'000'000'000;
  if (unit == "m") return 60'000'000'000;
  if (unit == "h") return 3'600'000'000'000;
  return 0;
}

}  // namespace

std::optional<std::chrono::nanoseconds> parse_duration(std::string_view text) noexcept {
  Cursor c{text};
  if (!c.empty() && c.peek() == '+') c.s.remove_prefix(1);
  if (c.empty()) return std::nullopt;
  std::uint64_t total = 0;
  bool first = true;
  while (!c.empty()) {
    if (!(c.peek() == '.' || is_digit(c.peek()))) return std::nullopt;
    const std::size_t before_int = c.s.size();
    std::uint64_t v = 0;
    if (!leading_int(c, v)) return std::nullopt;
    const bool pre = c.s.size() != before_int;
    std::uint64_t f = 0;
    double scale = 1;
    bool post = false;
    if (!c.empty() && c.peek() == '.') {
      c.s.remove_prefix(1);
      const std::size_t before_frac = c.s.size();
      leading_fraction(c, f, scale);
      post = c.s.size() != before_frac;
    }
    if (!pre && !post) return std::nullopt;

    std::size_t unit_len = 0;
    while (unit_len < c.s.size() && c.s[unit_len] != '.' && !is_digit(c.s[unit_len]))
      ++unit_len;
    std::uint64_t unit = 0;
    if (unit_len == 0) {
      // Unlike Go, a bare number on its own means seconds ("10", "1.5").
      if (!first || !c.empty()) return std::nullopt;
      unit = unit_nanos("s");
    } else {
      unit = unit_nanos(c.s.substr(0, unit_len));
      if (unit == 0) return std::nullopt;
      c.s.remove_prefix(unit_len);
    }
    if (v > kLimit / unit) return std::nullopt;
    v *= unit;
    if (f > 0) {
      v += static_cast<std::uint64_t>(static_cast<double>(f) * (static_cast<double>(unit) / scale));
      if (v > kLimit) return std::nullopt;
    }
    total += v;
    if (total > kLimit) return std::nullopt;
    first = false;
  }
  if (total > kLimit - 1) return std::nullopt;
  return std::chrono::nanoseconds{static_cast<std::int64_t>(total)};
}

std::optional<bool> parse_bool(std::string_view text) noexcept {
  if (text == "1" || text == "t" || text == "T" || text == "TRUE" || text == "true" ||
      text == "True") {
    return true;
  }
  if (text == "0" || text == "f" || text == "F" || text == "FALSE" || text == "false" ||
      text == "False") {
    return false;
  }
  return std::nullopt;
}

}  // namespace metrics::core
