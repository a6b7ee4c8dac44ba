#include "metrics/loadgen/http_response.hpp"

#include <gtest/gtest.h>

namespace metrics::loadgen {
namespace {

TEST(ParseResponseHead, OkWithLength) {
  const std::string_view answer =
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\ncontent-length: 5\r\n\r\n[1,2]";
  ResponseHead h;
  ASSERT_EQ(parse_response_head(answer, h), HeadStatus::complete);
  EXPECT_EQ(h.status, 200u);
  EXPECT_EQ(h.content_length, 5u);
  EXPECT_EQ(h.head_bytes, answer.size() - 5);
  EXPECT_TRUE(h.keep_alive);
}

TEST(ParseResponseHead, IdempotentReplay) {
  ResponseHead h;
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n"
                                "idempotent-replayed: true\r\n\r\n[]",
                                h),
            HeadStatus::complete);
  EXPECT_TRUE(h.replayed);
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]", h),
            HeadStatus::complete);
  EXPECT_FALSE(h.replayed);
}

TEST(ParseResponseHead, IncompleteUntilBlankLine) {
  ResponseHead h;
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n", h),
            HeadStatus::incomplete);
  EXPECT_EQ(parse_response_head("", h), HeadStatus::incomplete);
}

TEST(ParseResponseHead, ConnectionClose) {
  ResponseHead h;
  ASSERT_EQ(parse_response_head(
                "HTTP/1.1 503 Service Unavailable\r\nConnection: Close\r\nRetry-After: 1\r\n"
                "Content-Length: 0\r\n\r\n",
                h),
            HeadStatus::complete);
  EXPECT_EQ(h.status, 503u);
  EXPECT_FALSE(h.keep_alive);
}

TEST(ParseResponseHead, Http10ClosesUnlessKeepAlive) {
  ResponseHead h;
  ASSERT_EQ(parse_response_head("HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", h),
            HeadStatus::complete);
  EXPECT_FALSE(h.keep_alive);
  ASSERT_EQ(parse_response_head(
                "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", h),
            HeadStatus::complete);
  EXPECT_TRUE(h.keep_alive);
}

TEST(ParseResponseHead, NoContentNeedsNoLength) {
  ResponseHead h;
  ASSERT_EQ(parse_response_head("HTTP/1.1 204 No Content\r\n\r\n", h), HeadStatus::complete);
  EXPECT_EQ(h.content_length, 0u);
}

TEST(ParseResponseHead, RejectsWhatItCannotFrame) {
  ResponseHead h;
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", h),
            HeadStatus::malformed);
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\n\r\n", h), HeadStatus::malformed);
  EXPECT_EQ(parse_response_head("HTTP/1.1 2x0 OK\r\nContent-Length: 0\r\n\r\n", h),
            HeadStatus::malformed);
  EXPECT_EQ(parse_response_head("SMTP 220 hello\r\n\r\n", h), HeadStatus::malformed);
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", h),
            HeadStatus::malformed);
  EXPECT_EQ(
      parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", h),
      HeadStatus::malformed);
  EXPECT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nno colon\r\n\r\n", h), HeadStatus::malformed);
}

TEST(ParseResponseHead, PipelinedAnswersParseOneAtATime) {
  const std::string_view two =
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n42HTTP/1.1 404 Not Found\r\n"
      "Content-Length: 9\r\n\r\nnot found";
  ResponseHead h;
  ASSERT_EQ(parse_response_head(two, h), HeadStatus::complete);
  EXPECT_EQ(two.substr(h.head_bytes, h.content_length), "42");
  const auto rest = two.substr(h.head_bytes + h.content_length);
  ASSERT_EQ(parse_response_head(rest, h), HeadStatus::complete);
  EXPECT_EQ(h.status, 404u);
  EXPECT_EQ(rest.substr(h.head_bytes), "not found");
}

TEST(ParseResponseHead, RetryAfterSecondsAreRead) {
  ResponseHead h;
  ASSERT_EQ(
      parse_response_head(
          "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 2\r\nContent-Length: 0\r\n\r\n", h),
      HeadStatus::complete);
  EXPECT_EQ(h.retry_after_s, 2u);
  ASSERT_EQ(parse_response_head("HTTP/1.1 429 Too Many Requests\r\nretry-after:  99999 \r\n"
                                "Content-Length: 0\r\n\r\n",
                                h),
            HeadStatus::complete);
  EXPECT_EQ(h.retry_after_s, 3600u);  // capped
  // An HTTP date is not followed (the server never sends one): no wait.
  ASSERT_EQ(parse_response_head("HTTP/1.1 503 Service Unavailable\r\n"
                                "Retry-After: Wed, 21 Oct 2015 07:28:00 GMT\r\n"
                                "Content-Length: 0\r\n\r\n",
                                h),
            HeadStatus::complete);
  EXPECT_EQ(h.retry_after_s, 0u);
  ASSERT_EQ(parse_response_head("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", h),
            HeadStatus::complete);
  EXPECT_EQ(h.retry_after_s, 0u);
}

}  // namespace
}  // namespace metrics::loadgen
