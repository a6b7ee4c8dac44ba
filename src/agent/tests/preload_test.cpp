// libmetrics-agent-preload.so inside unmodified programs: the output and
// exit status are the same with and without it, and the agent reports.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "fake_server.hpp"

extern char** environ;

namespace metrics::agent {
namespace {

using namespace std::chrono_literals;
using testing::FakeServer;

struct Outcome {
  std::string out;
  int status = -1;
  std::chrono::milliseconds took{0};
};

// Runs argv with extra environment entries, feeding `input` on stdin;
// killed after 30 s.
Outcome run(const std::vector<std::string>& argv, const std::vector<std::string>& extra_env,
            const std::string& input = "") {
  // ls and sh never read their stdin and may exit before the input is
  // written: that write must fail with EPIPE, not kill the test.
  ::signal(SIGPIPE, SIG_IGN);
  int out_pipe[2];
  int in_pipe[2];
  if (pipe2(out_pipe, O_CLOEXEC) != 0 || pipe2(in_pipe, O_CLOEXEC) != 0) return {};
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out_pipe[1], 1);
  posix_spawn_file_actions_adddup2(&actions, in_pipe[0], 0);
  std::vector<std::string> env_strings;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    if (name == "LD_PRELOAD" || name == "ADDRESS" || name == "KEY" || name == "POLL_INTERVAL" ||
        name == "REPORT_INTERVAL" || name == "RATE_LIMIT" || name == "CONFIG") {
      continue;
    }
    env_strings.push_back(entry);
  }
  env_strings.insert(env_strings.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (auto& s : env_strings)
    envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<std::string> args = argv;
  std::vector<char*> argp;
  for (auto& s : args)
    argp.push_back(s.data());
  argp.push_back(nullptr);
  const auto start = std::chrono::steady_clock::now();
  pid_t pid = 0;
  const int rc = posix_spawn(&pid, argp[0], &actions, nullptr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(out_pipe[1]);
  ::close(in_pipe[0]);
  Outcome result;
  if (rc != 0) {
    ::close(out_pipe[0]);
    ::close(in_pipe[1]);
    return result;
  }
  if (!input.empty()) {
    [[maybe_unused]] const ssize_t written = ::write(in_pipe[1], input.data(), input.size());
  }
  ::close(in_pipe[1]);
  char buf[4096];
  while (std::chrono::steady_clock::now() - start < 30s) {
    pollfd p{out_pipe[0], POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    const ssize_t n = ::read(out_pipe[0], buf, sizeof buf);
    if (n <= 0) break;
    result.out.append(buf, static_cast<std::size_t>(n));
  }
  ::close(out_pipe[0]);
  // The program may close stdout well before it exits (coreutils do, in an
  // exit handler); its exit, agent flush included, is waited for separately.
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() - start > 30s) {
      ::kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(5ms);
  }
  result.status = status;
  result.took = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - start);
  return result;
}

std::vector<std::string> agent_env(const FakeServer& server) {
  return {std::string("LD_PRELOAD=") + METRICS_AGENT_PRELOAD_LIB, "ADDRESS=" + server.address(),
          "POLL_INTERVAL=20ms", "REPORT_INTERVAL=50ms"};
}

double last_gauge(const FakeServer& server, const std::string& id) {
  double value = -1;
  for (const auto& r : server.requests()) {
    for (const auto& m : testing::decode_request(r)) {
      if (m.id == id && m.type == "gauge") value = m.value;
    }
  }
  return value;
}

TEST(PreloadTest, AllocatingProgramRunsUnchangedAndReports) {
  FakeServer server;
  const std::vector<std::string> argv{METRICS_AGENT_ALLOC_PROGRAM, "300"};
  const Outcome plain = run(argv, {});
  const Outcome preloaded = run(argv, agent_env(server));
  EXPECT_EQ(preloaded.out, plain.out);
  EXPECT_NE(plain.out.find("clean-env"), std::string::npos);
  ASSERT_TRUE(WIFEXITED(preloaded.status));
  EXPECT_EQ(preloaded.status, plain.status);
  EXPECT_EQ(WEXITSTATUS(preloaded.status), 3);
  ASSERT_GE(server.request_count(), 2U);
  // The map alone is 20000 nodes and their strings.
  EXPECT_GE(last_gauge(server, "Mallocs"), 20000);
  EXPECT_GT(last_gauge(server, "TotalAlloc"), 20000 * 32);
  EXPECT_GT(last_gauge(server, "ProcessRSS"), 0);
  // Every sample of the one reporting process arrived (the fork child and
  // the shell did not start agents of their own: their PollCount would add).
  const auto polls = testing::acknowledged_counter_sum(server.requests(), "PollCount");
  EXPECT_GE(polls, 5);
  EXPECT_LE(polls, 300 / 20 + 10);
}

TEST(PreloadTest, DebianToolsRunUnchanged) {
  FakeServer server;
  const std::string input = "pear\napple\nfig\nbanana\n";
  const std::vector<std::vector<std::string>> programs{{"/usr/bin/sort"},
                                                       {"/bin/ls", "-1", "/usr/share"},
                                                       {"/bin/sh", "-c", "echo from-sh; exit 7"}};
  for (const auto& argv : programs) {
    const Outcome plain = run(argv, {}, input);
    const Outcome preloaded = run(argv, agent_env(server), input);
    EXPECT_EQ(preloaded.out, plain.out) << argv[0];
    EXPECT_EQ(preloaded.status, plain.status) << argv[0];
    EXPECT_LT(preloaded.took, 5s) << argv[0];
  }
  // sort and ls sent their last sample at exit. dash leaves with _exit(),
  // which runs no exit handlers, so a shell that only exits reports nothing.
  EXPECT_GE(server.request_count(), 2U);
}

TEST(PreloadTest, UnreachableServerDelaysExitBoundedly) {
  std::uint16_t port = 0;
  {
    FakeServer probe;
    port = probe.port();
  }
  const Outcome preloaded =
      run({"/bin/ls", "/"}, {std::string("LD_PRELOAD=") + METRICS_AGENT_PRELOAD_LIB,
                             "ADDRESS=127.0.0.1:" + std::to_string(port)});
  const Outcome plain = run({"/bin/ls", "/"}, {});
  EXPECT_EQ(preloaded.out, plain.out);
  EXPECT_EQ(preloaded.status, plain.status);
  EXPECT_LT(preloaded.took, 4s);
}

TEST(PreloadTest, BadConfigurationLeavesTheProgramRunning) {
  const Outcome r =
      run({"/bin/sh", "-c", "echo ok"},
          {std::string("LD_PRELOAD=") + METRICS_AGENT_PRELOAD_LIB, "POLL_INTERVAL=soon"});
  EXPECT_EQ(r.out, "ok\n");
  EXPECT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(WEXITSTATUS(r.status), 0);
}

}  // namespace
}  // namespace metrics::agent
