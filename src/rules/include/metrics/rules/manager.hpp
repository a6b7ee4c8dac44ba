// Rule evaluation with Prometheus 2.42's semantics: each group on its own
// interval, its rules in order (a rule sees what the rules before it wrote);
// recording rules write their series back, alerting rules keep alerts that
// are pending (`for`), firing, or kept firing (`keep_firing_for`), identified
// by name plus labels (never the value), write ALERTS and ALERTS_FOR_STATE
// and hand what needs sending to the notifiers. Series a rule no longer
// returns get a stale marker, as in Prometheus.
//
//   rules::Manager manager(history_queryable, &history_sink, {.evaluation_interval = 15s});
//   manager.load(rules::load_rule_files(patterns));   // also on SIGHUP
//   manager.restore_state();                           // from options.state_file
//   manager.start();                                   // evaluates until stop()
//   std::string data = manager.alerts_json();          // /api/v1/alerts "data"
//
// In a test, evaluate_all(t) drives one evaluation of every group at t.
//
// Thread-safety: every member may be called from any thread; evaluations
// and readers are serialised by one mutex (the JSON views wait for a
// running group at most). The Queryable's select() and the sink's append()
// are called from the evaluating thread only; notifiers from the same
// thread, outside the lock.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "metrics/core/clock.hpp"
#include "metrics/query/engine.hpp"
#include "metrics/query/queryable.hpp"
#include "metrics/rules/go_format.hpp"
#include "metrics/rules/rule_file.hpp"
#include "metrics/telemetry/registry.hpp"

namespace metrics::rules {

// Where rule output goes (recording rules, ALERTS, ALERTS_FOR_STATE, stale
// markers): the server's history, a MemoryQueryable in tests.
struct OutputSample {
  query::LabelSet labels;
  std::int64_t t_ms = 0;
  double v = 0;
};
class SampleSink {
 public:
  virtual ~SampleSink() = default;
  virtual void append(std::span<const OutputSample> samples) = 0;
};

enum class AlertState : std::uint8_t { inactive, pending, firing };
[[nodiscard]] std::string_view state_name(AlertState s) noexcept;

// What a notifier receives: Prometheus's notifier.Alert.
struct NotifyAlert {
  query::LabelSet labels;
  query::LabelSet annotations;
  std::int64_t starts_at_ms = 0;  // when it started firing
  std::int64_t ends_at_ms = 0;    // resolution time, or valid-until for a firing alert
  std::string generator_url;
  bool resolved = false;
};
class Notifier {
 public:
  virtual ~Notifier() = default;
  // One rule's alerts that need sending; must not block (queue and return).
  virtual void notify(std::span<const NotifyAlert> alerts) noexcept = 0;
};

struct ManagerOptions {
  std::chrono::milliseconds evaluation_interval{15'000};
  GoMap external_labels{};
  std::string external_url{};  // generatorURL's base
  query::EngineOptions engine{};
  std::chrono::milliseconds resend_delay{60'000};
  std::chrono::milliseconds for_outage_tolerance{3'600'000};
  // Empty: alert states are not kept across restarts.
  std::string state_file{};
  std::shared_ptr<core::Clock> clock{};  // real_clock() when null
  // Where the evaluation durations and counts go (GET /metrics), per group
  // (`rule_group` = file;name, as Prometheus labels them):
  // metrics_server_rule_evaluation_duration_seconds (one rule),
  // metrics_server_rule_group_duration_seconds (one group's whole round),
  // metrics_server_rule_evaluations_total and
  // metrics_server_rule_evaluation_failures_total. Null: not measured.
  std::shared_ptr<telemetry::Registry> telemetry{};
};

// One alert as the views show it.
struct AlertView {
  std::string group;
  std::string rule;
  query::LabelSet labels;
  query::LabelSet annotations;
  AlertState state = AlertState::inactive;
  std::int64_t active_at_ms = 0;
  std::int64_t fired_at_ms = 0;
  std::int64_t resolved_at_ms = 0;  // 0: not resolved
  std::int64_t keep_firing_since_ms = 0;
  double value = 0;
};

// The nice value of the evaluation thread (named "rules"): below the
// server's I/O threads.
inline constexpr int kEvaluationNice = 10;

class Manager {
 public:
  Manager(const query::Queryable& queryable, SampleSink* sink, ManagerOptions options);
  ~Manager();
  Manager(const Manager&) = delete;
  Manager& operator=(const Manager&) = delete;

  // Replaces the rules; the alerts of a rule that is kept (same file,
  // group, name and position among rules of that name) keep their state,
  // as in Prometheus.
  void load(std::vector<GroupSpec> groups);
  void add_notifier(std::shared_ptr<Notifier> notifier);

  // Reads the state file (if any): alerts of rules that exist come back
  // (see docs/ALERTING.md); false when there was no usable file.
  bool restore_state();
  // Writes the state file now (atomic rename). False on an I/O error.
  bool save_state();

  // Evaluates every group once at t (tests, benchmarks).
  void evaluate_all(std::int64_t t_ms);

  // Background evaluation, each group at its interval.
  void start();
  void stop();

  // The Prometheus HTTP API's `data` of /api/v1/rules (type: "", "alert"
  // or "record") and /api/v1/alerts.
  [[nodiscard]] std::string rules_json(std::string_view type = "") const;
  [[nodiscard]] std::string alerts_json() const;
  // Every alert kept (pending, firing and recently resolved).
  [[nodiscard]] std::vector<AlertView> alerts() const;
  [[nodiscard]] std::size_t group_count() const;
  [[nodiscard]] std::size_t rule_count() const;

  struct Group;

 private:
  void evaluate_group(Group& g, std::int64_t t_ms, std::vector<std::vector<NotifyAlert>>& out);
  void run();
  [[nodiscard]] std::int64_t now_ms() const;

  const query::Queryable& queryable_;
  SampleSink* sink_;
  ManagerOptions options_;
  query::Engine engine_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  bool reloaded_ = false;
  bool dirty_ = false;  // alert states changed since the last save
  std::vector<std::unique_ptr<Group>> groups_;
  std::vector<std::shared_ptr<Notifier>> notifiers_;
  std::thread thread_;
};

// The alert's Alertmanager fingerprint (prometheus/common model.LabelSet
// Fingerprint: FNV-1a over sorted names and values), as 16 hex digits.
[[nodiscard]] std::string fingerprint(const query::LabelSet& labels);
// Go's time.Time JSON (RFC 3339 with the fraction trimmed), UTC.
[[nodiscard]] std::string format_rfc3339(std::int64_t ms);
// Prometheus's strutil.TableLinkForExpression.
[[nodiscard]] std::string table_link(std::string_view expr);

}  // namespace metrics::rules
