// Remote write in from the real senders: a Prometheus 2.42, a vmagent and a
// vmalert (its recording rules; it also queries the server as its datasource)
// (Debian's `prometheus` and `victoria-metrics`), each started on a free
// loopback port with a temporary dir, scraping itself and remote-writing to
// a metrics-server process. Their `up` series must arrive with their
// labels, and samples older than what arrived are refused (so the stored
// sample times are the senders' own). Missing programs fail under CI=true
// and skip otherwise.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "metrics/exposition/remote_write.hpp"
#include "metrics/exposition/snappy_block.hpp"
#include "process_support.hpp"

namespace metrics::testing {
namespace {
namespace fs = std::filesystem;
using ::testing::HasSubstr;

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

// A child process killed (SIGTERM, then SIGKILL) with the test.
using Child = metrics::testing::ChildProcess;

class TempDir {
 public:
  explicit TempDir(const std::string& name)
      : path_(fs::temp_directory_path() /
              ("metrics-rw-" + name + "-" + std::to_string(::getpid()))) {
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  [[nodiscard]] const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string file_text(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// POST /value/ for `up` with these labels until it is 200 (or the timeout).
Response wait_for_up(std::uint16_t port, const std::string& instance, const std::string& job) {
  const std::string body = R"({"id":"up","type":"gauge","labels":{"instance":")" + instance +
                           R"(","job":")" + job + R"("}})";
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{45};
  Response last;
  while (std::chrono::steady_clock::now() < deadline) {
    try {
      Client c(port);
      last = c.post_json("/value/", body);
      if (last.result_int() == 200) return last;
    } catch (const std::exception&) {
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
  }
  return last;
}

// A remote write of `up` with these labels at time t_ms, straight from the test.
Response write_up(std::uint16_t port, const std::string& instance, const std::string& job,
                  std::int64_t t_ms) {
  std::string plain;
  const auto labels = core::Labels::make({{"instance", instance}, {"job", job}});
  const std::array samples{exposition::Sample{1, t_ms}};
  exposition::append_series(plain, "up", labels, samples);
  Request req{http::verb::post, "/api/v1/write", 11};
  req.set(http::field::content_type, "application/x-protobuf");
  req.set(http::field::content_encoding, "snappy");
  req.set("X-Prometheus-Remote-Write-Version", "0.1.0");
  req.body() = exposition::snappy_compress(plain);
  Client c(port);
  return c.send(std::move(req));
}

std::string program(const char* path) {
  if (fs::exists(path)) return path;
  return {};
}

void check_arrival(std::uint16_t port, const std::string& instance, const std::string& job,
                   const fs::path& log) {
  const auto res = wait_for_up(port, instance, job);
  ASSERT_EQ(res.result_int(), 200) << res.body() << "\n" << file_text(log);
  EXPECT_THAT(res.body(), HasSubstr(R"("value":1)"));
  EXPECT_THAT(res.body(), HasSubstr(instance));
  // Remote-written series are series only: no classic value, no liveness.
  Client c(port);
  EXPECT_EQ(c.get("/value/gauge/up").result_int(), 404);
  EXPECT_EQ(c.post_json("/value/", R"({"id":"agent_up","type":"gauge","labels":{"instance":")" +
                                       instance + R"(","job":")" + job + R"("}})")
                .result_int(),
            404);
  // The stored samples carry the sender's timestamps (recent ones): a sample
  // from 1970 is out of order for that series, one from the future is not.
  auto old = write_up(port, instance, job, 1000);
  EXPECT_EQ(old.result_int(), 400);
  EXPECT_THAT(old.body(), HasSubstr("out of order sample"));
  const auto future =
      std::chrono::duration_cast<std::chrono::milliseconds>(
          std::chrono::system_clock::now().time_since_epoch() + std::chrono::hours{24})
          .count();
  EXPECT_EQ(write_up(port, instance, job, future).result_int(), 204);
}

TEST(RemoteWriteInProcess, PrometheusSendsItsSamples) {
  const std::string prom = program("/usr/bin/prometheus");
  if (prom.empty()) {
    if (in_ci()) FAIL() << "prometheus (Debian package) is not installed";
    GTEST_SKIP() << "prometheus not installed";
  }
  TempDir dir("prom");
  ServerProcess server({"-f", ""});
  ASSERT_TRUE(server.wait_ready());
  const auto prom_port = free_port();
  const std::string self = "127.0.0.1:" + std::to_string(prom_port);
  std::ofstream(dir.path() / "prometheus.yml")
      << "global:\n  scrape_interval: 1s\n"
      << "scrape_configs:\n  - job_name: self\n    static_configs:\n      - targets: ['" << self
      << "']\n"
      << "remote_write:\n  - url: http://127.0.0.1:" << server.port() << "/api/v1/write\n"
      << "    queue_config:\n      batch_send_deadline: 1s\n      min_backoff: 100ms\n";
  const auto log = dir.path() / "prometheus.log";
  Child p({prom, "--config.file=" + (dir.path() / "prometheus.yml").string(),
           "--storage.tsdb.path=" + (dir.path() / "data").string(), "--web.listen-address=" + self},
          log);
  check_arrival(server.port(), self, "self", log);
}

TEST(RemoteWriteInProcess, VmagentSendsItsSamples) {
  const std::string vmagent = program("/usr/bin/vmagent");
  if (vmagent.empty()) {
    if (in_ci()) FAIL() << "vmagent (Debian package victoria-metrics) is not installed";
    GTEST_SKIP() << "vmagent not installed";
  }
  TempDir dir("vmagent");
  ServerProcess server({"-f", ""});
  ASSERT_TRUE(server.wait_ready());
  const auto port = free_port();
  const std::string self = "127.0.0.1:" + std::to_string(port);
  std::ofstream(dir.path() / "scrape.yml")
      << "global:\n  scrape_interval: 1s\n"
      << "scrape_configs:\n  - job_name: vm\n    static_configs:\n      - targets: ['" << self
      << "']\n";
  const auto log = dir.path() / "vmagent.log";
  Child v({vmagent, "-httpListenAddr=" + self,
           "-promscrape.config=" + (dir.path() / "scrape.yml").string(),
           "-remoteWrite.url=http://127.0.0.1:" + std::to_string(server.port()) + "/api/v1/write",
           "-remoteWrite.tmpDataPath=" + (dir.path() / "tmp").string(),
           "-remoteWrite.flushInterval=200ms"},
          log);
  check_arrival(server.port(), self, "vm", log);
}

// vmalert 1.79 with this server as its datasource: an alerting rule over a
// pushed gauge fires (vmalert's own /api/v1/alerts says so), and the
// output of its recording rule, remote-written back to the server, is
// queryable here.
TEST(RemoteWriteInProcess, VmalertUsesTheServerAsItsDatasourceAndFires) {
  const std::string vmalert = program("/usr/bin/vmalert");
  if (vmalert.empty()) {
    if (in_ci()) FAIL() << "vmalert (Debian package victoria-metrics) is not installed";
    GTEST_SKIP() << "vmalert not installed";
  }
  TempDir dir("vmalert");
  ServerProcess server({"-f", ""});
  ASSERT_TRUE(server.wait_ready());
  const std::string base = "http://127.0.0.1:" + std::to_string(server.port());
  std::ofstream(dir.path() / "rules.yml") << R"(groups:
  - name: vm
    interval: 1s
    rules:
      - alert: HeapHigh
        expr: heap_bytes > 100
        labels:
          severity: page
      - record: job:heap_bytes:max
        expr: max by (job) (heap_bytes)
)";
  const auto port = free_port();
  const std::string self = "127.0.0.1:" + std::to_string(port);
  const auto log = dir.path() / "vmalert.log";
  // Its notifications go to this server, which has no Alertmanager API
  // (404, logged by vmalert): the alert's state is read from vmalert.
  Child v({vmalert, "-httpListenAddr=" + self, "-rule=" + (dir.path() / "rules.yml").string(),
           "-datasource.url=" + base, "-notifier.url=" + base, "-remoteWrite.url=" + base,
           "-remoteWrite.flushInterval=200ms", "-evaluationInterval=1s"},
          log);
  const std::string push =
      R"({"labels":{"instance":"web-1:7","job":"api"},"metrics":[{"id":"heap_bytes","type":"gauge","value":500}]})";
  bool firing = false;
  std::string alerts;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{40};
  while (!firing && std::chrono::steady_clock::now() < deadline) {
    {
      Client c(server.port());
      ASSERT_EQ(c.post_json("/updates/", push).result_int(), 200u);
    }
    try {
      Client c(port);
      const auto r = c.get("/api/v1/alerts");
      alerts = r.body();
      firing = r.result_int() == 200 && alerts.find("\"HeapHigh\"") != std::string::npos &&
               alerts.find("\"firing\"") != std::string::npos;
    } catch (const std::exception&) {
    }
    if (!firing) std::this_thread::sleep_for(std::chrono::milliseconds{250});
  }
  ASSERT_TRUE(firing) << alerts << "\n" << file_text(log);
  EXPECT_THAT(alerts, HasSubstr("web-1:7"));

  // The recording rule's output came back by remote write.
  std::string answer;
  bool recorded = false;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  while (!recorded && std::chrono::steady_clock::now() < until) {
    Client c(server.port());
    const auto r = c.get("/api/v1/query?query=job:heap_bytes:max");
    answer = r.body();
    recorded = r.result_int() == 200 && answer.find("\"job\":\"api\"") != std::string::npos &&
               answer.find("\"500\"") != std::string::npos;
    if (!recorded) std::this_thread::sleep_for(std::chrono::milliseconds{250});
  }
  EXPECT_TRUE(recorded) << answer << "\n" << file_text(log);
}

}  // namespace
}  // namespace metrics::testing
