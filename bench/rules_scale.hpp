// The data and rules of issue 15's scale target (1,000 rules over 300,000
// series), shared by rules_bench (over a HistoryStore) and rules_feed (which
// writes the same series into a running server by remote write):
//
// - 300 instances (`host-000:9100` ...) in 3 jobs (node, app, db), each with
//   600 gauges `g_<m>` and 400 counters `c_<m>_total`: 300,000 series, one
//   sample every 15 s at t = k * 15 s (k counted from the Unix epoch, so a
//   backfill and a live feed agree);
// - gauges sit at a per-series level in [0, 90) with a small sawtooth; 1% of
//   them at 97 (over the threshold rules' 95) and 1% climbing (what
//   predict_linear rules catch); counters grow at 1..40 per second;
// - 1,000 rules in 10 groups of 100: the rules over metric m sit in group
//   m % 10, so the rules that read one metric share a group:
//     300 `g_m > 95` (m < 300, for 5m, templated annotation),
//     100 `predict_linear(g_m[30m], 3600) > 100` (m < 100),
//     200 `rate(c_m_total[5m]) > 39.5` (m < 200),
//     100 `sum by (job) (rate(c_m_total[5m])) > 1e9` (200 <= m < 300),
//     100 recording `sum by (job) (rate(c_m_total[5m]))` (m < 100),
//      50 recording `avg by (job, instance) (avg_over_time(g_m[5m]))` (300 <= m < 350),
//     100 `absent(g_m{job="db"})` (350 <= m < 450),
//      50 over the liveness series: `agent_up == 0` and
//         `time() - agent_last_push_timestamp_seconds > N`.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace rules_scale {

inline constexpr int kInstances = 300;
inline constexpr int kGauges = 600;
inline constexpr int kCounters = 400;
inline constexpr std::int64_t kStepMs = 15'000;
inline constexpr std::array<const char*, 3> kJobs{"node", "app", "db"};

inline std::string instance_name(int i) {
  std::string n = std::to_string(i);
  while (n.size() < 3)
    n.insert(n.begin(), '0');
  return "host-" + n + ":9100";
}
inline const char* job_of(int i) {
  return kJobs[static_cast<std::size_t>(i % 3)];
}
inline std::string gauge_name(int m) {
  return "g_" + std::to_string(m);
}
inline std::string counter_name(int m) {
  return "c_" + std::to_string(m) + "_total";
}

// The sample of series (instance i, metric m) at step k = t_ms / kStepMs.
inline double gauge_value(int i, int m, std::int64_t k) {
  const int sel = (i + m) % 100;
  if (sel == 0) return 97.0 + static_cast<double>(k % 2);
  if (sel == 50) return 20.0 + 0.5 * static_cast<double>(k % 480);
  return static_cast<double>((i * 31 + m * 17) % 90) + static_cast<double>(k % 4);
}
inline double counter_value(int i, int m, std::int64_t k) {
  const int per_second = (i * 7 + m) % 40 + 1;
  return static_cast<double>(per_second) * 15.0 * static_cast<double>(k % 100'000'000);
}

inline std::string rule_file(const std::string& interval = "15s") {
  std::vector<std::vector<std::string>> groups(10);
  auto add = [&](int m, std::string rule) {
    groups[static_cast<std::size_t>(m % 10)].push_back(rule);
  };
  auto alert = [](const std::string& name, const std::string& expr, const std::string& for_) {
    return "      - alert: " + name + "\n        expr: '" + expr + "'\n        for: " + for_ +
           "\n        labels: {severity: warning}\n        annotations:\n          summary: '{{ "
           "$labels.instance }} of {{ $labels.job }}: {{ $value | humanize }}'\n";
  };
  auto record = [](const std::string& name, const std::string& expr) {
    return "      - record: " + name + "\n        expr: '" + expr + "'\n";
  };
  for (int m = 0; m < 300; ++m)
    add(m, alert("GaugeHigh_" + std::to_string(m), gauge_name(m) + " > 95", "5m"));
  for (int m = 0; m < 100; ++m)
    add(m, alert("GaugeExhausted_" + std::to_string(m),
                 "predict_linear(" + gauge_name(m) + "[30m], 3600) > 100", "10m"));
  for (int m = 0; m < 200; ++m)
    add(m, alert("CounterRateHigh_" + std::to_string(m), "rate(" + counter_name(m) + "[5m]) > 39.5",
                 "2m"));
  for (int m = 200; m < 300; ++m)
    add(m, alert("JobRateHigh_" + std::to_string(m),
                 "sum by (job) (rate(" + counter_name(m) + "[5m])) > 1e9", "5m"));
  for (int m = 0; m < 100; ++m)
    add(m, record("job:" + counter_name(m) + ":rate5m",
                  "sum by (job) (rate(" + counter_name(m) + "[5m]))"));
  for (int m = 300; m < 350; ++m)
    add(m, record("instance:" + gauge_name(m) + ":avg5m",
                  "avg by (job, instance) (avg_over_time(" + gauge_name(m) + "[5m]))"));
  for (int m = 350; m < 450; ++m)
    add(m, alert("GaugeAbsent_" + std::to_string(m), "absent(" + gauge_name(m) + "{job=\"db\"})",
                 "5m"));
  for (int m = 0; m < 50; ++m) {
    add(m, m % 2 == 0
               ? alert("AgentDown_" + std::to_string(m), "agent_up == 0", "1m")
               : alert("AgentSilent_" + std::to_string(m),
                       "time() - agent_last_push_timestamp_seconds > " + std::to_string(60 + m),
                       "1m"));
  }
  std::string out = "groups:\n";
  for (std::size_t g = 0; g < groups.size(); ++g) {
    out +=
        "  - name: scale_" + std::to_string(g) + "\n    interval: " + interval + "\n    rules:\n";
    for (const auto& r : groups[g])
      out += r;
  }
  return out;
}

}  // namespace rules_scale
