// Compares the rules package with Prometheus 2.42's own code through
// promtool (Debian's prometheus package):
//  - `promtool check rules` accepts exactly the corpus files our loader accepts;
//  - `promtool test rules` runs Prometheus's rule manager on a fake clock over
//    the same input series and rule file as our Manager, and must agree with
//    the firing alerts (labels and rendered annotations), the ALERTS series
//    (pending and firing) and ALERTS_FOR_STATE (activeAt) that our Manager
//    produced at every evaluation, and with the recording rule's series.
// Fails when promtool is missing and CI=true; skips locally otherwise.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "metrics/query/engine.hpp"
#include "metrics/rules/manager.hpp"
#include "metrics/rules/rule_file.hpp"

namespace {

namespace fs = std::filesystem;
namespace q = metrics::query;
namespace r = metrics::rules;

constexpr const char* kPromtool = "/usr/bin/promtool";

bool require_promtool() {
  if (access(kPromtool, X_OK) == 0) return true;
  const char* ci = std::getenv("CI");
  if (ci != nullptr && std::string(ci) == "true") {
    ADD_FAILURE() << kPromtool << " is not installed (CI=true)";
  } else {
    GTEST_LOG_(INFO) << kPromtool << " is not installed: skipped";
  }
  return false;
}

struct Ran {
  int status = -1;
  std::string output;
};

Ran run(const std::string& command) {
  Ran out;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  std::size_t n = 0;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0)
    out.output.append(buf, n);
  const int st = pclose(p);
  out.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return out;
}

fs::path temp_dir() {
  char tmpl[] = "/tmp/rules-promtool-XXXXXX";
  return mkdtemp(tmpl);
}

TEST(Promtool, CheckRulesAgreesWithTheLoaderOnTheCorpus) {
  if (!require_promtool()) GTEST_SKIP();
  int files = 0;
  for (const char* kind : {"good", "bad"}) {
    for (const auto& e : fs::directory_iterator(fs::path(RULES_CORPUS_DIR) / kind)) {
      bool ours = true;
      std::string why;
      try {
        (void)r::load_rule_file(e.path().string());
      } catch (const r::RuleFileError& err) {
        ours = false;
        why = err.what();
      }
      const Ran p = run(std::string(kPromtool) + " check rules " + e.path().string());
      EXPECT_EQ(ours, p.status == 0)
          << e.path() << "\nours: " << (ours ? "accepted" : why) << "\npromtool: " << p.output;
      EXPECT_EQ(ours, std::string(kind) == "good") << e.path() << " " << why;
      ++files;
    }
  }
  EXPECT_GT(files, 40);
}

// --- the differential evaluation ---------------------------------------------

const double kStale = std::bit_cast<double>(std::uint64_t{0x7ff0000000000002ULL});

struct MemorySink final : r::SampleSink {
  explicit MemorySink(q::MemoryQueryable& s) : store(s) {}
  void append(std::span<const r::OutputSample> samples) override {
    for (const auto& s : samples)
      store.add(s.labels, s.t_ms, s.v);
  }
  q::MemoryQueryable& store;
};

struct InputSeries {
  std::string series;  // promtool notation
  q::LabelSet labels;
  std::string values;  // promtool's expanded notation: numbers, _ and stale
};

std::string yaml_quote(const std::string& s) {
  std::string out = "'";
  for (const char c : s) {
    if (c == '\'')
      out += "''";
    else
      out += c;
  }
  return out + "'";
}

std::string series_text(const q::LabelSet& labels) {
  // {__name__="x", a="b"}: promtool's parser reads it.
  std::string out = "{";
  bool first = true;
  for (const auto& l : labels) {
    if (!first) out += ", ";
    first = false;
    out += l.name + "=\"";
    for (const char c : l.value) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  return out + "}";
}

std::string float_text(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Runs our Manager over `inputs` with `rule_file`, writes a promtool test
// whose expectations are what the Manager produced, and runs promtool.
std::string compare_with_promtool(const std::string& rule_file,
                                  const std::vector<InputSeries>& inputs, int steps,
                                  const std::vector<std::string>& alertnames,
                                  const std::vector<std::string>& queries) {
  const fs::path dir = temp_dir();
  std::ofstream(dir / "rules.yml") << rule_file;
  q::MemoryQueryable store;
  for (const auto& in : inputs) {
    std::istringstream vs(in.values);
    std::string tok;
    std::int64_t i = 0;
    while (vs >> tok) {
      if (tok != "_") store.add(in.labels, i * 60'000, tok == "stale" ? kStale : std::stod(tok));
      ++i;
    }
  }
  MemorySink sink(store);
  r::Manager manager(store, &sink,
                     {.evaluation_interval = std::chrono::minutes{1},
                      .external_labels = {{"cluster", "c1"}},
                      .external_url = "http://ext:9090"});
  manager.load(r::load_rule_file((dir / "rules.yml").string()));
  q::Engine engine;
  std::ostringstream t;
  t << "rule_files: [rules.yml]\nevaluation_interval: 1m\ntests:\n- interval: 1m\n"
    << "  external_labels:\n    cluster: c1\n  external_url: http://ext:9090\n"
    << "  input_series:\n";
  for (const auto& in : inputs)
    t << "  - series: " << yaml_quote(in.series) << "\n    values: " << yaml_quote(in.values)
      << "\n";
  std::ostringstream alert_tests, expr_tests;
  for (int step = 0; step < steps; ++step) {
    const std::int64_t ts = step * 60'000;
    manager.evaluate_all(ts);
    const auto views = manager.alerts();
    for (const auto& name : alertnames) {
      alert_tests << "  - eval_time: " << step << "m\n    alertname: " << name
                  << "\n    exp_alerts:";
      bool any = false;
      for (const auto& a : views) {
        if (a.rule != name || a.state != r::AlertState::firing) continue;
        any = true;
        alert_tests << "\n    - exp_labels:";
        for (const auto& l : a.labels) {
          if (l.name != "alertname")
            alert_tests << "\n        " << l.name << ": " << yaml_quote(l.value);
        }
        if (a.labels.size() == 1) alert_tests << " {}";
        alert_tests << "\n      exp_annotations:";
        for (const auto& l : a.annotations)
          alert_tests << "\n        " << l.name << ": " << yaml_quote(l.value);
        if (a.annotations.empty()) alert_tests << " {}";
      }
      if (!any) alert_tests << " []";
      alert_tests << "\n";
    }
    for (const auto& query : queries) {
      const auto result = engine.instant(store, query, ts);
      expr_tests << "  - expr: " << yaml_quote(query) << "\n    eval_time: " << step
                 << "m\n    exp_samples:";
      const auto& vec = std::get<q::Vector>(result);
      if (vec.empty()) expr_tests << " []";
      for (const auto& s : vec)
        expr_tests << "\n    - labels: " << yaml_quote(series_text(s.metric))
                   << "\n      value: " << float_text(s.v);
      expr_tests << "\n";
    }
  }
  t << "  alert_rule_test:\n" << alert_tests.str();
  t << "  promql_expr_test:\n" << expr_tests.str();
  std::ofstream(dir / "test.yml") << t.str();
  const Ran p =
      run(std::string("cd ") + dir.string() + " && " + kPromtool + " test rules test.yml");
  EXPECT_EQ(p.status, 0) << p.output << "\n--- test file ---\n" << t.str();
  if (p.status == 0) fs::remove_all(dir);
  return t.str();
}

q::LabelSet L(std::vector<metrics::core::Label> l) {
  return q::make_labels(std::move(l));
}

TEST(Promtool, EvaluationAgreesWithPrometheusRuleManager) {
  if (!require_promtool()) GTEST_SKIP();
  const std::string rules = R"(groups:
  - name: diff
    rules:
      - alert: HighCPU
        expr: cpu_usage > 80
        for: 3m
        keep_firing_for: 2m
        labels:
          severity: '{{ if gt $value 92.0 }}page{{ else }}ticket{{ end }}'
          team: infra
        annotations:
          summary: '{{ $labels.instance }} cpu {{ $value }}'
          ratio: '{{ humanizePercentage (printf "%f" $value) }}'
      - record: instance:heap:sum
        expr: sum by (instance) (heap_bytes)
      - alert: HeapBig
        expr: instance:heap:sum > 1e9
        annotations:
          h: '{{ $value | humanize }} {{ humanize1024 $value }} {{ $value }} {{ printf "%.3e" $value }} {{ humanizeDuration $value }}'
          ext: '{{ $externalLabels.cluster }} {{ $externalURL }} {{ .Labels.instance }}'
      - alert: Down
        expr: up == 0
        for: 2m
        annotations:
          d: 'down value={{ $value }} {{ humanizeDuration 150 }}'
      - alert: NoFor
        expr: cpu_usage < 50
        keep_firing_for: 1m
)";
  const std::vector<InputSeries> inputs{
      {R"(cpu_usage{instance="a",job="node"})",
       L({{"__name__", "cpu_usage"}, {"instance", "a"}, {"job", "node"}}),
       "0 0 90 90 90 95 95 _ _ 90 90 10 10 90 90 90 90 90 90 40 90 90 90 90 90"},
      {R"(cpu_usage{instance="b",job="node"})",
       L({{"__name__", "cpu_usage"}, {"instance", "b"}, {"job", "node"}}),
       "95 95 95 95 95 95 95 95 95 95 stale _ _ _ 95 95 95 95 95 95 95 95 95 95 95"},
      {R"(heap_bytes{instance="a",pool="x"})",
       L({{"__name__", "heap_bytes"}, {"instance", "a"}, {"pool", "x"}}),
       "1e8 5e8 1.2e9 2.5e9 2.5e9 3e9 3e9 3e9 1e8 1e8 2.5e9 2.5e9 2.5e9 2.5e9 2.5e9 2.5e9 2.5e9 "
       "2.5e9 2.5e9 2.5e9 2.5e9 2.5e9 2.5e9 2.5e9 2.5e9"},
      {R"(heap_bytes{instance="a",pool="y"})",
       L({{"__name__", "heap_bytes"}, {"instance", "a"}, {"pool", "y"}}),
       "1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25"},
      {R"(up{instance="c",job="agent"})",
       L({{"__name__", "up"}, {"instance", "c"}, {"job", "agent"}}),
       "1 1 0 0 0 0 1 0 0 0 0 0 0 1 1 0 0 0 0 0 0 0 0 0 0"},
  };
  const std::string test =
      compare_with_promtool(rules, inputs, 25, {"HighCPU", "HeapBig", "Down", "NoFor"},
                            {"ALERTS", "ALERTS_FOR_STATE", "instance:heap:sum"});
  // Not vacuous: alerts fired, others waited, some kept firing.
  std::size_t firing = 0, pending = 0;
  for (std::size_t at = 0; (at = test.find("- exp_labels:", at)) != std::string::npos; ++at)
    ++firing;
  for (std::size_t at = 0; (at = test.find("alertstate=\"pending\"", at)) != std::string::npos;
       ++at)
    ++pending;
  EXPECT_GT(firing, 20u);
  EXPECT_GT(pending, 5u);
}

TEST(Promtool, TemplateOutputsAgreeWithPrometheus) {
  if (!require_promtool()) GTEST_SKIP();
  const std::string rules = R"(groups:
  - name: templates
    rules:
      - alert: Values
        expr: tmpl_value
        annotations:
          v: '{{ $value }}'
          humanize: '{{ humanize $value }}'
          h1024: '{{ humanize1024 $value }}'
          duration: '{{ humanizeDuration $value }}'
          percent: '{{ humanizePercentage $value }}'
          printf: '{{ printf "%.2f|%d|%s|%v|%g|%e|%5.1f|%x" $value $value $value $value $value $value $value $value }}'
          ts: '{{ humanizeTimestamp $value }}'
          strs: '{{ humanize "1234.5" }} {{ printf "%q %5s|%-4s|" "a\"b" "x" "y" }} {{ printf "%d %03d %+d" 7 7 7 }}'
          ctl: '{{ if lt $value 0.0 }}neg{{ else if eq $value 0.0 }}zero{{ else }}pos{{ end }} {{ len $labels }} {{ toUpper $labels.id }}'
)";
  const std::vector<std::string> values{
      "0",      "1",    "0.5",      "1e-07",   "123456789",           "2.5e+09",
      "-3.5",   "1024", "0.001234", "86400.5", "0.30000000000000004", "65.5",
      "999.95", "1e-05"};
  std::vector<InputSeries> inputs;
  for (std::size_t i = 0; i < values.size(); ++i) {
    const std::string id = "v" + std::to_string(i);
    inputs.push_back({"tmpl_value{id=\"" + id + "\"}", L({{"__name__", "tmpl_value"}, {"id", id}}),
                      values[i] + " " + values[i]});
  }
  const std::string test = compare_with_promtool(rules, inputs, 2, {"Values"}, {});
  EXPECT_NE(test.find("2.328Gi"), std::string::npos);
}

}  // namespace

namespace {

TEST(Promtool, ExampleRulesAreValidAndAlertPerInstance) {
  if (!require_promtool()) GTEST_SKIP();
  const std::string path = std::string(RULES_EXAMPLES_FILE);
  EXPECT_NO_THROW((void)r::load_rule_file(path));
  const Ran p = run(std::string(kPromtool) + " check rules " + path);
  EXPECT_EQ(p.status, 0) << p.output;
  std::ifstream f(path);
  const std::string text((std::istreambuf_iterator<char>(f)), {});
  std::string up_a, up_b, heap, sys, rss;
  for (int i = 0; i < 40; ++i) {
    up_a += i < 10 ? "1 " : "0 ";
    up_b += "1 ";
    heap += std::to_string(100'000'000 + i * 20'000'000) + " ";
    sys += "1000000000 ";
    rss += i < 5 ? "100000000 " : "2000000000 ";
  }
  const std::vector<InputSeries> inputs{
      {R"(agent_up{instance="web-1:4242",job="api"})",
       L({{"__name__", "agent_up"}, {"instance", "web-1:4242"}, {"job", "api"}}), up_a},
      {R"(agent_up{instance="web-2:4242",job="api"})",
       L({{"__name__", "agent_up"}, {"instance", "web-2:4242"}, {"job", "api"}}), up_b},
      {R"(HeapAlloc{instance="web-1:4242",job="api"})",
       L({{"__name__", "HeapAlloc"}, {"instance", "web-1:4242"}, {"job", "api"}}), heap},
      {R"(HeapSys{instance="web-1:4242",job="api"})",
       L({{"__name__", "HeapSys"}, {"instance", "web-1:4242"}, {"job", "api"}}), sys},
      {R"(ProcessRSS{instance="web-1:4242",job="api"})",
       L({{"__name__", "ProcessRSS"}, {"instance", "web-1:4242"}, {"job", "api"}}), rss},
  };
  const std::string test = compare_with_promtool(
      text, inputs, 40,
      {"AgentDown", "HeapExhaustedWithinAnHour", "ResidentMemoryHigh", "AllocationRateSpike"},
      {"ALERTS"});
  // AgentDown fired for web-1 only, with its labels.
  EXPECT_NE(test.find("instance: 'web-1:4242'"), std::string::npos);
  EXPECT_NE(test.find("Agent web-1:4242 (api) stopped pushing"), std::string::npos);
  EXPECT_EQ(test.find("Agent web-2:4242"), std::string::npos);
  EXPECT_NE(test.find("heap will run out within the hour"), std::string::npos);
  EXPECT_NE(test.find("resident memory 1.863GiB"), std::string::npos);
}

}  // namespace
