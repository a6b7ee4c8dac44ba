// The durable storages end to end, through real server processes: file
// storage across kill -9, PostgreSQL shared by two server processes, and a
// wrong DSN.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <thread>

#include "process_support.hpp"

namespace metrics::testing {
namespace {

std::string pg_dsn() {
  const char* dsn = std::getenv("METRICS_TEST_PG_DSN");
  return dsn != nullptr ? dsn : "";
}

// Locally a missing database skips; in CI it must fail, never skip.
#define REQUIRE_PG()                                                                 \
  do {                                                                               \
    if (pg_dsn().empty()) {                                                          \
      if (std::getenv("CI") != nullptr) FAIL() << "METRICS_TEST_PG_DSN unset in CI"; \
      GTEST_SKIP() << "METRICS_TEST_PG_DSN is not set";                              \
    }                                                                                \
  } while (false)

TEST(FileStorageProcess, SynchronousModeSurvivesKill9) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("metrics-proc-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const std::string file = (dir / "db.json").string();
  {
    ServerProcess server({"-f", file, "-i", "0"});
    ASSERT_TRUE(server.wait_ready());
    Client c(server.port());
    for (int i = 0; i < 50; ++i) {
      ASSERT_EQ(c.post("/update/counter/acked/2").result_int(), 200);
    }
    ASSERT_EQ(c.post("/update/gauge/g/0.1").result_int(), 200);
    (void)server.stop(SIGKILL);
  }
  ServerProcess again({"-f", file, "-i", "0", "-r"});
  ASSERT_TRUE(again.wait_ready());
  Client c(again.port());
  EXPECT_EQ(c.get("/value/counter/acked").body(), "100");
  EXPECT_EQ(c.get("/value/gauge/g").body(), "0.1");
  std::filesystem::remove_all(dir);
}

TEST(FileStorageProcess, IntervalModeWritesAtGracefulShutdown) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("metrics-proc-int-" + std::to_string(::getpid()));
  std::filesystem::remove_all(dir);
  const std::string file = (dir / "db.json").string();
  {
    ServerProcess server({"-f", file, "-i", "300"});
    ASSERT_TRUE(server.wait_ready());
    Client c(server.port());
    ASSERT_EQ(c.post("/update/counter/c/7").result_int(), 200);
    const int status = server.stop(SIGTERM);
    ASSERT_TRUE(WIFEXITED(status));
    EXPECT_EQ(WEXITSTATUS(status), 0);
  }
  EXPECT_TRUE(std::filesystem::exists(file));
  ServerProcess again({"-f", file});
  ASSERT_TRUE(again.wait_ready());
  Client c(again.port());
  EXPECT_EQ(c.get("/value/counter/c").body(), "7");
  {
    ServerProcess fresh({"-f", file, "-r=false"});
    ASSERT_TRUE(fresh.wait_ready());
    Client f(fresh.port());
    EXPECT_EQ(f.get("/value/counter/c").result_int(), 404);
  }
  std::filesystem::remove_all(dir);
}

TEST(FileStorageProcess, CorruptFileStopsTheServerAndIsLeftUntouched) {
  const auto dir =
      std::filesystem::temp_directory_path() / ("metrics-proc-bad-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  const std::string file = (dir / "db.json").string();
  const std::string junk = "{this is not a snapshot";
  {
    std::FILE* f = std::fopen(file.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fputs(junk.c_str(), f);
    std::fclose(f);
  }
  ServerProcess server({"-f", file});
  const auto status = server.wait_exit(std::chrono::seconds{10});
  ASSERT_TRUE(status.has_value()) << "the server kept running on a corrupt file";
  ASSERT_TRUE(WIFEXITED(*status));
  EXPECT_NE(WEXITSTATUS(*status), 0);
  std::FILE* f = std::fopen(file.c_str(), "r");
  ASSERT_NE(f, nullptr);
  char buf[64] = {};
  const std::size_t n = std::fread(buf, 1, sizeof buf, f);
  std::fclose(f);
  EXPECT_EQ(std::string(buf, n), junk);
  std::filesystem::remove_all(dir);
}

TEST(PostgresProcess, TwoServersOnOneDatabaseSumExactly) {
  REQUIRE_PG();
  const std::string name = "two_servers_" + std::to_string(::getpid());
  ServerProcess a({"-d", pg_dsn()});
  ServerProcess b({"-d", pg_dsn()});
  ASSERT_TRUE(a.wait_ready());
  ASSERT_TRUE(b.wait_ready());
  constexpr int kThreadsPerServer = 4;
  constexpr int kRequests = 100;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreadsPerServer; ++t) {
    threads.emplace_back([&, t] {
      Client c(t % 2 == 0 ? a.port() : b.port());
      for (int i = 0; i < kRequests; ++i) {
        const std::string body = R"([{"id":")" + name + R"(","type":"counter","delta":3}])";
        if (c.post_json("/updates/", body).result_int() != 200) ++failures;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failures.load(), 0);
  Client ca(a.port());
  Client cb(b.port());
  const std::string want = std::to_string(3 * 2 * kThreadsPerServer * kRequests);
  EXPECT_EQ(ca.get("/value/counter/" + name).body(), want);
  EXPECT_EQ(cb.get("/value/counter/" + name).body(), want);
  EXPECT_EQ(ca.get("/ping").result_int(), 200);
}

TEST(PostgresProcess, WrongDsnNeverPings200) {
  ServerProcess server({"-d", "postgres://nobody:wrong@127.0.0.1:1/nothing?connect_timeout=1"});
  ASSERT_TRUE(server.wait_ready());
  Client c(server.port());
  auto res = c.get("/ping");
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_FALSE(res.body().empty());
  // Writes fail cleanly with a 5xx; nothing pretends to be stored.
  EXPECT_GE(c.post("/update/counter/x/1").result_int(), 500);
}

TEST(PostgresProcess, WrongPasswordKeepsServingAndPingSaysWhy) {
  REQUIRE_PG();
  std::string dsn = pg_dsn();
  dsn += dsn.find("://") == std::string::npos ? " password=certainly-wrong"
                                              : (dsn.find('?') == std::string::npos ? "?" : "&") +
                                                    std::string("password=certainly-wrong");
  ServerProcess server({"-d", dsn});
  ASSERT_TRUE(server.wait_ready());
  Client c(server.port());
  for (int i = 0; i < 2; ++i) {  // stays so: nothing pretends the database is merely down
    auto res = c.get("/ping");
    EXPECT_EQ(res.result_int(), 500);
    EXPECT_THAT(
        res.body(),
        ::testing::StartsWith("storage unavailable: PostgreSQL authentication failed for user \""));
    EXPECT_EQ(res.body().find("certainly-wrong"), std::string::npos);
  }
  // Still serving: writes answer 503, not a dropped connection.
  EXPECT_EQ(c.post("/update/counter/x/1").result_int(), 503);
}

}  // namespace
}  // namespace metrics::testing
