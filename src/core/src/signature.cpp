#include "metrics/core/signature.hpp"

#include "metrics/core/sha256.hpp"

namespace metrics::core {
namespace {

constexpr std::size_t kDigestSize = 32;

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  const Sha256Digest digest = hmac_sha256(key, data);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kDigestSize * 2, '\0');
  for (std::size_t i = 0; i < kDigestSize; ++i) {
    out[2 * i] = kHex[digest[i] >> 4U];
    out[2 * i + 1] = kHex[digest[i] & 0xFU];
  }
  return out;
}

std::array<unsigned char, 32> sha256(std::string_view data) {
  Sha256 h;
  h.update(data);
  return h.finish();
}

bool verify_signature(std::string_view key, std::string_view data,
                      std::string_view signature) noexcept {
  if (signature.size() != kDigestSize * 2) return false;
  Sha256Digest given{};
  for (std::size_t i = 0; i < kDigestSize; ++i) {
    const int hi = hex_value(signature[2 * i]);
    const int lo = hex_value(signature[2 * i + 1]);
    // Rejecting non-hex early leaks only that the header is not hex, which
    // an attacker already knows.
    if (hi < 0 || lo < 0) return false;
    given[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  const Sha256Digest expected = hmac_sha256(key, data);
  // Constant time: every byte is compared, whatever differs first.
  unsigned difference = 0;
  for (std::size_t i = 0; i < kDigestSize; ++i) {
    difference |= static_cast<unsigned>(given[i] ^ expected[i]);
  }
  return difference == 0;
}

}  // namespace metrics::core
