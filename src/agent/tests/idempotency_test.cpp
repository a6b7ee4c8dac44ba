// Exactly-once writes from the agent's side (API.md, "Exactly-once
// writes"): every request carries an Idempotency-Key (in the envelope too,
// so the signature covers it), every retry of a request carries the same key
// and the same bytes, and a request whose outcome is unknown is sent again
// with its key until the server answers for good, also after the retry
// schedule ran out and at shutdown. Against the loopback FakeServer playing
// an idempotent server: it applies each key once, answers a replay 200 and
// a key with another body 422, and loses answers on purpose.
#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include "fake_server.hpp"
#include "fast_config.hpp"
#include "http_sender.hpp"
#include "metrics/agent/agent.hpp"
#include "metrics/core/gzip.hpp"
#include "metrics/core/json_codec.hpp"
#include "metrics/core/signature.hpp"

namespace metrics::agent {
namespace {

using namespace std::chrono_literals;
using testing::FakeServer;
using testing::Reply;
using testing::Request;

using testing::fast_config;

std::string key_of(const Request& r) {
  const auto it = r.headers.find("idempotency-key");
  return it == r.headers.end() ? std::string() : it->second;
}

// What an idempotent server does with the agent's requests: each key applied
// once; the counter sums of what it applied; whether a key ever came with
// another body (it must not).
class IdempotentServer {
 public:
  // lose(n, request): true to apply request number n (from 0) and lose its
  // answer (a 500 of unknown outcome, or no answer at all).
  using Lose = std::function<bool(int, const Request&)>;

  explicit IdempotentServer(Lose lose, std::chrono::milliseconds lost_delay = 0ms)
      : lose_(std::move(lose)), lost_delay_(lost_delay) {
    server_.set_handler([this](const Request& r) { return handle(r); });
  }

  FakeServer& fake() { return server_; }
  std::int64_t applied_sum(const std::string& id) const {
    const std::lock_guard lock(mu_);
    const auto it = sums_.find(id);
    return it == sums_.end() ? 0 : it->second;
  }
  int replays() const { return replays_.load(); }
  int lost() const { return lost_.load(); }
  int conflicts() const { return conflicts_.load(); }
  int unkeyed() const { return unkeyed_.load(); }
  // The keys whose answers were lost, in order.
  std::vector<std::string> lost_keys() const {
    const std::lock_guard lock(mu_);
    return lost_keys_;
  }

 private:
  Reply handle(const Request& r) {
    const int n = calls_++;
    const std::string key = key_of(r);
    if (key.empty()) {
      ++unkeyed_;
      return testing::status_reply(400, R"({"error":"no key"})");
    }
    // The text mode's request is its path; the others' their body.
    const std::string identity = r.path + "\n" + r.body;
    bool replay = false;
    {
      const std::lock_guard lock(mu_);
      if (const auto it = bodies_.find(key); it != bodies_.end()) {
        if (it->second != identity) {
          ++conflicts_;
          return testing::status_reply(422, R"({"error":"key reused with another body"})");
        }
        replay = true;
      } else {
        bodies_.emplace(key, identity);
        for (const auto& m : testing::decode_request(r)) {
          if (m.type == "counter") sums_[m.id] += m.delta;
        }
      }
    }
    // Lost or not, what is applied stays applied.
    if (lose_(n, r)) {
      ++lost_;
      {
        const std::lock_guard lock(mu_);
        lost_keys_.push_back(key);
      }
      if (lost_delay_ > 0ms) {
        Reply slow = testing::status_reply(200, "[]");
        slow.delay = lost_delay_;  // longer than the agent waits: no answer
        return slow;
      }
      return testing::status_reply(500, R"({"error":"outcome unknown"})");
    }
    Reply ok = testing::status_reply(200, "[]");
    if (replay) {
      ++replays_;
      ok.headers.emplace_back("Idempotent-Replayed", "true");
    }
    return ok;
  }

  Lose lose_;
  std::chrono::milliseconds lost_delay_;
  FakeServer server_;
  std::atomic<int> calls_{0};
  std::atomic<int> replays_{0};
  std::atomic<int> lost_{0};
  std::atomic<int> conflicts_{0};
  std::atomic<int> unkeyed_{0};
  mutable std::mutex mu_;
  std::map<std::string, std::string> bodies_;
  std::map<std::string, std::int64_t> sums_;
  std::vector<std::string> lost_keys_;
};

// The requests that carried `key`.
std::vector<Request> with_key(const std::vector<Request>& requests, const std::string& key) {
  std::vector<Request> out;
  for (const auto& r : requests) {
    if (key_of(r) == key) out.push_back(r);
  }
  return out;
}

bool wait_until_count(const FakeServer& server, const std::string& key, std::size_t n,
                      std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (with_key(server.requests(), key).size() < n) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

TEST(IdempotencyKeyTest, KeysAreUniquePerAgentAndBounded) {
  const std::string a = detail::random_key_prefix();
  const std::string b = detail::random_key_prefix();
  EXPECT_EQ(a.size(), 32U);
  EXPECT_NE(a, b);
  EXPECT_EQ(detail::idempotency_key(a, 7), a + "-7");
  EXPECT_LE(detail::idempotency_key(a, UINT64_MAX).size(), 128U);
}

TEST(IdempotencyKeyTest, TheEnvelopeCarriesTheKeyFirst) {
  const auto identity = core::Labels::make({{"job", "j"}});
  const std::vector<core::Update> batch{core::Update::counter("C", 3)};
  const std::string json =
      core::gzip_decompress(detail::encode_body(identity, batch, "k-1"), 1 << 20);
  EXPECT_EQ(
      json,
      R"({"idempotency_key":"k-1","labels":{"job":"j"},"metrics":[{"id":"C","type":"counter","delta":3}]})");
  // Without a key, the envelope of before.
  EXPECT_EQ(core::gzip_decompress(detail::encode_body(identity, batch), 1 << 20),
            core::encode_envelope(identity, batch));
}

TEST(AgentIdempotencyTest, EveryBatchHasItsOwnKeyInTheHeaderAndTheSignedEnvelope) {
  FakeServer server("secret");
  auto config = fast_config(server);
  config.key = "secret";
  Agent agent(config);
  ASSERT_TRUE(agent.running()) << agent.error();
  ASSERT_TRUE(server.wait_for_requests(3, 10s));
  ASSERT_TRUE(agent.shutdown(5s));
  std::set<std::string> keys;
  for (const auto& r : server.requests()) {
    const std::string key = key_of(r);
    ASSERT_FALSE(key.empty());
    EXPECT_LE(key.size(), 128U);
    keys.insert(key);
    const std::string json = core::gzip_decompress(r.body, 1 << 20);
    EXPECT_TRUE(json.starts_with(R"({"idempotency_key":")" + key + R"(",)")) << json;
    // The signature is of the body as sent: the key inside is covered.
    EXPECT_EQ(r.headers.at("hashsha256"), core::hmac_sha256_hex("secret", r.body));
  }
  EXPECT_EQ(keys.size(), server.requests().size());
}

TEST(AgentIdempotencyTest, EveryRetryCarriesTheSameKeyAndBytes) {
  // 500 (outcome unknown) twice, then 200: three attempts of one request.
  IdempotentServer server([](int n, const Request&) { return n < 2; });
  auto config = fast_config(server.fake());
  config.report_interval = 1h;  // only the flush sends
  Agent agent(config);
  ASSERT_TRUE(agent.add_counter("Jobs", 7));
  ASSERT_TRUE(agent.flush(10s));
  // (A flush may send a later sample in a batch of its own, with its own key.)
  ASSERT_EQ(server.lost_keys().size(), 2U);
  const std::string key = server.lost_keys()[0];
  EXPECT_EQ(server.lost_keys()[1], key);
  const auto requests = with_key(server.fake().requests(), key);
  ASSERT_EQ(requests.size(), 3U);
  for (const auto& r : requests)
    EXPECT_EQ(r.body, requests[0].body);
  EXPECT_EQ(requests[2].answered_status, 200);
  EXPECT_EQ(server.replays(), 1);  // the second attempt's answer was lost too
  EXPECT_EQ(server.applied_sum("Jobs"), 7);
  agent.shutdown(5s);
}

// A batch whose answers are lost more times than the retry schedule allows
// is held with its key and sent again at later reports; new samples go in
// batches of their own (never merged into the held one), so the server
// applies every delta exactly once.
TEST(AgentIdempotencyTest, AnInDoubtBatchOutlivesTheRetryScheduleWithItsKey) {
  std::atomic<bool> losing{true};
  IdempotentServer server([&](int, const Request&) { return losing.load(); });
  auto config = fast_config(server.fake());
  config.retry_backoff = {2ms};  // two attempts per report
  Agent agent(config);
  std::int64_t added = 0;
  for (int i = 0; i < 150; ++i) {
    ASSERT_TRUE(agent.add_counter("Hits", i % 5 + 1));
    added += i % 5 + 1;
    std::this_thread::sleep_for(1ms);
  }
  // Several report rounds ran while every answer was lost.
  ASSERT_TRUE(server.fake().wait_for_requests(6, 10s));
  losing = false;
  ASSERT_TRUE(agent.shutdown(10s));
  EXPECT_GE(agent.stats().batches_requeued, 1U);
  EXPECT_GT(server.lost(), 2);
  EXPECT_GT(server.replays(), 0);
  EXPECT_EQ(server.conflicts(), 0);
  EXPECT_EQ(server.unkeyed(), 0);
  EXPECT_EQ(server.applied_sum("Hits"), added);
  EXPECT_EQ(server.applied_sum("PollCount"), static_cast<std::int64_t>(agent.stats().polls));
  // The first key was sent more often than one retry schedule's two attempts.
  std::map<std::string, int> per_key;
  for (const auto& r : server.fake().requests())
    ++per_key[key_of(r)];
  EXPECT_GT(per_key[key_of(server.fake().requests().front())], 2);
}

// No answer at all (the server applies, then is too slow): a timeout is an
// unknown outcome too.
TEST(AgentIdempotencyTest, ATimedOutRequestIsResentWithItsKey) {
  IdempotentServer server([](int n, const Request&) { return n == 0; }, 600ms);
  auto config = fast_config(server.fake());
  config.report_interval = 1h;
  config.request_timeout = 200ms;
  Agent agent(config);
  ASSERT_TRUE(agent.add_counter("Jobs", 5));
  ASSERT_TRUE(agent.flush(10s));
  agent.shutdown(5s);
  ASSERT_TRUE(server.fake().wait_for_requests(2, 5s));
  EXPECT_EQ(server.lost(), 1);
  ASSERT_EQ(server.lost_keys().size(), 1U);
  // The slow answer is recorded once sent, after the resend's.
  ASSERT_TRUE(wait_until_count(server.fake(), server.lost_keys()[0], 2, 5s));
  EXPECT_GE(server.replays(), 1);
  EXPECT_EQ(server.applied_sum("Jobs"), 5);
}

// A held request goes out with its key in the final send at shutdown.
TEST(AgentIdempotencyTest, ShutdownResendsAHeldRequestWithItsKey) {
  std::atomic<bool> losing{true};
  IdempotentServer server([&](int, const Request&) { return losing.load(); });
  auto config = fast_config(server.fake());
  config.report_interval = 1h;
  config.retry_backoff = {};  // one attempt
  Agent agent(config);
  ASSERT_TRUE(agent.add_counter("Jobs", 9));
  EXPECT_FALSE(agent.flush(5s));  // the answer was lost: held
  EXPECT_GE(agent.stats().batches_requeued, 1U);
  ASSERT_FALSE(server.lost_keys().empty());
  const std::string first = server.lost_keys().front();
  losing = false;
  ASSERT_TRUE(agent.shutdown(5s));
  const auto requests = with_key(server.fake().requests(), first);
  ASSERT_GE(requests.size(), 2U);
  EXPECT_EQ(requests.back().answered_status, 200);
  EXPECT_GE(server.replays(), 1);
  EXPECT_EQ(server.applied_sum("Jobs"), 9);
  EXPECT_EQ(server.applied_sum("PollCount"), static_cast<std::int64_t>(agent.stats().polls));
}

// A 503 says "not applied": that request needs no key of its own, and its
// metrics go back to the pending set (merged with newer ones under a new key).
TEST(AgentIdempotencyTest, ANotAppliedRequestIsMergedBackUnderANewKey) {
  FakeServer server;
  std::atomic<int> calls{0};
  server.set_handler(
      [&](const Request&) { return testing::status_reply(calls++ == 0 ? 503 : 200, "[]"); });
  auto config = fast_config(server);
  config.report_interval = 1h;
  config.retry_backoff = {};
  Agent agent(config);
  ASSERT_TRUE(agent.add_counter("Jobs", 4));
  EXPECT_FALSE(agent.flush(5s));
  ASSERT_TRUE(agent.add_counter("Jobs", 6));
  ASSERT_TRUE(agent.flush(5s));
  agent.shutdown(5s);
  const auto requests = server.requests();
  ASSERT_GE(requests.size(), 2U);
  EXPECT_NE(key_of(requests[0]), key_of(requests[1]));
  EXPECT_EQ(testing::acknowledged_counter_sum(requests, "Jobs"), 10);
}

// The agent persists nothing: a restarted agent (a new Agent, a new process)
// starts with nothing unsent and keys of its own, so it can never have a
// fresh batch answered as the replay of one sent before the restart.
TEST(AgentIdempotencyTest, ARestartedAgentUsesKeysOfItsOwn) {
  FakeServer server;
  std::set<std::string> before;
  {
    Agent agent(fast_config(server));
    ASSERT_TRUE(server.wait_for_requests(2, 10s));
    ASSERT_TRUE(agent.shutdown(5s));
    for (const auto& r : server.requests())
      before.insert(key_of(r));
  }
  const std::size_t seen = server.requests().size();
  Agent again(fast_config(server));
  ASSERT_TRUE(server.wait_for_requests(seen + 2, 10s));
  ASSERT_TRUE(again.shutdown(5s));
  const auto requests = server.requests();
  for (std::size_t i = seen; i < requests.size(); ++i)
    EXPECT_EQ(before.count(key_of(requests[i])), 0U) << key_of(requests[i]);
}

class IdempotentModeTest : public ::testing::TestWithParam<SendMode> {};

// One request per metric: each has its own key (header only: no envelope),
// kept across lost answers, and the sums applied are exact.
TEST_P(IdempotentModeTest, SingleRequestsKeepTheirKeysAcrossLostAnswers) {
  std::atomic<bool> flaky{true};
  IdempotentServer server([&](int n, const Request&) { return flaky && n % 3 == 0; });
  auto config = fast_config(server.fake());
  config.send_mode = GetParam();
  config.retry_backoff = {2ms};
  config.collect_system = false;
  Agent agent(config);
  std::int64_t added = 0;
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(agent.add_counter("Hits", i % 7 + 1));
    added += i % 7 + 1;
    std::this_thread::sleep_for(1ms);
  }
  flaky = false;
  ASSERT_TRUE(agent.shutdown(20s));
  EXPECT_GT(server.lost(), 0);
  EXPECT_GT(server.replays(), 0);
  EXPECT_EQ(server.conflicts(), 0);
  EXPECT_EQ(server.unkeyed(), 0);
  EXPECT_EQ(server.applied_sum("Hits"), added);
  EXPECT_EQ(server.applied_sum("PollCount"), static_cast<std::int64_t>(agent.stats().polls));
}

INSTANTIATE_TEST_SUITE_P(Modes, IdempotentModeTest,
                         ::testing::Values(SendMode::batch, SendMode::json, SendMode::text),
                         [](const auto& mode) { return std::string(to_string(mode.param)); });

}  // namespace
}  // namespace metrics::agent
