// A real Alertmanager 0.25 (Debian's prometheus-alertmanager) for tests: on
// a free loopback port with its own data folder, routing every alert to one
// webhook (group_wait 100 ms, group_interval 500 ms, resolved sent).
#pragma once

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <system_error>
#include <thread>

#include "fake_server.hpp"

namespace metrics::rules::testing {

inline constexpr const char* kAlertmanager = "/usr/bin/prometheus-alertmanager";

inline std::uint16_t free_port() {
  metrics::agent::testing::FakeServer probe;  // binds a free port; closed right after
  const auto p = probe.port();
  probe.stop();
  return p;
}

class AlertmanagerProcess {
  using path = std::filesystem::path;

 public:
  explicit AlertmanagerProcess(const std::string& webhook_url) {
    char tmpl[] = "/tmp/rules-am-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(dir_ / "am.yml") << "route:\n  receiver: hook\n  group_by: [alertname]\n"
                                      "  group_wait: 100ms\n  group_interval: 500ms\n"
                                      "  repeat_interval: 1h\nreceivers:\n  - name: hook\n"
                                      "    webhook_configs:\n      - url: "
                                   << webhook_url << "\n        send_resolved: true\n";
    port_ = free_port();
    const std::string log = (dir_ / "am.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::freopen(log.c_str(), "w", stderr);
      (void)f;
      const std::string config = "--config.file=" + (dir_ / "am.yml").string();
      const std::string storage = "--storage.path=" + (dir_ / "data").string();
      const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
      execl(kAlertmanager, kAlertmanager, config.c_str(), storage.c_str(), listen.c_str(),
            "--cluster.listen-address=", static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~AlertmanagerProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      waitpid(pid_, nullptr, 0);
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  [[nodiscard]] std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  [[nodiscard]] std::string log() const {
    std::ifstream f(dir_ / "am.log");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }
  bool wait_ready() const {
    for (int i = 0; i < 200; ++i) {
      const std::string cmd = "curl -sf --noproxy '*' -o /dev/null " + base() + "/-/ready";
      if (std::system(cmd.c_str()) == 0) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

 private:
  path dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace metrics::rules::testing
