#include "metrics/rules/manager.hpp"

#include <gtest/gtest.h>

#include <bit>
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>

#include "metrics/rules/service.hpp"

namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
namespace q = metrics::query;
namespace r = metrics::rules;
using namespace std::chrono_literals;

struct MemorySink final : r::SampleSink {
  explicit MemorySink(q::MemoryQueryable& s) : store(s) {}
  void append(std::span<const r::OutputSample> samples) override {
    std::lock_guard lock(mu);
    for (const auto& s : samples) {
      store.add(s.labels, s.t_ms, s.v);
      ++count;
      times.push_back(s.t_ms);
    }
  }
  q::MemoryQueryable& store;
  std::mutex mu;
  std::size_t count = 0;
  std::vector<std::int64_t> times;
};

constexpr const char* kRules = R"(groups:
  - name: g
    rules:
      - alert: Down
        expr: agent_up == 0
        for: 2m
        keep_firing_for: 1m
        annotations:
          summary: '{{ $labels.instance }} down'
      - record: job:agent_up:sum
        expr: sum by (job) (agent_up)
)";

const q::LabelSet kSeries =
    q::make_labels({{"__name__", "agent_up"}, {"instance", "a"}, {"job", "agent"}});

fs::path temp_dir() {
  char tmpl[] = "/tmp/rules-manager-XXXXXX";
  return mkdtemp(tmpl);
}

TEST(Manager, EvaluationDurationsAndFailuresPerGroup) {
  q::MemoryQueryable store;
  store.add(kSeries, 0, 0);
  store.add(q::make_labels({{"__name__", "agent_up"}, {"instance", "b"}, {"job", "agent"}}), 0, 1);
  auto registry = std::make_shared<metrics::telemetry::Registry>();
  r::Manager m(store, nullptr, {.telemetry = registry});
  auto groups = r::parse_rule_file(kRules, "f.yml");
  // A second group whose one rule fails: two series over its limit of 1.
  auto limited = r::parse_rule_file(R"(groups:
  - name: limited
    limit: 1
    rules:
      - record: each
        expr: agent_up
)",
                                    "f.yml");
  groups.push_back(std::move(limited.at(0)));
  m.load(std::move(groups));
  m.evaluate_all(0);
  m.evaluate_all(15'000);
  const std::string b = registry->render().text;
  EXPECT_NE(b.find("# TYPE metrics_server_rule_evaluation_duration_seconds histogram\n"),
            std::string::npos);
  EXPECT_NE(b.find("metrics_server_rule_evaluations_total{rule_group=\"f.yml;g\"} 4\n"),
            std::string::npos)
      << b;
  EXPECT_NE(b.find("metrics_server_rule_evaluation_failures_total{rule_group=\"f.yml;g\"} 0\n"),
            std::string::npos);
  EXPECT_NE(b.find("metrics_server_rule_evaluations_total{rule_group=\"f.yml;limited\"} 2\n"),
            std::string::npos);
  EXPECT_NE(
      b.find("metrics_server_rule_evaluation_failures_total{rule_group=\"f.yml;limited\"} 2\n"),
      std::string::npos);
  EXPECT_NE(b.find("metrics_server_rule_evaluation_duration_seconds_count{rule_group=\"f.yml;g\"} "
                   "4\n"),
            std::string::npos);
  EXPECT_NE(b.find("metrics_server_rule_group_duration_seconds_count{rule_group=\"f.yml;g\"} 2\n"),
            std::string::npos);
  EXPECT_NE(
      b.find("metrics_server_rule_group_duration_seconds_count{rule_group=\"f.yml;limited\"} 2\n"),
      std::string::npos);
  // A reload keeps counting into the same children.
  m.load(r::parse_rule_file(kRules, "f.yml"));
  m.evaluate_all(30'000);
  EXPECT_NE(registry->render().text.find(
                "metrics_server_rule_evaluations_total{rule_group=\"f.yml;g\"} 6\n"),
            std::string::npos);
}

TEST(Manager, StatesForAndKeepFiringFor) {
  q::MemoryQueryable store;
  for (int i = 0; i <= 4; ++i)
    store.add(kSeries, i * 60'000, 0);
  store.add(kSeries, 5 * 60'000, 1);
  MemorySink sink(store);
  r::Manager m(store, &sink, {});
  m.load(r::parse_rule_file(kRules, "f.yml"));
  m.evaluate_all(0);
  ASSERT_EQ(m.alerts().size(), 1u);
  EXPECT_EQ(m.alerts()[0].state, r::AlertState::pending);
  m.evaluate_all(60'000);
  EXPECT_EQ(m.alerts()[0].state, r::AlertState::pending);
  m.evaluate_all(120'000);
  EXPECT_EQ(m.alerts()[0].state, r::AlertState::firing);
  EXPECT_EQ(m.alerts()[0].active_at_ms, 0);
  m.evaluate_all(300'000);  // value 1: condition false, kept firing for 1m
  EXPECT_EQ(m.alerts()[0].state, r::AlertState::firing);
  EXPECT_EQ(m.alerts()[0].keep_firing_since_ms, 300'000);
  m.evaluate_all(360'000);
  EXPECT_EQ(m.alerts()[0].state, r::AlertState::inactive);
  EXPECT_EQ(m.alerts()[0].resolved_at_ms, 360'000);
  // The recording rule's series is queryable.
  q::Engine engine;
  const auto v = std::get<q::Vector>(engine.instant(store, "job:agent_up:sum", 300'000));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].v, 1);
}

TEST(Manager, JsonViewsHavePrometheusShape) {
  q::MemoryQueryable store;
  store.add(kSeries, 0, 0);
  MemorySink sink(store);
  r::Manager m(store, &sink, {});
  m.load(r::parse_rule_file(kRules, "f.yml"));
  const auto before = json::parse(m.rules_json()).as_object();
  EXPECT_EQ(before.at("groups").as_array()[0].at("rules").as_array()[0].at("health"), "unknown");
  m.evaluate_all(1'500);
  const auto rules = json::parse(m.rules_json()).as_object();
  const auto& g = rules.at("groups").as_array().at(0).as_object();
  EXPECT_EQ(g.at("name"), "g");
  EXPECT_EQ(g.at("file"), "f.yml");
  EXPECT_EQ(g.at("interval").as_int64(), 15);
  const auto& alerting = g.at("rules").as_array().at(0).as_object();
  EXPECT_EQ(alerting.at("type"), "alerting");
  EXPECT_EQ(alerting.at("state"), "pending");
  EXPECT_EQ(alerting.at("duration").as_int64(), 120);
  EXPECT_EQ(alerting.at("health"), "ok");
  EXPECT_EQ(alerting.at("lastEvaluation"), "1970-01-01T00:00:01.5Z");
  EXPECT_EQ(g.at("rules").as_array().at(1).at("type"), "recording");
  const auto alerts = json::parse(m.alerts_json()).as_object();
  const auto& a = alerts.at("alerts").as_array().at(0).as_object();
  EXPECT_EQ(a.at("state"), "pending");
  EXPECT_EQ(a.at("value"), "0e+00");
  EXPECT_EQ(a.at("activeAt"), "1970-01-01T00:00:01.5Z");
  EXPECT_EQ(a.at("annotations").at("summary"), "a down");
  EXPECT_EQ(a.at("labels").at("alertname"), "Down");
  const auto only_record = json::parse(m.rules_json("record")).as_object();
  EXPECT_EQ(only_record.at("groups").as_array()[0].at("rules").as_array().size(), 1u);
}

TEST(Manager, StateFileBringsFiringBackFiringAndKeepsPendingTime) {
  const fs::path dir = temp_dir();
  auto clock = std::make_shared<metrics::core::ManualClock>();
  const auto now = [&] {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               clock->system_now().time_since_epoch())
        .count();
  };
  const std::int64_t t0 = now();
  q::MemoryQueryable store;
  const auto other =
      q::make_labels({{"__name__", "agent_up"}, {"instance", "b"}, {"job", "agent"}});
  for (int i = 0; i <= 20; ++i)
    store.add(kSeries, t0 + i * 60'000, 0);
  for (int i = 2; i <= 20; ++i)
    store.add(other, t0 + i * 60'000, 0);
  r::ManagerOptions options{.state_file = (dir / "alerts.json").string(), .clock = clock};
  {
    MemorySink sink(store);
    r::Manager m(store, &sink, options);
    m.load(r::parse_rule_file(kRules, "f.yml"));
    m.evaluate_all(t0);
    m.evaluate_all(t0 + 120'000);  // a: firing; b: pending since t0+2m
    clock->advance(3min);
    m.evaluate_all(t0 + 180'000);  // b has waited 1m
    ASSERT_TRUE(m.save_state());
  }
  clock->advance(10min);  // down for 10 minutes (< 1h)
  {
    r::Manager m(store, nullptr, options);
    m.load(r::parse_rule_file(kRules, "f.yml"));
    ASSERT_TRUE(m.restore_state());
    std::map<std::string, r::AlertView> by_instance;
    for (const auto& a : m.alerts())
      by_instance[std::string(q::get(a.labels, "instance"))] = a;
    ASSERT_EQ(by_instance.size(), 2u);
    EXPECT_EQ(by_instance["a"].state, r::AlertState::firing);
    EXPECT_EQ(by_instance["a"].active_at_ms, t0);
    EXPECT_EQ(by_instance["a"].fired_at_ms, t0 + 120'000);
    EXPECT_EQ(by_instance["b"].state, r::AlertState::pending);
    // It had waited 1 minute when saved; the downtime does not count.
    EXPECT_EQ(now() - by_instance["b"].active_at_ms, 60'000);
  }
  clock->advance(2h);  // longer than --for-outage-tolerance: start over
  {
    r::Manager m(store, nullptr, options);
    m.load(r::parse_rule_file(kRules, "f.yml"));
    (void)m.restore_state();
    EXPECT_TRUE(m.alerts().empty());
  }
  fs::remove_all(dir);
}

TEST(Manager, ReloadKeepsStateOfKeptRules) {
  q::MemoryQueryable store;
  store.add(kSeries, 0, 0);
  r::Manager m(store, nullptr, {});
  m.load(r::parse_rule_file(kRules, "f.yml"));
  m.evaluate_all(0);
  m.load(r::parse_rule_file(kRules, "f.yml"));
  ASSERT_EQ(m.alerts().size(), 1u);
  EXPECT_EQ(m.alerts()[0].state, r::AlertState::pending);
  m.load({});
  EXPECT_TRUE(m.alerts().empty());
}

// The evaluation thread is named "rules" and runs at nice +10.
TEST(Manager, TheEvaluationThreadIsNamedAndBelowTheRequests) {
  q::MemoryQueryable store;
  MemorySink sink(store);
  r::Manager m(store, &sink, {});
  m.start();
  int nice = 99;
  int found = 0;
  for (int attempt = 0; attempt < 100 && found == 0; ++attempt) {
    for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
      std::ifstream comm(task.path() / "comm");
      std::string name;
      std::getline(comm, name);
      if (name != "rules") continue;
      // stat: "pid (comm) state ..."; nice is the 19th field.
      std::ifstream stat(task.path() / "stat");
      std::string all((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
      std::istringstream rest(all.substr(all.rfind(')') + 2));
      std::string field;
      for (int k = 3; k <= 19 && rest >> field; ++k)
        if (k == 19) nice = std::stoi(field);
      ++found;
    }
    if (found == 0) std::this_thread::sleep_for(10ms);
  }
  m.stop();
  EXPECT_EQ(found, 1);
  EXPECT_EQ(nice, r::kEvaluationNice);
}

TEST(Manager, BackgroundEvaluationOnTheGroupInterval) {
  auto clock = std::make_shared<metrics::core::ManualClock>();
  q::MemoryQueryable store;
  MemorySink sink(store);
  r::Manager m(store, &sink, {.evaluation_interval = 10s, .clock = clock});
  m.load(r::parse_rule_file(
      "groups:\n  - name: g\n    rules:\n      - record: one\n        expr: vector(1)\n", "f.yml"));
  m.start();
  // Each time the evaluator waits for a later deadline, move to it.
  auto last = metrics::core::Clock::SteadyTime::min();
  for (int i = 0; i < 3; ++i) {
    const auto deadline = clock->await_waiter(last);
    ASSERT_TRUE(deadline);
    clock->advance(*deadline - clock->steady_now());
    last = *deadline;
  }
  ASSERT_TRUE(clock->await_waiter(last));
  m.stop();
  std::lock_guard lock(sink.mu);
  ASSERT_EQ(sink.times.size(), 3u) << m.rules_json();
  for (std::size_t i = 1; i < sink.times.size(); ++i)
    EXPECT_EQ(sink.times[i] - sink.times[i - 1], 10'000);
}

TEST(Manager, LimitAndEvaluationErrorsMarkTheRule) {
  q::MemoryQueryable store;
  store.add(kSeries, 0, 0);
  store.add(q::make_labels({{"__name__", "agent_up"}, {"instance", "b"}, {"job", "agent"}}), 0, 0);
  r::Manager m(store, nullptr, {});
  m.load(
      r::parse_rule_file("groups:\n  - name: g\n    limit: 1\n    rules:\n      - alert: A\n       "
                         " expr: agent_up == 0\n",
                         "f.yml"));
  m.evaluate_all(0);
  const auto rules = json::parse(m.rules_json()).as_object();
  const auto& rule = rules.at("groups").as_array()[0].at("rules").as_array()[0].as_object();
  EXPECT_EQ(rule.at("health"), "err");
  EXPECT_EQ(rule.at("lastError"), "exceeded limit of 1 with 2 alerts");
  EXPECT_TRUE(m.alerts().empty());
}

TEST(Manager, Fingerprint) {
  // prometheus/common's model.LabelSet{}.Fingerprint() of the empty set is
  // FNV-1a's offset basis.
  EXPECT_EQ(r::fingerprint({}), "cbf29ce484222325");
}

}  // namespace

namespace {

TEST(AlertingService, LoadReloadAndStart) {
  const fs::path dir = temp_dir();
  const auto file = dir / "r.yml";
  std::ofstream(file) << kRules;
  auto clock = std::make_shared<metrics::core::ManualClock>();
  r::AlertingService service({.patterns = {(dir / "*.yml").string()},
                              .manager = {.evaluation_interval = 10s, .clock = clock}});
  service.load();
  EXPECT_EQ(service.rule_count(), 2u);
  std::ofstream(file, std::ios::trunc) << "groups:\n  - name: g\n    bogus: 1\n";
  const auto error = service.reload();
  ASSERT_TRUE(error);
  EXPECT_NE(error->find(file.string() + ":3:"), std::string::npos) << *error;
  EXPECT_EQ(service.rule_count(), 2u);  // the old rules stay
  EXPECT_EQ(service.manager(), nullptr);
  q::MemoryQueryable store;
  MemorySink sink(store);
  service.start(store, &sink);
  ASSERT_NE(service.manager(), nullptr);
  EXPECT_EQ(service.manager()->rule_count(), 2u);
  std::ofstream(file, std::ios::trunc) << "groups:\n  - name: g\n    rules: []\n";
  EXPECT_FALSE(service.reload());
  EXPECT_EQ(service.manager()->rule_count(), 0u);
  service.stop();
  fs::remove_all(dir);
}

}  // namespace
