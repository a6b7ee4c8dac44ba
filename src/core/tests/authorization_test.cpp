#include "metrics/core/authorization.hpp"

#include <gtest/gtest.h>

#include <stdexcept>

namespace metrics::core {
namespace {

TEST(AuthorizationTest, BasicAsRfc7617) {
  // The example of RFC 7617, section 2.
  EXPECT_EQ(authorization_value("Aladdin:open sesame", ""), "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("\xff\xfe"), "//4=");
}

TEST(AuthorizationTest, BearerWinsAndEmptyIsNone) {
  EXPECT_EQ(authorization_value("a:b", "tok"), "Bearer tok");
  EXPECT_EQ(authorization_value("", ""), "");
}

TEST(AuthorizationTest, ChecksTheShape) {
  EXPECT_NO_THROW(check_credentials("alice:pa:ss", ""));
  EXPECT_THROW(check_credentials("alice", ""), std::invalid_argument);
  EXPECT_THROW(check_credentials(":pw", ""), std::invalid_argument);
  EXPECT_THROW(check_credentials("", "a b"), std::invalid_argument);
  EXPECT_THROW(check_credentials("a:b\r\nX: y", ""), std::invalid_argument);
}

}  // namespace
}  // namespace metrics::core
