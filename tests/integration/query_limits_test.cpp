// --query-timeout and --query-max-concurrency over real loopback sockets
// (an in-process server): a query past its deadline is a 503 with
// errorType "timeout" as Prometheus answers it, and with one query thread a
// second query waits for it, times out in the queue when its own deadline
// passed meanwhile, and the thread is free again afterwards.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/write.hpp>
#include <chrono>
#include <future>
#include <string>
#include <thread>

#include "test_support.hpp"

namespace metrics::testing {
namespace {

using ::testing::HasSubstr;
using Clock = std::chrono::steady_clock;

// 86,400,000 subquery steps: far longer than any deadline below, and no
// sample is read, so only the deadline stops it.
constexpr const char* kSlow = "/api/v1/query?query=count_over_time(vector(1)%5B1d%3A1ms%5D)";

TEST(QueryLimits, ASlowQueryIsA503TimeoutAtTheDeadline) {
  auto config = TestServer::default_config();
  config.query_timeout = std::chrono::milliseconds{300};
  TestServer server(config);
  Client client(server.port());
  const auto start = Clock::now();
  const auto res = client.get(kSlow);
  const auto took = Clock::now() - start;
  EXPECT_EQ(res.result_int(), 503) << res.body();
  EXPECT_THAT(res.body(), HasSubstr(R"("status":"error")"));
  EXPECT_THAT(res.body(), HasSubstr(R"("errorType":"timeout")"));
  EXPECT_THAT(res.body(), HasSubstr("query timed out in query execution"));
  EXPECT_GE(took, std::chrono::milliseconds{300});
  EXPECT_LT(took, std::chrono::seconds{20});
  // The smaller timeout parameter wins over --query-timeout.
  config.query_timeout = std::chrono::minutes{1};
  server.stop();
  TestServer second(config);
  Client c2(second.port());
  const auto t2 = Clock::now();
  const auto r2 = c2.get(std::string(kSlow) + "&timeout=0.2");
  EXPECT_EQ(r2.result_int(), 503) << r2.body();
  EXPECT_THAT(r2.body(), HasSubstr(R"("errorType":"timeout")"));
  EXPECT_LT(Clock::now() - t2, std::chrono::seconds{20});
  // The server still answers.
  EXPECT_EQ(c2.get("/api/v1/query?query=vector(1)").result_int(), 200);
}

// One query thread, and a deadline far beyond the tests' own.
server::ServerConfig one_query_thread() {
  auto config = TestServer::default_config();
  config.query_max_concurrency = 1;
  config.query_timeout = std::chrono::minutes{1};
  return config;
}

TEST(QueryLimits, WithOneThreadASecondQueryWaitsAndTimesOutInTheQueue) {
  TestServer server(one_query_thread());
  const std::uint16_t port = server.port();
  // A holds the only query thread for about 1.5 s.
  auto a = std::async(std::launch::async, [port] {
    Client c(port);
    return c.get(std::string(kSlow) + "&timeout=1.5");
  });
  std::this_thread::sleep_for(std::chrono::milliseconds{300});
  // B's own deadline (0.3 s) passes while it waits behind A.
  const auto b_start = Clock::now();
  Client b(port);
  const auto rb = b.get("/api/v1/query?query=vector(1)&timeout=0.3");
  const auto b_took = Clock::now() - b_start;
  const auto ra = a.get();
  EXPECT_EQ(ra.result_int(), 503) << ra.body();
  EXPECT_THAT(ra.body(), HasSubstr("query timed out in query execution"));
  EXPECT_EQ(rb.result_int(), 503) << rb.body();
  EXPECT_THAT(rb.body(), HasSubstr(R"("errorType":"timeout")"));
  EXPECT_THAT(rb.body(), HasSubstr("query timed out in query queue"));
  // B was answered only when A gave the thread back (it waited, it was not
  // refused nor run beside A).
  EXPECT_GE(b_took, std::chrono::milliseconds{800});
  // The thread is free again: a query runs at once.
  const auto c_start = Clock::now();
  const auto rc = b.get("/api/v1/query?query=vector(1)&timeout=5");
  EXPECT_EQ(rc.result_int(), 200) << rc.body();
  EXPECT_LT(Clock::now() - c_start, std::chrono::seconds{5});
}

// A client that closes its connection (as Grafana does when a dashboard
// is refreshed or left) cancels its query: with one query thread, a query
// of another client then runs at once. Without the cancellation it would
// wait the first query's 30 s.
TEST(QueryLimits, AQueryWhoseClientClosedItsConnectionIsCanceled) {
  TestServer server(one_query_thread());
  const std::uint16_t port = server.port();
  for (const bool reset : {false, true}) {
    {
      boost::asio::io_context io;
      boost::asio::ip::tcp::socket gone(io);
      gone.connect({boost::asio::ip::address_v4::loopback(), port});
      const std::string request =
          "GET " + std::string(kSlow) + "&timeout=30 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
      boost::asio::write(gone, boost::asio::buffer(request));
      // The query is running on the only thread; then the client leaves,
      // with a FIN or (SO_LINGER 0) a reset.
      std::this_thread::sleep_for(std::chrono::milliseconds{400});
      if (reset) gone.set_option(boost::asio::socket_base::linger(true, 0));
      gone.close();
    }
    const auto start = Clock::now();
    Client c(port);
    const auto res = c.get("/api/v1/query?query=vector(1)&timeout=10");
    EXPECT_EQ(res.result_int(), 200) << (reset ? "reset: " : "closed: ") << res.body();
    EXPECT_LT(Clock::now() - start, std::chrono::seconds{5}) << (reset ? "reset" : "closed");
  }
  // A client that stays gets its answer, also when it pipelines a second
  // request behind the first (the watch sees bytes, not an end).
  Client c(port);
  EXPECT_EQ(c.get(std::string(kSlow) + "&timeout=0.3").result_int(), 503);
  {
    boost::asio::io_context io;
    boost::asio::ip::tcp::socket s(io);
    s.connect({boost::asio::ip::address_v4::loopback(), port});
    const std::string two =
        "GET /api/v1/query?query=count_over_time(vector(1)%5B10m%3A1ms%5D) HTTP/1.1\r\n"
        "Host: 127.0.0.1\r\n\r\n"
        "GET /api/v1/query?query=vector(2) HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    boost::asio::write(s, boost::asio::buffer(two));
    boost::beast::flat_buffer buffer;
    for (const char* expected : {R"("value":[)", R"("2"])"}) {
      boost::beast::http::response<boost::beast::http::string_body> r;
      boost::beast::http::read(s, buffer, r);
      EXPECT_EQ(r.result_int(), 200) << r.body();
      EXPECT_THAT(r.body(), HasSubstr(expected));
    }
  }
}

}  // namespace
}  // namespace metrics::testing
