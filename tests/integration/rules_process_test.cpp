// The server with --rules: a bad rule file stops the start with
// file:line: reason (exit 2); SIGHUP reloads, and a bad file then keeps the
// old rules (the server keeps running and logs why).
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <iterator>

#include "process_support.hpp"
#include "test_support.hpp"

namespace {

namespace fs = std::filesystem;
using metrics::testing::Client;
using metrics::testing::ServerProcess;
namespace json = boost::json;

std::string read(const fs::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/rules-process-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

// The server's log is written asynchronously: poll for a line.
bool wait_for_text(const std::string& path, const std::string& text) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (std::chrono::steady_clock::now() < deadline) {
    if (read(path).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return false;
}

constexpr const char* kGood =
    "groups:\n  - name: g\n    rules:\n      - alert: Down\n        expr: agent_up == 0\n";

TEST(RulesProcess, BadRuleFileStopsTheStartWithFileLineAndReason) {
  TempDir dir;
  std::ofstream(dir.path / "bad.yml")
      << "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(up\n";
  const auto log = (dir.path / "server.log").string();
  ServerProcess server({"--rules", (dir.path / "*.yml").string()}, log);
  const auto status = server.wait_exit(std::chrono::seconds{15});
  ASSERT_TRUE(status.has_value()) << "the server kept running";
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  const std::string text = read(log);
  EXPECT_NE(text.find((dir.path / "bad.yml").string() +
                      ":5: group \"g\", rule 1, \"A\": could not parse expression"),
            std::string::npos)
      << text;
}

TEST(RulesProcess, SighupReloadsAndABadFileKeepsTheOldRules) {
  TempDir dir;
  const auto rules = dir.path / "rules.yml";
  std::ofstream(rules) << kGood;
  const auto log = (dir.path / "server.log").string();
  ServerProcess server({"--rules", rules.string(), "--log-level", "info"}, log);
  ASSERT_TRUE(server.wait_ready()) << read(log);
  EXPECT_TRUE(wait_for_text(log, "rules: 1 rules in 1 groups")) << read(log);
  std::ofstream(rules, std::ios::trunc) << "groups:\n  - name: g\n    bogus: 1\n";
  kill(server.pid(), SIGHUP);
  EXPECT_TRUE(
      wait_for_text(log, "rules: reload failed, keeping the old rules: " + rules.string() + ":3:"))
      << read(log);
  EXPECT_TRUE(server.wait_ready());
  std::ofstream(rules, std::ios::trunc) << kGood << "      - record: r\n        expr: up\n";
  kill(server.pid(), SIGHUP);
  EXPECT_TRUE(wait_for_text(log, "rules: reloaded 2 rules in 1 groups")) << read(log);
}

// Rules evaluate over the server's own history: a recording rule's output
// and the ALERTS series are queryable through the Prometheus API, the alert
// goes pending then firing with its templated annotation, and /api/v1/rules
// and /api/v1/alerts answer from the rule manager.
constexpr const char* kHeapRules = R"(groups:
  - name: heap
    interval: 500ms
    rules:
      - record: job:heap_bytes:max
        expr: max by (job) (heap_bytes)
      - alert: HeapHigh
        expr: heap_bytes > 100
        for: 1s
        labels:
          severity: page
        annotations:
          summary: "heap {{ $value }} on {{ $labels.instance }}"
)";

json::value get_json(std::uint16_t port, const std::string& target) {
  Client c(port);
  auto r = c.get(target);
  EXPECT_EQ(r.result_int(), 200u) << target << ": " << r.body();
  return json::parse(r.body());
}

TEST(RulesProcess, RulesEvaluateOverTheHistoryAndTheirOutputIsQueryable) {
  TempDir dir;
  const auto rules = dir.path / "heap.yml";
  std::ofstream(rules) << kHeapRules;
  const auto log = (dir.path / "server.log").string();
  ServerProcess server({"--rules", rules.string()}, log);
  ASSERT_TRUE(server.wait_ready()) << read(log);

  const std::string body =
      R"({"labels":{"instance":"web-1:7","job":"api"},"metrics":[{"id":"heap_bytes","type":"gauge","value":500}]})";
  std::string state;
  json::value alerts;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{20};
  bool seen_pending = false;
  while (std::chrono::steady_clock::now() < deadline && state != "firing") {
    Client c(server.port());
    ASSERT_EQ(c.post_json("/updates/", body).result_int(), 200u);
    alerts = get_json(server.port(), "/api/v1/alerts");
    const auto& list = alerts.at("data").at("alerts").as_array();
    if (!list.empty()) state = std::string(list.at(0).at("state").as_string());
    if (state == "pending") seen_pending = true;
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  ASSERT_EQ(state, "firing") << json::serialize(alerts) << read(log);
  EXPECT_TRUE(seen_pending) << "for: 1s: the alert waits pending first";
  const auto& alert = alerts.at("data").at("alerts").as_array().at(0).as_object();
  EXPECT_EQ(alert.at("labels").at("alertname").as_string(), "HeapHigh");
  EXPECT_EQ(alert.at("labels").at("instance").as_string(), "web-1:7");
  EXPECT_EQ(alert.at("labels").at("severity").as_string(), "page");
  EXPECT_EQ(alert.at("annotations").at("summary").as_string(), "heap 500 on web-1:7");

  // ALERTS is a series of the history, queryable as in Prometheus.
  json::value firing;
  bool found = false;
  for (int i = 0; i < 50 && !found; ++i) {
    firing = get_json(server.port(),
                      "/api/v1/query?query=ALERTS%7Balertname%3D%22HeapHigh%22%2C"
                      "alertstate%3D%22firing%22%7D");
    found = !firing.at("data").at("result").as_array().empty();
    if (!found) std::this_thread::sleep_for(std::chrono::milliseconds{100});
  }
  ASSERT_TRUE(found) << json::serialize(firing);
  const auto& series = firing.at("data").at("result").as_array().at(0).as_object();
  EXPECT_EQ(series.at("metric").at("instance").as_string(), "web-1:7");
  EXPECT_EQ(series.at("value").as_array().at(1).as_string(), "1");

  // The recording rule's output, at the group's evaluation times.
  const json::value recorded = get_json(server.port(), "/api/v1/query?query=job:heap_bytes:max");
  const auto& result = recorded.at("data").at("result").as_array();
  ASSERT_EQ(result.size(), 1u) << json::serialize(recorded);
  EXPECT_EQ(result.at(0).at("metric").at("job").as_string(), "api");
  EXPECT_EQ(result.at(0).at("value").as_array().at(1).as_string(), "500");

  const json::value groups = get_json(server.port(), "/api/v1/rules");
  const auto& g = groups.at("data").at("groups").as_array();
  ASSERT_EQ(g.size(), 1u) << json::serialize(groups);
  EXPECT_EQ(g.at(0).at("name").as_string(), "heap");
  EXPECT_EQ(g.at(0).at("rules").as_array().size(), 2u);
  {
    Client c(server.port());
    const auto metrics = c.get("/metrics");
    EXPECT_NE(metrics.body().find("\nmetrics_server_rules_loaded 2\n"), std::string::npos)
        << metrics.body();
    EXPECT_NE(metrics.body().find("\nmetrics_server_notifications_failed_total 0\n"),
              std::string::npos);
  }
  const json::value only_alerts = get_json(server.port(), "/api/v1/rules?type=alert");
  EXPECT_EQ(only_alerts.at("data").at("groups").as_array().at(0).at("rules").as_array().size(), 1u)
      << json::serialize(only_alerts);
}

}  // namespace
