// GET /metrics of a real metrics-server process, checked by the real
// tools: `promtool check metrics` (Prometheus 2.42, Debian's package) finds
// no problem at all in it, and a real Prometheus 2.42 scraping it every
// second (honor_labels: true) returns the pushed series with their labels
// and values through its own query API, and up=1.
//
// Without the programs (found at configure time) the tests skip locally
// and fail when CI=true.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "process_support.hpp"

namespace metrics::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using ::testing::HasSubstr;

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string_view(ci) == "true";
}

// Skips (locally) or fails (CI=true) when the program was not found.
#define REQUIRE_PROGRAM(path, name)                                         \
  do {                                                                      \
    if (std::string(path).empty()) {                                        \
      if (in_ci()) FAIL() << name " not found at configure time (CI=true)"; \
      GTEST_SKIP() << name " not found at configure time";                  \
    }                                                                       \
  } while (false)

// A temporary folder, removed at the end.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("scrape_test_" + std::to_string(::getpid()) + "_" +
            std::to_string(std::chrono::steady_clock::now().time_since_epoch().count()));
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ignored;
    fs::remove_all(path, ignored);
  }
};

// Labelled series of every kind the exposition handles: an envelope, a
// label value with a quote, a backslash and a newline, a counter written
// twice, a name PromQL cannot spell.
void push_series(std::uint16_t port) {
  Client c(port);
  const auto a = c.post_json("/updates/", R"({"labels":{"instance":"host-1:42","job":"agent"},
      "metrics":[{"id":"heap_bytes","type":"gauge","value":1536000.5,
                  "labels":{"path":"a\"b\\c\nd"}},
                 {"id":"polls_total","type":"counter","delta":7},
                 {"id":"queue.depth","type":"gauge","value":-3}]})");
  ASSERT_EQ(a.result_int(), 200) << a.body();
  const auto b = c.post_json("/update/", R"({"id":"polls_total","type":"counter","delta":5,
                     "labels":{"instance":"host-1:42","job":"agent"}})");
  ASSERT_EQ(b.result_int(), 200) << b.body();
}

TEST(Promtool, FindsNoProblemInARealMetricsAnswer) {
  const std::string promtool = METRICS_PROMTOOL;
  REQUIRE_PROGRAM(promtool, "promtool");
  // With the example rules evaluating and a query of each kind answered,
  // so that the query and rule-evaluation families are checked too.
  ServerProcess server(
      {"-f", "", "--rules", METRICS_EXAMPLE_RULES, "--evaluation-interval", "100ms"});
  ASSERT_TRUE(server.wait_ready());
  push_series(server.port());
  Client c(server.port());
  (void)c.get("/no/such/path");  // a 404 in the request counters too
  ASSERT_EQ(c.get("/api/v1/query?query=polls_total").result_int(), 200);
  ASSERT_EQ(c.get("/api/v1/query_range?query=polls_total&start=0&end=60&step=15").result_int(),
            200);
  auto res = c.get("/metrics");
  for (int i = 0; i < 100 && res.body().find("metrics_server_rule_group_duration_seconds_count{"
                                             "rule_group=") == std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
    res = c.get("/metrics");
  }
  ASSERT_EQ(res.result_int(), 200);
  ASSERT_THAT(res.body(), HasSubstr("polls_total{instance=\"host-1:42\",job=\"agent\"} 12\n"));
  ASSERT_THAT(res.body(), HasSubstr("metrics_server_request_duration_seconds_bucket{"));
  ASSERT_THAT(res.body(), HasSubstr("process_resident_memory_bytes "));
  ASSERT_THAT(res.body(), HasSubstr("metrics_server_query_duration_seconds_bucket{"));
  ASSERT_THAT(res.body(), HasSubstr("metrics_server_rule_evaluation_duration_seconds_bucket{"));
  ASSERT_THAT(res.body(), HasSubstr("metrics_server_rule_group_duration_seconds_bucket{"));
  ASSERT_THAT(res.body(), HasSubstr("metrics_server_rule_evaluations_total{"));
  TempDir dir;
  std::ofstream(dir.path / "metrics.txt") << res.body();
  const std::string cmd = "'" + promtool + "' check metrics < '" +
                          (dir.path / "metrics.txt").string() + "' > '" +
                          (dir.path / "out.txt").string() + "' 2>&1";
  const int status = std::system(cmd.c_str());
  std::stringstream out;
  out << std::ifstream(dir.path / "out.txt").rdbuf();
  ASSERT_TRUE(WIFEXITED(status));
  EXPECT_EQ(WEXITSTATUS(status), 0) << out.str() << "\n--- the answer:\n" << res.body();
  EXPECT_EQ(out.str(), "");
}

// The value of one sample line `name{labels} v` of a /metrics answer; -1
// when it is not there.
double sample_value(const std::string& text, const std::string& series) {
  const auto at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

TEST(SelfMonitoring, QueryAndRuleEvaluationDurationsCountEveryQueryAndEvaluation) {
  TempDir dir;
  std::ofstream(dir.path / "rules.yml") << R"(groups:
  - name: ok
    rules:
      - record: polls:sum
        expr: sum(polls_total)
      - alert: Many
        expr: polls_total > 1000
  - name: failing
    limit: 1
    rules:
      - record: each
        expr: polls_total or heap_bytes
)";
  ServerProcess server(
      {"-f", "", "--rules", (dir.path / "rules.yml").string(), "--evaluation-interval", "200ms"});
  ASSERT_TRUE(server.wait_ready());
  push_series(server.port());
  Client c(server.port());
  for (int i = 0; i < 3; ++i)
    ASSERT_EQ(c.get("/api/v1/query?query=sum(polls_total)").result_int(), 200);
  ASSERT_EQ(c.get("/api/v1/query_range?query=polls_total&start=0&end=60&step=15").result_int(),
            200);
  ASSERT_EQ(c.get("/api/v1/query?query=sum(").result_int(), 400);  // parsed, never evaluated
  const std::string q = "metrics_server_query_duration_seconds_count{endpoint=\"/api/v1/";
  std::string m;
  const std::string ok_group = "{rule_group=\"" + (dir.path / "rules.yml").string() + ";ok\"}";
  const std::string failing_group =
      "{rule_group=\"" + (dir.path / "rules.yml").string() + ";failing\"}";
  for (int i = 0; i < 100; ++i) {
    m = c.get("/metrics").body();
    if (sample_value(m, "metrics_server_rule_group_duration_seconds_count" + ok_group) >= 2 &&
        sample_value(m, "metrics_server_rule_group_duration_seconds_count" + failing_group) >= 2)
      break;
    std::this_thread::sleep_for(std::chrono::milliseconds{50});
  }
  EXPECT_EQ(sample_value(m, q + "query\",slice=\"queue_time\"}"), 4) << m;
  EXPECT_EQ(sample_value(m, q + "query\",slice=\"prepare_time\"}"), 3);
  EXPECT_EQ(sample_value(m, q + "query\",slice=\"inner_eval\"}"), 3);
  EXPECT_EQ(sample_value(m, q + "query\",slice=\"result_encode\"}"), 3);
  EXPECT_EQ(sample_value(m, q + "query_range\",slice=\"inner_eval\"}"), 1);
  EXPECT_GT(sample_value(m,
                         "metrics_server_query_duration_seconds_sum{endpoint=\"/api/v1/"
                         "query\",slice=\"inner_eval\"}"),
            0);
  // Each group: its evaluations (2 rules in "ok"), all of "failing"'s fail
  // (two series over its limit of 1); one rule observation per evaluation.
  const double groups =
      sample_value(m, "metrics_server_rule_group_duration_seconds_count" + ok_group);
  ASSERT_GE(groups, 2);
  const double evals = sample_value(m, "metrics_server_rule_evaluations_total" + ok_group);
  EXPECT_GE(evals, 2 * (groups - 1));  // the histograms are read after the counters
  EXPECT_LE(evals, 2 * groups + 2);    // a round may be between its rules and its group
  EXPECT_EQ(sample_value(m, "metrics_server_rule_evaluation_failures_total" + ok_group), 0);
  const double failing = sample_value(m, "metrics_server_rule_evaluations_total" + failing_group);
  EXPECT_GE(failing, 2);
  // One scrape reads the three families one after the other while the group
  // keeps evaluating, and one evaluation counts them one after the other:
  // between two reads, or between two counts, one evaluation may be in one
  // family and not yet in the next, in either direction. Every evaluation of
  // "failing" fails, so the three agree to within that one.
  const double failures =
      sample_value(m, "metrics_server_rule_evaluation_failures_total" + failing_group);
  EXPECT_NEAR(failures, failing, 1);
  const double observed =
      sample_value(m, "metrics_server_rule_evaluation_duration_seconds_count" + failing_group);
  EXPECT_NEAR(observed, failing, 1);
}

// A Prometheus process on a free loopback port with its own data folder.
class PrometheusProcess {
 public:
  PrometheusProcess(const std::string& binary, const fs::path& dir, const std::string& config)
      : port_(free_port()) {
    fs::create_directories(dir / "data");
    std::ofstream(dir / "prometheus.yml") << config;
    const std::vector<std::string> args{
        binary, "--config.file=" + (dir / "prometheus.yml").string(),
        "--storage.tsdb.path=" + (dir / "data").string(),
        "--web.listen-address=127.0.0.1:" + std::to_string(port_), "--log.level=warn"};
    const std::string log = (dir / "prometheus.log").string();
    pid_ = spawn_logged(args, log, /*with_stdout=*/false);
  }
  ~PrometheusProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
  }
  PrometheusProcess(const PrometheusProcess&) = delete;
  PrometheusProcess& operator=(const PrometheusProcess&) = delete;

  // The data of an instant query (its "result" array), or null when
  // Prometheus does not answer (yet).
  json::value query(const std::string& promql) const {
    try {
      Client c(port_);
      std::string target = "/api/v1/query?query=";
      for (const char c0 : promql) {
        const auto ch = static_cast<unsigned char>(c0);
        if (std::isalnum(ch) != 0 || ch == '_') {
          target.push_back(static_cast<char>(ch));
        } else {
          static constexpr char kHex[] = "0123456789ABCDEF";
          target += '%';
          target += kHex[ch >> 4];
          target += kHex[ch & 15];
        }
      }
      const auto res = c.get(target);
      if (res.result_int() != 200) return nullptr;
      return json::parse(res.body()).at("data").at("result");
    } catch (const std::exception&) {
      return nullptr;
    }
  }

  // Polls the query until `pred` holds for its result; the last result.
  template <class Pred>
  json::value wait_for(const std::string& promql, Pred pred,
                       std::chrono::seconds timeout = std::chrono::seconds{60}) const {
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    json::value last;
    while (std::chrono::steady_clock::now() < deadline) {
      last = query(promql);
      if (last.is_array() && pred(last.as_array())) return last;
      std::this_thread::sleep_for(std::chrono::milliseconds{200});
    }
    return last;
  }

 private:
  std::uint16_t port_;
  pid_t pid_ = -1;
};

std::string value_of(const json::value& sample) {
  return std::string(sample.at("value").as_array().at(1).as_string());
}

TEST(PrometheusScrape, ScrapedSeriesComeBackWithTheirLabelsAndValues) {
  const std::string binary = METRICS_PROMETHEUS;
  REQUIRE_PROGRAM(binary, "prometheus");
  ServerProcess server({"-f", ""});
  ASSERT_TRUE(server.wait_ready());
  push_series(server.port());
  TempDir dir;
  const std::string target = "127.0.0.1:" + std::to_string(server.port());
  PrometheusProcess prom(binary, dir.path,
                         "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n"
                         "scrape_configs:\n  - job_name: metrics-server\n    honor_labels: true\n"
                         "    static_configs:\n      - targets: ['" +
                             target + "']\n");
  const auto nonempty = [](const json::array& a) { return !a.empty(); };

  const json::value up = prom.wait_for("up", nonempty);
  ASSERT_TRUE(up.is_array() && !up.as_array().empty()) << "no scrape within a minute";
  ASSERT_EQ(up.as_array().size(), 1u);
  EXPECT_EQ(value_of(up.as_array()[0]), "1");
  EXPECT_EQ(up.as_array()[0].at("metric"), json::parse(R"({"__name__":"up","instance":")" + target +
                                                       R"(","job":"metrics-server"})"));

  // honor_labels: the pushed instance and job, not the target's.
  const json::value heap = prom.wait_for("heap_bytes", nonempty);
  ASSERT_TRUE(heap.is_array() && heap.as_array().size() == 1u) << heap;
  EXPECT_EQ(heap.as_array()[0].at("metric"),
            json::parse(R"({"__name__":"heap_bytes","instance":"host-1:42","job":"agent",
                            "path":"a\"b\\c\nd"})"));
  EXPECT_EQ(value_of(heap.as_array()[0]), "1536000.5");

  const json::value polls = prom.wait_for("polls_total", nonempty);
  ASSERT_TRUE(polls.is_array() && polls.as_array().size() == 1u) << polls;
  EXPECT_EQ(polls.as_array()[0].at("metric"),
            json::parse(R"({"__name__":"polls_total","instance":"host-1:42","job":"agent"})"));
  EXPECT_EQ(value_of(polls.as_array()[0]), "12");

  // The mapped name; the liveness series; the server's own metrics.
  const json::value depth = prom.wait_for("queue_depth", nonempty);
  ASSERT_TRUE(depth.is_array() && depth.as_array().size() == 1u) << depth;
  EXPECT_EQ(value_of(depth.as_array()[0]), "-3");
  const json::value agent_up = prom.wait_for("agent_up", nonempty);
  ASSERT_TRUE(agent_up.is_array() && agent_up.as_array().size() == 1u) << agent_up;
  EXPECT_EQ(agent_up.as_array()[0].at("metric"),
            json::parse(R"({"__name__":"agent_up","instance":"host-1:42","job":"agent"})"));
  EXPECT_EQ(value_of(agent_up.as_array()[0]), "1");
  // Prometheus's own scrapes are requests too.
  const json::value scrapes =
      prom.wait_for(R"(metrics_server_requests_total{endpoint="/metrics",code="200"})", nonempty);
  ASSERT_TRUE(scrapes.is_array() && scrapes.as_array().size() == 1u) << scrapes;
  EXPECT_GE(std::stod(value_of(scrapes.as_array()[0])), 1.0);
  const json::value rss = prom.wait_for("process_resident_memory_bytes", nonempty);
  ASSERT_TRUE(rss.is_array() && rss.as_array().size() == 1u) << rss;
  EXPECT_GT(std::stod(value_of(rss.as_array()[0])), 1e6);
}

}  // namespace
}  // namespace metrics::testing
