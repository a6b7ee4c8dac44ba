#include "metrics/core/signature.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cctype>
#include <string>

namespace metrics::core {
namespace {

// RFC 4231, test case 2.
constexpr std::string_view kKey = "Jefe";
constexpr std::string_view kData = "what do ya want for nothing?";
constexpr std::string_view kMac =
    "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843";

TEST(Hmac, Rfc4231TestCase2) {
  EXPECT_EQ(hmac_sha256_hex(kKey, kData), kMac);
}

TEST(Hmac, Rfc4231TestCase1) {
  const std::string key(20, '\x0b');
  EXPECT_EQ(hmac_sha256_hex(key, "Hi There"),
            "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7");
}

TEST(Hmac, Rfc4231TestCase6LongKey) {
  const std::string key(131, '\xaa');
  EXPECT_EQ(hmac_sha256_hex(key, "Test Using Larger Than Block-Size Key - Hash Key First"),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54");
}

TEST(Hmac, EmptyKeyAndData) {
  EXPECT_EQ(hmac_sha256_hex("", ""),
            "b613679a0814d9ec772f95d778c35fc5ff1697c493715653c6c712144292c5ad");
  EXPECT_EQ(hmac_sha256_hex("key", "").size(), 64U);
}

TEST(Hmac, BinaryDataWithNulBytes) {
  const std::string a("a\0b", 3);
  const std::string b("a\0c", 3);
  EXPECT_NE(hmac_sha256_hex("k", a), hmac_sha256_hex("k", b));
}

TEST(Verify, AcceptsTheRightSignatureInEitherCase) {
  EXPECT_TRUE(verify_signature(kKey, kData, kMac));
  std::string upper(kMac);
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  EXPECT_TRUE(verify_signature(kKey, kData, upper));
}

TEST(Verify, RejectsWrongSignatures) {
  std::string flipped(kMac);
  flipped[10] = flipped[10] == '0' ? '1' : '0';
  EXPECT_FALSE(verify_signature(kKey, kData, flipped));
  EXPECT_FALSE(verify_signature("other", kData, kMac));
  EXPECT_FALSE(verify_signature(kKey, "other data", kMac));
  EXPECT_FALSE(verify_signature(kKey, kData, ""));
  EXPECT_FALSE(verify_signature(kKey, kData, kMac.substr(0, 63)));
  EXPECT_FALSE(verify_signature(kKey, kData, std::string(kMac) + "0"));
  std::string not_hex(kMac);
  not_hex[0] = 'g';
  EXPECT_FALSE(verify_signature(kKey, kData, not_hex));
  EXPECT_FALSE(verify_signature(kKey, kData, " " + std::string(kMac.substr(1))));
}

}  // namespace
}  // namespace metrics::core
