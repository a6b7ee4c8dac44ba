// Alerting end to end through the server process: metrics-server with
// --rules and --alertmanager-url pointing at a real Alertmanager 0.25 (on a
// free loopback port, its own data folder), whose webhook receiver is this
// test. A pushed gauge over the threshold makes the alert go pending, then
// firing, and Alertmanager delivers it with the rendered annotation; the
// server restarted while the alert fires brings it back firing with its
// original activeAt (not pending again, as Prometheus 2.42 would); a value
// under the threshold resolves it, and Alertmanager delivers the resolution.
// Fails when Alertmanager is missing and CI=true; skips locally otherwise.
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "alertmanager_process.hpp"
#include "fake_server.hpp"
#include "process_support.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using metrics::agent::testing::FakeServer;
using metrics::rules::testing::AlertmanagerProcess;
using metrics::rules::testing::kAlertmanager;
using metrics::testing::Client;
using metrics::testing::ServerProcess;

constexpr const char* kRules = R"(groups:
  - name: heap
    interval: 500ms
    rules:
      - alert: HeapHigh
        expr: heap_bytes > 100
        for: 1s
        labels:
          severity: page
        annotations:
          summary: "heap {{ $value }} on {{ $labels.instance }}"
)";

std::string read(const fs::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

void push(std::uint16_t port, double value) {
  Client c(port);
  const std::string body =
      R"({"labels":{"instance":"web-1:7","job":"api"},"metrics":[{"id":"heap_bytes","type":"gauge","value":)" +
      std::to_string(value) + "}]}";
  ASSERT_EQ(c.post_json("/updates/", body).result_int(), 200u);
}

// The first alert of /api/v1/alerts, or null.
json::value first_alert(std::uint16_t port) {
  try {
    Client c(port);
    const auto r = c.get("/api/v1/alerts");
    if (r.result_int() != 200) return nullptr;
    const auto v = json::parse(r.body());
    const auto& list = v.at("data").at("alerts").as_array();
    if (list.empty()) return nullptr;
    return list.at(0);
  } catch (const std::exception&) {
    return nullptr;
  }
}

// Webhook payloads Alertmanager delivered with this status.
std::vector<json::object> delivered(const FakeServer& hook, const std::string& status) {
  std::vector<json::object> out;
  for (const auto& req : hook.requests()) {
    try {
      auto v = json::parse(req.body).as_object();
      if (v.at("status").as_string() == status) out.push_back(std::move(v));
    } catch (const std::exception&) {
    }
  }
  return out;
}

// Calls step() every 200 ms until done() or the timeout.
bool until(const std::function<void()>& step, const std::function<bool()>& done,
           std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    step();
    if (done()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{200});
  }
  return done();
}

TEST(AlertingProcess, FiringThroughAlertmanagerSurvivesARestartAndResolves) {
  if (access(kAlertmanager, X_OK) != 0) {
    const char* ci = std::getenv("CI");
    if (ci != nullptr && std::string(ci) == "true") FAIL() << kAlertmanager << " is not installed";
    GTEST_SKIP() << kAlertmanager << " is not installed";
  }
  FakeServer hook;
  hook.set_handler([](const metrics::agent::testing::Request&) {
    return metrics::agent::testing::status_reply(200, "{}");
  });
  AlertmanagerProcess am("http://" + hook.address() + "/hook");
  ASSERT_TRUE(am.wait_ready()) << am.log();

  char tmpl[] = "/tmp/alerting-process-XXXXXX";
  const fs::path dir = mkdtemp(tmpl);
  std::ofstream(dir / "heap.yml") << kRules;
  const std::vector<std::string> args{"--rules",
                                      (dir / "heap.yml").string(),
                                      "--alertmanager-url",
                                      am.base(),
                                      "--history-dir",
                                      (dir / "history").string(),
                                      "--resend-delay",
                                      "1s",
                                      "-f",
                                      (dir / "db.json").string()};
  const auto log = dir / "server.log";
  auto server = std::make_unique<ServerProcess>(args, log.string());
  ASSERT_TRUE(server->wait_ready()) << read(log);

  // Pending first (for: 1s), then firing, then delivered by Alertmanager.
  bool seen_pending = false;
  json::value alert;
  ASSERT_TRUE(until(
      [&] {
        push(server->port(), 500);
        alert = first_alert(server->port());
        if (!alert.is_null() && alert.at("state").as_string() == "pending") seen_pending = true;
      },
      [&] { return !alert.is_null() && alert.at("state").as_string() == "firing"; },
      std::chrono::seconds{20}))
      << read(log);
  EXPECT_TRUE(seen_pending);
  const std::string active_at(alert.at("activeAt").as_string());
  ASSERT_TRUE(until([&] { push(server->port(), 500); },
                    [&] { return !delivered(hook, "firing").empty(); }, std::chrono::seconds{20}))
      << am.log() << read(log);
  const auto firing = delivered(hook, "firing").front();
  const auto& a = firing.at("alerts").as_array().at(0).as_object();
  EXPECT_EQ(a.at("labels").at("alertname").as_string(), "HeapHigh");
  EXPECT_EQ(a.at("labels").at("instance").as_string(), "web-1:7");
  EXPECT_EQ(a.at("labels").at("severity").as_string(), "page");
  EXPECT_EQ(a.at("annotations").at("summary").as_string(), "heap 500 on web-1:7");

  // A restart while firing: it comes back firing with its activeAt.
  server->stop(SIGTERM);
  server = std::make_unique<ServerProcess>(args, log.string());
  ASSERT_TRUE(server->wait_ready()) << read(log);
  json::value after;
  ASSERT_TRUE(until(
      [&] {
        push(server->port(), 500);
        after = first_alert(server->port());
      },
      [&] { return !after.is_null(); }, std::chrono::seconds{10}))
      << read(log);
  EXPECT_EQ(after.at("state").as_string(), "firing") << json::serialize(after);
  EXPECT_EQ(after.at("activeAt").as_string(), active_at);

  // Under the threshold: resolved, and Alertmanager says so.
  ASSERT_TRUE(until([&] { push(server->port(), 50); },
                    [&] { return !delivered(hook, "resolved").empty(); }, std::chrono::seconds{30}))
      << am.log() << read(log);
  const auto resolved = delivered(hook, "resolved").front();
  EXPECT_EQ(resolved.at("alerts").as_array().at(0).at("labels").at("instance").as_string(),
            "web-1:7");
  EXPECT_TRUE(first_alert(server->port()).is_null());
  server.reset();
  std::error_code ec;
  fs::remove_all(dir, ec);
}

}  // namespace
