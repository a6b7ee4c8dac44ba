#include "metrics/core/authorization.hpp"

#include <algorithm>
#include <stdexcept>

namespace metrics::core {

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  unsigned acc = 0;
  int bits = 0;
  for (char ch : bytes) {
    acc = ((acc << 8) | static_cast<unsigned char>(ch)) & 0xFFFFFFu;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += kAlphabet[(acc >> bits) & 63u];
    }
  }
  if (bits > 0) out += kAlphabet[(acc << (6 - bits)) & 63u];
  while (out.size() % 4 != 0)
    out += '=';
  return out;
}

std::string authorization_value(std::string_view basic, std::string_view bearer) {
  if (!bearer.empty()) return "Bearer " + std::string(bearer);
  if (!basic.empty()) return "Basic " + base64_encode(basic);
  return {};
}

void check_credentials(std::string_view basic, std::string_view bearer) {
  const auto control = [](std::string_view v) {
    return std::any_of(v.begin(), v.end(),
                       [](char c) { return static_cast<unsigned char>(c) < 0x20 || c == 0x7f; });
  };
  if (control(basic) || control(bearer)) {
    throw std::invalid_argument("credentials must not contain control characters");
  }
  if (!basic.empty()) {
    const auto colon = basic.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      throw std::invalid_argument("expected user:password");
    }
  }
  if (bearer.find(' ') != std::string_view::npos) {
    throw std::invalid_argument("a bearer token has no spaces");
  }
}

}  // namespace metrics::core
