// The agent against the real metrics-server: the library in this process
// and the metrics-agent program, both signing with a key, and the server's
// stored values read back. Registered by apps/metrics-agent/CMakeLists.txt
// when the metrics-server target exists.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>
#include <vector>

#include "metrics/agent/agent.hpp"

extern char** environ;

namespace {

using namespace std::chrono_literals;

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

pid_t spawn(std::vector<std::string> args) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    // Neither program may pick up settings from the test's environment.
    if (name == "ADDRESS" || name == "KEY" || name == "DATABASE_DSN" || name == "CONFIG" ||
        name == "FILE_STORAGE_PATH" || name == "RESTORE" || name == "STORE_INTERVAL" ||
        name == "POLL_INTERVAL" || name == "REPORT_INTERVAL" || name == "RATE_LIMIT" ||
        name == "SEND_MODE") {
      continue;
    }
    env.push_back(entry);
  }
  std::vector<char*> envp;
  for (auto& s : env)
    envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> argp;
  for (auto& s : args)
    argp.push_back(s.data());
  argp.push_back(nullptr);
  pid_t pid = -1;
  if (posix_spawn(&pid, argp[0], nullptr, nullptr, argp.data(), envp.data()) != 0) return -1;
  return pid;
}

// Waits for the process to exit, at most `timeout`; -1 when it did not.
int wait_exit(pid_t pid, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (std::chrono::steady_clock::now() > deadline) return -1;
    std::this_thread::sleep_for(10ms);
  }
  return status;
}

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// GET url; returns {status, body}. ca_file: the CA to trust for https://.
std::pair<long, std::string> get(const std::string& url, const std::string& ca_file = {}) {
  std::pair<long, std::string> result{0, {}};
  CURL* h = curl_easy_init();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  if (!ca_file.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, ca_file.c_str());
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &result.second);
  if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result.first);
  curl_easy_cleanup(h);
  return result;
}

class E2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    server_ = spawn({METRICS_SERVER_BIN, "-a", address(), "-f", "", "-r", "false", "-k", "secret"});
    ASSERT_GT(server_, 0);
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (get(base() + "/ping").first != 200) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "metrics-server did not start";
      std::this_thread::sleep_for(50ms);
    }
  }
  void TearDown() override {
    if (server_ > 0) {
      ::kill(server_, SIGTERM);
      if (wait_exit(server_, 10s) == -1) {
        ::kill(server_, SIGKILL);
        waitpid(server_, nullptr, 0);
      }
    }
  }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string base() const { return "http://" + address(); }
  std::string value(const std::string& type, const std::string& name) {
    const auto [status, body] = get(base() + "/value/" + type + "/" + name);
    return status == 200 ? body : "status " + std::to_string(status);
  }

  std::uint16_t port_ = 0;
  pid_t server_ = -1;
};

TEST_F(E2eTest, LibraryCountersArriveExactly) {
  metrics::agent::AgentConfig config;
  config.address = address();
  config.key = "secret";
  config.poll_interval = 20ms;
  config.report_interval = 50ms;
  config.retry_backoff = {20ms, 20ms};
  metrics::agent::Agent agent(config);
  ASSERT_TRUE(agent.running()) << agent.error();
  for (int i = 0; i < 20; ++i) {
    agent.add_counter("E2eHits", 5);
    std::this_thread::sleep_for(10ms);
  }
  agent.set_gauge("E2eGauge", 2.5);
  ASSERT_TRUE(agent.shutdown(5s));
  EXPECT_EQ(value("counter", "E2eHits"), "100");
  EXPECT_EQ(value("gauge", "E2eGauge"), "2.5");
  EXPECT_EQ(value("counter", "PollCount"), std::to_string(agent.stats().polls));
  EXPECT_EQ(agent.stats().requests_failed, 0U);
}

TEST_F(E2eTest, WrongKeyIsRefusedAndKept) {
  metrics::agent::AgentConfig config;
  config.address = address();
  config.key = "wrong";
  config.poll_interval = 20ms;
  config.report_interval = 50ms;
  config.retry_backoff = {10ms};
  metrics::agent::Agent agent(config);
  agent.add_counter("E2eRefused", 1);
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(agent.shutdown(300ms));
  EXPECT_EQ(agent.stats().requests_ok, 0U);
  EXPECT_GT(agent.stats().pending, 0U);
  EXPECT_EQ(value("counter", "E2eRefused"), "status 404");
}

TEST_F(E2eTest, ProgramReportsAndStopsOnSigterm) {
  const pid_t agent =
      spawn({METRICS_AGENT_BIN, "-a", address(), "-p", "50ms", "-r=100ms", "-k", "secret"});
  ASSERT_GT(agent, 0);
  std::this_thread::sleep_for(700ms);
  ::kill(agent, SIGTERM);
  const int status = wait_exit(agent, 10s);
  ASSERT_NE(status, -1) << "metrics-agent did not stop";
  EXPECT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  // Sanitizer builds link metrics-agent without the counting shim.
  EXPECT_GT(std::stod(value("gauge", "Mallocs")), 0);
  EXPECT_GT(std::stod(value("gauge", "TotalAlloc")), 0);
#endif
  EXPECT_GT(std::stod(value("gauge", "ProcessRSS")), 0);
  EXPECT_GE(std::stoll(value("counter", "PollCount")), 10);
}

// HTTPS: the agent pushes to a TLS server whose certificate comes from a
// throwaway CA made here; it trusts that CA only through ca_file.
class E2eTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = "/tmp/metrics-agent-tls-" + std::to_string(::getpid());
    const std::string script =
        "set -e; mkdir -p '" + dir_ + "'; cd '" + dir_ +
        "'; "
        "openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem -days 1 "
        "-subj /CN=metrics-agent-test-ca 2>/dev/null; "
        "openssl req -newkey rsa:2048 -nodes -keyout server.key -out server.csr "
        "-subj /CN=127.0.0.1 2>/dev/null; "
        "printf 'subjectAltName=IP:127.0.0.1\\n' > ext.cnf; "
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 1 -extfile ext.cnf 2>/dev/null";
    ASSERT_EQ(std::system(script.c_str()), 0) << "openssl failed";
    port_ = free_port();
    server_ = spawn({METRICS_SERVER_BIN, "-a", "127.0.0.1:" + std::to_string(port_), "-f", "",
                     "--tls-cert", dir_ + "/server.pem", "--tls-key", dir_ + "/server.key"});
    ASSERT_GT(server_, 0);
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (get(base() + "/ping", ca()).first != 200) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "metrics-server did not start";
      std::this_thread::sleep_for(50ms);
    }
  }
  void TearDown() override {
    if (server_ > 0) {
      ::kill(server_, SIGKILL);
      waitpid(server_, nullptr, 0);
    }
    (void)std::system(("rm -rf '" + dir_ + "'").c_str());
  }
  [[nodiscard]] std::string base() const { return "https://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string ca() const { return dir_ + "/ca.pem"; }

  std::string dir_;
  std::uint16_t port_ = 0;
  pid_t server_ = -1;
};

TEST_F(E2eTlsTest, AgentPushesOverVerifiedHttps) {
  metrics::agent::AgentConfig config;
  config.address = base();
  config.ca_file = ca();
  config.poll_interval = 20ms;
  config.report_interval = 50ms;
  config.retry_backoff = {20ms};
  metrics::agent::Agent agent(config);
  ASSERT_TRUE(agent.running()) << agent.error();
  agent.add_counter("TlsHits", 7);
  ASSERT_TRUE(agent.shutdown(5s));
  const auto [status, body] = get(base() + "/value/counter/TlsHits", ca());
  EXPECT_EQ(status, 200);
  EXPECT_EQ(body, "7");
}

TEST_F(E2eTlsTest, UntrustedServerCertificateIsRefused) {
  metrics::agent::AgentConfig config;
  config.address = base();  // no ca_file: the system store does not know the test CA
  config.poll_interval = 20ms;
  config.report_interval = 50ms;
  config.retry_backoff = {10ms};
  config.request_timeout = 2s;
  metrics::agent::Agent agent(config);
  agent.add_counter("TlsRefused", 1);
  std::this_thread::sleep_for(300ms);
  EXPECT_FALSE(agent.shutdown(300ms));
  EXPECT_EQ(agent.stats().requests_ok, 0U);
  EXPECT_EQ(get(base() + "/value/counter/TlsRefused", ca()).first, 404);
}

// In every sending mode: the server stops in the middle of the run (the
// agent keeps sampling and adding), comes back on the same port with the
// same file, and the stored counters are exactly what was added.
class E2eOutageTest : public ::testing::TestWithParam<metrics::agent::SendMode> {
 protected:
  void TearDown() override {
    stop_server();
    std::remove(file_.c_str());
  }
  void start_server() {
    server_ = spawn({METRICS_SERVER_BIN, "-a", address(), "-f", file_, "-i", "0", "-r", "true",
                     "-k", "secret", "--log-level", "warn"});
    ASSERT_GT(server_, 0);
    const auto deadline = std::chrono::steady_clock::now() + 15s;
    while (get(base() + "/ping").first != 200) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "metrics-server did not start";
      std::this_thread::sleep_for(20ms);
    }
  }
  void stop_server() {
    if (server_ <= 0) return;
    ::kill(server_, SIGTERM);
    if (wait_exit(server_, 10s) == -1) {
      ::kill(server_, SIGKILL);
      waitpid(server_, nullptr, 0);
    }
    server_ = -1;
  }
  [[nodiscard]] std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string base() const { return "http://" + address(); }
  std::string value(const std::string& type, const std::string& name) {
    const auto [status, body] = get(base() + "/value/" + type + "/" + name);
    return status == 200 ? body : "status " + std::to_string(status);
  }

  std::uint16_t port_ = free_port();
  std::string file_ = "/tmp/metrics-agent-outage-" + std::to_string(::getpid()) + "-" +
                      std::string(metrics::agent::to_string(GetParam())) + ".json";
  pid_t server_ = -1;
};

TEST_P(E2eOutageTest, RestartInTheMiddleLosesNothingAndCountsNothingTwice) {
  std::remove(file_.c_str());
  start_server();
  metrics::agent::AgentConfig config;
  config.address = address();
  config.key = "secret";
  config.send_mode = GetParam();
  config.poll_interval = 20ms;
  config.report_interval = 40ms;
  config.rate_limit = 2;
  config.retry_backoff = {20ms, 50ms};
  config.collect_system = false;
  metrics::agent::Agent agent(config);
  ASSERT_TRUE(agent.running()) << agent.error();
  std::int64_t added = 0;
  const auto run = [&](int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(agent.add_counter("E2eOutageHits", i % 5 + 1));
      added += i % 5 + 1;
      agent.set_gauge("E2eOutageGauge", static_cast<double>(i));
      std::this_thread::sleep_for(10ms);
    }
  };
  run(30);
  stop_server();
  const auto failed_before = agent.stats().requests_failed;
  run(30);
  EXPECT_GT(agent.stats().requests_failed, failed_before);
  start_server();
  run(30);
  ASSERT_TRUE(agent.shutdown(10s));
  EXPECT_EQ(value("counter", "E2eOutageHits"), std::to_string(added));
  EXPECT_EQ(value("counter", "PollCount"), std::to_string(agent.stats().polls));
  EXPECT_EQ(value("gauge", "E2eOutageGauge"), "29");
}

INSTANTIATE_TEST_SUITE_P(Modes, E2eOutageTest,
                         ::testing::Values(metrics::agent::SendMode::batch,
                                           metrics::agent::SendMode::json,
                                           metrics::agent::SendMode::text),
                         [](const auto& mode) {
                           return std::string(metrics::agent::to_string(mode.param));
                         });

}  // namespace
