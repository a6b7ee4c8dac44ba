// Remote write out against the real receivers: a metrics-server process
// with --remote-write-url pointing at a Prometheus 2.42
// (--web.enable-remote-write-receiver) and at a VictoriaMetrics single, each
// on a free loopback port with a temporary data dir. The samples pushed
// over HTTP must arrive with their labels, values and the server's receive
// times (read back through Prometheus's query API and VictoriaMetrics's
// /api/v1/export); with both receivers stopped for a few seconds in the
// middle (and a queue too small to hold the outage, so the rest comes from
// the history), every sample still arrives exactly once.
//
// Locally a missing binary skips; with CI set it fails.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "process_support.hpp"

namespace metrics::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;

std::int64_t wall_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// GET on 127.0.0.1:port; status 0 when nothing answers.
std::pair<unsigned, std::string> get(std::uint16_t port, const std::string& target) {
  try {
    Client c(port);
    auto r = c.get(target);
    return {r.result_int(), r.body()};
  } catch (const std::exception&) {
    return {0, ""};
  }
}

// A receiver process: started (and restarted) with the same arguments,
// ready once `ready_path` answers 200.
class Receiver {
 public:
  Receiver(std::string name, std::vector<std::string> args, std::uint16_t port,
           std::string ready_path, fs::path log)
      : name_(std::move(name)),
        args_(std::move(args)),
        port_(port),
        ready_path_(std::move(ready_path)),
        log_(std::move(log)) {}
  ~Receiver() { stop(); }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;

  void start() { pid_ = metrics::testing::spawn_logged(args_, log_.string()); }
  [[nodiscard]] bool wait_ready(std::chrono::milliseconds timeout = 60s) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    while (std::chrono::steady_clock::now() < deadline) {
      if (get(port_, ready_path_).first == 200) return true;
      std::this_thread::sleep_for(50ms);
    }
    return false;
  }
  void stop() {
    if (pid_ <= 0) return;
    kill(pid_, SIGTERM);
    waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] std::string write_url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/api/v1/write";
  }
  [[nodiscard]] std::string log_text() const {
    std::ifstream in(log_);
    return {std::istreambuf_iterator<char>(in), {}};
  }

 private:
  std::string name_;
  std::vector<std::string> args_;
  std::uint16_t port_;
  std::string ready_path_;
  fs::path log_;
  pid_t pid_ = -1;
};

struct Point {
  std::int64_t t = 0;
  double v = 0;
};
// Labels (as sorted k=v text, __name__ included) -> samples in time order.
using Series = std::map<std::string, std::vector<Point>>;

std::string key_of(const json::object& metric) {
  std::map<std::string, std::string> sorted;
  for (const auto& [k, v] : metric)
    sorted[std::string(k)] = std::string(v.as_string());
  std::string out;
  for (const auto& [k, v] : sorted)
    out += (out.empty() ? "" : ",") + k + "=" + v;
  return out;
}

// Prometheus: every raw sample of the metrics matching `selector` in the last hour.
Series from_prometheus(std::uint16_t port, const std::string& selector) {
  Series out;
  const auto [status, body] = get(port, "/api/v1/query?query=" + selector + "%5B1h%5D");
  if (status != 200) return out;
  const auto doc = json::parse(body);
  for (const auto& r : doc.at("data").at("result").as_array()) {
    auto& samples = out[key_of(r.at("metric").as_object())];
    for (const auto& pair : r.at("values").as_array()) {
      const auto& a = pair.as_array();
      samples.push_back({std::llround(a[0].to_number<double>() * 1000),
                         std::stod(std::string(a[1].as_string()))});
    }
  }
  return out;
}

// VictoriaMetrics: /api/v1/export (raw samples, one JSON line per series;
// a sample stored twice shows twice).
Series from_victoria(std::uint16_t port, const std::string& selector) {
  Series out;
  const auto [status, body] = get(port, "/api/v1/export?match%5B%5D=" + selector);
  if (status != 200) return out;
  std::size_t pos = 0;
  while (pos < body.size()) {
    auto end = body.find('\n', pos);
    if (end == std::string::npos) end = body.size();
    const std::string line = body.substr(pos, end - pos);
    pos = end + 1;
    if (line.empty()) continue;
    const auto doc = json::parse(line).as_object();
    const auto& values = doc.at("values").as_array();
    const auto& times = doc.at("timestamps").as_array();
    std::vector<Point> samples;
    for (std::size_t i = 0; i < values.size() && i < times.size(); ++i)
      samples.push_back({times[i].to_number<std::int64_t>(), values[i].to_number<double>()});
    std::sort(samples.begin(), samples.end(),
              [](const Point& a, const Point& b) { return a.t < b.t; });
    auto& into = out[key_of(doc.at("metric").as_object())];
    into.insert(into.end(), samples.begin(), samples.end());
  }
  return out;
}

class RemoteWriteOut : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string prometheus = METRICS_PROMETHEUS;
    const std::string victoria = METRICS_VICTORIA_METRICS;
    if (prometheus.empty() || victoria.empty()) {
      if (std::getenv("CI") != nullptr) {
        FAIL() << "prometheus or victoria-metrics not found at configure time (CI)";
      }
      GTEST_SKIP() << "prometheus or victoria-metrics not found at configure time";
    }
    dir_ = fs::temp_directory_path() /
           ("remote_write_out_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "prometheus");
    fs::create_directories(dir_ / "victoria");
    fs::create_directories(dir_ / "history");
    std::ofstream(dir_ / "prometheus.yml") << "global:\n  scrape_interval: 1h\n";
    const auto pport = free_port();
    prom_ = std::make_unique<Receiver>(
        "prometheus",
        std::vector<std::string>{prometheus, "--config.file=" + (dir_ / "prometheus.yml").string(),
                                 "--storage.tsdb.path=" + (dir_ / "prometheus").string(),
                                 "--web.listen-address=127.0.0.1:" + std::to_string(pport),
                                 "--web.enable-remote-write-receiver", "--log.level=warn"},
        pport, "/-/ready", dir_ / "prometheus.log");
    const auto vport = free_port();
    vm_ = std::make_unique<Receiver>(
        "victoria-metrics",
        std::vector<std::string>{victoria, "-storageDataPath=" + (dir_ / "victoria").string(),
                                 "-httpListenAddr=127.0.0.1:" + std::to_string(vport),
                                 "-retentionPeriod=100y", "-loggerLevel=WARN"},
        vport, "/health", dir_ / "victoria.log");
    prom_->start();
    vm_->start();
    ASSERT_TRUE(prom_->wait_ready()) << prom_->log_text();
    ASSERT_TRUE(vm_->wait_ready()) << vm_->log_text();
  }
  void TearDown() override {
    server_.reset();
    prom_.reset();
    vm_.reset();
    std::error_code ignored;
    if (!dir_.empty() && !HasFailure()) fs::remove_all(dir_, ignored);
  }

  void start_server(std::vector<std::string> extra = {}) {
    std::vector<std::string> args{"-f",
                                  storage_file_,
                                  "--history-dir",
                                  (dir_ / "history").string(),
                                  "--remote-write-url",
                                  prom_->write_url(),
                                  "--remote-write-url",
                                  vm_->write_url(),
                                  "--remote-write-header",
                                  "X-Scope-OrgID: rw-test"};
    args.insert(args.end(), extra.begin(), extra.end());
    server_ = std::make_unique<ServerProcess>(args, (dir_ / "server.log").string());
    ASSERT_TRUE(server_->wait_ready());
  }

  // One push: a gauge and a counter of one instance; records the window of
  // wall-clock time the server's receive time must fall into.
  void push(Client& c, int i) {
    const std::int64_t before = wall_ms();
    const std::string body = R"({"labels":{"instance":"h:1","job":"rw"},"metrics":[)"
                             R"({"id":"rw_out_gauge","type":"gauge","value":)" +
                             std::to_string(i) +
                             R"(.25,"labels":{"zone":"eu"}},)"
                             R"({"id":"rw_out_total","type":"counter","delta":)" +
                             std::to_string(i) + "}]}";
    const auto r = c.post_json("/updates/", body);
    ASSERT_EQ(r.result_int(), 200U) << r.body();
    total_ += i;
    expected_.push_back({before, wall_ms(), i + 0.25, static_cast<double>(total_)});
  }

  // Waits until `read` finds every pushed sample, then checks them.
  template <typename Read>
  void expect_all_arrived(const Receiver& rx, Read read) {
    const std::string g = "__name__=rw_out_gauge,instance=h:1,job=rw,zone=eu";
    const std::string c = "__name__=rw_out_total,instance=h:1,job=rw";
    const auto complete = [&](Series& s) {
      s = read();
      return s[g].size() >= expected_.size() && s[c].size() >= expected_.size();
    };
    Series got;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    while (!complete(got) && std::chrono::steady_clock::now() < deadline)
      std::this_thread::sleep_for(200ms);
    // Give a duplicate the time to show.
    std::this_thread::sleep_for(1500ms);
    got = read();
    SCOPED_TRACE(rx.name());
    const auto& gs = got[g];
    const auto& cs = got[c];
    ASSERT_EQ(gs.size(), expected_.size()) << "gauge samples at " << rx.name();
    ASSERT_EQ(cs.size(), expected_.size()) << "counter samples at " << rx.name();
    for (std::size_t i = 0; i < expected_.size(); ++i) {
      const auto& e = expected_[i];
      EXPECT_EQ(gs[i].v, e.gauge) << i;
      EXPECT_EQ(cs[i].v, e.counter) << i;
      EXPECT_GE(gs[i].t, e.before) << i;
      EXPECT_LE(gs[i].t, e.after) << i;
      EXPECT_EQ(cs[i].t, gs[i].t) << i;
    }
  }
  void expect_all_arrived_everywhere() {
    const std::string job = "%7Bjob%3D%22rw%22%7D";  // {job="rw"}
    expect_all_arrived(*prom_, [&] { return from_prometheus(prom_->port(), job); });
    expect_all_arrived(*vm_, [&] { return from_victoria(vm_->port(), job); });
  }

  struct Expected {
    std::int64_t before;
    std::int64_t after;
    double gauge;
    double counter;
  };
  fs::path dir_;
  std::unique_ptr<Receiver> prom_;
  std::unique_ptr<Receiver> vm_;
  std::unique_ptr<ServerProcess> server_;
  std::vector<Expected> expected_;
  std::int64_t total_ = 0;
  std::string storage_file_;  // empty: memory only
};

TEST_F(RemoteWriteOut, SamplesArriveWithLabelsValuesAndTimestamps) {
  start_server();
  Client c(server_->port());
  for (int i = 1; i <= 20; ++i) {
    push(c, i);
    std::this_thread::sleep_for(20ms);
  }
  expect_all_arrived_everywhere();
}

TEST_F(RemoteWriteOut, AnOutageOfTheReceiversLosesNothing) {
  // A queue of 4 samples: the outage overflows it at once, so what was
  // pushed meanwhile reaches the receivers from the history.
  start_server({"--remote-write-queue", "4"});
  Client c(server_->port());
  int i = 1;
  for (; i <= 10; ++i) {
    push(c, i);
    std::this_thread::sleep_for(50ms);
  }
  prom_->stop();
  vm_->stop();
  for (; i <= 50; ++i) {
    push(c, i);
    std::this_thread::sleep_for(60ms);
  }
  prom_->start();
  vm_->start();
  ASSERT_TRUE(prom_->wait_ready()) << prom_->log_text();
  ASSERT_TRUE(vm_->wait_ready()) << vm_->log_text();
  for (; i <= 60; ++i) {
    push(c, i);
    std::this_thread::sleep_for(50ms);
  }
  expect_all_arrived_everywhere();
  // What happened shows on /metrics: samples dropped by the full queue and
  // later sent from the history, per destination.
  const auto [status, metrics] = get(server_->port(), "/metrics");
  ASSERT_EQ(status, 200u);
  EXPECT_NE(
      metrics.find("metrics_server_remote_write_dropped_samples_total{url=\"http://127.0.0.1:"),
      std::string::npos)
      << metrics;
  EXPECT_NE(metrics.find("metrics_server_remote_write_catchup_samples_total{url="),
            std::string::npos);
  EXPECT_EQ(metrics.find("metrics_server_remote_write_catchup_samples_total{url=\"" +
                         prom_->write_url() + "\"} 0\n"),
            std::string::npos)
      << metrics;
  std::ifstream log(dir_ / "server.log");
  const std::string text{std::istreambuf_iterator<char>(log), {}};
  EXPECT_NE(text.find("dropped"), std::string::npos) << text;
}

// The server stopped (SIGTERM) while the receivers are down: what it could
// not send within its shutdown bound is sent from the history after the
// next start (the watermark in the history dir), exactly once.
TEST_F(RemoteWriteOut, ARestartOfTheServerDuringAnOutageLosesNothing) {
  storage_file_ = (dir_ / "db.json").string();  // counters survive the restart
  start_server();
  {
    Client c(server_->port());
    for (int i = 1; i <= 10; ++i) {
      push(c, i);
      std::this_thread::sleep_for(30ms);
    }
    std::this_thread::sleep_for(1500ms);  // delivered before the outage
    prom_->stop();
    vm_->stop();
    for (int i = 11; i <= 20; ++i) {
      push(c, i);
      std::this_thread::sleep_for(30ms);
    }
  }
  const int status = server_->stop(SIGTERM);
  ASSERT_TRUE(WIFEXITED(status)) << status;
  EXPECT_EQ(WEXITSTATUS(status), 0);
  prom_->start();
  vm_->start();
  ASSERT_TRUE(prom_->wait_ready()) << prom_->log_text();
  ASSERT_TRUE(vm_->wait_ready()) << vm_->log_text();
  start_server({"--log-level", "info"});
  Client c(server_->port());
  for (int i = 21; i <= 30; ++i) {
    push(c, i);
    std::this_thread::sleep_for(30ms);
  }
  expect_all_arrived_everywhere();
  // The second run sent the outage's samples from the history: 10 pushes of
  // two samples, to each receiver.
  std::ifstream log(dir_ / "server.log");
  const std::string text{std::istreambuf_iterator<char>(log), {}};
  EXPECT_NE(text.find("20 sample(s) sent from the history"), std::string::npos) << text;
}

}  // namespace
}  // namespace metrics::testing
