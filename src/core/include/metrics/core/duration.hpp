// Go-style durations as used by flags and the config file: "10" (seconds),
// "500ms", "10s", "1m", "1h30m", "1.5s"; also units "us", "ns".
//
// Pure and thread-safe.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace metrics::core {

// nullopt for junk, negative values or overflow.
[[nodiscard]] std::optional<std::chrono::nanoseconds> parse_duration(
    std::string_view text) noexcept;
// Parses true/false, 1/0, t/f, TRUE/FALSE and the like (Go's strconv.ParseBool).
[[nodiscard]] std::optional<bool> parse_bool(std::string_view text) noexcept;

}  // namespace metrics::core
