// End to end against the real Alertmanager 0.25 (Debian's
// prometheus-alertmanager), on free loopback ports with its own data folder
// and a webhook receiver served by this test: our Manager evaluates a rule
// (pending -> firing -> resolved), the HttpNotifier posts to Alertmanager's
// /api/v2/alerts and, directly, to a webhook that answers 500 before it
// recovers. Asserts what Alertmanager delivers to its webhook (status, labels,
// rendered annotations) and that our direct payload is the same shape, with
// the same fingerprint Alertmanager computes.
// Fails when Alertmanager is missing and CI=true; skips locally otherwise.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "alertmanager_process.hpp"
#include "fake_server.hpp"
#include "metrics/rules/http_notifier.hpp"
#include "metrics/rules/manager.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace q = metrics::query;
namespace r = metrics::rules;
using metrics::agent::testing::FakeServer;
using metrics::agent::testing::Reply;
using metrics::agent::testing::Request;

using metrics::rules::testing::AlertmanagerProcess;
using metrics::rules::testing::kAlertmanager;
const double kStale = std::bit_cast<double>(std::uint64_t{0x7ff0000000000002ULL});

struct MemorySink final : r::SampleSink {
  explicit MemorySink(q::MemoryQueryable& s) : store(s) {}
  void append(std::span<const r::OutputSample> samples) override {
    for (const auto& s : samples)
      store.add(s.labels, s.t_ms, s.v);
  }
  q::MemoryQueryable& store;
};

std::vector<json::object> payloads(const std::vector<Request>& requests) {
  std::vector<json::object> out;
  for (const auto& req : requests) {
    if (req.answered_status != 200) continue;
    out.push_back(json::parse(req.body).as_object());
  }
  return out;
}

bool wait_until(const std::function<bool()>& pred, std::chrono::seconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (pred()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return pred();
}

TEST(Alertmanager, PendingFiringResolvedEndToEnd) {
  if (access(kAlertmanager, X_OK) != 0) {
    const char* ci = std::getenv("CI");
    if (ci != nullptr && std::string(ci) == "true") FAIL() << kAlertmanager << " is not installed";
    GTEST_SKIP() << kAlertmanager << " is not installed";
  }
  FakeServer am_hook;  // Alertmanager's receiver
  am_hook.set_handler(
      [](const Request&) { return metrics::agent::testing::status_reply(200, "{}"); });
  FakeServer direct;  // our direct webhook: 500 twice, then 200
  std::atomic<int> calls{0};
  direct.set_handler([&](const Request&) {
    return metrics::agent::testing::status_reply(calls.fetch_add(1) < 2 ? 500 : 200, "{}");
  });
  AlertmanagerProcess am("http://" + am_hook.address() + "/hook");
  ASSERT_TRUE(am.wait_ready()) << am.log();

  const auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::system_clock::now().time_since_epoch())
                       .count();
  const std::int64_t t0 = (now / 1000) * 1000 - 5 * 60'000;
  q::MemoryQueryable store;
  const auto series =
      q::make_labels({{"__name__", "agent_up"}, {"instance", "host-1:9100"}, {"job", "agent"}});
  store.add(series, t0, 0);
  store.add(series, t0 + 60'000, 0);
  store.add(series, t0 + 120'000, kStale);
  MemorySink sink(store);
  r::Manager manager(store, &sink,
                     {.evaluation_interval = std::chrono::seconds{60},
                      .external_url = "http://metrics.example:8080",
                      // endsAt of a firing alert lies ahead of the real clock.
                      .resend_delay = std::chrono::hours{1}});
  manager.load(r::parse_rule_file(R"(groups:
  - name: agents
    rules:
      - alert: AgentDown
        expr: agent_up == 0
        for: 1m
        labels:
          severity: page
        annotations:
          summary: '{{ $labels.instance }} stopped pushing (value {{ $value }})'
)",
                                  "inline.yml"));
  auto notifier = std::make_shared<r::HttpNotifier>(r::HttpNotifierOptions{
      .alertmanager_urls = {am.base() + "/"},
      .webhook_urls = {"http://" + direct.address() + "/alerts"},
      .external_url = "http://metrics.example:8080",
      .retry_schedule = {std::chrono::milliseconds{50}, std::chrono::milliseconds{100},
                         std::chrono::milliseconds{200}}});
  manager.add_notifier(notifier);

  manager.evaluate_all(t0);  // pending: nothing sent
  ASSERT_EQ(manager.alerts().size(), 1u);
  EXPECT_EQ(manager.alerts()[0].state, r::AlertState::pending);
  manager.evaluate_all(t0 + 60'000);  // firing
  EXPECT_EQ(manager.alerts()[0].state, r::AlertState::firing);

  ASSERT_TRUE(
      wait_until([&] { return !payloads(am_hook.requests()).empty(); }, std::chrono::seconds{15}))
      << am.log();
  const auto firing = payloads(am_hook.requests()).front();
  EXPECT_EQ(firing.at("status").as_string(), "firing");
  EXPECT_EQ(firing.at("version").as_string(), "4");
  const auto& alert = firing.at("alerts").as_array().at(0).as_object();
  EXPECT_EQ(alert.at("labels").as_object().at("instance").as_string(), "host-1:9100");
  EXPECT_EQ(alert.at("labels").as_object().at("severity").as_string(), "page");
  EXPECT_EQ(alert.at("annotations").as_object().at("summary").as_string(),
            "host-1:9100 stopped pushing (value 0)");
  EXPECT_EQ(alert.at("generatorURL").as_string(),
            "http://metrics.example:8080/graph?g0.expr=agent_up+%3D%3D+0&g0.tab=1");
  EXPECT_EQ(alert.at("startsAt").as_string(), r::format_rfc3339(t0 + 60'000));

  // The direct webhook recovers after two 500s and gets the same alert.
  ASSERT_TRUE(
      wait_until([&] { return !payloads(direct.requests()).empty(); }, std::chrono::seconds{10}));
  EXPECT_EQ(direct.request_count(), 3u);
  const auto mine = payloads(direct.requests()).front();
  EXPECT_EQ(mine.at("status").as_string(), "firing");
  EXPECT_EQ(mine.at("version").as_string(), "4");
  EXPECT_EQ(mine.at("groupKey").as_string(), "{}:{alertname=\"AgentDown\"}");
  const auto& my_alert = mine.at("alerts").as_array().at(0).as_object();
  EXPECT_EQ(my_alert.at("fingerprint"), alert.at("fingerprint"));
  EXPECT_EQ(my_alert.at("labels"), alert.at("labels"));
  EXPECT_EQ(my_alert.at("annotations"), alert.at("annotations"));
  EXPECT_EQ(my_alert.at("endsAt"), alert.at("endsAt"));
  EXPECT_EQ(mine.at("commonLabels"), firing.at("commonLabels"));
  EXPECT_EQ(mine.at("commonAnnotations"), firing.at("commonAnnotations"));
  EXPECT_EQ(mine.at("groupLabels"), firing.at("groupLabels"));

  manager.evaluate_all(t0 + 120'000);  // the series went stale: resolved
  ASSERT_TRUE(wait_until(
      [&] {
        const auto p = payloads(am_hook.requests());
        return !p.empty() && p.back().at("status").as_string() == "resolved";
      },
      std::chrono::seconds{15}))
      << am.log();
  const auto resolved = payloads(am_hook.requests()).back();
  EXPECT_EQ(resolved.at("alerts").as_array().at(0).at("endsAt").as_string(),
            r::format_rfc3339(t0 + 120'000));
  ASSERT_TRUE(wait_until([&] { return payloads(direct.requests()).size() >= 2; },
                         std::chrono::seconds{10}));
  EXPECT_EQ(payloads(direct.requests()).back().at("status").as_string(), "resolved");
  EXPECT_EQ(payloads(direct.requests()).back().at("alerts").as_array().at(0).at("endsAt"),
            resolved.at("alerts").as_array().at(0).at("endsAt"));
  notifier->stop();
  EXPECT_EQ(notifier->stats().failed, 0u);
}

}  // namespace

namespace {

TEST(HttpNotifier, AtMost64AlertsPerAlertmanagerRequestAndNoRetryOn4xx) {
  FakeServer am;
  am.set_handler([](const Request&) { return metrics::agent::testing::status_reply(200, "{}"); });
  FakeServer hook;
  hook.set_handler([](const Request&) { return metrics::agent::testing::status_reply(400, "{}"); });
  r::HttpNotifier notifier({.alertmanager_urls = {"http://" + am.address()},
                            .webhook_urls = {"http://" + hook.address() + "/x"},
                            .retry_schedule = {std::chrono::milliseconds{10}}});
  std::vector<r::NotifyAlert> alerts;
  for (int i = 0; i < 130; ++i) {
    alerts.push_back(
        {.labels = q::make_labels({{"alertname", "A"}, {"i", std::to_string(i)}, {"job", "x"}}),
         .annotations = {{"summary", "s"}},
         .starts_at_ms = 1'000,
         .ends_at_ms = 2'000,
         .generator_url = "g",
         .resolved = false});
  }
  notifier.notify(alerts);
  ASSERT_TRUE(am.wait_for_requests(3, std::chrono::seconds{10}));
  ASSERT_TRUE(hook.wait_for_requests(1, std::chrono::seconds{10}));
  std::this_thread::sleep_for(std::chrono::milliseconds{100});
  const auto requests = am.requests();
  ASSERT_EQ(requests.size(), 3u);
  std::vector<std::size_t> sizes;
  for (const auto& req : requests) {
    EXPECT_EQ(req.path, "/api/v2/alerts");
    sizes.push_back(json::parse(req.body).as_array().size());
  }
  EXPECT_EQ(sizes, (std::vector<std::size_t>{64, 64, 2}));
  // The webhook: one payload with every alert; a 400 is not retried.
  EXPECT_EQ(hook.request_count(), 1u);
  const auto payload = json::parse(hook.requests()[0].body).as_object();
  EXPECT_EQ(payload.at("alerts").as_array().size(), 130u);
  EXPECT_EQ(payload.at("commonLabels"), (json::object{{"alertname", "A"}, {"job", "x"}}));
  EXPECT_EQ(payload.at("commonAnnotations"), (json::object{{"summary", "s"}}));
  notifier.stop();
  EXPECT_EQ(notifier.stats().sent, 3u);
  EXPECT_EQ(notifier.stats().failed, 1u);
}

}  // namespace
