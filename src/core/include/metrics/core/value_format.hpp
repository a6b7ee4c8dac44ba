// Text form of metric values, as used in URL paths and text answers.
//
// Gauges print in the shortest form that reads back to the same double, in
// plain decimal notation (no exponent, no trailing zeros or point): the
// shortest round-trip digits, padded with zeros where the magnitude needs it,
// exactly as Go's strconv.FormatFloat(v, 'f', -1, 64) prints them:
//   format_gauge(120500.0) == "120500", format_gauge(1e21) == "1000000000000000000000",
//   format_gauge(0x1p63) == "9223372036854776000".
// Counters print as plain decimal integers.
//
// All functions are pure and thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace metrics::core {

void append_gauge(std::string& out, double value);
void append_counter(std::string& out, std::int64_t value);
[[nodiscard]] std::string format_gauge(double value);
[[nodiscard]] std::string format_counter(std::int64_t value);

// Parses a finite double (decimal or exponent notation, optional leading '+'
// or '-'); nullopt for anything else, including NaN, Inf, out-of-range,
// empty input and trailing characters.
[[nodiscard]] std::optional<double> parse_gauge(std::string_view text) noexcept;
// Parses a decimal int64 (optional sign); nullopt on junk or overflow.
[[nodiscard]] std::optional<std::int64_t> parse_counter(std::string_view text) noexcept;

}  // namespace metrics::core
