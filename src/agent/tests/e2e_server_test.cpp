// The agent against the real metrics-server: the library in this process
// and the metrics-agent program, both signing with a key, and the server's
// stored values read back. Registered by apps/metrics-agent/CMakeLists.txt
// when the metrics-server target exists.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "metrics/agent/agent.hpp"
#include "metrics/core/signature.hpp"

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

// Starts args[0] with the test's environment minus every setting of the two
// programs, plus `extra_env` ("NAME=value"); stderr to `stderr_path` when set.
pid_t spawn(std::vector<std::string> args, const std::vector<std::string>& extra_env = {},
            const std::string& stderr_path = {}) {
  std::vector<std::string> env;
  for (char** e = environ; *e != nullptr; ++e) {
    const std::string entry(*e);
    const std::string name = entry.substr(0, entry.find('='));
    // Neither program may pick up settings from the test's environment.
    if (name == "ADDRESS" || name == "KEY" || name == "DATABASE_DSN" || name == "CONFIG" ||
        name == "FILE_STORAGE_PATH" || name == "RESTORE" || name == "STORE_INTERVAL" ||
        name == "POLL_INTERVAL" || name == "REPORT_INTERVAL" || name == "RATE_LIMIT" ||
        name == "ALLOW_UNSIGNED" || name == "SEND_MODE" || name == "TLS_CERT" ||
        name == "TLS_KEY" || name == "LOG_LEVEL" || name == "CA_FILE") {
      continue;
    }
    env.push_back(entry);
  }
  env.insert(env.end(), extra_env.begin(), extra_env.end());
  std::vector<char*> envp;
  for (auto& s : env)
    envp.push_back(s.data());
  envp.push_back(nullptr);
  std::vector<char*> argp;
  for (auto& s : args)
    argp.push_back(s.data());
  argp.push_back(nullptr);
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (!stderr_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, 2, stderr_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0600);
  }
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argp[0], &actions, nullptr, argp.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  return rc == 0 ? pid : -1;
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

// POST body to url with a HashSHA256 header under `key`; returns the status.
long post_signed(const std::string& url, const std::string& body, const std::string& key) {
  long status = 0;
  std::string answer;
  CURL* h = curl_easy_init();
  const std::string header = std::string(metrics::core::kSignatureHeader) + ": " +
                             metrics::core::hmac_sha256_hex(key, body);
  curl_slist* headers = curl_slist_append(nullptr, header.c_str());
  headers = curl_slist_append(headers, "Content-Type: application/json");
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &answer);
  if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return status;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
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

// POST url with a JSON body; returns {status, body}.
std::pair<long, std::string> post_json(const std::string& url, const std::string& json) {
  std::pair<long, std::string> result{0, {}};
  CURL* h = curl_easy_init();
  curl_slist* headers = curl_slist_append(nullptr, "Content-Type: application/json");
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(h, CURLOPT_POSTFIELDS, json.c_str());
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 2000L);
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &collect);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &result.second);
  if (curl_easy_perform(h) == CURLE_OK) curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &result.first);
  curl_slist_free_all(headers);
  curl_easy_cleanup(h);
  return result;
}

class E2eTest : public ::testing::Test {
 protected:
  void SetUp() override {
    port_ = free_port();
    server_ = spawn({METRICS_SERVER_BIN, "-a", address(), "-f", "", "--history-dir", "", "-r",
                     "false", "-k", "secret"});
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

// The envelope's identity and the host's own labels reach the server as
// series; the classic value still sums every write (API.md Part 2).
TEST_F(E2eTest, LabelledSeriesArriveWithTheIdentity) {
  metrics::agent::AgentConfig config;
  config.address = address();
  config.key = "secret";
  config.instance = "e2e-1";
  config.job = "e2e";
  config.labels = {{"env", "test"}};
  config.poll_interval = 20ms;
  config.report_interval = 50ms;
  config.retry_backoff = {20ms, 20ms};
  metrics::agent::Agent agent(config);
  ASSERT_TRUE(agent.running()) << agent.error();
  for (int i = 0; i < 10; ++i) {
    agent.add_counter("E2eRoutes", 1, {{"route", "/a"}});
    agent.add_counter("E2eRoutes", 2, {{"route", "/b"}});
    std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(agent.shutdown(5s));
  EXPECT_EQ(agent.stats().requests_failed, 0U);
  const std::string labels = R"("env":"test","instance":"e2e-1","job":"e2e")";
  const auto a = post_json(base() + "/value/", R"({"id":"E2eRoutes","type":"counter","labels":{)" +
                                                   labels + R"(,"route":"/a"}})");
  EXPECT_EQ(a.first, 200) << a.second;
  EXPECT_NE(a.second.find(R"("delta":10)"), std::string::npos) << a.second;
  const auto b = post_json(base() + "/value/", R"({"id":"E2eRoutes","type":"counter","labels":{)" +
                                                   labels + R"(,"route":"/b"}})");
  EXPECT_NE(b.second.find(R"("delta":20)"), std::string::npos) << b.second;
  // The agent's own metrics are series of this instance.
  const auto polls = post_json(base() + "/value/",
                               R"({"id":"PollCount","type":"counter","labels":{)" + labels + "}}");
  EXPECT_NE(polls.second.find("\"delta\":" + std::to_string(agent.stats().polls)),
            std::string::npos)
      << polls.second;
  EXPECT_EQ(value("counter", "E2eRoutes"), "30");
}

#ifdef METRICS_ANSWER_PROXY_BIN
// Exactly once through lost answers (API.md Part 2, "Exactly-once
// writes"): the agent reaches the real server through answer_proxy
// (tests/faults), which cuts some writes before forwarding them, swallows
// the answer of others after the server applied them and cuts others
// halfway through the answer. The agent resends each with its key, the
// server recognises the keys it applied, and every counter is exact, in
// batch and json mode.
class E2eAnswerLossTest : public E2eTest,
                          public ::testing::WithParamInterface<metrics::agent::SendMode> {};

TEST_P(E2eAnswerLossTest, CountersAreExactThroughLostAnswers) {
  const std::string stats = ::testing::TempDir() + "answer_proxy_" + std::to_string(::getpid()) +
                            "_" + std::string(metrics::agent::to_string(GetParam())) + ".stats";
  const std::string out = stats + ".out";
  const pid_t proxy = spawn(
      {"/bin/sh", "-c",
       std::string("exec ") + METRICS_ANSWER_PROXY_BIN + " --upstream " + std::to_string(port_) +
           " --cut 0.1 --swallow 0.25 --cut-answer 0.1 --seed 7 --stats " + stats + " > " + out});
  ASSERT_GT(proxy, 0);
  std::string proxy_port;
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (proxy_port.empty()) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "answer_proxy did not start";
    const std::string line = read_text(out);
    if (line.starts_with("port ") && line.ends_with("\n"))
      proxy_port = line.substr(5, line.size() - 6);
    std::this_thread::sleep_for(10ms);
  }
  metrics::agent::AgentConfig config;
  config.address = "127.0.0.1:" + proxy_port;
  config.key = "secret";
  config.send_mode = GetParam();
  config.poll_interval = 10ms;
  config.report_interval = 30ms;
  config.request_timeout = 2s;
  config.retry_backoff = {5ms, 5ms};
  config.collect_system = false;
  config.collect_allocator = false;
  std::int64_t added = 0;
  metrics::agent::AgentStats agent_stats;
  {
    metrics::agent::Agent agent(config);
    ASSERT_TRUE(agent.running()) << agent.error();
    for (int i = 0; i < 200; ++i) {
      ASSERT_TRUE(agent.add_counter("E2eLost", i % 7 + 1));
      added += i % 7 + 1;
      std::this_thread::sleep_for(5ms);
    }
    // Then the proxy lets everything through, so what is still held or
    // pending drains (the final send included) and the sums can be exact.
    ::kill(proxy, SIGUSR1);
    ASSERT_TRUE(agent.shutdown(10s));
    agent_stats = agent.stats();
  }
  ::kill(proxy, SIGTERM);
  ASSERT_NE(wait_exit(proxy, 10s), -1);
  const std::string counts = read_text(stats);
  EXPECT_EQ(counts.find("swallowed=0 "), std::string::npos) << counts;
  EXPECT_GT(agent_stats.requests_failed, 0U) << counts;
  // Read directly from the server, not through the proxy.
  EXPECT_EQ(value("counter", "E2eLost"), std::to_string(added)) << counts;
  EXPECT_EQ(value("counter", "PollCount"), std::to_string(agent_stats.polls)) << counts;
  std::filesystem::remove(stats);
  std::filesystem::remove(out);
}

INSTANTIATE_TEST_SUITE_P(Modes, E2eAnswerLossTest,
                         // Not text mode: the server (branch idem-server,
                         // 71f1ba0) ignores Idempotency-Key on
                         // POST /update/{type}/{name}/{value}, so resends
                         // there are applied again (this test fails for it).
                         ::testing::Values(metrics::agent::SendMode::batch,
                                           metrics::agent::SendMode::json),
                         [](const auto& mode) {
                           return std::string(metrics::agent::to_string(mode.param));
                         });
#endif

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

// Environment over flag, on both sides, over real processes: the server has
// KEY in its environment and another key as -k; so has the agent. The
// environment's key is the one both use.
TEST(E2ePrecedence, EnvironmentKeyBeatsTheFlagOnServerAndAgent) {
  const std::uint16_t port = free_port();
  const std::string address = "127.0.0.1:" + std::to_string(port);
  const std::string base = "http://" + address;
  const std::string log =
      ::testing::TempDir() + "e2e-precedence-" + std::to_string(::getpid()) + ".log";
  const pid_t server = spawn(
      {METRICS_SERVER_BIN, "-a", "127.0.0.1:1", "-f", "", "--history-dir", "", "-k", "flag-key"},
      {"KEY=env-key", "ADDRESS=" + address}, log);
  ASSERT_GT(server, 0);
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (get(base + "/ping").first != 200) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline)
        << "metrics-server did not start on ADDRESS: " << read_text(log);
    std::this_thread::sleep_for(50ms);
  }

  const std::string body = R"({"id":"PrecedenceHits","type":"counter","delta":3})";
  EXPECT_EQ(post_signed(base + "/update/", body, "flag-key"), 401);
  EXPECT_EQ(get(base + "/value/counter/PrecedenceHits").first, 404);
  EXPECT_EQ(post_signed(base + "/update/", body, "env-key"), 200);

  const pid_t agent =
      spawn({METRICS_AGENT_BIN, "-a", "127.0.0.1:1", "-k", "flag-key", "-p", "50ms", "-r", "100ms"},
            {"KEY=env-key", "ADDRESS=" + address});
  ASSERT_GT(agent, 0);
  const auto agent_deadline = std::chrono::steady_clock::now() + 10s;
  while (get(base + "/value/counter/PollCount").first != 200 &&
         std::chrono::steady_clock::now() < agent_deadline) {
    std::this_thread::sleep_for(50ms);
  }
  ::kill(agent, SIGTERM);
  ASSERT_NE(wait_exit(agent, 10s), -1) << "metrics-agent did not stop";
  EXPECT_EQ(get(base + "/value/counter/PollCount").first, 200)
      << "the agent's signed reports were not accepted";

  ::kill(server, SIGTERM);
  if (wait_exit(server, 10s) == -1) {
    ::kill(server, SIGKILL);
    waitpid(server, nullptr, 0);
  }
  const std::string text = read_text(log);
  EXPECT_NE(text.find("address=" + address + " (from ADDRESS)"), std::string::npos) << text;
  EXPECT_NE(text.find("key=<set> (from KEY)"), std::string::npos) << text;
  EXPECT_EQ(text.find("env-key"), std::string::npos) << text;
  EXPECT_EQ(text.find("flag-key"), std::string::npos) << text;
  std::filesystem::remove(log);
}

// -r false with a snapshot on disk: the server says at start that the file
// will be replaced.
TEST(E2ePrecedence, RestoreOffWarnsAboutTheSnapshotItWillReplace) {
  const std::string dir = ::testing::TempDir() + "e2e-restore-" + std::to_string(::getpid());
  std::filesystem::create_directories(dir);
  const std::string snapshot = dir + "/db.json";
  std::ofstream(snapshot) << "[]";
  const std::string log = dir + "/server.log";
  const std::uint16_t port = free_port();
  const pid_t server = spawn({METRICS_SERVER_BIN, "-a", "127.0.0.1:" + std::to_string(port), "-f",
                              snapshot, "-r", "false", "--history-dir", ""},
                             {}, log);
  ASSERT_GT(server, 0);
  const auto deadline = std::chrono::steady_clock::now() + 15s;
  while (get("http://127.0.0.1:" + std::to_string(port) + "/ping").first != 200) {
    ASSERT_LT(std::chrono::steady_clock::now(), deadline) << read_text(log);
    std::this_thread::sleep_for(50ms);
  }
  ::kill(server, SIGTERM);
  if (wait_exit(server, 10s) == -1) {
    ::kill(server, SIGKILL);
    waitpid(server, nullptr, 0);
  }
  const std::string text = read_text(log);
  EXPECT_NE(text.find("the existing file " + snapshot + " is not loaded and will be replaced"),
            std::string::npos)
      << text;
  std::filesystem::remove_all(dir);
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
                     "--history-dir", "", "--tls-cert", dir_ + "/server.pem", "--tls-key",
                     dir_ + "/server.key"});
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

}  // namespace
