// The scale-out recipe of docs/SCALING.md, started whole on loopback with
// the real programs: two metrics-server replicas behind nginx (Debian), on
// one PostgreSQL database made for this test, both remote-writing to a
// VictoriaMetrics single node, which also scrapes the replicas' liveness
// series (agent_up); vmalert evaluates the repository's example rules over
// VictoriaMetrics and notifies an Alertmanager 0.25, which delivers to a
// webhook of the test.
//
// Checked:
// - counters pushed through nginx sum exactly in the shared database, read
//   from either replica (and nginx did use both);
// - every sample a replica acknowledged reaches VictoriaMetrics exactly
//   once, under the replica's label (no duplicate, none missing);
// - the agent that stops pushing raises AgentDown once in Alertmanager (one
//   alert, one firing notification), the agents still pushing none.
//
// Locally a missing program or METRICS_TEST_PG_DSN skips; with CI=true it
// fails.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "alertmanager_process.hpp"
#include "fake_server.hpp"
#include "process_support.hpp"

namespace metrics::testing {
namespace {

namespace fs = std::filesystem;
namespace json = boost::json;
using namespace std::chrono_literals;
using metrics::agent::testing::FakeServer;
using metrics::rules::testing::AlertmanagerProcess;

bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}

#define REQUIRE_OR_SKIP(cond, what)                \
  do {                                             \
    if (!(cond)) {                                 \
      if (in_ci()) FAIL() << what << " (CI=true)"; \
      GTEST_SKIP() << what;                        \
    }                                              \
  } while (0)

// GET on 127.0.0.1:port; status 0 when nothing answers.
std::pair<unsigned, std::string> get(std::uint16_t port, const std::string& target) {
  try {
    Client c(port);
    auto r = c.get(target);
    return {r.result_int(), r.body()};
  } catch (const std::exception&) {
    return {0, ""};
  }
}

std::string read_file(const fs::path& p) {
  std::ifstream in(p);
  return {std::istreambuf_iterator<char>(in), {}};
}

int shell(const std::string& cmd) {
  const int status = std::system(cmd.c_str());
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

// A child process with its own arguments and log file, stopped on
// destruction.
using Child = metrics::testing::ChildProcess;

bool wait_status(std::uint16_t port, const std::string& path, unsigned want,
                 std::chrono::milliseconds timeout = 30s) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (get(port, path).first == want) return true;
    std::this_thread::sleep_for(50ms);
  }
  return false;
}

bool until(const std::function<bool()>& done, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (done()) return true;
    std::this_thread::sleep_for(200ms);
  }
  return done();
}

// The DSN of another database on the same server: a key=value DSN gets a
// later dbname (libpq keeps the last), a URL gets its path replaced.
std::string with_database(const std::string& dsn, const std::string& db) {
  if (!dsn.starts_with("postgres://") && !dsn.starts_with("postgresql://"))
    return dsn + " dbname=" + db;
  const auto host_start = dsn.find("://") + 3;
  const auto slash = dsn.find('/', host_start);
  const auto query = dsn.find('?', host_start);
  const std::string head = dsn.substr(0, std::min(slash, query));
  const std::string tail = query == std::string::npos ? "" : dsn.substr(query);
  return head + "/" + db + tail;
}

// One raw sample of VictoriaMetrics's /api/v1/export.
struct Sample {
  std::int64_t t = 0;
  double v = 0;
};
struct Exported {
  std::map<std::string, std::string> labels;
  std::vector<Sample> samples;
};

std::vector<Exported> export_series(std::uint16_t port, const std::string& selector) {
  std::vector<Exported> out;
  const auto [status, body] = get(port, "/api/v1/export?match%5B%5D=" + selector);
  if (status != 200) return out;
  std::istringstream lines(body);
  std::string line;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    const auto doc = json::parse(line).as_object();
    Exported e;
    for (const auto& [k, v] : doc.at("metric").as_object())
      e.labels[std::string(k)] = std::string(v.as_string());
    const auto& values = doc.at("values").as_array();
    const auto& times = doc.at("timestamps").as_array();
    for (std::size_t i = 0; i < values.size() && i < times.size(); ++i)
      e.samples.push_back({times[i].to_number<std::int64_t>(), values[i].to_number<double>()});
    out.push_back(std::move(e));
  }
  return out;
}

// The example rules as vmalert 1.79 can read them: it does not know
// keep_firing_for (Prometheus 2.42 does), and AgentDown's `for: 1m` becomes
// 2s so that the test stays short. Everything else is the file as shipped.
std::string rules_for_vmalert(const std::string& shipped) {
  std::string out;
  std::istringstream in(shipped);
  std::string line;
  bool agent_down = false;
  while (std::getline(in, line)) {
    if (line.find("keep_firing_for:") != std::string::npos) continue;
    if (line.find("- alert:") != std::string::npos)
      agent_down = line.find("AgentDown") != std::string::npos;
    if (agent_down && line.find(" for: 1m") != std::string::npos) line = "        for: 2s";
    out += line + "\n";
  }
  return out;
}

constexpr int kAgents = 4;
constexpr int kPushes = 25;

TEST(ScaleOut, TwoReplicasBehindNginxOnOnePostgresWriteToVictoriaMetricsAndVmalertAlertsOnce) {
  const char* base_dsn = std::getenv("METRICS_TEST_PG_DSN");
  REQUIRE_OR_SKIP(base_dsn != nullptr && *base_dsn != '\0', "METRICS_TEST_PG_DSN is not set");
  for (const char* program : {"/usr/sbin/nginx", "/usr/bin/victoria-metrics", "/usr/bin/vmalert",
                              metrics::rules::testing::kAlertmanager, "/usr/bin/psql"}) {
    REQUIRE_OR_SKIP(access(program, X_OK) == 0, std::string(program) + " is not installed");
  }
  const fs::path dir = fs::temp_directory_path() / ("scale_out_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  for (const char* sub : {"vm", "nginx/tmp", "history1", "history2"})
    fs::create_directories(dir / sub);
  fs::permissions(dir / "nginx/tmp", fs::perms::all);

  // A database of its own (dropped at the end), so that nothing collides
  // with the other PostgreSQL tests.
  const std::string db = "metrics_scale_" + std::to_string(::getpid());
  const std::string admin = "psql -q -v ON_ERROR_STOP=1 '" + std::string(base_dsn) + "' -c ";
  (void)shell(admin + "'DROP DATABASE IF EXISTS " + db + "' >/dev/null 2>&1");
  ASSERT_EQ(shell(admin + "'CREATE DATABASE " + db + "' >/dev/null"), 0);
  struct DropDatabase {
    std::string cmd;
    ~DropDatabase() { (void)shell(cmd); }
  } drop{admin + "'DROP DATABASE IF EXISTS " + db + " WITH (FORCE)' >/dev/null 2>&1"};
  const std::string dsn = with_database(base_dsn, db);

  // Alertmanager, delivering to the test's webhook.
  FakeServer hook;
  hook.set_handler([](const metrics::agent::testing::Request&) {
    return metrics::agent::testing::status_reply(200, "{}");
  });
  AlertmanagerProcess am("http://" + hook.address() + "/hook");

  // VictoriaMetrics: the replicas remote-write into it; it scrapes their
  // liveness series only (agent_up is computed by each replica, never
  // written), without a replica label, so both replicas' answers are one
  // series.
  const std::uint16_t vm_port = free_port();
  const std::uint16_t r1_port = free_port();
  const std::uint16_t r2_port = free_port();
  std::ofstream(dir / "scrape.yml")
      << "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: metrics-server\n"
         "    honor_labels: true\n    static_configs:\n      - targets: ['127.0.0.1:"
      << r1_port << "', '127.0.0.1:" << r2_port
      << "']\n    metric_relabel_configs:\n      - source_labels: [__name__]\n"
         "        regex: agent_up\n        action: keep\n";
  Child vm({"/usr/bin/victoria-metrics", "-storageDataPath=" + (dir / "vm").string(),
            "-httpListenAddr=127.0.0.1:" + std::to_string(vm_port), "-retentionPeriod=100y",
            "-search.latencyOffset=0s", "-promscrape.config=" + (dir / "scrape.yml").string(),
            "-loggerLevel=WARN"},
           dir / "vm.log");

  // The two replicas: one database, each remote-writing its own samples
  // under replica=<name> (--remote-write-label).
  auto replica_args = [&](const std::string& name, const std::string& history) {
    return std::vector<std::string>{"-d",
                                    dsn,
                                    "--history-dir",
                                    (dir / history).string(),
                                    "--stale-after",
                                    "2s",
                                    "--remote-write-url",
                                    "http://127.0.0.1:" + std::to_string(vm_port) + "/api/v1/write",
                                    "--remote-write-label",
                                    "replica=" + name};
  };
  ServerProcess r1(replica_args("r1", "history1"), (dir / "r1.log").string(), r1_port);
  ASSERT_TRUE(r1.wait_ready()) << read_file(dir / "r1.log");  // creates the schema alone
  ServerProcess r2(replica_args("r2", "history2"), (dir / "r2.log").string(), r2_port);
  ASSERT_TRUE(r2.wait_ready()) << read_file(dir / "r2.log");

  // nginx in front, round robin over both, with its own prefix, pid file,
  // logs and temp dirs (never the system's).
  const std::uint16_t lb_port = free_port();
  const std::string t = (dir / "nginx/tmp").string();
  std::ofstream(dir / "nginx/nginx.conf")
      << (geteuid() == 0 ? "user root;\n" : "") << "daemon off;\nworker_processes 1;\npid "
      << (dir / "nginx/nginx.pid").string() << ";\nerror_log " << (dir / "nginx/error.log").string()
      << " warn;\nevents { worker_connections 256; }\nhttp {\n  access_log off;\n"
      << "  client_body_temp_path " << t << "/body;\n  proxy_temp_path " << t
      << "/proxy;\n  fastcgi_temp_path " << t << "/fastcgi;\n  uwsgi_temp_path " << t
      << "/uwsgi;\n  scgi_temp_path " << t << "/scgi;\n"
      << "  upstream metrics_servers {\n    server 127.0.0.1:" << r1_port
      << ";\n    server 127.0.0.1:" << r2_port << ";\n    keepalive 16;\n  }\n"
      << "  server {\n    listen 127.0.0.1:" << lb_port << ";\n    location / {\n"
      << "      proxy_pass http://metrics_servers;\n      proxy_http_version 1.1;\n"
      << "      proxy_set_header Connection \"\";\n    }\n  }\n}\n";
  Child nginx({"/usr/sbin/nginx", "-p", (dir / "nginx").string(), "-c",
               (dir / "nginx/nginx.conf").string(), "-e", (dir / "nginx/error.log").string()},
              dir / "nginx/stderr.log");

  // vmalert over VictoriaMetrics, notifying Alertmanager.
  std::ofstream(dir / "rules.yml") << rules_for_vmalert(read_file(METRICS_EXAMPLE_RULES));
  const std::uint16_t vmalert_port = free_port();
  ASSERT_TRUE(wait_status(vm_port, "/health", 200)) << read_file(dir / "vm.log");
  ASSERT_TRUE(am.wait_ready()) << am.log();
  Child vmalert({"/usr/bin/vmalert", "-rule=" + (dir / "rules.yml").string(),
                 "-datasource.url=http://127.0.0.1:" + std::to_string(vm_port),
                 "-notifier.url=" + am.base(), "-evaluationInterval=1s",
                 "-httpListenAddr=127.0.0.1:" + std::to_string(vmalert_port), "-loggerLevel=WARN"},
                dir / "vmalert.log");
  ASSERT_TRUE(wait_status(lb_port, "/ping", 200)) << read_file(dir / "nginx/error.log");
  ASSERT_TRUE(wait_status(vmalert_port, "/health", 200)) << read_file(dir / "vmalert.log");

  // Agents push through nginx: each its own instance, one request at a
  // time (so the database's totals of its counter are 1, 2, ... in order)
  // and at least a few ms apart (so no two of its samples share a replica's
  // receive millisecond). Every push also adds 1 to one unlabelled counter
  // that all agents share.
  std::vector<std::thread> agents;
  std::atomic<int> failures{0};
  for (int a = 0; a < kAgents; ++a) {
    agents.emplace_back([&, a] {
      try {
        Client c(lb_port);
        for (int i = 1; i <= kPushes; ++i) {
          const std::string body =
              R"({"labels":{"instance":"agent-)" + std::to_string(a) +
              R"(","job":"scale"},"metrics":[{"id":"scale_gauge","type":"gauge","value":)" +
              std::to_string(i) + R"(},{"id":"scale_pushes","type":"counter","delta":1},)" +
              R"({"id":"scale_shared","type":"counter","delta":1,"labels":{"instance":""}}]})";
          if (c.post_json("/updates/", body).result_int() != 200) ++failures;
          std::this_thread::sleep_for(4ms);
        }
      } catch (const std::exception&) {
        ++failures;
      }
    });
  }
  for (auto& th : agents)
    th.join();
  ASSERT_EQ(failures.load(), 0);

  // Agents 1.. keep pushing a heartbeat; agent-0 has stopped for good.
  std::atomic<bool> stop_heartbeat{false};
  std::thread heartbeat([&] {
    while (!stop_heartbeat.load()) {
      for (int a = 1; a < kAgents; ++a) {
        try {
          Client c(lb_port);
          (void)c.post_json("/updates/",
                            R"({"labels":{"instance":"agent-)" + std::to_string(a) +
                                R"(","job":"scale"},"metrics":[)"
                                R"({"id":"scale_heartbeat","type":"gauge","value":1}]})");
        } catch (const std::exception&) {
        }
      }
      std::this_thread::sleep_for(250ms);
    }
  });
  struct Join {
    std::atomic<bool>& stop;
    std::thread& t;
    ~Join() {
      stop = true;
      if (t.joinable()) t.join();
    }
  } join_heartbeat{stop_heartbeat, heartbeat};

  // 1. Counters sum exactly in the shared database, whichever replica answers.
  const std::string total = std::to_string(kAgents * kPushes);
  EXPECT_EQ(get(r1_port, "/value/counter/scale_shared").second, total);
  EXPECT_EQ(get(r2_port, "/value/counter/scale_shared").second, total);
  for (const auto port : {r1_port, r2_port}) {
    const std::string m = get(port, "/metrics").second;
    const std::regex ok(
        R"(metrics_server_requests_total\{endpoint="/updates/",code="200"\} (\d+))");
    std::smatch match;
    ASSERT_TRUE(std::regex_search(m, match, ok)) << "replica on " << port << " got no push";
    EXPECT_GT(std::stoi(match[1].str()), 0);
  }

  // 2. Every acknowledged sample reaches VictoriaMetrics once, under the
  // label of the replica that took it. Per agent: the gauge's values are
  // 1..kPushes, and so are its counter's database totals.
  auto check_series = [&](const std::string& name, bool final_check) {
    const auto series = export_series(vm_port, name + "%7Bjob%3D%22scale%22%7D");
    std::map<std::string, std::multiset<double>> values;  // instance -> values
    std::map<std::string, std::set<std::string>> replicas;
    for (const auto& s : series) {
      const std::string instance = s.labels.count("instance") ? s.labels.at("instance") : "";
      const std::string replica = s.labels.count("replica") ? s.labels.at("replica") : "";
      replicas[instance].insert(replica);
      std::set<std::int64_t> times;
      for (const auto& p : s.samples) {
        values[instance].insert(p.v);
        times.insert(p.t);
      }
      if (final_check) {
        EXPECT_EQ(times.size(), s.samples.size()) << name << " repeats a time";
      }
    }
    bool complete = values.size() == static_cast<std::size_t>(kAgents);
    for (const auto& [instance, vs] : values) {
      std::multiset<double> want;
      for (int i = 1; i <= kPushes; ++i)
        want.insert(i);
      complete = complete && vs == want;
      if (final_check) {
        EXPECT_EQ(vs, want) << name << "{instance=" << instance << "}";
        for (const auto& r : replicas[instance])
          EXPECT_TRUE(r == "r1" || r == "r2") << name << " without its replica label";
      }
    }
    if (final_check) {
      EXPECT_EQ(values.size(), static_cast<std::size_t>(kAgents)) << name;
    }
    return complete;
  };
  EXPECT_TRUE(until([&] { return check_series("scale_gauge", false); }, 20s));
  EXPECT_TRUE(until([&] { return check_series("scale_pushes", false); }, 5s));
  (void)check_series("scale_gauge", true);
  (void)check_series("scale_pushes", true);
  // The shared counter: every push that reached the database is in some
  // replica's samples; the last total is the exact sum.
  double shared_max = 0;
  for (const auto& s : export_series(vm_port, "scale_shared")) {
    EXPECT_TRUE(s.labels.count("replica") == 1) << "scale_shared without its replica label";
    for (const auto& p : s.samples)
      shared_max = std::max(shared_max, p.v);
  }
  EXPECT_EQ(shared_max, static_cast<double>(kAgents * kPushes));

  // 3. AgentDown fires once in Alertmanager: for agent-0 only, one alert,
  // one firing notification.
  auto agent_down_alerts = [&] {
    const auto [status, body] =
        get(static_cast<std::uint16_t>(std::stoi(am.base().substr(am.base().rfind(':') + 1))),
            "/api/v2/alerts?filter=alertname%3D%22AgentDown%22");
    if (status != 200) return json::array{};
    return json::parse(body).as_array();
  };
  EXPECT_TRUE(until([&] { return !agent_down_alerts().empty(); }, 30s))
      << read_file(dir / "vmalert.log");
  std::this_thread::sleep_for(3s);  // a second alert or notification would come by now
  const auto alerts = agent_down_alerts();
  ASSERT_EQ(alerts.size(), 1u) << json::serialize(alerts);
  const auto& labels = alerts[0].at("labels").as_object();
  EXPECT_EQ(labels.at("instance").as_string(), "agent-0");
  EXPECT_EQ(labels.at("job").as_string(), "scale");
  EXPECT_EQ(labels.at("severity").as_string(), "page");
  EXPECT_FALSE(labels.contains("replica"));
  std::size_t firing = 0;
  for (const auto& req : hook.requests()) {
    try {
      const auto v = json::parse(req.body).as_object();
      if (v.at("status").as_string() != "firing") continue;
      for (const auto& a : v.at("alerts").as_array()) {
        if (a.at("labels").at("alertname").as_string() == "AgentDown") ++firing;
      }
    } catch (const std::exception&) {
    }
  }
  EXPECT_EQ(firing, 1u);

  if (!HasFailure()) {
    std::error_code ignored;
    fs::remove_all(dir, ignored);
  }
}

}  // namespace
}  // namespace metrics::testing
