// The pure parts of the outbound client: answer classification, the retry
// schedule with Retry-After, the one retry loop over a fake transport, and
// the rate-limited failure log.
#include "metrics/outbound/retry.hpp"

#include <gtest/gtest.h>

#include <deque>
#include <vector>

#include "metrics/outbound/failure_log.hpp"

namespace metrics::outbound {
namespace {

using namespace std::chrono_literals;

Response answered(long status, std::string retry_after = {}, bool signature_ok = true) {
  Response r;
  r.transport = Transport::answered;
  r.status = status;
  r.retry_after = std::move(retry_after);
  r.signature_ok = signature_ok;
  return r;
}

Response transport(Transport t) {
  Response r;
  r.transport = t;
  r.error = "boom";
  return r;
}

TEST(ClassifyTest, EveryKindOfAnswer) {
  EXPECT_EQ(classify(answered(200)).verdict, Verdict::success);
  EXPECT_EQ(classify(answered(204)).verdict, Verdict::success);
  // A 2xx whose signature fails: the peer may have acted, the answer is not trusted.
  EXPECT_EQ(classify(answered(200, {}, false)).verdict, Verdict::unknown);
  EXPECT_EQ(classify(transport(Transport::not_sent)).verdict, Verdict::retry_later);
  EXPECT_EQ(classify(transport(Transport::unknown)).verdict, Verdict::unknown);
  for (const long s : {400L, 413L, 414L, 415L, 422L}) {
    EXPECT_EQ(classify(answered(s)).verdict, Verdict::permanent) << s;
  }
  for (const long s : {301L, 401L, 404L, 408L, 429L, 502L, 503L}) {
    EXPECT_EQ(classify(answered(s)).verdict, Verdict::retry_later) << s;
  }
  EXPECT_EQ(classify(answered(500)).verdict, Verdict::unknown);
  EXPECT_EQ(classify(answered(504)).verdict, Verdict::unknown);
}

TEST(ClassifyTest, RetryAfterOnlyOn429And503) {
  const auto c429 = classify(answered(429, "7"));
  EXPECT_EQ(c429.verdict, Verdict::retry_after);
  EXPECT_EQ(c429.retry_after, 7s);
  const auto c503 = classify(answered(503, " 2 "));
  EXPECT_EQ(c503.verdict, Verdict::retry_after);
  EXPECT_EQ(c503.retry_after, 2s);
  // A date is not understood: the schedule applies.
  EXPECT_EQ(classify(answered(503, "Wed, 21 Oct 2015 07:28:00 GMT")).verdict, Verdict::retry_later);
  EXPECT_EQ(classify(answered(502, "5")).verdict, Verdict::retry_later);
  EXPECT_EQ(classify(answered(200, "5")).verdict, Verdict::success);
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
  EXPECT_EQ(parse_retry_after("99999"), 3600s);
  EXPECT_EQ(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), std::nullopt);
  EXPECT_EQ(parse_retry_after("-1"), std::nullopt);
  EXPECT_EQ(parse_retry_after("1.5"), std::nullopt);
  EXPECT_EQ(parse_retry_after(""), std::nullopt);
}

// Answers from a script, recording what it was asked.
class ScriptedTransport final : public Transporter {
 public:
  explicit ScriptedTransport(std::deque<Response> script) : script_(std::move(script)) {}
  Response perform(const Request& request) noexcept override {
    bodies.emplace_back(request.body);
    if (script_.empty()) return answered(200);
    Response r = script_.front();
    script_.pop_front();
    return r;
  }
  std::vector<std::string> bodies;

 private:
  std::deque<Response> script_;
};

TEST(SendWithRetryTest, RetriesTheSameBytesOnTheScheduleUntilSuccess) {
  ScriptedTransport t({transport(Transport::not_sent), answered(500), answered(429, "4")});
  const std::vector<std::chrono::milliseconds> schedule{10ms, 20ms, 30ms, 40ms};
  std::vector<std::chrono::milliseconds> waits;
  std::vector<Verdict> seen;
  Request request;
  request.url = "http://x/";
  request.body = "abc";
  const auto result = send_with_retry(
      t, request, schedule,
      [&](std::chrono::milliseconds d) {
        waits.push_back(d);
        return true;
      },
      [&](const Response&, const Classification& c) { seen.push_back(c.verdict); });
  EXPECT_EQ(result.verdict, Verdict::success);
  EXPECT_EQ(result.attempts, 4U);
  EXPECT_EQ(waits, (std::vector<std::chrono::milliseconds>{10ms, 20ms, 4s}));
  EXPECT_EQ(seen, (std::vector<Verdict>{Verdict::retry_later, Verdict::unknown,
                                        Verdict::retry_after, Verdict::success}));
  EXPECT_EQ(t.bodies, (std::vector<std::string>(4, "abc")));
}

TEST(SendWithRetryTest, PermanentFailureIsNotRetried) {
  ScriptedTransport t({answered(400)});
  const std::vector<std::chrono::milliseconds> schedule{1ms, 1ms};
  int waits = 0;
  const auto result = send_with_retry(t, Request{}, schedule, [&](std::chrono::milliseconds) {
    ++waits;
    return true;
  });
  EXPECT_EQ(result.verdict, Verdict::permanent);
  EXPECT_EQ(result.attempts, 1U);
  EXPECT_EQ(waits, 0);
}

TEST(SendWithRetryTest, GivesUpWhenTheScheduleRunsOutOrTheWaitRefuses) {
  {
    ScriptedTransport t(std::deque<Response>(5, answered(503)));
    const std::vector<std::chrono::milliseconds> schedule{1ms, 1ms};
    const auto result =
        send_with_retry(t, Request{}, schedule, [](std::chrono::milliseconds) { return true; });
    EXPECT_EQ(result.verdict, Verdict::retry_later);
    EXPECT_EQ(result.attempts, 3U);
    EXPECT_EQ(result.last.status, 503);
  }
  {
    ScriptedTransport t(std::deque<Response>(5, answered(503)));
    const std::vector<std::chrono::milliseconds> schedule{1ms, 1ms};
    const auto result =
        send_with_retry(t, Request{}, schedule, [](std::chrono::milliseconds) { return false; });
    EXPECT_EQ(result.attempts, 1U);
  }
}

TEST(FailureLogTest, FirstAtOnceThenRateLimitedWithCountThenRecovery) {
  FailureLog log(30s);
  const auto t0 = std::chrono::steady_clock::time_point{} + 1000s;
  const auto first = log.failure(t0, "http://h:1/updates/", "Couldn't connect to server");
  ASSERT_TRUE(first);
  EXPECT_NE(first->find("cannot send to http://h:1/updates/: Couldn't connect to server"),
            std::string::npos);
  EXPECT_TRUE(log.failing());
  for (int i = 1; i <= 9; ++i) {
    EXPECT_FALSE(log.failure(t0 + std::chrono::seconds{i * 3}, "u", "x")) << i;
  }
  const auto later = log.failure(t0 + 31s, "u", "still refused");
  ASSERT_TRUE(later);
  EXPECT_NE(later->find("9 more failures"), std::string::npos) << *later;
  EXPECT_NE(later->find("after 31 s"), std::string::npos) << *later;
  EXPECT_FALSE(log.failure(t0 + 40s, "u", "x"));
  const auto back = log.success(t0 + 45s, "u");
  ASSERT_TRUE(back);
  EXPECT_NE(back->find("recovered after 12 failed attempts"), std::string::npos) << *back;
  EXPECT_FALSE(log.failing());
  EXPECT_FALSE(log.success(t0 + 46s, "u"));
  // A new outage is reported at once again.
  EXPECT_TRUE(log.failure(t0 + 47s, "u", "x"));
}

}  // namespace
}  // namespace metrics::outbound
