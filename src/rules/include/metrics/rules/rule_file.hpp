// Rule files in Prometheus's format, read and checked as `promtool check
// rules` (Prometheus 2.42) checks them: unknown or repeated keys, wrong
// types, empty or repeated group names, bad durations, expressions our
// PromQL parser refuses, invalid recording-rule, label and annotation
// names, label values that are not UTF-8, and alert templates that do not
// parse. Every error names the file, the line and the reason.
//
//   std::vector<rules::GroupSpec> groups = rules::load_rule_files({"rules/*.yml"});
//   // throws rules::RuleFileError("rules/a.yml:7: group \"g\", rule 1 (\"Down\"): ...")
//
//   groups:
//     - name: agents          # unique in the file
//       interval: 30s         # optional; the evaluation interval otherwise
//       limit: 0              # optional; 0 = no limit on alerts / series
//       rules:
//         - alert: AgentDown
//           expr: agent_up == 0
//           for: 1m
//           keep_firing_for: 5m
//           labels: {severity: page}
//           annotations: {summary: "{{ $labels.instance }} is down"}
//         - record: job:agent_up:sum
//           expr: sum by (job) (agent_up)
//
// Plain values: a loaded GroupSpec may be read from many threads.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/query/ast.hpp"
#include "metrics/rules/template.hpp"

namespace metrics::rules {

class RuleFileError : public std::runtime_error {
 public:
  RuleFileError(std::string file, int line, const std::string& reason)
      : std::runtime_error(file + ":" + std::to_string(line) + ": " + reason),
        file_(std::move(file)),
        line_(line) {}
  [[nodiscard]] const std::string& file() const noexcept { return file_; }
  [[nodiscard]] int line() const noexcept { return line_; }

 private:
  std::string file_;
  int line_;
};

enum class RuleKind : std::uint8_t { alerting, recording };

struct RuleSpec {
  RuleKind kind = RuleKind::alerting;
  std::string name;  // the alert's name or the recorded metric
  std::string expr;  // as written
  std::shared_ptr<const query::Expr> parsed;
  std::chrono::milliseconds for_duration{0};
  std::chrono::milliseconds keep_firing_for{0};
  std::map<std::string, std::string> labels;
  std::map<std::string, std::string> annotations;
  // Alerting rules: the parsed templates of labels and annotations.
  std::map<std::string, Template> label_templates;
  std::map<std::string, Template> annotation_templates;
  int line = 0;
};

struct GroupSpec {
  std::string name;
  std::string file;
  std::chrono::milliseconds interval{0};  // 0: the evaluation interval
  std::int64_t limit = 0;
  std::vector<RuleSpec> rules;
  int line = 0;
};

// Prometheus's model.ParseDuration ("1h30m", "90s", "1w", "0"); nullopt
// when it is not one.
[[nodiscard]] std::optional<std::chrono::milliseconds> parse_prometheus_duration(
    std::string_view text);
// model.Duration's String(): "1h30m", "0s".
[[nodiscard]] std::string format_prometheus_duration(std::chrono::milliseconds d);

[[nodiscard]] bool is_valid_label_name(std::string_view name) noexcept;
[[nodiscard]] bool is_valid_metric_name(std::string_view name) noexcept;

// Parses one file's text; `file` is the name used in errors and in the
// groups. Throws RuleFileError.
[[nodiscard]] std::vector<GroupSpec> parse_rule_file(std::string_view text,
                                                     const std::string& file);
// Reads and parses one file. Throws RuleFileError.
[[nodiscard]] std::vector<GroupSpec> load_rule_file(const std::string& path);
// Every file matching each pattern (a path or a glob; a glob matching
// nothing is no error, a missing plain path is), in pattern order and
// sorted within a glob, each file once. Throws RuleFileError.
[[nodiscard]] std::vector<GroupSpec> load_rule_files(std::span<const std::string> patterns);
// The files load_rule_files() would read.
[[nodiscard]] std::vector<std::string> expand_rule_paths(std::span<const std::string> patterns);

}  // namespace metrics::rules
