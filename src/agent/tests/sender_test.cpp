#include <gtest/gtest.h>

#include <vector>

#include "http_sender.hpp"
#include "metrics/core/gzip.hpp"
#include "metrics/core/json_codec.hpp"

namespace metrics::agent::detail {
namespace {

using namespace std::chrono_literals;

TEST(UpdatesUrlTest, AcceptedForms) {
  EXPECT_EQ(updates_url("localhost:8080"), "http://localhost:8080/updates/");
  EXPECT_EQ(updates_url(":8080"), "http://localhost:8080/updates/");
  EXPECT_EQ(updates_url("[::1]:9000"), "http://[::1]:9000/updates/");
  EXPECT_EQ(updates_url("http://example.com"), "http://example.com/updates/");
  EXPECT_EQ(updates_url("https://example.com:8443/"), "https://example.com:8443/updates/");
  EXPECT_EQ(updates_url("http://h:1/base/"), "http://h:1/base/updates/");
}

TEST(UpdatesUrlTest, RejectedForms) {
  for (const char* bad :
       {"", "localhost", "localhost:", "localhost:0", "localhost:70000", "localhost:http",
        "ftp://x:1", "host/path:80", "::1:80", "http://", "http://:8080", "a b:80"}) {
    std::string why;
    EXPECT_FALSE(updates_url(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

TEST(RetryTest, ScheduleThenGiveUp) {
  const std::vector<std::chrono::milliseconds> schedule{1s, 3s, 5s};
  EXPECT_EQ(retry_delay(schedule, 0, std::nullopt), 1s);
  EXPECT_EQ(retry_delay(schedule, 1, std::nullopt), 3s);
  EXPECT_EQ(retry_delay(schedule, 2, std::nullopt), 5s);
  EXPECT_EQ(retry_delay(schedule, 3, std::nullopt), std::nullopt);
  EXPECT_EQ(retry_delay(schedule, 0, 7s), 7s);
  EXPECT_EQ(retry_delay(schedule, 0, 3600s), 60s);
  EXPECT_EQ(retry_delay(schedule, 3, 2s), std::nullopt);
  EXPECT_EQ(retry_delay({}, 0, std::nullopt), std::nullopt);
}

TEST(RetryTest, RetryAfterParsing) {
  EXPECT_EQ(parse_retry_after("2"), 2s);
  EXPECT_EQ(parse_retry_after(" 10 "), 10s);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), std::nullopt);
  EXPECT_EQ(parse_retry_after("-1"), std::nullopt);
  EXPECT_EQ(parse_retry_after(""), std::nullopt);
}

TEST(EncodeBodyTest, GzipJsonArray) {
  const std::vector<core::Metric> batch{core::Metric::counter("PollCount", 3),
                                        core::Metric::gauge("RandomValue", 0.5)};
  const std::string body = encode_body(batch);
  ASSERT_GE(body.size(), 2U);
  EXPECT_EQ(static_cast<unsigned char>(body[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(body[1]), 0x8b);
  EXPECT_EQ(core::gzip_decompress(body, 1 << 20), core::encode_batch(batch));
}

}  // namespace
}  // namespace metrics::agent::detail
