#include "metrics/server/content.hpp"

#include <gtest/gtest.h>

namespace metrics::server {
namespace {

TEST(AcceptsGzip, HonoursQValues) {
  EXPECT_TRUE(accepts_gzip("gzip"));
  EXPECT_TRUE(accepts_gzip("deflate, gzip;q=0.5"));
  EXPECT_TRUE(accepts_gzip("GZIP"));
  EXPECT_TRUE(accepts_gzip("*"));
  EXPECT_TRUE(accepts_gzip("br;q=1.0, *;q=0.1"));
  EXPECT_FALSE(accepts_gzip(""));
  EXPECT_FALSE(accepts_gzip("identity"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0"));
  EXPECT_FALSE(accepts_gzip("gzip;q=0.000"));
  EXPECT_FALSE(accepts_gzip("*, gzip;q=0"));
  EXPECT_FALSE(accepts_gzip("*;q=0"));
  EXPECT_FALSE(accepts_gzip("gzip;q=abc"));
}

TEST(ContentType, JsonDetection) {
  EXPECT_TRUE(is_json_content_type(""));
  EXPECT_TRUE(is_json_content_type("application/json"));
  EXPECT_TRUE(is_json_content_type("Application/JSON; charset=utf-8"));
  EXPECT_TRUE(is_json_content_type("application/vnd.metrics+json"));
  EXPECT_FALSE(is_json_content_type("text/plain"));
  EXPECT_FALSE(is_json_content_type("application/x-www-form-urlencoded"));
  EXPECT_FALSE(is_json_content_type("application/+json"));
}

TEST(ContentEncoding, Parses) {
  EXPECT_EQ(parse_content_encoding(""), BodyEncoding::identity);
  EXPECT_EQ(parse_content_encoding("identity"), BodyEncoding::identity);
  EXPECT_EQ(parse_content_encoding("gzip"), BodyEncoding::gzip);
  EXPECT_EQ(parse_content_encoding(" X-GZIP "), BodyEncoding::gzip);
  EXPECT_EQ(parse_content_encoding("br"), BodyEncoding::unsupported);
  EXPECT_EQ(parse_content_encoding("gzip, br"), BodyEncoding::unsupported);
}

}  // namespace
}  // namespace metrics::server
