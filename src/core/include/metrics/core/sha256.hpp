// SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104) without a crypto library,
// so that what signs reports (the agent, above all its LD_PRELOAD form) maps
// no libcrypto into the host process. Uses the CPU's SHA extensions when it
// has them; tested byte for byte against OpenSSL.
//
//   core::Sha256 h;
//   h.update("ab");
//   h.update("c");
//   core::Sha256Digest d = h.finish();            // SHA-256("abc")
//   core::Sha256Digest mac = core::hmac_sha256(key, body);
//
// A Sha256 object is not thread-safe; hmac_sha256 is (no shared state).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string_view>

namespace metrics::core {

using Sha256Digest = std::array<unsigned char, 32>;

class Sha256 {
 public:
  static constexpr std::size_t kBlockSize = 64;

  void update(std::string_view data) noexcept;
  // The digest of everything passed to update(); the object starts over.
  [[nodiscard]] Sha256Digest finish() noexcept;

 private:
  void compress(const unsigned char* blocks, std::size_t count) noexcept;

  std::array<std::uint32_t, 8> state_ = {0x6a09e667U, 0xbb67ae85U, 0x3c6ef372U, 0xa54ff53aU,
                                         0x510e527fU, 0x9b05688cU, 0x1f83d9abU, 0x5be0cd19U};
  std::array<unsigned char, kBlockSize> buffer_{};
  std::size_t buffered_ = 0;
  std::uint64_t length_ = 0;  // bytes hashed so far
};

[[nodiscard]] Sha256Digest hmac_sha256(std::string_view key, std::string_view data) noexcept;

namespace detail {
// For tests and benchmarks that compare both paths: whether hashing uses the
// SHA extensions now, and forcing the portable rounds (true) or going back
// to the default choice (false). Both paths keep the state alike, so a
// switch while another thread hashes changes nothing but the speed.
[[nodiscard]] bool sha256_uses_cpu_extensions() noexcept;
void sha256_force_portable(bool portable) noexcept;
}  // namespace detail

}  // namespace metrics::core
