// Graceful shutdown: requests in flight finish, idle connections close, the
// process exits 0 on SIGTERM.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <future>
#include <thread>

#include "metrics/core/errors.hpp"
#include "process_support.hpp"

namespace metrics::testing {
namespace {

using namespace std::chrono_literals;

// Memory storage whose writes take a while, completed from another thread.
class SlowRepository final : public storage::Repository {
 public:
  explicit SlowRepository(std::chrono::milliseconds delay) : delay_(delay) {}
  ~SlowRepository() override {
    for (auto& t : threads_)
      t.join();
  }
  void apply(std::vector<core::Update> batch, std::int64_t received_ms,
             storage::Callback<storage::Applied> done) override {
    started_.store(true);
    std::lock_guard lock(mutex_);
    threads_.emplace_back(
        [this, batch = std::move(batch), received_ms, done = std::move(done)]() mutable {
          std::this_thread::sleep_for(delay_);
          memory_.apply(std::move(batch), received_ms, std::move(done));
        });
  }
  void get(core::SeriesKey key, storage::Callback<std::optional<core::Point>> done) override {
    memory_.get(std::move(key), std::move(done));
  }
  void list(storage::Callback<std::vector<core::Point>> done) override {
    memory_.list(std::move(done));
  }
  void get_classic(core::MetricKey key,
                   storage::Callback<std::optional<core::Point>> done) override {
    memory_.get_classic(std::move(key), std::move(done));
  }
  void list_series(storage::Callback<std::vector<core::Point>> done) override {
    memory_.list_series(std::move(done));
  }
  void expire(std::int64_t cutoff_ms,
              storage::Callback<std::vector<core::SeriesKey>> done) override {
    memory_.expire(cutoff_ms, std::move(done));
  }
  void ping(storage::Callback<bool> done) override { memory_.ping(std::move(done)); }
  void close() override {}

  std::atomic<bool> started_{false};

 private:
  std::chrono::milliseconds delay_;
  storage::MemoryRepository memory_;
  std::mutex mutex_;
  std::vector<std::thread> threads_;
};

TEST(Shutdown, InFlightRequestFinishesAndIdleConnectionsClose) {
  auto repo = std::make_shared<SlowRepository>(400ms);
  TestServer server(TestServer::default_config(), repo);
  Client idle(server.port());
  ASSERT_EQ(idle.get("/ping").result_int(), 200);

  auto in_flight = std::async(std::launch::async, [&] {
    Client busy(server.port());
    return busy.post("/update/counter/c/5");
  });
  while (!repo->started_.load())
    std::this_thread::sleep_for(1ms);

  const auto t0 = std::chrono::steady_clock::now();
  server.stop();  // returns once run() has returned
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 5s);

  auto res = in_flight.get();
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_FALSE(res.keep_alive());
  EXPECT_EQ(storage::get_classic_sync(*repo, {core::MetricType::counter, "c"})->total, 5);

  // The idle kept-alive connection was closed by the server.
  char byte = 0;
  boost::system::error_code ec;
  idle.stream().socket().read_some(boost::asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset)
      << ec.message();
}

TEST(Shutdown, ServerProcessExitsZeroOnSigterm) {
  const auto port = free_port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    clear_server_environment();
    execl(METRICS_SERVER_BINARY, METRICS_SERVER_BINARY, "-a", address.c_str(), "-f", "",
          "--history-dir", "", "--log-level", "warn", static_cast<char*>(nullptr));
    _exit(127);
  }
  bool up = false;
  for (int i = 0; i < 200 && !up; ++i) {
    try {
      Client c(port);
      up = c.get("/ping").result_int() == 200;
    } catch (const std::exception&) {
      std::this_thread::sleep_for(25ms);
    }
  }
  ASSERT_TRUE(up) << "server did not start";
  Client kept(port);
  ASSERT_EQ(kept.post("/update/counter/x/1").result_int(), 200);

  ASSERT_EQ(kill(pid, SIGTERM), 0);
  int status = 0;
  for (int i = 0; i < 200; ++i) {
    if (waitpid(pid, &status, WNOHANG) == pid) break;
    std::this_thread::sleep_for(25ms);
  }
  ASSERT_TRUE(WIFEXITED(status)) << "server did not exit after SIGTERM";
  EXPECT_EQ(WEXITSTATUS(status), 0);
}

TEST(Startup, BadFlagStopsWithMessageNamingTheOption) {
  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  pid_t pid = fork();
  ASSERT_GE(pid, 0);
  if (pid == 0) {
    dup2(fds[1], 2);
    clear_server_environment();
    execl(METRICS_SERVER_BINARY, METRICS_SERVER_BINARY, "-i", "often", static_cast<char*>(nullptr));
    _exit(127);
  }
  close(fds[1]);
  std::string err;
  char buf[512];
  ssize_t n;
  while ((n = read(fds[0], buf, sizeof buf)) > 0)
    err.append(buf, static_cast<std::size_t>(n));
  close(fds[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_NE(WEXITSTATUS(status), 0);
  EXPECT_NE(err.find("STORE_INTERVAL"), std::string::npos) << err;
}

}  // namespace
}  // namespace metrics::testing
