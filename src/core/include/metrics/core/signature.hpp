// HMAC-SHA256 request and answer signing (the HashSHA256 header).
//
//   std::string sig = core::hmac_sha256_hex(key, body);   // lowercase hex
//   bool ok = core::verify_signature(key, body, header);  // constant-time
//
// Thread-safe.
#pragma once

#include <array>
#include <string>
#include <string_view>

namespace metrics::core {

inline constexpr std::string_view kSignatureHeader = "HashSHA256";

[[nodiscard]] std::string hmac_sha256_hex(std::string_view key, std::string_view data);
// Compares in constant time; accepts upper- or lowercase hex in `signature`.
[[nodiscard]] bool verify_signature(std::string_view key, std::string_view data,
                                    std::string_view signature) noexcept;

// SHA-256 of data (idempotency keys and body fingerprints).
[[nodiscard]] std::array<unsigned char, 32> sha256(std::string_view data);

}  // namespace metrics::core
