// The agent end to end against the loopback FakeServer: batches gzip'd and
// signed, retries, outages, rate limit, flush and shutdown. Intervals are
// milliseconds and every wait is bounded.
#include "metrics/agent/agent.hpp"

#include <errno.h>  // program_invocation_short_name
#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <cmath>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include "fake_server.hpp"
#include "fast_config.hpp"
#include "metrics/core/signature.hpp"

namespace metrics::agent {
namespace {

using namespace std::chrono_literals;
using testing::FakeServer;
using testing::Reply;
using testing::Request;

using testing::fast_config;

// Polls pred every millisecond until it holds or the timeout passes.
template <typename Pred>
bool wait_until(Pred pred, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

std::int64_t counter_sum(const FakeServer& server, const std::string& id) {
  return testing::acknowledged_counter_sum(server.requests(), id);
}

// "<hostname>:<pid>" of this process: the default instance.
std::string own_instance() {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}

// Sum of a counter over the acknowledged requests, for one label set
// (labels compared in full: the identity included).
std::int64_t series_sum(const FakeServer& server, const std::string& id,
                        const std::map<std::string, std::string>& labels) {
  std::int64_t sum = 0;
  for (const auto& r : server.requests()) {
    if (r.answered_status < 200 || r.answered_status >= 300) continue;
    for (const auto& m : testing::decode_request(r)) {
      if (m.type == "counter" && m.id == id && m.labels == labels) sum += m.delta;
    }
  }
  return sum;
}

TEST(AgentTest, BatchesArriveGzippedSignedAndComplete) {
  FakeServer server("secret");
  auto config = fast_config(server);
  config.key = "secret";
  Agent agent(config);
  ASSERT_TRUE(agent.running()) << agent.error();
  ASSERT_TRUE(server.wait_for_requests(2, 10s));
  ASSERT_TRUE(agent.shutdown(5s));
  const auto requests = server.requests();
  for (const auto& r : requests) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.path, "/updates/");
    EXPECT_EQ(r.headers.at("content-encoding"), "gzip");
    EXPECT_EQ(r.headers.at("content-type"), "application/json");
    EXPECT_NE(r.headers.at("accept-encoding").find("gzip"), std::string::npos);
    EXPECT_EQ(r.headers.at("hashsha256"), core::hmac_sha256_hex("secret", r.body));
  }
  bool saw_poll = false;
  bool saw_random = false;
  bool saw_rss = false;
  for (const auto& m : testing::decode_request(requests.front())) {
    saw_poll |= m.id == "PollCount" && m.type == "counter" && m.delta >= 1;
    saw_random |= m.id == "RandomValue" && m.type == "gauge" && m.value >= 0 && m.value < 1;
    saw_rss |= m.id == "ProcessRSS" && m.type == "gauge" && m.value > 0;
  }
  EXPECT_TRUE(saw_poll);
  EXPECT_TRUE(saw_random);
  EXPECT_TRUE(saw_rss);
  // Every sample was delivered exactly once.
  EXPECT_EQ(counter_sum(server, "PollCount"), static_cast<std::int64_t>(agent.stats().polls));
}

TEST(AgentTest, UnsignedAgentSendsNoSignature) {
  FakeServer server;
  Agent agent(fast_config(server));
  ASSERT_TRUE(server.wait_for_requests(1, 10s));
  agent.shutdown(5s);
  EXPECT_EQ(server.requests().front().headers.count("hashsha256"), 0U);
}

// For a proxy in front of the server (or its --web-config): Basic or a
// bearer token on every request; the bearer token wins when both are set.
TEST(AgentTest, SendsBasicAuthOrABearerToken) {
  {
    FakeServer server;
    auto c = fast_config(server);
    c.basic_auth = "Aladdin:open sesame";
    Agent agent(c);
    ASSERT_TRUE(server.wait_for_requests(1, 10s));
    agent.shutdown(5s);
    EXPECT_EQ(server.requests().front().headers.at("authorization"),
              "Basic QWxhZGRpbjpvcGVuIHNlc2FtZQ==");
  }
  {
    FakeServer server;
    auto c = fast_config(server);
    c.basic_auth = "a:b";
    c.bearer_token = "tok-123";
    Agent agent(c);
    ASSERT_TRUE(server.wait_for_requests(1, 10s));
    agent.shutdown(5s);
    EXPECT_EQ(server.requests().front().headers.at("authorization"), "Bearer tok-123");
  }
  FakeServer server;
  Agent agent(fast_config(server));
  ASSERT_TRUE(server.wait_for_requests(1, 10s));
  agent.shutdown(5s);
  EXPECT_EQ(server.requests().front().headers.count("authorization"), 0U);
}

TEST(AgentTest, WrongAnswerSignatureIsAFailureAndKeepsTheData) {
  FakeServer server("secret");
  server.set_handler([](const Request&) {
    Reply r;
    r.sign_with = "not-the-key";
    return r;
  });
  auto config = fast_config(server);
  config.key = "secret";
  Agent agent(config);
  ASSERT_TRUE(wait_until([&] { return agent.stats().requests_failed >= 4; }, 10s));
  EXPECT_EQ(agent.stats().requests_ok, 0U);
  agent.shutdown(0ms);
  EXPECT_GT(agent.stats().pending, 0U);
}

TEST(AgentTest, RetriesAfterServerErrorsWithTheSameBody) {
  FakeServer server;
  std::atomic<int> calls{0};
  server.set_handler([&](const Request&) {
    Reply r;
    if (calls++ < 2) r.status = 500;
    return r;
  });
  auto config = fast_config(server);
  config.report_interval = 1h;  // only the retries and the flush send
  Agent agent(config);
  agent.add_counter("Jobs", 7);
  EXPECT_TRUE(agent.flush(10s));
  const auto requests = server.requests();
  ASSERT_GE(requests.size(), 3U);
  EXPECT_EQ(requests[0].body, requests[1].body);
  EXPECT_EQ(requests[1].body, requests[2].body);
  EXPECT_EQ(requests[2].answered_status, 200);
  EXPECT_EQ(counter_sum(server, "Jobs"), 7);
  agent.shutdown(5s);
}

TEST(AgentTest, BackoffScheduleIsFollowed) {
  FakeServer server;
  server.set_handler([](const Request&) { return testing::status_reply(500); });
  auto config = fast_config(server);
  config.report_interval = 1h;
  config.retry_backoff = {50ms, 150ms, 250ms};
  Agent agent(config);
  agent.flush(0ms);
  ASSERT_TRUE(server.wait_for_requests(4, 10s));
  const auto r = server.requests();
  const auto gap = [&](std::size_t i) { return r[i + 1].at - r[i].at; };
  EXPECT_GE(gap(0), 45ms);
  EXPECT_GE(gap(1), 145ms);
  EXPECT_GE(gap(2), 245ms);
  EXPECT_LT(gap(2), 2s);
  // Time enough for the sender to put the batch back (shutdown waits for a
  // busy sender only until its deadline).
  agent.shutdown(5s);
  EXPECT_GE(agent.stats().batches_requeued, 1U);
}

TEST(AgentTest, HonoursRetryAfter) {
  FakeServer server;
  std::atomic<int> calls{0};
  server.set_handler([&](const Request&) {
    Reply r;
    if (calls++ == 0) {
      r.status = 503;
      r.headers.emplace_back("Retry-After", "1");
    }
    return r;
  });
  auto config = fast_config(server);
  config.report_interval = 1h;
  Agent agent(config);
  EXPECT_TRUE(agent.flush(10s));
  const auto r = server.requests();
  ASSERT_GE(r.size(), 2U);
  EXPECT_GE(r[1].at - r[0].at, 950ms);
  agent.shutdown(5s);
}

TEST(AgentTest, OutageLosesNothing) {
  FakeServer server;
  std::atomic<bool> down{true};
  server.set_handler([&](const Request&) { return testing::status_reply(down ? 503 : 200); });
  auto config = fast_config(server);
  config.retry_backoff = {5ms};
  Agent agent(config);
  std::int64_t added = 0;
  for (int i = 0; i < 200; ++i) {
    ASSERT_TRUE(agent.add_counter("Hits", i % 5 + 1));
    added += i % 5 + 1;
    std::this_thread::sleep_for(1ms);
    if (i == 150) down = false;
  }
  ASSERT_TRUE(agent.shutdown(10s));
  EXPECT_GT(agent.stats().requests_failed, 0U);
  EXPECT_EQ(counter_sum(server, "Hits"), added);
  EXPECT_EQ(counter_sum(server, "PollCount"), static_cast<std::int64_t>(agent.stats().polls));
}

TEST(AgentTest, ServerAbsentThenBackLosesNothing) {
  std::uint16_t port = 0;
  {
    FakeServer probe;
    port = probe.port();
  }
  AgentConfig config;
  config.address = "127.0.0.1:" + std::to_string(port);
  config.poll_interval = 10ms;
  config.report_interval = 20ms;
  config.retry_backoff = {5ms};
  config.request_timeout = 3s;
  Agent agent(config);
  agent.add_counter("Hits", 5);
  std::this_thread::sleep_for(200ms);
  EXPECT_GT(agent.stats().requests_failed, 0U);
  agent.add_counter("Hits", 6);
  std::optional<FakeServer> server;
  server.emplace("", port);
  ASSERT_TRUE(agent.shutdown(10s));
  EXPECT_EQ(counter_sum(*server, "Hits"), 11);
  EXPECT_EQ(counter_sum(*server, "PollCount"), static_cast<std::int64_t>(agent.stats().polls));
}

TEST(AgentTest, RateLimitBoundsRequestsInFlight) {
  for (const unsigned limit : {1U, 2U}) {
    FakeServer server;
    server.set_handler([](const Request&) {
      Reply r;
      r.delay = 40ms;
      return r;
    });
    auto config = fast_config(server);
    config.rate_limit = limit;
    config.max_batch = 3;  // many requests per report
    config.report_interval = 10ms;
    Agent agent(config);
    for (int i = 0; i < 30; ++i)
      agent.set_gauge("G" + std::to_string(i), i);
    ASSERT_TRUE(server.wait_for_requests(12, 20s));
    agent.shutdown(5s);
    EXPECT_LE(server.max_concurrent(), static_cast<int>(limit));
    EXPECT_LE(agent.stats().max_in_flight, limit);
    if (limit == 2) {
      EXPECT_EQ(server.max_concurrent(), 2);
    }
  }
}

TEST(AgentTest, ShutdownSendsTheLastSample) {
  FakeServer server;
  auto config = fast_config(server);
  config.report_interval = 1h;
  Agent agent(config);
  ASSERT_TRUE(agent.add_counter("Jobs", 3));
  ASSERT_TRUE(agent.set_gauge("Temperature", 21.5));
  ASSERT_TRUE(agent.shutdown(5s));
  EXPECT_EQ(server.request_count(), 1U);
  EXPECT_EQ(counter_sum(server, "Jobs"), 3);
  EXPECT_GE(counter_sum(server, "PollCount"), 1);
  EXPECT_FALSE(agent.running());
  EXPECT_FALSE(agent.add_counter("Jobs", 1));
  EXPECT_FALSE(agent.flush(1s));
  EXPECT_TRUE(agent.shutdown(1s));  // the first result again
}

TEST(AgentTest, ShutdownIsBoundedWhenTheServerHangs) {
  FakeServer server;
  server.set_handler([](const Request&) {
    Reply r;
    r.delay = 3s;
    return r;
  });
  auto config = fast_config(server);
  config.request_timeout = 10s;
  Agent agent(config);
  ASSERT_TRUE(server.wait_for_requests(0, 1s));
  std::this_thread::sleep_for(100ms);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_FALSE(agent.shutdown(300ms));
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2500ms);
  server.stop();
}

TEST(AgentTest, FlushReportsFailure) {
  FakeServer server;
  server.set_handler([](const Request&) { return testing::status_reply(500); });
  auto config = fast_config(server);
  config.report_interval = 1h;
  Agent agent(config);
  EXPECT_FALSE(agent.flush(3s));
  server.set_handler([](const Request&) { return Reply{}; });
  EXPECT_TRUE(agent.flush(5s));
  agent.shutdown(5s);
}

TEST(AgentTest, RejectedBatchIsDroppedNotRetriedForever) {
  FakeServer server;
  server.set_handler(
      [](const Request&) { return testing::status_reply(400, R"({"error":"bad"})"); });
  auto config = fast_config(server);
  config.report_interval = 1h;
  config.poll_interval = 1h;  // only the flush's own sample is sent
  Agent agent(config);
  EXPECT_FALSE(agent.flush(3s));
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(server.request_count(), 1U);
  EXPECT_EQ(agent.stats().batches_rejected, 1U);
  agent.shutdown(0ms);
}

TEST(AgentTest, PendingSetIsBoundedDuringAnOutage) {
  FakeServer server;
  server.set_handler([](const Request&) { return testing::status_reply(503); });
  auto config = fast_config(server);
  config.max_pending = 8;
  config.collect_allocator = false;
  config.collect_process = false;
  config.collect_system = false;
  Agent agent(config);
  for (int i = 0; i < 20; ++i)
    agent.set_gauge("G" + std::to_string(i), i);
  std::this_thread::sleep_for(150ms);
  const auto stats = agent.stats();
  EXPECT_LE(stats.pending, 8U);
  EXPECT_GT(stats.metrics_dropped, 0U);
  agent.shutdown(0ms);
}

TEST(AgentTest, InvalidConfigurationDoesNotStart) {
  AgentConfig config;
  config.address = "localhost";
  Agent agent(config);
  EXPECT_FALSE(agent.running());
  EXPECT_NE(agent.error().find("address"), std::string::npos);
  EXPECT_FALSE(agent.set_gauge("x", 1));
  EXPECT_FALSE(agent.flush(10ms));

  config.address = "localhost:8080";
  config.rate_limit = 0;
  EXPECT_NE(validate(config).find("rate limit"), std::string::npos);
  config.rate_limit = 1;
  config.poll_interval = 0ms;
  EXPECT_NE(validate(config).find("poll interval"), std::string::npos);
}

TEST(AgentTest, HostMetricsAreValidated) {
  FakeServer server;
  Agent agent(fast_config(server));
  EXPECT_FALSE(agent.set_gauge("", 1));
  EXPECT_FALSE(agent.set_gauge("a/b", 1));
  EXPECT_FALSE(agent.set_gauge("nan", std::nan("")));
  EXPECT_FALSE(agent.set_gauge("inf", INFINITY));
  EXPECT_TRUE(agent.add_counter("Big", INT64_MAX));
  EXPECT_FALSE(agent.add_counter("Big", 1));
  agent.shutdown(5s);
}

TEST(AgentTest, EveryBatchIsAnEnvelopeWithTheIdentity) {
  FakeServer server;
  auto config = fast_config(server);
  config.labels = {{"env", "test"}, {"zone", "z1"}};
  Agent agent(config);
  ASSERT_TRUE(agent.running()) << agent.error();
  EXPECT_EQ(agent.identity(), (std::vector<Label>{{"env", "test"},
                                                  {"instance", own_instance()},
                                                  {"job", program_invocation_short_name},
                                                  {"zone", "z1"}}));
  ASSERT_TRUE(server.wait_for_requests(2, 10s));
  ASSERT_TRUE(agent.shutdown(5s));
  const std::map<std::string, std::string> identity{
      {"env", "test"}, {"instance", own_instance()}, {"job", "agent_test"}, {"zone", "z1"}};
  for (const auto& r : server.requests()) {
    EXPECT_EQ(r.path, "/updates/");
    for (const auto& m : testing::decode_request(r)) {
      EXPECT_TRUE(m.envelope);
      EXPECT_EQ(m.labels, identity) << m.id;
    }
  }
  EXPECT_EQ(series_sum(server, "PollCount", identity),
            static_cast<std::int64_t>(agent.stats().polls));
}

TEST(AgentTest, IdentityCanBeSet) {
  FakeServer server;
  auto config = fast_config(server);
  config.instance = "web-1";
  config.job = "api";
  Agent agent(config);
  ASSERT_TRUE(agent.running()) << agent.error();
  ASSERT_TRUE(agent.flush(5s));
  ASSERT_TRUE(agent.shutdown(5s));
  const auto sent = testing::decode_request(server.requests().at(0));
  ASSERT_FALSE(sent.empty());
  EXPECT_EQ(sent[0].labels,
            (std::map<std::string, std::string>{{"instance", "web-1"}, {"job", "api"}}));
}

TEST(AgentTest, LabelledHostMetricsAreSeriesOfTheirOwn) {
  FakeServer server;
  auto config = fast_config(server);
  config.instance = "i";
  config.job = "j";
  config.report_interval = 1h;
  Agent agent(config);
  ASSERT_TRUE(agent.running()) << agent.error();
  for (int i = 0; i < 3; ++i)
    EXPECT_TRUE(agent.add_counter("Requests", 1, {{"route", "/a"}}));
  EXPECT_TRUE(agent.add_counter("Requests", 2, {{"route", "/b"}}));
  EXPECT_TRUE(agent.add_counter("Requests", 5));
  const std::vector<Label> own{{"route", "/a"}, {"code", "200"}};
  EXPECT_TRUE(agent.add_counter("Requests", 11, own));
  // The own label wins over the identity's.
  EXPECT_TRUE(agent.add_counter("Moved", 1, {{"job", "other"}}));
  EXPECT_TRUE(agent.set_gauge("Depth", 1.5, {{"queue", "x"}}));
  EXPECT_TRUE(agent.set_gauge("Depth", 2.5, {{"queue", "y"}}));
  EXPECT_TRUE(agent.set_gauge("Depth", 3.5, {{"queue", "x"}}));
  // Invalid labels are refused, nothing is held for them.
  EXPECT_FALSE(agent.add_counter("Requests", 1, {{"bad-name", "x"}}));
  EXPECT_FALSE(agent.add_counter("Requests", 1, {{"__reserved", "x"}}));
  EXPECT_FALSE(agent.set_gauge("Depth", 1, {{"q", std::string(1025, 'v')}}));
  EXPECT_FALSE(agent.set_gauge("Depth", 1, {{"q", "1"}, {"q", "2"}}));
  ASSERT_TRUE(agent.flush(5s));
  ASSERT_TRUE(agent.shutdown(5s));
  using L = std::map<std::string, std::string>;
  EXPECT_EQ(series_sum(server, "Requests", L{{"instance", "i"}, {"job", "j"}, {"route", "/a"}}), 3);
  EXPECT_EQ(series_sum(server, "Requests", L{{"instance", "i"}, {"job", "j"}, {"route", "/b"}}), 2);
  EXPECT_EQ(series_sum(server, "Requests", L{{"instance", "i"}, {"job", "j"}}), 5);
  EXPECT_EQ(series_sum(server, "Requests",
                       L{{"code", "200"}, {"instance", "i"}, {"job", "j"}, {"route", "/a"}}),
            11);
  EXPECT_EQ(series_sum(server, "Moved", L{{"instance", "i"}, {"job", "other"}}), 1);
  EXPECT_EQ(counter_sum(server, "Requests"), 21);  // nothing of the refused ones
  std::map<std::string, double> depth;
  for (const auto& r : server.requests()) {
    for (const auto& m : testing::decode_request(r)) {
      if (m.id == "Depth") depth[m.label("queue")] = m.value;
    }
  }
  EXPECT_EQ(depth, (std::map<std::string, double>{{"x", 3.5}, {"y", 2.5}}));
}

TEST(AgentTest, InvalidLabelsDoNotStartNamingTheLabel) {
  AgentConfig config;
  config.labels = {{"bad name", "x"}};
  Agent agent(config);
  EXPECT_FALSE(agent.running());
  EXPECT_NE(agent.error().find("\"bad name\""), std::string::npos) << agent.error();
  EXPECT_TRUE(agent.identity().empty());
  config.labels = {{"job", "x"}};
  EXPECT_NE(validate(config).find("--job"), std::string::npos) << validate(config);
  config.labels = {};
  config.instance = std::string(1025, 'i');
  EXPECT_NE(validate(config).find("\"instance\""), std::string::npos) << validate(config);
}

TEST(AgentTest, ConcurrentHostUpdatesAreSummedExactly) {
  FakeServer server;
  Agent agent(fast_config(server));
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 500; ++i)
        agent.add_counter("Ops", 1);
    });
  }
  for (auto& t : threads)
    t.join();
  ASSERT_TRUE(agent.shutdown(10s));
  EXPECT_EQ(counter_sum(server, "Ops"), 2000);
}

// The original agent's names, all of them, from the first report on; each
// moves (or stays put) the way its meaning says.
TEST(AgentTest, EveryReportCarriesTheOriginalAgentsMetricSet) {
  FakeServer server;
  auto config = fast_config(server);
  config.report_interval = 1h;  // one report per flush
  Agent agent(config);
  ASSERT_TRUE(agent.flush(10s));
  std::vector<void*> blocks;
  for (int i = 0; i < 256; ++i)
    blocks.push_back(std::malloc(4096));
  ASSERT_TRUE(agent.flush(10s));
  for (void* b : blocks)
    std::free(b);
  agent.shutdown(5s);
  const auto requests = server.requests();
  ASSERT_GE(requests.size(), 2U);
  std::vector<std::map<std::string, double>> reports;
  for (const std::size_t i : {std::size_t{0}, requests.size() - 1}) {
    std::map<std::string, double> gauges;
    std::map<std::string, std::int64_t> counters;
    for (const auto& m : testing::decode_request(requests[i])) {
      if (m.type == "gauge") {
        EXPECT_TRUE(gauges.emplace(m.id, m.value).second) << "twice: " << m.id;
      } else {
        counters[m.id] += m.delta;
      }
    }
    for (const char* name :
         {"Alloc",    "BuckHashSys", "Frees",       "GCCPUFraction", "GCSys",        "HeapAlloc",
          "HeapIdle", "HeapInuse",   "HeapObjects", "HeapReleased",  "HeapSys",      "LastGC",
          "Lookups",  "MCacheInuse", "MCacheSys",   "MSpanInuse",    "MSpanSys",     "Mallocs",
          "NextGC",   "NumForcedGC", "NumGC",       "OtherSys",      "PauseTotalNs", "StackInuse",
          "StackSys", "Sys",         "TotalAlloc",  "RandomValue"}) {
      EXPECT_EQ(gauges.count(name), 1U) << "report " << i << " lacks gauge " << name;
    }
    EXPECT_GE(counters["PollCount"], 1) << "report " << i;
    // No collection ever runs in this process.
    for (const char* gc : {"NumGC", "NumForcedGC", "PauseTotalNs", "LastGC", "GCCPUFraction",
                           "NextGC", "GCSys", "Lookups", "BuckHashSys"}) {
      EXPECT_EQ(gauges[gc], 0) << gc;
    }
    EXPECT_GE(gauges["Sys"], gauges["HeapSys"] + gauges["StackSys"]);
    EXPECT_GT(gauges["StackSys"], 0);
    EXPECT_GT(gauges["StackInuse"], 0);
    EXPECT_LE(gauges["StackInuse"], gauges["StackSys"]);
    EXPECT_LE(gauges["HeapInuse"], gauges["HeapSys"]);
    EXPECT_LE(gauges["HeapReleased"], gauges["HeapSys"]);
    EXPECT_LE(gauges["MSpanInuse"], gauges["MSpanSys"]);
    EXPECT_LE(gauges["MCacheInuse"], gauges["MCacheSys"]);
    reports.push_back(std::move(gauges));
  }
  // Running totals never go back.
  for (const char* total : {"TotalAlloc", "Mallocs", "Frees"}) {
    EXPECT_GE(reports[1][total], reports[0][total]) << total;
  }
}

// Collects the agent's log lines.
class LogLines {
 public:
  std::function<void(LogLevel, std::string_view)> sink() {
    return [this](LogLevel level, std::string_view line) {
      const std::lock_guard lock(mu_);
      lines_.emplace_back(level, std::string(line));
    };
  }
  std::size_t count(LogLevel level, std::string_view part) const {
    const std::lock_guard lock(mu_);
    std::size_t n = 0;
    for (const auto& [l, text] : lines_) {
      if (l == level && text.find(part) != std::string::npos) ++n;
    }
    return n;
  }
  std::string all() const {
    const std::lock_guard lock(mu_);
    std::string out;
    for (const auto& [l, text] : lines_)
      out += text + "\n";
    return out;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<LogLevel, std::string>> lines_;
};

std::uint16_t unused_port() {
  FakeServer probe;
  return probe.port();
}

TEST(AgentLogTest, DeadAddressIsLoggedAtOnce) {
  LogLines log;
  AgentConfig config;
  config.address = "127.0.0.1:" + std::to_string(unused_port());
  config.poll_interval = 10ms;
  config.report_interval = 20ms;
  config.log = log.sink();
  // The default retry schedule (1 s, 3 s, 5 s) would keep the first report
  // busy for 9 s before a word was said.
  Agent agent(config);
  ASSERT_TRUE(agent.running());
  EXPECT_TRUE(wait_until([&] { return log.count(LogLevel::warn, "cannot send to") == 1; }, 800ms))
      << log.all();
  EXPECT_NE(log.all().find(config.address), std::string::npos) << log.all();
  agent.shutdown(0ms);
}

TEST(AgentLogTest, FailuresAreRateLimitedAndRecoveryIsLogged) {
  LogLines log;
  const std::uint16_t port = unused_port();
  AgentConfig config;
  config.address = "127.0.0.1:" + std::to_string(port);
  config.poll_interval = 10ms;
  config.report_interval = 10ms;
  config.retry_backoff = {2ms, 2ms};
  config.failure_log_interval = 1h;
  config.log = log.sink();
  Agent agent(config);
  ASSERT_TRUE(wait_until([&] { return agent.stats().requests_failed >= 30; }, 10s));
  EXPECT_EQ(log.count(LogLevel::warn, "cannot send to"), 1U) << log.all();
  EXPECT_EQ(log.count(LogLevel::warn, "still cannot send"), 0U) << log.all();
  FakeServer server("", port);
  ASSERT_TRUE(wait_until([&] { return log.count(LogLevel::info, "recovered after") == 1; }, 10s))
      << log.all();
  ASSERT_TRUE(agent.shutdown(5s));
  EXPECT_EQ(counter_sum(server, "PollCount"), static_cast<std::int64_t>(agent.stats().polls));
}

TEST(AgentLogTest, ALongOutageGetsOneLinePerIntervalWithACount) {
  LogLines log;
  AgentConfig config;
  config.address = "127.0.0.1:" + std::to_string(unused_port());
  config.poll_interval = 10ms;
  config.report_interval = 10ms;
  config.retry_backoff = {2ms};
  config.failure_log_interval = 150ms;
  config.log = log.sink();
  Agent agent(config);
  std::this_thread::sleep_for(700ms);
  agent.shutdown(0ms);
  const std::size_t later = log.count(LogLevel::warn, "still cannot send");
  EXPECT_GE(later, 2U) << log.all();
  EXPECT_LE(later, 5U) << log.all();
  EXPECT_EQ(log.count(LogLevel::warn, "more failures since the last line"), later);
}

class SendModeTest : public ::testing::TestWithParam<SendMode> {};

TEST_P(SendModeTest, OneSignedRequestPerMetric) {
  FakeServer server("secret");
  auto config = fast_config(server);
  config.key = "secret";
  config.send_mode = GetParam();
  Agent agent(config);
  ASSERT_TRUE(agent.running()) << agent.error();
  agent.add_counter("Odd Name %", 7);
  ASSERT_TRUE(server.wait_for_requests(20, 10s));
  ASSERT_TRUE(agent.shutdown(5s));
  const auto requests = server.requests();
  for (const auto& r : requests) {
    EXPECT_EQ(r.method, "POST");
    EXPECT_EQ(r.headers.at("hashsha256"), core::hmac_sha256_hex("secret", r.body));
    if (GetParam() == SendMode::json) {
      EXPECT_EQ(r.path, "/update/");
      EXPECT_EQ(r.headers.at("content-encoding"), "gzip");
    } else {
      EXPECT_TRUE(r.path.starts_with("/update/gauge/") || r.path.starts_with("/update/counter/"))
          << r.path;
      EXPECT_TRUE(r.body.empty());
    }
    const auto sent = testing::decode_request(r);
    ASSERT_EQ(sent.size(), 1U);
    if (GetParam() == SendMode::json) {
      // The identity on each metric, no envelope.
      EXPECT_FALSE(sent[0].envelope);
      EXPECT_EQ(sent[0].label("instance"), own_instance());
      EXPECT_EQ(sent[0].label("job"), program_invocation_short_name);
    } else {
      // Text mode cannot carry labels: classic values only.
      EXPECT_TRUE(sent[0].labels.empty());
    }
  }
  EXPECT_EQ(counter_sum(server, "Odd Name %"), 7);
  EXPECT_EQ(counter_sum(server, "PollCount"), static_cast<std::int64_t>(agent.stats().polls));
  // Kept alive: far fewer connections than requests.
  EXPECT_LE(server.connection_count(), 3U);
}

TEST_P(SendModeTest, AFailedSingleRequestPutsBackOnlyWhatWasNotAcknowledged) {
  for (const bool with_retries : {false, true}) {
    FakeServer server;
    std::atomic<int> calls{0};
    std::atomic<bool> flaky{true};
    server.set_handler([&](const Request&) {
      return testing::status_reply(flaky && ++calls % 3 == 0 ? 503 : 200, "{}");
    });
    auto config = fast_config(server);
    config.send_mode = GetParam();
    config.retry_backoff = with_retries ? std::vector<std::chrono::milliseconds>{2ms}
                                        : std::vector<std::chrono::milliseconds>{};
    config.collect_system = false;
    Agent agent(config);
    std::int64_t added = 0;
    for (int i = 0; i < 100; ++i) {
      ASSERT_TRUE(agent.add_counter("Hits", i % 7 + 1));
      ASSERT_TRUE(agent.add_counter("Misses", 2));
      added += i % 7 + 1;
      std::this_thread::sleep_for(1ms);
    }
    // The last sample and whatever was put back go out on a healthy server.
    flaky = false;
    ASSERT_TRUE(agent.shutdown(20s));
    EXPECT_GT(agent.stats().requests_failed, 0U);
    EXPECT_EQ(counter_sum(server, "Hits"), added) << with_retries;
    EXPECT_EQ(counter_sum(server, "Misses"), 200) << with_retries;
    EXPECT_EQ(counter_sum(server, "PollCount"), static_cast<std::int64_t>(agent.stats().polls));
  }
}

TEST_P(SendModeTest, RateLimitBoundsSingleRequestsInFlight) {
  FakeServer server;
  server.set_handler([](const Request&) {
    Reply r;
    r.delay = 20ms;
    r.body = "{}";
    return r;
  });
  auto config = fast_config(server);
  config.send_mode = GetParam();
  config.rate_limit = 3;
  Agent agent(config);
  for (int i = 0; i < 30; ++i)
    agent.set_gauge("G" + std::to_string(i), i);
  ASSERT_TRUE(server.wait_for_requests(60, 20s));
  agent.shutdown(5s);
  EXPECT_LE(server.max_concurrent(), 3);
  EXPECT_EQ(server.max_concurrent(), 3);
  EXPECT_LE(agent.stats().max_in_flight, 3U);
}

INSTANTIATE_TEST_SUITE_P(Modes, SendModeTest, ::testing::Values(SendMode::json, SendMode::text),
                         [](const auto& mode) { return std::string(to_string(mode.param)); });

}  // namespace
}  // namespace metrics::agent
