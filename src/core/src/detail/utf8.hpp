// UTF-8 validation shared by name validation and JSON string escaping.
#pragma once

#include <cstddef>
#include <string_view>

namespace metrics::core::detail {

// Length of the UTF-8 sequence starting at s[i] (i < s.size()), or 0 when it
// is invalid: truncated, overlong, a UTF-16 surrogate, or beyond U+10FFFF.
[[nodiscard]] inline std::size_t utf8_sequence_length(std::string_view s, std::size_t i) noexcept {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const auto cont = [&](std::size_t k) { return (byte(k) & 0xC0U) == 0x80U; };
  const unsigned char b0 = byte(i);
  const std::size_t left = s.size() - i;
  if (b0 < 0x80) return 1;
  if (b0 < 0xC2) return 0;  // a continuation byte, or an overlong 2-byte lead
  if (b0 < 0xE0) return left >= 2 && cont(i + 1) ? 2 : 0;
  if (b0 < 0xF0) {
    if (left < 3 || !cont(i + 1) || !cont(i + 2)) return 0;
    const unsigned char b1 = byte(i + 1);
    if (b0 == 0xE0 && b1 < 0xA0) return 0;   // overlong
    if (b0 == 0xED && b1 >= 0xA0) return 0;  // surrogate
    return 3;
  }
  if (b0 < 0xF5) {
    if (left < 4 || !cont(i + 1) || !cont(i + 2) || !cont(i + 3)) return 0;
    const unsigned char b1 = byte(i + 1);
    if (b0 == 0xF0 && b1 < 0x90) return 0;   // overlong
    if (b0 == 0xF4 && b1 >= 0x90) return 0;  // above U+10FFFF
    return 4;
  }
  return 0;
}

}  // namespace metrics::core::detail
