// kill -9 of a process writing labelled and unlabelled series to a
// synchronous file storage loses no acknowledged update, and recovers series
// and classic values that agree (see file_crash_helper.cpp for what it
// writes).
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <random>
#include <sstream>
#include <thread>

#include "metrics/storage/file_repository.hpp"
#include "test_util.hpp"

extern char** environ;

namespace metrics::storage::testing {
namespace {

using core::Labels;
using core::MetricType;

// Starts the helper with its stdout on a pipe; returns pid and read end.
std::pair<pid_t, int> spawn_helper(const std::string& path, int threads) {
  int fds[2];
  if (::pipe(fds) != 0) throw std::runtime_error("pipe");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], STDOUT_FILENO);
  posix_spawn_file_actions_addclose(&actions, fds[0]);
  posix_spawn_file_actions_addclose(&actions, fds[1]);
  const std::string helper = METRICS_CRASH_HELPER;
  const std::string n = std::to_string(threads);
  std::vector<char*> argv{const_cast<char*>(helper.c_str()), const_cast<char*>(path.c_str()),
                          const_cast<char*>(n.c_str()), nullptr};
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, helper.c_str(), &actions, nullptr, argv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) throw std::runtime_error("posix_spawn failed for " + helper);
  return {pid, fds[0]};
}

TEST(FileCrash, KillNineLosesNoAcknowledgedUpdate) {
  constexpr int kThreads = 6;
  std::mt19937 rng(std::random_device{}());
  for (int round = 0; round < 5; ++round) {
    TempDir dir;
    const auto path = (dir.path() / "db.json").string();
    auto [pid, out] = spawn_helper(path, kThreads);
    std::string text;
    char buf[4096];
    // Wait for "ready", then let it write for a random while.
    while (text.find("ready\n") == std::string::npos) {
      const auto n = ::read(out, buf, sizeof buf);
      ASSERT_GT(n, 0) << "helper died before it was ready";
      text.append(buf, static_cast<std::size_t>(n));
    }
    std::this_thread::sleep_for(
        std::chrono::milliseconds(std::uniform_int_distribution<int>(50, 400)(rng)));
    ::kill(pid, SIGKILL);
    for (;;) {
      const auto n = ::read(out, buf, sizeof buf);
      if (n <= 0) break;
      text.append(buf, static_cast<std::size_t>(n));
    }
    ::close(out);
    int status = 0;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status));

    std::map<int, std::int64_t> acked;  // thread -> last acknowledged i
    std::istringstream lines(text.substr(text.find("ready\n") + 6));
    std::string line;
    while (std::getline(lines, line)) {
      if (lines.eof()) break;  // an incomplete last line is not an ack
      std::istringstream fields(line);
      int t = 0;
      std::int64_t i = 0;
      fields >> t >> i;
      acked[t] = std::max(acked[t], i);
    }
    std::int64_t acked_total = 0;
    for (auto& [t, i] : acked)
      acked_total += i;

    FileRepository repo(FileOptions{.path = path, .store_interval = std::chrono::milliseconds{0}});
    std::int64_t sum = 0;
    std::size_t written = 0;  // threads with a batch on disk
    for (int t = 0; t < kThreads; ++t) {
      const auto labels = Labels::make({{"instance", "h" + std::to_string(t)}});
      const auto c = get_sync(repo, {MetricType::counter, "c", labels});
      const auto g = get_sync(repo, {MetricType::gauge, "g", labels});
      const auto want = acked.count(t) ? acked[t] : 0;
      const auto got = c ? c->total : 0;
      // Every ack is there; at most the one batch in flight beyond it.
      EXPECT_GE(got, want) << "round " << round << " thread " << t;
      EXPECT_LE(got, want + 1) << "round " << round << " thread " << t;
      // The batch is atomic: its gauge and its counter agree, and the
      // series carry the receive time of their last write.
      if (got > 0) {
        ASSERT_TRUE(g);
        EXPECT_EQ(g->value, static_cast<double>(got));
        EXPECT_EQ(c->timestamp_ms, got);
        EXPECT_EQ(g->timestamp_ms, got);
      }
      sum += got;
      if (got > 0) ++written;
    }
    // Both tables of every batch, or neither.
    const auto classic_c = get_classic_sync(repo, {MetricType::counter, "c"});
    EXPECT_EQ(classic_c ? classic_c->total : 0, sum);
    const auto u = get_sync(repo, {MetricType::counter, "u", {}});
    EXPECT_EQ(u ? u->total : 0, sum);
    const auto classic_u = get_classic_sync(repo, {MetricType::counter, "u"});
    EXPECT_EQ(classic_u ? classic_u->total : 0, sum);
    EXPECT_EQ(list_series_sync(repo).size(), 2 * written + (sum > 0 ? 1 : 0));
    EXPECT_EQ(text.find("expired something"), std::string::npos);
    EXPECT_GE(sum, acked_total);
    EXPECT_GT(acked_total, 0) << "the helper acknowledged nothing in round " << round;
  }
}

}  // namespace
}  // namespace metrics::storage::testing
