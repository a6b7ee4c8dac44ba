// Starting and stopping real metrics-server processes for the tests.
#pragma once

#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "test_support.hpp"

namespace metrics::testing {

inline std::uint16_t free_port() {
  boost::asio::io_context ioc;
  boost::asio::ip::tcp::acceptor a(ioc, {boost::asio::ip::address_v4::loopback(), 0});
  return a.local_endpoint().port();
}

// In a forked child before exec: the server's environment wins over its
// flags, so none of the test runner's server settings may reach it.
inline void clear_server_environment() {
  for (const char* name : {"ADDRESS", "DATABASE_DSN", "FILE_STORAGE_PATH", "STORE_INTERVAL",
                           "RESTORE", "KEY", "CONFIG", "ALLOW_UNSIGNED", "TLS_CERT", "TLS_KEY",
                           "LOG_LEVEL", "RETENTION", "HISTORY_MAX_BYTES", "HISTORY_DIR",
                           "STALE_AFTER", "SERIES_TTL", "MAX_SERIES", "MAX_SERIES_PER_INSTANCE"}) {
    unsetenv(name);
  }
  // Remote write out: a runner's destination must not receive test data.
  for (const char* name :
       {"REMOTE_WRITE_URL", "REMOTE_WRITE_HEADER", "REMOTE_WRITE_QUEUE", "REMOTE_WRITE_LABEL"}) {
    unsetenv(name);
  }
  // Alerting.
  for (const char* name : {"RULES", "EVALUATION_INTERVAL", "ALERTMANAGER_URL", "ALERT_WEBHOOK"}) {
    unsetenv(name);
  }
  for (const char* name :
       {"EXTERNAL_URL", "RESEND_DELAY", "FOR_OUTAGE_TOLERANCE", "WEB_CONFIG", "WEB_TOKENS"}) {
    unsetenv(name);
  }
  for (const char* name : {"IDEMPOTENCY_WINDOW", "IDEMPOTENCY_MAX_KEYS"}) {
    unsetenv(name);
  }
}

// Forks and execs args[0] with `args`; the child's stderr (and its stdout
// when `with_stdout`) is appended to `log` (left alone when empty), and with
// `clear_environment` the server's variables are unset first. The child's pid.
inline pid_t spawn_logged(std::vector<std::string> args, const std::string& log,
                          bool with_stdout = true, bool clear_environment = false) {
  const pid_t pid = fork();
  if (pid == 0) {
    if (clear_environment) clear_server_environment();
    if (!log.empty()) {
      const int fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        if (with_stdout) dup2(fd, 1);
        dup2(fd, 2);
        ::close(fd);
      }
    }
    std::vector<char*> argv;
    for (auto& a : args)
      argv.push_back(a.data());
    argv.push_back(nullptr);
    execv(argv[0], argv.data());
    _exit(127);
  }
  return pid;
}

// Stops a child: SIGTERM, then SIGKILL when it has not exited within `grace`.
inline void stop_child(pid_t pid, std::chrono::milliseconds grace = std::chrono::seconds{2}) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  const auto deadline = std::chrono::steady_clock::now() + grace;
  while (std::chrono::steady_clock::now() < deadline) {
    if (waitpid(pid, nullptr, WNOHANG) == pid) return;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  kill(pid, SIGKILL);
  waitpid(pid, nullptr, 0);
}

// A program other than the server (a receiver, nginx, vmalert...) that lives
// as long as the object: started by spawn_logged (stdout and stderr into
// `log`, the server's variables cleared), stopped by stop_child.
class ChildProcess {
 public:
  ChildProcess(std::vector<std::string> args, const std::string& log)
      : pid_(spawn_logged(std::move(args), log, true, true)) {}
  ~ChildProcess() { stop_child(pid_); }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

 private:
  pid_t pid_ = -1;
};

// A metrics-server child process on 127.0.0.1:<free port>. Without
// --history-dir in `args` it keeps its history in memory only (tests run in
// parallel and must not share the default dir's lock). With `log_path` its
// stderr goes to that file.
class ServerProcess {
 public:
  explicit ServerProcess(std::vector<std::string> args, std::string log_path = {},
                         std::uint16_t port = 0)
      : port_(port != 0 ? port : free_port()) {
    if (std::find(args.begin(), args.end(), "--history-dir") == args.end()) {
      args.insert(args.begin(), {"--history-dir", ""});
    }
    args.insert(args.begin(), {METRICS_SERVER_BINARY, "-a", "127.0.0.1:" + std::to_string(port_),
                               "--log-level", "warn"});
    pid_ = spawn_logged(std::move(args), log_path, /*with_stdout=*/false,
                        /*clear_environment=*/true);
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
    }
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  // Waits until /ping answers (any status); false after the timeout.
  bool wait_ready(std::chrono::milliseconds timeout = std::chrono::seconds{15}) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      try {
        Client c(port_);
        (void)c.get("/ping");
        return true;
      } catch (const std::exception&) {
        std::this_thread::sleep_for(std::chrono::milliseconds{25});
      }
    }
    return false;
  }

  // Sends a signal and waits for the exit; returns the wait status.
  int stop(int signo) {
    kill(pid_, signo);
    int status = 0;
    waitpid(pid_, &status, 0);
    pid_ = -1;
    return status;
  }

  // Waits for the process to exit by itself; the wait status, or nullopt
  // when it is still running after the timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout) {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      int status = 0;
      if (waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return status;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds{20});
    }
    return std::nullopt;
  }

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] pid_t pid() const { return pid_; }

 private:
  std::uint16_t port_;
  pid_t pid_ = -1;
};

}  // namespace metrics::testing
