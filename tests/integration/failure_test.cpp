// No silent deaths, over real sockets: a repository that throws something
// that is not a std::exception, a failure while an answer is finished
// (compressed, signed) and an exception out of the accept loop each leave a
// log line and a server that goes on answering, on the same connection and
// on new ones.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <atomic>
#include <memory>
#include <sstream>
#include <stdexcept>

#include "metrics/core/signature.hpp"
#include "test_support.hpp"

namespace metrics::testing {
namespace {

using ::testing::HasSubstr;

// Sends the default logger's lines to a string while alive (the server
// runs in this process).
class LogCapture {
 public:
  LogCapture()
      : previous_(spdlog::default_logger()),
        sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
    auto logger = std::make_shared<spdlog::logger>("capture", sink_);
    logger->set_pattern("%l %v");
    spdlog::set_default_logger(logger);
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;
  // Call once the server has stopped (its threads write here).
  [[nodiscard]] std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

// A memory repository that throws a non-std exception while `armed`.
class ThrowingRepository : public storage::Repository {
 public:
  std::atomic<bool> armed{false};
  void apply(std::vector<core::Update> batch, std::int64_t received_ms,
             storage::Callback<storage::Applied> done) override {
    if (armed.load()) throw 42;
    inner_.apply(std::move(batch), received_ms, std::move(done));
  }
  void get(core::SeriesKey key, storage::Callback<std::optional<core::Point>> done) override {
    if (armed.load()) throw 42;
    inner_.get(std::move(key), std::move(done));
  }
  void list(storage::Callback<std::vector<core::Point>> done) override {
    inner_.list(std::move(done));
  }
  void get_classic(core::MetricKey key,
                   storage::Callback<std::optional<core::Point>> done) override {
    if (armed.load()) throw 42;
    inner_.get_classic(std::move(key), std::move(done));
  }
  void list_series(storage::Callback<std::vector<core::Point>> done) override {
    inner_.list_series(std::move(done));
  }
  void expire(std::int64_t cutoff_ms,
              storage::Callback<std::vector<core::SeriesKey>> done) override {
    inner_.expire(cutoff_ms, std::move(done));
  }
  void ping(storage::Callback<bool> done) override { inner_.ping(std::move(done)); }
  void close() override { inner_.close(); }

 private:
  storage::MemoryRepository inner_;
};

TEST(NoSilentDeaths, NonStdExceptionFromTheRepositoryIsA500AndServingGoesOn) {
  LogCapture log;
  auto repo = std::make_shared<ThrowingRepository>();
  TestServer server(TestServer::default_config(), repo);
  Client client(server.port());
  repo->armed = true;
  auto res = client.post("/update/counter/c/1");
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), "internal error\n");
  res = client.post_json("/value/", R"({"id":"c","type":"counter"})");
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), R"({"error":"internal error"})");
  repo->armed = false;
  // The same connection, then a new one.
  EXPECT_EQ(client.post("/update/counter/c/2").result_int(), 200);
  Client other(server.port());
  EXPECT_EQ(other.get("/value/counter/c").body(), "2");
  server.stop();
  EXPECT_THAT(log.text(),
              HasSubstr("POST /update/counter/c/1: an exception not derived from std::exception"));
}

TEST(NoSilentDeaths, FailureWhileFinishingIsA500AndServingGoesOn) {
  LogCapture log;
  std::atomic<bool> armed{true};
  server::ServerHooks hooks;
  hooks.finish = [&](const server::Response&) {
    if (armed.exchange(false)) throw std::runtime_error("gzip ran out of memory");
  };
  auto config = TestServer::default_config();
  config.key = "k";
  TestServer server(config, nullptr, hooks);
  Client client(server.port());
  auto res = client.get("/ping");
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), "internal error\n");
  EXPECT_EQ(res[core::kSignatureHeader], core::hmac_sha256_hex("k", res.body()));
  EXPECT_EQ(client.get("/ping").result_int(), 200);
  Client other(server.port());
  EXPECT_EQ(other.get("/ping").result_int(), 200);
  server.stop();
  EXPECT_THAT(log.text(), HasSubstr("GET /ping: finishing the answer failed: gzip ran out"));
}

TEST(NoSilentDeaths, AcceptLoopThatThrowsIsLoggedAndRestarted) {
  LogCapture log;
  std::atomic<int> accepted{0};
  server::ServerHooks hooks;
  hooks.accepted = [&] {
    if (accepted.fetch_add(1) == 0) throw 42;
  };
  TestServer server(TestServer::default_config(), nullptr, hooks);
  Client first(server.port());
  EXPECT_EQ(first.get("/ping").result_int(), 200);  // spawned before the loop broke
  Client second(server.port());                     // accepted by the restarted loop
  EXPECT_EQ(second.get("/ping").result_int(), 200);
  EXPECT_GE(accepted.load(), 2);
  server.stop();
  EXPECT_THAT(log.text(), HasSubstr("accept loop failed: an exception not derived from "
                                    "std::exception; restarting it"));
}

}  // namespace
}  // namespace metrics::testing
