// What the server holds for alerting: the rule files (loaded at start, where
// a bad file is fatal, and again on SIGHUP, where a bad file keeps the old
// rules), the Manager once the history is there to evaluate over, and the
// notifiers from --alertmanager-url / --alert-webhook.
//
//   rules::AlertingService alerting({.patterns = config.rules, ...});
//   alerting.load();                           // throws RuleFileError: file:line: reason
//   alerting.start(history_queryable, &sink);  // the seam to the history
//   if (auto error = alerting.reload()) log(*error);   // on SIGHUP
//   alerting.manager()->alerts_json();         // for /api/v1/alerts
//
// Thread-safe: reload() may run on the signal thread while the manager
// evaluates and the HTTP threads read it.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "metrics/rules/http_notifier.hpp"
#include "metrics/rules/manager.hpp"
#include "metrics/rules/rule_file.hpp"

namespace metrics::rules {

struct AlertingOptions {
  std::vector<std::string> patterns{};  // --rules
  ManagerOptions manager{};
  HttpNotifierOptions notifier{};
};

class AlertingService {
 public:
  explicit AlertingService(AlertingOptions options) : options_(std::move(options)) {}
  ~AlertingService() { stop(); }
  AlertingService(const AlertingService&) = delete;
  AlertingService& operator=(const AlertingService&) = delete;

  // Reads every rule file. Throws RuleFileError.
  void load();
  // Reads them again; on an error keeps the rules in use and returns why.
  [[nodiscard]] std::optional<std::string> reload();
  // Starts evaluating over `queryable`, writing to `sink` (restores the
  // state file first). Both must outlive stop().
  // telemetry: where the evaluation durations go (ManagerOptions::telemetry;
  // null keeps the options' own).
  void start(const query::Queryable& queryable, SampleSink* sink,
             std::shared_ptr<telemetry::Registry> telemetry = {});
  void stop();

  [[nodiscard]] std::size_t group_count() const;
  [[nodiscard]] std::size_t rule_count() const;
  // Null until start().
  [[nodiscard]] Manager* manager() const;
  [[nodiscard]] NotifierStats notifier_stats() const;

 private:
  AlertingOptions options_;
  mutable std::mutex mu_;
  std::vector<GroupSpec> groups_;  // the rules in use (until start)
  std::size_t group_count_ = 0, rule_count_ = 0;
  std::shared_ptr<HttpNotifier> notifier_;
  std::unique_ptr<Manager> manager_;
};

}  // namespace metrics::rules
