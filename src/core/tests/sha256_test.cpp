#include "metrics/core/sha256.hpp"

#include <gtest/gtest.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

namespace metrics::core {
namespace {

std::string hex(const Sha256Digest& digest) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (const unsigned char byte : digest) {
    out += kHex[byte >> 4U];
    out += kHex[byte & 0xFU];
  }
  return out;
}

std::string sha256_hex(std::string_view data) {
  Sha256 h;
  h.update(data);
  return hex(h.finish());
}

Sha256Digest openssl_sha256(std::string_view data) {
  Sha256Digest digest{};
  unsigned int length = 0;
  EXPECT_EQ(EVP_Digest(data.data(), data.size(), digest.data(), &length, EVP_sha256(), nullptr), 1);
  EXPECT_EQ(length, digest.size());
  return digest;
}

Sha256Digest openssl_hmac(std::string_view key, std::string_view data) {
  static constexpr unsigned char kEmpty[1] = {0};
  Sha256Digest digest{};
  unsigned int length = 0;
  const auto* k = key.empty() ? kEmpty : reinterpret_cast<const unsigned char*>(key.data());
  const auto* d = data.empty() ? kEmpty : reinterpret_cast<const unsigned char*>(data.data());
  EXPECT_NE(
      HMAC(EVP_sha256(), k, static_cast<int>(key.size()), d, data.size(), digest.data(), &length),
      nullptr);
  EXPECT_EQ(length, digest.size());
  return digest;
}

std::string random_bytes(std::mt19937_64& rng, std::size_t size) {
  std::string out(size, '\0');
  for (char& c : out)
    c = static_cast<char>(rng() & 0xFFU);
  return out;
}

// Runs each test on the portable rounds and, where the CPU has them, on the
// SHA extensions.
class Sha256Paths : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override {
    detail::sha256_force_portable(GetParam());
    if (!GetParam() && !detail::sha256_uses_cpu_extensions()) {
      GTEST_SKIP() << "this CPU has no SHA extensions";
    }
    EXPECT_EQ(detail::sha256_uses_cpu_extensions(), !GetParam());
  }
  void TearDown() override { detail::sha256_force_portable(false); }
};

INSTANTIATE_TEST_SUITE_P(Sha256, Sha256Paths, ::testing::Values(true, false), [](const auto& path) {
  return std::string(path.param ? "Portable" : "CpuExtensions");
});

// FIPS 180-4 examples (NIST's "SHA256.pdf" and "SHA2_Additional.pdf").
TEST_P(Sha256Paths, Fips180Examples) {
  EXPECT_EQ(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  EXPECT_EQ(sha256_hex(std::string(1000000, 'a')),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_P(Sha256Paths, Rfc4231Vectors) {
  const std::string key4 =
      "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c\x0d\x0e\x0f\x10"
      "\x11\x12\x13\x14\x15\x16\x17\x18\x19";
  EXPECT_EQ(hex(hmac_sha256(std::string(20, '\x0b'), "Hi There")),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
  EXPECT_EQ(hex(hmac_sha256("Jefe", "what do ya want for nothing?")),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843");
  EXPECT_EQ(hex(hmac_sha256(std::string(20, '\xaa'), std::string(50, '\xdd'))),
            "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe");
  EXPECT_EQ(hex(hmac_sha256(key4, std::string(50, '\xcd'))),
            "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b");
  EXPECT_EQ(hex(hmac_sha256(std::string(20, '\x0c'), "Test With Truncation")).substr(0, 32),
            "a3b6167473100ee06e0c796c2955552b");
  EXPECT_EQ(hex(hmac_sha256(std::string(131, '\xaa'),
                            "Test Using Larger Than Block-Size Key - Hash Key First")),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
  EXPECT_EQ(hex(hmac_sha256(std::string(131, '\xaa'),
                            "This is a test using a larger than block-size key and a larger "
                            "than block-size data. The key needs to be hashed before being "
                            "used by the HMAC algorithm.")),
            "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2");
}

// Every length around the block and padding boundaries, then random lengths
// up to several blocks' worth of kilobytes, against OpenSSL.
TEST_P(Sha256Paths, MatchesOpenSslDigestForManyLengths) {
  std::mt19937_64 rng(20261203);
  for (std::size_t size = 0; size <= 300; ++size) {
    const std::string data = random_bytes(rng, size);
    Sha256 h;
    h.update(data);
    ASSERT_EQ(h.finish(), openssl_sha256(data)) << "size " << size;
  }
  std::uniform_int_distribution<std::size_t> length(0, 8192);
  for (int i = 0; i < 500; ++i) {
    const std::string data = random_bytes(rng, length(rng));
    Sha256 h;
    h.update(data);
    ASSERT_EQ(h.finish(), openssl_sha256(data)) << "size " << data.size();
  }
}

// Fed in random pieces (empty ones included), the digest is the one-shot one.
TEST_P(Sha256Paths, IncrementalUpdatesMatchOneShot) {
  std::mt19937_64 rng(7);
  std::uniform_int_distribution<std::size_t> length(0, 4096);
  std::uniform_int_distribution<std::size_t> piece(0, 150);
  Sha256 h;  // reused: finish() starts over
  for (int i = 0; i < 300; ++i) {
    const std::string data = random_bytes(rng, length(rng));
    std::string_view rest(data);
    while (!rest.empty()) {
      const std::size_t n = std::min(rest.size(), piece(rng));
      h.update(rest.substr(0, n));
      rest.remove_prefix(n);
    }
    ASSERT_EQ(h.finish(), openssl_sha256(data)) << "size " << data.size();
  }
}

// Keys of every length around the block size (64: used as is; 65: hashed
// first) and random keys and data, against OpenSSL's HMAC.
TEST_P(Sha256Paths, HmacMatchesOpenSsl) {
  std::mt19937_64 rng(42);
  for (std::size_t key_size = 0; key_size <= 200; ++key_size) {
    const std::string key = random_bytes(rng, key_size);
    const std::string data = random_bytes(rng, key_size * 7 % 300);
    ASSERT_EQ(hmac_sha256(key, data), openssl_hmac(key, data)) << "key size " << key_size;
  }
  std::uniform_int_distribution<std::size_t> key_length(0, 1000);
  std::uniform_int_distribution<std::size_t> data_length(0, 6000);
  for (int i = 0; i < 500; ++i) {
    const std::string key = random_bytes(rng, key_length(rng));
    const std::string data = random_bytes(rng, data_length(rng));
    ASSERT_EQ(hmac_sha256(key, data), openssl_hmac(key, data))
        << "key size " << key.size() << ", data size " << data.size();
  }
}

TEST(Sha256, BothPathsAgreeOnLargeInput) {
  std::mt19937_64 rng(1);
  const std::string data = random_bytes(rng, 3 << 20);
  detail::sha256_force_portable(true);
  const Sha256Digest portable = hmac_sha256("k", data);
  detail::sha256_force_portable(false);
  EXPECT_EQ(hmac_sha256("k", data), portable);
  EXPECT_EQ(portable, openssl_hmac("k", data));
}

}  // namespace
}  // namespace metrics::core
