// libmetrics-agent-preload.so inside unmodified programs: the output and
// exit status are the same with and without it, and the agent reports; a
// program started through a wrapper (nice, env, nohup, timeout, a shell
// shim) reports itself and the wrapper nothing of its own; exit is bounded
// when the server is away.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "fake_server.hpp"
#include "metrics/core/signature.hpp"

extern char** environ;

namespace metrics::agent {
namespace {

using namespace std::chrono_literals;
using testing::FakeServer;

struct Outcome {
  std::string out;
  int status = -1;
  std::chrono::milliseconds took{0};
  pid_t pid = 0;  // of the process started (a wrapper that execs keeps it)
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
        name == "REPORT_INTERVAL" || name == "RATE_LIMIT" || name == "CONFIG" ||
        name.starts_with("METRICS_AGENT_")) {
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
  result.pid = pid;
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

// "<hostname>:<pid>": the instance the agent in process `pid` sends.
std::string instance_of(pid_t pid) {
  char host[256] = {};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(pid);
}

// Every (instance, job) that sent something.
std::set<std::pair<std::string, std::string>> senders(const FakeServer& server) {
  std::set<std::pair<std::string, std::string>> out;
  for (const auto& r : server.requests()) {
    for (const auto& m : testing::decode_request(r))
      out.emplace(m.label("instance"), m.label("job"));
  }
  return out;
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

// The alloc program's shell prints "clean-env" when LD_PRELOAD is empty:
// with the library kept for children (the default) it is not.
std::string without_clean_env(std::string out) {
  if (const auto at = out.find("clean-env\n"); at != std::string::npos) out.erase(at, 10);
  return out;
}

std::vector<std::string> with(std::vector<std::string> env, const std::string& entry) {
  env.push_back(entry);
  return env;
}

TEST(PreloadTest, AllocatingProgramRunsUnchangedAndReports) {
  FakeServer server;
  const std::vector<std::string> argv{METRICS_AGENT_ALLOC_PROGRAM, "300"};
  const Outcome plain = run(argv, {});
  const Outcome preloaded = run(argv, agent_env(server));
  EXPECT_NE(plain.out.find("clean-env"), std::string::npos);
  EXPECT_EQ(preloaded.out, without_clean_env(plain.out));
  ASSERT_TRUE(WIFEXITED(preloaded.status));
  EXPECT_EQ(preloaded.status, plain.status);
  EXPECT_EQ(WEXITSTATUS(preloaded.status), 3);
  ASSERT_GE(server.request_count(), 2U);
  // The map alone is 20000 nodes and their strings.
  EXPECT_GE(last_gauge(server, "Mallocs"), 20000);
  EXPECT_GT(last_gauge(server, "TotalAlloc"), 20000 * 32);
  EXPECT_GT(last_gauge(server, "ProcessRSS"), 0);
  // Every sample of the one reporting process arrived (the fork child did
  // not report, and the shell left with _exit(): their PollCount would add).
  const auto polls = testing::acknowledged_counter_sum(server.requests(), "PollCount");
  EXPECT_GE(polls, 5);
  EXPECT_LE(polls, 300 / 20 + 10);
  // One sender: the program itself, under its own name.
  EXPECT_EQ(senders(server), (std::set<std::pair<std::string, std::string>>{
                                 {instance_of(preloaded.pid), "agent_alloc_program"}}));
}

TEST(PreloadTest, ChildrenOffRemovesTheLibraryFromLdPreload) {
  FakeServer server;
  const std::vector<std::string> argv{METRICS_AGENT_ALLOC_PROGRAM};
  const Outcome plain = run(argv, {});
  const Outcome preloaded = run(argv, with(agent_env(server), "METRICS_AGENT_CHILDREN=0"));
  EXPECT_NE(preloaded.out.find("clean-env"), std::string::npos);
  EXPECT_EQ(preloaded.out, plain.out);
  EXPECT_EQ(preloaded.status, plain.status);
  EXPECT_GE(server.request_count(), 1U);
  // Through a wrapper, the program then runs without the agent.
  FakeServer through;
  const Outcome wrapped = run({"/usr/bin/env", METRICS_AGENT_TRUE_PROGRAM},
                              with(agent_env(through), "METRICS_AGENT_CHILDREN=0"));
  EXPECT_TRUE(WIFEXITED(wrapped.status));
  EXPECT_EQ(through.request_count(), 0U);
}

// An executable `#!/bin/sh` script that execs the program with its
// arguments, as pyenv's shims do.
std::string write_shim(const std::string& name, const std::string& program) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path)
      << "#!/bin/sh\n# a shim: find the real program, then replace this shell\nexec " << program
      << " \"$@\"\n";
  ::chmod(path.c_str(), 0755);
  return path;
}

struct Wrapper {
  std::string name;
  std::vector<std::string> argv;  // the program and its arguments follow
  std::vector<std::string> env;   // extra environment
};

std::vector<Wrapper> wrappers(const std::string& program) {
  return {{"nice", {"/usr/bin/nice", "-n", "1"}, {}},
          {"env", {"/usr/bin/env", "WRAPPED=1"}, {}},
          {"nohup", {"/usr/bin/nohup"}, {}},
          // timeout forks the program and waits for it: excluded, it starts
          // no agent of its own (without, it reports as its own instance).
          {"timeout", {"/usr/bin/timeout", "30"}, {"METRICS_AGENT_EXCLUDE=timeout"}},
          {"sh -c exec", {"/bin/sh", "-c", "exec \"$0\" \"$@\""}, {}},
          {"shim script", {write_shim("shim-" + std::to_string(::getpid()), program)}, {}}};
}

TEST(PreloadTest, ProgramStartedThroughAWrapperReports) {
  const std::string program = METRICS_AGENT_ALLOC_PROGRAM;
  const Outcome plain = run({program, "300"}, {});
  for (const auto& w : wrappers(program)) {
    FakeServer server;
    auto argv = w.argv;
    // The shim names the program itself.
    if (w.name != "shim script") argv.push_back(program);
    argv.emplace_back("300");
    auto env = agent_env(server);
    env.insert(env.end(), w.env.begin(), w.env.end());
    const Outcome r = run(argv, env);
    EXPECT_EQ(r.out, without_clean_env(plain.out)) << w.name;
    EXPECT_EQ(r.status, plain.status) << w.name;
    // Only the program allocates 20000 map nodes: its agent reported.
    EXPECT_GE(last_gauge(server, "Mallocs"), 20000) << w.name;
    // And only its samples arrived: the wrapper's would add PollCounts.
    const auto polls = testing::acknowledged_counter_sum(server.requests(), "PollCount");
    EXPECT_GE(polls, 5) << w.name;
    EXPECT_LE(polls, 300 / 20 + 10) << w.name;
    // Every report is the program's, under its own name; after an exec the
    // pid is the one started, so the instance is too. timeout forks it.
    const auto from = senders(server);
    ASSERT_EQ(from.size(), 1U) << w.name;
    EXPECT_EQ(from.begin()->second, "agent_alloc_program") << w.name;
    if (w.name == "timeout") {
      EXPECT_NE(from.begin()->first, instance_of(r.pid)) << w.name;
    } else {
      EXPECT_EQ(from.begin()->first, instance_of(r.pid)) << w.name;
    }
  }
}

TEST(PreloadTest, ForkingWrapperReportsAsAnInstanceOfItsOwn) {
  // Not excluded, timeout (which forks the program and waits for it) is a
  // process the library landed in: it reports, as itself, never mixed into
  // the program's series.
  FakeServer server;
  const Outcome r =
      run({"/usr/bin/timeout", "30", METRICS_AGENT_ALLOC_PROGRAM, "300"}, agent_env(server));
  EXPECT_EQ(WEXITSTATUS(r.status), 3);
  const auto from = senders(server);
  ASSERT_EQ(from.size(), 2U);
  EXPECT_TRUE(from.contains({instance_of(r.pid), "timeout"}));
  std::string program_instance;
  for (const auto& [instance, job] : from) {
    if (job == "agent_alloc_program") program_instance = instance;
  }
  EXPECT_FALSE(program_instance.empty());
  EXPECT_NE(program_instance, instance_of(r.pid));
}

TEST(PreloadTest, ShortLivedProgramSendsItsOneFinalReport) {
  FakeServer server;
  const Outcome r =
      run({METRICS_AGENT_TRUE_PROGRAM}, {std::string("LD_PRELOAD=") + METRICS_AGENT_PRELOAD_LIB,
                                         "ADDRESS=" + server.address(), "REPORT_INTERVAL=10s"});
  ASSERT_TRUE(WIFEXITED(r.status));
  EXPECT_EQ(WEXITSTATUS(r.status), 0);
  ASSERT_EQ(server.request_count(), 1U);
  EXPECT_EQ(testing::acknowledged_counter_sum(server.requests(), "PollCount"), 1);
  EXPECT_EQ(
      senders(server),
      (std::set<std::pair<std::string, std::string>>{{instance_of(r.pid), "agent_true_program"}}));
}

// Signed reports: HMAC-SHA256 is built in (the library maps no libcrypto),
// so the final report at exit is signed like the periodic ones.
TEST(PreloadTest, SignedReportsCarryTheRightSignature) {
  FakeServer server;
  const Outcome r =
      run({METRICS_AGENT_ALLOC_PROGRAM, "200"}, with(agent_env(server), "KEY=s3cret"));
  ASSERT_TRUE(WIFEXITED(r.status));
  ASSERT_GE(server.request_count(), 2U);
  for (const auto& request : server.requests()) {
    ASSERT_EQ(request.headers.count("hashsha256"), 1U);
    EXPECT_EQ(request.headers.at("hashsha256"), core::hmac_sha256_hex("s3cret", request.body));
  }
  const Outcome short_lived =
      run({METRICS_AGENT_TRUE_PROGRAM}, with(agent_env(server),
                                             "KEY=a-key-longer-than-sha256s-block-"
                                             "of-sixty-four-bytes-is-hashed-first"));
  ASSERT_TRUE(WIFEXITED(short_lived.status));
  const auto requests = server.requests();
  ASSERT_FALSE(requests.empty());
  const auto& last = requests.back();
  EXPECT_EQ(last.headers.at("hashsha256"),
            core::hmac_sha256_hex(
                "a-key-longer-than-sha256s-block-of-sixty-four-bytes-is-hashed-first", last.body));
}

// What a plain C host maps for the agent is the library alone: libstdc++,
// zlib, Boost.JSON and the rest are linked in, and signing needs no libcrypto
// (docs/AGENT.md, "The preload library").
TEST(PreloadTest, PlainCHostMapsNoLibraryButTheAgentAndLibc) {
  FakeServer server;
  const Outcome plain = run({"/bin/cat", "/proc/self/maps"}, {});
  const Outcome preloaded = run({"/bin/cat", "/proc/self/maps"}, with(agent_env(server), "KEY=k"));
  ASSERT_TRUE(WIFEXITED(preloaded.status));
  EXPECT_EQ(plain.out.find("libmetrics-agent-preload"), std::string::npos);
  EXPECT_NE(preloaded.out.find("libmetrics-agent-preload"), std::string::npos);
  std::set<std::string> libraries;
  for (const std::string* maps : {&plain.out, &preloaded.out}) {
    std::size_t at = 0;
    while ((at = maps->find(".so", at)) != std::string::npos) {
      const std::size_t begin = maps->rfind('/', at) + 1;
      const std::size_t end = maps->find('\n', at);
      const std::string name = maps->substr(begin, end - begin);
      if (maps == &plain.out) {
        libraries.insert(name);
      } else if (!libraries.contains(name) && !name.starts_with("libmetrics-agent-preload")) {
        ADD_FAILURE() << "the agent maps " << name;
      }
      at = end;
    }
  }
  EXPECT_FALSE(libraries.empty());
}

TEST(PreloadTest, IdentityFromTheEnvironment) {
  FakeServer server;
  const Outcome r =
      run({METRICS_AGENT_TRUE_PROGRAM},
          {std::string("LD_PRELOAD=") + METRICS_AGENT_PRELOAD_LIB, "ADDRESS=" + server.address(),
           "INSTANCE=box-7", "JOB=batch", "LABELS=env=ci,team=agent"});
  EXPECT_EQ(WEXITSTATUS(r.status), 0);
  ASSERT_EQ(server.request_count(), 1U);
  for (const auto& m : testing::decode_request(server.requests()[0])) {
    EXPECT_EQ(m.labels,
              (std::map<std::string, std::string>{
                  {"env", "ci"}, {"instance", "box-7"}, {"job", "batch"}, {"team", "agent"}}));
  }
  // A bad label: the program runs without the agent, the line names it.
  FakeServer bad;
  const Outcome b =
      run({"/bin/sh", "-c", "echo ok"}, {std::string("LD_PRELOAD=") + METRICS_AGENT_PRELOAD_LIB,
                                         "ADDRESS=" + bad.address(), "LABELS=bad-name=1"});
  EXPECT_EQ(b.out, "ok\n");
  EXPECT_EQ(bad.request_count(), 0U);
}

TEST(PreloadTest, WrapperThatOnlyExecsSendsNothingOfItsOwn) {
  const std::string program = METRICS_AGENT_TRUE_PROGRAM;
  for (const auto& w : wrappers(program)) {
    FakeServer server;
    auto argv = w.argv;
    if (w.name != "shim script") argv.push_back(program);
    auto env = std::vector<std::string>{std::string("LD_PRELOAD=") + METRICS_AGENT_PRELOAD_LIB,
                                        "ADDRESS=" + server.address(), "REPORT_INTERVAL=10s"};
    env.insert(env.end(), w.env.begin(), w.env.end());
    const Outcome r = run(argv, env);
    EXPECT_TRUE(WIFEXITED(r.status)) << w.name;
    EXPECT_EQ(WEXITSTATUS(r.status), 0) << w.name;
    // One report: the program's final one. The wrapper's agent started,
    // and exec ended it before its first report interval.
    EXPECT_EQ(server.request_count(), 1U) << w.name;
    EXPECT_EQ(testing::acknowledged_counter_sum(server.requests(), "PollCount"), 1) << w.name;
    const auto from = senders(server);
    ASSERT_EQ(from.size(), 1U) << w.name;
    EXPECT_EQ(from.begin()->second, "agent_true_program") << w.name;
    // The instance continues across the exec: same pid, the new job name.
    if (w.name != "timeout") {
      EXPECT_EQ(from.begin()->first, instance_of(r.pid)) << w.name;
    }
  }
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

// A port nothing listens on: connections are refused.
std::uint16_t refused_port() {
  FakeServer probe;
  return probe.port();
}

// A listener that never accepts: connections complete in the kernel's
// backlog, the request is sent and no answer ever comes.
class SilentListener {
 public:
  SilentListener() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 || ::listen(fd_, 64) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ADD_FAILURE() << "cannot listen";
    }
    port_ = ntohs(a.sin_port);
  }
  ~SilentListener() { ::close(fd_); }
  SilentListener(const SilentListener&) = delete;
  SilentListener& operator=(const SilentListener&) = delete;
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
};

// The bounds below are correctness bounds (the exit must not wait for the
// retry schedule or the request timeout), generous against a loaded machine.
TEST(PreloadTest, UnreachableServerDelaysExitBoundedly) {
  const std::string address = "127.0.0.1:" + std::to_string(refused_port());
  const Outcome plain = run({"/bin/ls", "/"}, {});
  // The default exit timeout (200ms).
  const Outcome preloaded =
      run({"/bin/ls", "/"},
          {std::string("LD_PRELOAD=") + METRICS_AGENT_PRELOAD_LIB, "ADDRESS=" + address});
  EXPECT_EQ(preloaded.out, plain.out);
  EXPECT_EQ(preloaded.status, plain.status);
  // Below a second: the exit does not wait for the retry schedule's first
  // 1 s pause (it did with the old 2 s default).
  EXPECT_LT(preloaded.took, 900ms);
  const Outcome short_lived =
      run({METRICS_AGENT_TRUE_PROGRAM}, {std::string("LD_PRELOAD=") + METRICS_AGENT_PRELOAD_LIB,
                                         "ADDRESS=" + address, "METRICS_AGENT_EXIT_TIMEOUT=200ms"});
  EXPECT_TRUE(WIFEXITED(short_lived.status));
  EXPECT_LT(short_lived.took, 1500ms);
}

TEST(PreloadTest, SilentServerDelaysExitBoundedly) {
  SilentListener silent;
  // Reports every 50ms, so that a sender waits for an answer when the
  // program exits, and the final report waits too.
  const std::vector<std::string> env{std::string("LD_PRELOAD=") + METRICS_AGENT_PRELOAD_LIB,
                                     "ADDRESS=" + silent.address(), "POLL_INTERVAL=20ms",
                                     "REPORT_INTERVAL=50ms", "METRICS_AGENT_EXIT_TIMEOUT=200ms"};
  const Outcome plain = run({METRICS_AGENT_ALLOC_PROGRAM, "300"}, {});
  const Outcome preloaded = run({METRICS_AGENT_ALLOC_PROGRAM, "300"}, env);
  EXPECT_EQ(preloaded.out, without_clean_env(plain.out));
  EXPECT_EQ(preloaded.status, plain.status);
  EXPECT_LT(preloaded.took, plain.took + 1500ms);
  const Outcome short_lived = run({METRICS_AGENT_TRUE_PROGRAM}, env);
  EXPECT_TRUE(WIFEXITED(short_lived.status));
  EXPECT_LT(short_lived.took, 1500ms);
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
