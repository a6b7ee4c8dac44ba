#include "metrics/core/signature.hpp"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <array>
#include <climits>
#include <stdexcept>

namespace metrics::core {
namespace {

constexpr std::size_t kDigestSize = 32;
using Digest = std::array<unsigned char, kDigestSize>;

// OpenSSL wants non-null pointers even for empty inputs.
const unsigned char* bytes_of(std::string_view s) noexcept {
  static constexpr unsigned char kEmpty[1] = {0};
  return s.empty() ? kEmpty : reinterpret_cast<const unsigned char*>(s.data());
}

bool compute(std::string_view key, std::string_view data, Digest& digest) noexcept {
  if (key.size() > static_cast<std::size_t>(INT_MAX)) return false;
  unsigned int length = 0;
  const unsigned char* result = HMAC(EVP_sha256(), bytes_of(key), static_cast<int>(key.size()),
                                     bytes_of(data), data.size(), digest.data(), &length);
  return result != nullptr && length == kDigestSize;
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string hmac_sha256_hex(std::string_view key, std::string_view data) {
  Digest digest{};
  if (!compute(key, data, digest)) throw std::runtime_error("HMAC-SHA256 failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(kDigestSize * 2, '\0');
  for (std::size_t i = 0; i < kDigestSize; ++i) {
    out[2 * i] = kHex[digest[i] >> 4U];
    out[2 * i + 1] = kHex[digest[i] & 0xFU];
  }
  return out;
}

std::array<unsigned char, 32> sha256(std::string_view data) {
  Digest digest{};
  unsigned int length = 0;
  if (EVP_Digest(bytes_of(data), data.size(), digest.data(), &length, EVP_sha256(), nullptr) != 1 ||
      length != kDigestSize) {
    throw std::runtime_error("SHA-256 failed");
  }
  return digest;
}

bool verify_signature(std::string_view key, std::string_view data,
                      std::string_view signature) noexcept {
  if (signature.size() != kDigestSize * 2) return false;
  Digest given{};
  for (std::size_t i = 0; i < kDigestSize; ++i) {
    const int hi = hex_value(signature[2 * i]);
    const int lo = hex_value(signature[2 * i + 1]);
    // Rejecting non-hex early leaks only that the header is not hex, which
    // an attacker already knows.
    if (hi < 0 || lo < 0) return false;
    given[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  Digest expected{};
  if (!compute(key, data, expected)) return false;
  return CRYPTO_memcmp(given.data(), expected.data(), kDigestSize) == 0;
}

}  // namespace metrics::core
