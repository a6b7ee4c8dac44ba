// Compares the engine with the real Prometheus 2.42: starts /usr/bin/prometheus
// on a free loopback port with its own data folder, writes the same samples
// to it (remote write 1.0: a hand-rolled protobuf WriteRequest, snappy block
// format) and to a MemoryQueryable, runs a corpus of instant and range
// queries against both and requires the same `data` (parsed JSON, values
// compared as their strings) or the same errorType.
#include <arpa/inet.h>
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <snappy.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <bit>
#include <boost/json.hpp>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "metrics/query/engine.hpp"
#include "metrics/query/json.hpp"

namespace {

namespace q = metrics::query;
namespace json = boost::json;

constexpr const char* kPrometheus = "/usr/bin/prometheus";

// --- a tiny protobuf encoder for prometheus.WriteRequest ---------------------
void varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void tag(std::string& out, int field, int wire) {
  varint(out, static_cast<std::uint64_t>(field << 3 | wire));
}
void bytes_field(std::string& out, int field, std::string_view b) {
  tag(out, field, 2);
  varint(out, b.size());
  out.append(b);
}

struct TestSeries {
  q::LabelSet labels;
  std::vector<q::SamplePoint> samples;
};

std::string encode_write_request(const std::vector<TestSeries>& series) {
  std::string req;
  for (const auto& s : series) {
    std::string ts;
    for (const auto& l : s.labels) {
      std::string label;
      bytes_field(label, 1, l.name);
      bytes_field(label, 2, l.value);
      bytes_field(ts, 1, label);
    }
    for (const auto& p : s.samples) {
      std::string sample;
      tag(sample, 1, 1);  // double, fixed64
      auto bits = std::bit_cast<std::uint64_t>(p.v);
      for (int i = 0; i < 8; ++i)
        sample += static_cast<char>((bits >> (8 * i)) & 0xff);
      tag(sample, 2, 0);
      varint(sample, static_cast<std::uint64_t>(p.t));
      bytes_field(ts, 2, sample);
    }
    bytes_field(req, 1, ts);
  }
  return req;
}

// --- HTTP via libcurl ----------------------------------------------------------
std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct HttpResult {
  long status = 0;
  std::string body;
};

HttpResult http(const std::string& url, const std::string* post_body = nullptr,
                curl_slist* headers = nullptr) {
  HttpResult r;
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  if (post_body != nullptr) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(post_body->size()));
  }
  if (headers != nullptr) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_easy_cleanup(c);
  return r;
}

std::string escape(const std::string& s) {
  CURL* c = curl_easy_init();
  char* e = curl_easy_escape(c, s.c_str(), static_cast<int>(s.size()));
  std::string out(e);
  curl_free(e);
  curl_easy_cleanup(c);
  return out;
}

int free_port() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  int port = ntohs(addr.sin_port);
  close(fd);
  return port;
}

// --- the Prometheus process ------------------------------------------------------
class PrometheusProcess {
 public:
  PrometheusProcess() {
    char tmpl[] = "/tmp/query-prom-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(dir_ / "prometheus.yml") << "global:\n  scrape_interval: 15s\n";
    port_ = free_port();
    std::string log = (dir_ / "prometheus.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::freopen(log.c_str(), "w", stdout);
      (void)f;
      dup2(fileno(stdout), 2);
      std::string config = "--config.file=" + (dir_ / "prometheus.yml").string();
      std::string data = "--storage.tsdb.path=" + (dir_ / "data").string();
      std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
      execl(kPrometheus, kPrometheus, config.c_str(), data.c_str(), listen.c_str(),
            "--web.enable-remote-write-receiver", "--query.lookback-delta=5m",
            static_cast<char*>(nullptr));
      _exit(127);
    }
  }
  ~PrometheusProcess() {
    if (pid_ > 0) {
      kill(pid_, SIGTERM);
      int status = 0;
      for (int i = 0; i < 100; ++i) {
        if (waitpid(pid_, &status, WNOHANG) == pid_) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        if (i == 99) {
          kill(pid_, SIGKILL);
          waitpid(pid_, &status, 0);
        }
      }
    }
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  bool wait_ready() {
    for (int i = 0; i < 300; ++i) {
      if (http(base() + "/-/ready").status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::string log() const {
    std::ifstream f(dir_ / "prometheus.log");
    return std::string(std::istreambuf_iterator<char>(f), {});
  }

 private:
  std::filesystem::path dir_;
  int port_ = 0;
  pid_t pid_ = -1;
};

// --- the samples ----------------------------------------------------------------
constexpr double kStale = std::bit_cast<double>(0x7ff0000000000002ULL);
const double kGoNaN = std::bit_cast<double>(0x7ff8000000000001ULL);

std::vector<TestSeries> make_series(std::int64_t base) {
  std::vector<TestSeries> out;
  auto labels = [](std::vector<metrics::core::Label> l) { return q::make_labels(std::move(l)); };
  std::uint64_t rng = 42;
  auto rnd = [&] {
    rng = rng * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<double>(rng >> 11) / 9007199254740992.0;
  };
  constexpr int kSteps = 180;  // 45 minutes at 15 s
  // Counters, one with a reset, one with a gap longer than the lookback.
  const char* instances[] = {"a", "b", "c"};
  const char* jobs[] = {"api", "api", "web"};
  for (int s = 0; s < 3; ++s) {
    TestSeries ts{
        labels({{"__name__", "test_requests_total"}, {"job", jobs[s]}, {"instance", instances[s]}}),
        {}};
    double v = 10.0 * s;
    std::int64_t jitter = 1234 * (s + 1);
    for (int i = 0; i < kSteps; ++i) {
      if (s == 2 && i >= 80 && i < 110) continue;  // 7.5 minutes without samples
      if (s == 0 && i == 90) v = 3;                // counter reset
      v += std::floor(rnd() * 20) + (s == 1 ? 0.5 : 0);
      ts.samples.push_back({base + i * 15000 + jitter, v});
    }
    out.push_back(std::move(ts));
  }
  // Gauges: fractional values, a NaN, a stale marker, an Inf.
  for (int s = 0; s < 3; ++s) {
    TestSeries ts{
        labels({{"__name__", "test_gauge"}, {"job", jobs[s]}, {"instance", instances[s]}}), {}};
    for (int i = 0; i < kSteps; ++i) {
      double v = 50 + 30 * std::sin(i / 10.0 + s) + rnd();
      if (s == 1 && i == 120) v = kGoNaN;
      if (s == 2 && i == 100) v = kStale;
      if (s == 2 && i == 60) v = std::numeric_limits<double>::infinity();
      ts.samples.push_back({base + i * 15000 + 500 * s, v});
    }
    out.push_back(std::move(ts));
  }
  // Info series for group_left, ratios for one-to-many, ties for topk.
  const char* versions[] = {"1.0", "2.0", "1.0"};
  for (int s = 0; s < 3; ++s) {
    TestSeries ts{labels({{"__name__", "test_info"},
                          {"job", jobs[s]},
                          {"instance", instances[s]},
                          {"version", versions[s]}}),
                  {}};
    for (int i = 0; i < kSteps; ++i)
      ts.samples.push_back({base + i * 15000 + 100, 1});
    out.push_back(std::move(ts));
  }
  for (const char* job : {"api", "web"}) {
    TestSeries ts{labels({{"__name__", "test_ratio"}, {"job", job}}), {}};
    for (int i = 0; i < kSteps; ++i) {
      ts.samples.push_back({base + i * 15000 + 200, job[0] == 'a' ? 0.25 : 4});
    }
    out.push_back(std::move(ts));
  }
  for (int id = 1; id <= 5; ++id) {
    TestSeries ts{labels({{"__name__", "test_tie"}, {"id", std::to_string(id)}}), {}};
    for (int i = 0; i < kSteps; ++i) {
      ts.samples.push_back({base + i * 15000 + 300, id == 3 ? 7.0 : 5.0});
    }
    out.push_back(std::move(ts));
  }
  // A label clash: same labels but the name, for matching errors.
  {
    TestSeries ts{labels({{"__name__", "test_gauge_copy"}, {"job", "api"}, {"instance", "a"}}), {}};
    for (int i = 0; i < kSteps; ++i)
      ts.samples.push_back({base + i * 15000 + 700, i * 0.1});
    out.push_back(std::move(ts));
  }
  return out;
}

// --- comparing -----------------------------------------------------------------
std::string time_param(std::int64_t ms) {
  return q::format_timestamp(ms);
}

json::value normalize(json::value data, bool keep_order) {
  auto& obj = data.as_object();
  std::string type(obj["resultType"].as_string());
  if ((type == "vector" && !keep_order) || type == "matrix") {
    auto& arr = obj["result"].as_array();
    std::vector<json::value> items(arr.begin(), arr.end());
    std::sort(items.begin(), items.end(), [](const json::value& a, const json::value& b) {
      return json::serialize(a.at("metric")) < json::serialize(b.at("metric"));
    });
    arr = json::array(items.begin(), items.end());
  }
  return data;
}

struct Case {
  std::string query;
  bool range;
};

// The store as the server's history answers it: select_newest gives only
// each series' newest sample in the range, so every instant selector the
// engine reads at one time is checked against Prometheus on that path.
class NewestOnly final : public q::Queryable {
 public:
  explicit NewestOnly(const q::Queryable& all) : all_(all) {}
  std::vector<q::SeriesData> select(std::span<const q::Matcher> m, std::int64_t mint,
                                    std::int64_t maxt) const override {
    return all_.select(m, mint, maxt);
  }
  std::vector<q::SeriesData> select_newest(std::span<const q::Matcher> m, std::int64_t mint,
                                           std::int64_t maxt) const override {
    auto out = all_.select(m, mint, maxt);
    for (auto& s : out)
      if (!s.samples.empty()) s.samples.erase(s.samples.begin(), s.samples.end() - 1);
    return out;
  }

 private:
  const q::Queryable& all_;
};

class PrometheusCompat : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    ASSERT_EQ(access(kPrometheus, X_OK), 0) << kPrometheus << " is not installed";
    curl_global_init(CURL_GLOBAL_DEFAULT);
    prom_ = new PrometheusProcess();
    ASSERT_TRUE(prom_->wait_ready()) << prom_->log();
    auto now = std::chrono::duration_cast<std::chrono::milliseconds>(
                   std::chrono::system_clock::now().time_since_epoch())
                   .count();
    base_ = (now / 60000) * 60000 - 50 * 60000;
    auto series = make_series(base_);
    store_ = new q::MemoryQueryable();
    for (const auto& s : series) {
      for (const auto& p : s.samples)
        store_->add(s.labels, p.t, p.v);
    }
    std::string body = encode_write_request(series);
    std::string compressed;
    snappy::Compress(body.data(), body.size(), &compressed);
    curl_slist* h = nullptr;
    h = curl_slist_append(h, "Content-Encoding: snappy");
    h = curl_slist_append(h, "Content-Type: application/x-protobuf");
    h = curl_slist_append(h, "X-Prometheus-Remote-Write-Version: 0.1.0");
    HttpResult r = http(prom_->base() + "/api/v1/write", &compressed, h);
    curl_slist_free_all(h);
    ASSERT_EQ(r.status, 204) << r.body << prom_->log();
    loaded_ = true;
  }
  void SetUp() override { ASSERT_TRUE(loaded_) << "Prometheus did not start or take the samples"; }
  static void TearDownTestSuite() {
    delete prom_;
    delete store_;
    prom_ = nullptr;
    store_ = nullptr;
  }

  // Runs one query against both; returns a failure description or "".
  static std::string compare(const std::string& query, bool range, std::int64_t t,
                             std::int64_t start, std::int64_t end, std::int64_t step,
                             bool* succeeded = nullptr) {
    std::string url = prom_->base() + (range ? "/api/v1/query_range" : "/api/v1/query") +
                      "?query=" + escape(query);
    if (range) {
      url +=
          "&start=" + time_param(start) + "&end=" + time_param(end) + "&step=" + time_param(step);
    } else {
      url += "&time=" + time_param(t);
    }
    HttpResult r = http(url);
    json::value theirs = json::parse(r.body);
    q::Engine engine;
    std::string ours_data;
    std::string ours_error;
    try {
      const NewestOnly view(*store_);
      q::Result res =
          range ? engine.range(view, query, start, end, step) : engine.instant(view, query, t);
      ours_data = q::encode_data(res);
    } catch (const q::QueryError& e) {
      ours_error = std::string(q::error_type_name(e.type())) + ": " + e.what();
    }
    const auto& obj = theirs.as_object();
    if (succeeded != nullptr) *succeeded = obj.at("status").as_string() == "success";
    if (obj.at("status").as_string() != "success") {
      std::string type(obj.at("errorType").as_string());
      if (ours_error.rfind(type + ":", 0) == 0) return "";
      return "prometheus: " + r.body + "\nours: " + (ours_error.empty() ? ours_data : ours_error);
    }
    if (!ours_error.empty()) return "prometheus: " + r.body + "\nours: " + ours_error;
    // Prometheus keeps the evaluation order of an instant vector; sort, topk
    // and bottomk define it (the rest is compared as a set).
    bool keep_order = query.rfind("sort", 0) == 0 || query.rfind("topk", 0) == 0 ||
                      query.rfind("bottomk", 0) == 0;
    json::value a = normalize(obj.at("data"), keep_order);
    json::value b = normalize(json::parse(ours_data), keep_order);
    if (a == b) return "";
    return "prometheus: " + json::serialize(a) + "\nours:       " + json::serialize(b);
  }

  static PrometheusProcess* prom_;
  static q::MemoryQueryable* store_;
  static std::int64_t base_;
  static bool loaded_;
};

PrometheusProcess* PrometheusCompat::prom_ = nullptr;
q::MemoryQueryable* PrometheusCompat::store_ = nullptr;
std::int64_t PrometheusCompat::base_ = 0;
bool PrometheusCompat::loaded_ = false;

const std::vector<std::string> kQueries = {
    // selectors, lookback, staleness
    "test_requests_total",
    "test_gauge",
    "{__name__=\"test_gauge\", job=\"api\"}",
    "test_gauge{job=~\"a.*\"}",
    "test_gauge{job!~\"a.*\"}",
    "test_gauge{instance!=\"a\"}",
    "test_gauge{job=~\"ap\"}",
    "{__name__=~\"test_.*\", job=\"web\"}",
    "nonexistent_metric",
    "test_gauge offset 5m",
    "test_gauge offset -2m",
    "test_requests_total[2m]",
    "test_gauge[1m] offset 3m",
    // numbers, strings, scalars
    "1",
    "0x1F",
    "-2.5e3",
    "Inf",
    "-Inf",
    "NaN",
    "\"a string\"",
    "1 + 2 * 3 ^ 2 ^ 2",
    "2 ^ -2",
    "(-8) ^ 3",
    "4 ^ 0.5",
    "2 ^ 3 ^ 2",
    "-2 ^ 2",
    "10 % 3",
    "5 > bool 3",
    "time()",
    // rate family
    "rate(test_requests_total[5m])",
    "rate(test_requests_total[1m])",
    "rate(test_requests_total[10m] offset 1m)",
    "increase(test_requests_total[5m])",
    "increase(test_requests_total[15m])",
    "delta(test_gauge[5m])",
    "irate(test_requests_total[5m])",
    "idelta(test_gauge[5m])",
    "deriv(test_gauge[10m])",
    "predict_linear(test_gauge[10m], 600)",
    "resets(test_requests_total[30m])",
    "changes(test_gauge[10m])",
    // over time
    "avg_over_time(test_gauge[10m])",
    "min_over_time(test_gauge[10m])",
    "max_over_time(test_gauge[10m])",
    "sum_over_time(test_gauge[10m])",
    "count_over_time(test_gauge[10m])",
    "last_over_time(test_gauge[10m])",
    "stddev_over_time(test_gauge[10m])",
    "quantile_over_time(0.9, test_gauge[10m])",
    "quantile_over_time(0.5, test_requests_total[20m])",
    "absent_over_time(test_gauge[1m])",
    "absent_over_time(nonexistent{job=\"x\", a=~\"b\"}[5m])",
    "absent(nonexistent{job=\"x\", instance=\"y\"})",
    "absent(nonexistent{job=\"x\", job=\"z\"})",
    "absent(test_gauge)",
    "absent(sum(nonexistent))",
    // math
    "abs(test_gauge - 60)",
    "ceil(test_gauge)",
    "floor(test_gauge)",
    "round(test_gauge)",
    "round(test_gauge, 0.3)",
    "clamp(test_gauge, 40, 60)",
    "clamp(test_gauge, 60, 40)",
    "clamp_min(test_gauge, 55)",
    "clamp_max(test_gauge, 55)",
    "timestamp(test_gauge)",
    "timestamp(sum(test_gauge))",
    "vector(3)",
    "scalar(test_ratio)",
    "scalar(test_ratio{job=\"api\"})",
    "test_gauge * scalar(test_ratio{job=\"api\"})",
    "vector(time())",
    // labels
    "label_replace(test_gauge, \"dst\", \"x-$1-${2}\", \"instance\", \"(.)(.*)\")",
    "label_replace(test_gauge, \"job\", \"\", \"job\", \"api\")",
    "label_replace(test_gauge, \"dst\", \"$1\", \"instance\", \"z(.*)\")",
    "label_join(test_gauge, \"joined\", \"/\", \"job\", \"instance\")",
    "label_join(test_gauge, \"job\", \",\")",
    "sort(test_gauge)",
    "sort_desc(test_gauge)",
    "sort(rate(test_requests_total[5m]))",
    // aggregations
    "sum(test_gauge)",
    "sum by (job) (test_gauge)",
    "sum(test_gauge) by (job)",
    "sum without (instance) (test_gauge)",
    "avg(test_gauge)",
    "avg by (job) (test_gauge)",
    "min(test_gauge)",
    "max by (job) (test_gauge)",
    "count(test_gauge)",
    "count by (version) (test_info)",
    "stddev(test_gauge)",
    "stddev by (job) (test_gauge)",
    "topk(2, test_gauge)",
    "bottomk(2, test_gauge)",
    "topk(3, test_tie)",
    "bottomk(3, test_tie)",
    "topk by (job) (1, test_gauge)",
    "topk(1, test_tie)",
    "bottomk(1, test_tie)",
    "quantile(0.5, test_gauge)",
    "quantile by (job) (0.75, test_gauge)",
    "count_values(\"value\", test_tie)",
    "count_values without (id) (\"v\", test_tie)",
    "group(test_gauge)",
    "group by (job) (test_gauge)",
    "sum by (__name__) ({__name__=~\"test_.*\"})",
    "sum by (job) (rate(test_requests_total[5m]))",
    "topk(0, test_gauge)",
    // binary operators and matching
    "test_gauge + 1",
    "2 * test_gauge",
    "test_gauge / 0",
    "-test_gauge",
    "test_gauge % 7",
    "test_gauge ^ 2",
    "2 ^ test_ratio",
    "test_gauge > 50",
    "test_gauge > bool 50",
    "50 < test_gauge",
    "test_gauge == test_gauge",
    "test_gauge != bool test_gauge",
    "test_gauge >= 40 <= 70",
    "test_gauge - test_gauge_copy",
    "test_gauge - on(job, instance) test_gauge_copy",
    "test_gauge - ignoring(foo) test_gauge_copy",
    "test_gauge * on(job, instance) group_left(version) test_info",
    "test_info * on(job, instance) group_right test_gauge",
    "test_gauge * on(job) group_left test_ratio",
    "test_ratio * on(job) group_right test_gauge",
    "test_gauge * on(job) test_ratio",
    "test_gauge + on(job) group_left test_gauge",
    "test_gauge and test_gauge_copy",
    "test_gauge and on(job) test_ratio",
    "test_gauge or test_gauge_copy",
    "test_ratio or test_gauge",
    "test_gauge unless test_gauge_copy",
    "test_gauge unless on(job) test_ratio{job=\"web\"}",
    "nonexistent or test_ratio",
    "test_gauge > on(job, instance) test_gauge_copy",
    "test_gauge == bool on(job, instance) test_gauge_copy",
    "sum(test_gauge) by (job) / on(job) sum(test_requests_total) by (job)",
    // @ and subqueries
    "test_gauge @ end()",
    "test_gauge @ start()",
    "rate(test_requests_total[5m] @ end())",
    "max_over_time(rate(test_requests_total[1m])[10m:1m])",
    "max_over_time(test_gauge[10m:])",
    "avg_over_time(test_gauge[7m:45s] offset 2m)",
    "rate(test_requests_total[5m:30s])",
    "test_gauge[5m:1m]",
    "sum(test_gauge)[6m:2m]",
    "deriv(sum(test_gauge)[10m:1m])",
    // errors
    "sum(",
    "rate(test_gauge)",
    "test_gauge[5m] + 1",
    "foo(test_gauge)",
    "1 > 2",
    "test_gauge and 1",
    "{job=~\".*\"}",
    "test_gauge{__name__=\"x\"}",
    "5m",
    "test_gauge[5m:1m:1m]",
    "sum(test_gauge) offset 5m",
    "test_gauge * on(job) test_gauge",
    "test_gauge + on(job) test_ratio",
    "test_ratio + on(job) group_right test_gauge",
    "label_replace(test_gauge, \"x\", \"y\", \"job\", \"(\")",
    "label_replace(test_gauge, \"1x\", \"y\", \"job\", \".*\")",
    "count_values(\"1bad\", test_gauge)",
    "label_replace(test_gauge, \"instance\", \"same\", \"job\", \".*\")",
    // more edge cases
    "+test_gauge",
    "- -test_gauge",
    "-(test_gauge)",
    "max_over_time(test_gauge[1h30m])",
    "increase(test_requests_total[1h])",
    "changes(test_requests_total[1h])",
    "time() - timestamp(test_gauge)",
    "topk(2.7, test_gauge)",
    "quantile(2, test_gauge)",
    "quantile(-1, test_gauge)",
    "sum(test_gauge{instance=\"c\"})",
    "max(test_gauge{instance=\"c\"} or test_ratio)",
    "count_values(\"v\", test_gauge > 1000 or test_ratio)",
    "topk(1, test_gauge{instance=\"b\"})",
    "sort_desc(test_tie)",
    "sort(test_tie)",
    "rate(test_requests_total[5m])[30m:1m]",
    "min_over_time(rate(test_requests_total[2m])[20m:])",
    "test_gauge offset 1h",
    "absent(nonexistent{job=\"x\"} offset 5m)",
    "round(test_gauge, -2)",
    "round(test_gauge, 0.1)",
    "test_gauge / on(job, instance) group_left test_gauge_copy",
    "sum by (job) (test_gauge) > on(job) group_left sum by (job) (test_requests_total) / 1e5",
    "test_info{version=\"1.0\"} and on(instance) test_gauge > 50",
    "test_tie == bool 5",
    "test_tie == 5",
    "5 == test_tie",
    "5 == bool test_tie",
    "test_gauge == NaN",
    "test_gauge != NaN",
    "count(test_gauge) by (job) + count(test_gauge) without (instance)",
    "sum without (job, instance) (test_info)",
    "group without (version) (test_info)",
    "stddev_over_time(test_ratio[5m])",
    "deriv(test_ratio[5m])",
    "predict_linear(test_ratio[5m], 60)",
    "deriv(test_gauge{instance=\"c\"}[10m])",
    "rate(test_gauge{instance=\"c\"}[10m])",
    "label_join(test_gauge, \"x\", \"-\", \"nope\")",
    "count by (__name__) ({__name__=~\".+\"})",
    "label_replace(test_ratio, \"__name__\", \"renamed_$1\", \"job\", \"(.*)\")",
    "label_replace(test_gauge, \"__name__\", \"same\", \"job\", \".*\")",
    "{__name__=~\"test_(ratio|tie)\"}",
    "vector(1) + vector(2)",
    "test_gauge * 1e18",
    "test_gauge * 1e19",
    "test_gauge / 1e9",
    "test_gauge * 1e300",
    "count_values(\"v\", test_gauge * 1e17)",
    "count_values(\"v\", test_gauge / 1e8)",
    "count_values(\"v\", test_gauge)",
    "vector(123456789012345678)",
    "vector(1) * on() group_left test_ratio",
};

// Queries Prometheus answers and the subset deliberately rejects: a bad_data
// error that names what is not supported.
const std::vector<std::string> kUnsupported = {
    "histogram_quantile(0.9, test_gauge)",
    "holt_winters(test_gauge[5m], 0.5, 0.5)",
    "stdvar(test_gauge)",
    "sqrt(test_gauge)",
    "test_gauge atan2 test_gauge",
};

TEST_F(PrometheusCompat, InstantQueriesMatch) {
  // Inside the data, in the counter's 7.5-minute gap, and just after the gauge's stale marker.
  std::int64_t times[] = {base_ + 40 * 60000 + 7000, base_ + 33 * 60000, base_ + 27 * 60000 + 500,
                          base_ + 25 * 60000 + 5000};
  int failures = 0;
  for (const auto& query : kQueries) {
    for (std::int64_t t : times) {
      std::string diff = compare(query, false, t, 0, 0, 0);
      if (!diff.empty()) {
        ++failures;
        ADD_FAILURE() << "instant query " << query << " at " << t << "\n" << diff;
        break;
      }
    }
  }
  EXPECT_EQ(failures, 0);
}

TEST_F(PrometheusCompat, AtModifierWithFixedTimesMatches) {
  std::string at = q::format_timestamp(base_ + 30 * 60000 + 250);
  std::vector<std::string> queries = {"test_gauge @ " + at,
                                      "rate(test_requests_total[5m] @ " + at + ")",
                                      "test_gauge @ " + at + " offset 2m",
                                      "max_over_time(test_gauge[10m:1m] @ " + at + ")",
                                      "sum(test_gauge @ " + at + ") - sum(test_gauge)",
                                      "timestamp(test_gauge @ " + at + ")",
                                      "timestamp(test_gauge offset 5m)",
                                      "timestamp(test_gauge @ " + at + " offset 1m)",
                                      "test_requests_total[2m] @ " + at,
                                      "test_gauge[3m:1m] @ " + at + " offset 30s"};
  for (const auto& query : queries) {
    EXPECT_EQ(compare(query, false, base_ + 40 * 60000, 0, 0, 0), "") << query;
    EXPECT_EQ(compare(query, true, 0, base_ + 20 * 60000, base_ + 44 * 60000, 90000), "") << query;
  }
}

TEST_F(PrometheusCompat, UnsupportedFeaturesAreNamed) {
  q::Engine engine;
  for (const auto& query : kUnsupported) {
    std::string url = prom_->base() + "/api/v1/query?query=" + escape(query) +
                      "&time=" + time_param(base_ + 40 * 60000);
    json::value theirs = json::parse(http(url).body);
    EXPECT_EQ(theirs.at("status").as_string(), "success") << query;
    try {
      (void)engine.instant(*store_, query, base_ + 40 * 60000);
      ADD_FAILURE() << query << " was accepted";
    } catch (const q::QueryError& e) {
      EXPECT_EQ(e.type(), q::ErrorType::bad_data);
      EXPECT_NE(std::string(e.what()).find("not supported"), std::string::npos) << e.what();
    }
  }
}

// Random queries from a small grammar over the test series (fixed seed, so a
// failure reproduces). Instant queries only: in a range query Prometheus
// orders nested results by Go map iteration, so an order-sensitive sum can
// differ in the last bit between two of its own runs.
class QueryGenerator {
 public:
  // range_mode: aggregations only over selectors and functions of them,
  // whose order Prometheus keeps from step to step.
  explicit QueryGenerator(std::uint64_t seed, bool range_mode = false)
      : rng_(seed), range_mode_(range_mode) {}

  // Inside a subquery, and under an aggregation or sort, Prometheus 2.42's
  // series order comes from Go map iteration: those combinations are not
  // generated (an order-sensitive sum would differ between its own runs).
  std::string vector(int depth, bool allow_subquery = true) {
    if (depth <= 0) return selector();
    std::size_t kind = pick(14);
    if (kind == 9 && !allow_subquery) kind = 1;
    switch (kind) {
      case 0:
        return selector();
      case 1: {
        static const char* fns[] = {"rate",
                                    "increase",
                                    "delta",
                                    "irate",
                                    "idelta",
                                    "deriv",
                                    "resets",
                                    "changes",
                                    "avg_over_time",
                                    "min_over_time",
                                    "max_over_time",
                                    "sum_over_time",
                                    "count_over_time",
                                    "last_over_time",
                                    "stddev_over_time"};
        static const char* ranges[] = {"1m", "2m", "5m", "10m"};
        std::string f = fns[pick(std::size(fns))];
        return f + "(" + range_selector(ranges[pick(std::size(ranges))]) + ")";
      }
      case 2: {
        static const char* ops[] = {"sum", "avg", "min", "max", "count", "stddev", "group"};
        return std::string(ops[pick(std::size(ops))]) + grouping() + "(" + aggregated(depth - 1) +
               ")";
      }
      case 3: {
        static const char* ops[] = {"topk", "bottomk"};
        return std::string(ops[pick(2)]) + grouping() + "(" + std::to_string(1 + pick(3)) + ", " +
               aggregated(depth - 1) + ")";
      }
      case 4: {
        static const char* qs[] = {"0", "0.25", "0.5", "0.9", "1"};
        return "quantile" + grouping() + "(" + qs[pick(std::size(qs))] + ", " +
               aggregated(depth - 1) + ")";
      }
      case 5: {
        static const char* ops[] = {"+",  "-",  "*",       "/",      "%",   ">",  "<",     "==",
                                    "!=", ">=", "<= bool", "> bool", "and", "or", "unless"};
        static const char* matching[] = {"",
                                         "",
                                         " on(job, instance)",
                                         " ignoring(version)",
                                         " on(job)",
                                         " on(instance) group_left",
                                         " on(job) group_left(instance)"};
        std::string op = ops[pick(std::size(ops))];
        std::string m = matching[pick(std::size(matching))];
        bool set_op = op == "and" || op == "or" || op == "unless";
        if (set_op && m.find("group_") != std::string::npos) m = "";
        return "(" + vector(depth - 1, allow_subquery) + " " + op + m + " " +
               vector(depth - 1, allow_subquery) + ")";
      }
      case 6: {
        static const char* ops[] = {"+", "-", "*", "/", "^", ">", "<", "== bool", "%"};
        std::string sc = scalar();
        std::string op = ops[pick(std::size(ops))];
        if (pick(2) == 0)
          return "(" + vector(depth - 1, allow_subquery) + " " + op + " " + sc + ")";
        return "(" + sc + " " + op + " " + vector(depth - 1, allow_subquery) + ")";
      }
      case 7: {
        static const char* fns[] = {"abs",       "ceil", "floor",     "round", "-",
                                    "timestamp", "sort", "sort_desc", "absent"};
        std::string f = fns[pick(std::size(fns))];
        bool sorts = f.rfind("sort", 0) == 0;
        return f + "(" + vector(depth - 1, allow_subquery && !sorts) + ")";
      }
      case 8: {
        static const char* fns[] = {"clamp_min", "clamp_max", "round"};
        return std::string(fns[pick(std::size(fns))]) + "(" + vector(depth - 1, allow_subquery) +
               ", " + scalar() + ")";
      }
      case 9: {
        static const char* fns[] = {"max_over_time", "avg_over_time", "rate", "deriv",
                                    "quantile_over_time(0.5, "};
        std::string f = fns[pick(std::size(fns))];
        if (f.back() != ' ') f += "(";
        static const char* sq[] = {"[5m:1m]", "[10m:]", "[3m:30s]", "[7m:45s] offset 1m"};
        return f + subquery_inner(depth - 1) + sq[pick(std::size(sq))] + ")";
      }
      case 10:
        return "label_replace(" + vector(depth - 1, allow_subquery) +
               ", \"dst\", \"v-$1\", \"instance\", \"(.*)\")";
      case 11: {
        static const char* fns[] = {"predict_linear(%[10m], 300)",
                                    "quantile_over_time(0.3, %[5m])",
                                    "absent_over_time(%[1m])",
                                    "label_join(%, \"j\", \"-\", \"job\", \"instance\")",
                                    "count_values(\"v\", round(%))",
                                    "vector(scalar(%))",
                                    "% @ end()",
                                    "%[2m] @ start()",
                                    "absent(%)"};
        std::string f = fns[pick(std::size(fns))];
        std::size_t at = f.find('%');
        if (f.compare(at, 2, "%[") == 0) {
          std::size_t close = f.find(']', at);
          return f.replace(at, close - at + 1, range_selector(f.substr(at + 2, close - at - 2)));
        }
        return f.replace(at, 1, selector());
      }
      case 12: {
        static const char* m[] = {" on(job) group_right", " ignoring(version) group_left",
                                  " on(job, instance) group_left(version)"};
        static const char* ops[] = {"*", "+", "> bool", "=="};
        return "(" + vector(depth - 1, allow_subquery) + " " + ops[pick(std::size(ops))] +
               m[pick(std::size(m))] + " " + vector(depth - 1, allow_subquery) + ")";
      }
      default: {
        static const char* ops[] = {"unless on(job)", "and ignoring(instance)", "or on(instance)"};
        return "(" + vector(depth - 1, allow_subquery) + " " + ops[pick(std::size(ops))] + " " +
               vector(depth - 1, allow_subquery) + ")";
      }
    }
  }

 private:
  std::string aggregated(int depth) {
    if (!range_mode_) return vector(depth, false);
    // Selectors and range functions of selectors: Prometheus evaluates
    // these series by series in storage order.
    switch (depth <= 0 ? 0 : pick(3)) {
      case 0:
        return selector();
      case 1:
        return "rate(" + range_selector("2m") + ")";
      default:
        return "max_over_time(" + range_selector("5m") + ")";
    }
  }
  // What a subquery may hold: selectors and functions over them, whose
  // order Prometheus keeps.
  std::string subquery_inner(int depth) {
    switch (depth <= 0 ? 0 : pick(3)) {
      case 0:
        return selector();
      case 1:
        return "rate(" + range_selector("2m") + ")";
      default:
        return "clamp_min(" + selector() + ", 40)";
    }
  }
  std::size_t pick(std::size_t n) {
    rng_ = rng_ * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::size_t>((rng_ >> 33) % n);
  }
  std::string selector() {
    static const char* names[] = {"test_gauge", "test_requests_total", "test_info", "test_ratio",
                                  "test_tie",   "test_gauge_copy"};
    static const char* matchers[] = {
        "", "{job=\"api\"}", "{instance=~\"a|b\"}", "{job!=\"api\"}", " offset 1m", " offset 7m"};
    return std::string(names[pick(std::size(names))]) + matchers[pick(std::size(matchers))];
  }
  // A range selector, its offset (if any) after the range.
  std::string range_selector(const std::string& range) {
    std::string sel = selector();
    std::size_t off = sel.find(" offset");
    if (off == std::string::npos) return sel + "[" + range + "]";
    return sel.substr(0, off) + "[" + range + "]" + sel.substr(off);
  }
  std::string grouping() {
    static const char* g[] = {"", " by (job)", " without (instance)", " by (instance, version)",
                              " without (job)"};
    return g[pick(std::size(g))];
  }
  std::string scalar() {
    static const char* s[] = {"2",
                              "0.5",
                              "-1",
                              "10",
                              "scalar(test_ratio{job=\"api\"})",
                              "time()",
                              "0",
                              "scalar(sum(test_tie))",
                              "(2 * 3 - 1)",
                              "-Inf",
                              "NaN"};
    return s[pick(std::size(s))];
  }
  std::uint64_t rng_;
  bool range_mode_;
};

TEST_F(PrometheusCompat, RandomInstantQueriesMatch) {
  // QUERY_RANDOM_SEED and QUERY_RANDOM_COUNT explore further by hand.
  const char* seed = std::getenv("QUERY_RANDOM_SEED");
  const char* count = std::getenv("QUERY_RANDOM_COUNT");
  QueryGenerator gen(seed != nullptr ? std::strtoull(seed, nullptr, 10) : 20261202);
  int n = count != nullptr ? std::atoi(count) : 600;
  std::int64_t times[] = {base_ + 40 * 60000 + 7000, base_ + 25 * 60000 + 5000};
  int failures = 0;
  int answered = 0;
  for (int i = 0; i < n && failures < 10; ++i) {
    std::string query = gen.vector(3);
    for (std::int64_t t : times) {
      bool ok = false;
      std::string diff = compare(query, false, t, 0, 0, 0, &ok);
      answered += ok ? 1 : 0;
      if (!diff.empty()) {
        ++failures;
        ADD_FAILURE() << "instant query " << query << " at " << t << "\n" << diff;
        break;
      }
    }
  }
  EXPECT_EQ(failures, 0);
  // Most generated queries must evaluate, not just fail alike.
  EXPECT_GT(answered, n) << answered << " of " << 2 * n << " evaluations succeeded";
}

TEST_F(PrometheusCompat, RandomRangeQueriesMatch) {
  const char* seed = std::getenv("QUERY_RANDOM_SEED");
  const char* count = std::getenv("QUERY_RANDOM_COUNT");
  QueryGenerator gen(seed != nullptr ? std::strtoull(seed, nullptr, 10) : 4242, true);
  int n = count != nullptr ? std::atoi(count) : 300;
  int failures = 0;
  int answered = 0;
  for (int i = 0; i < n && failures < 10; ++i) {
    std::string query = gen.vector(3);
    bool ok = false;
    std::string diff =
        compare(query, true, 0, base_ + 20 * 60000 + 300, base_ + 35 * 60000, 37000, &ok);
    answered += ok ? 1 : 0;
    if (!diff.empty()) {
      ++failures;
      ADD_FAILURE() << "range query " << query << "\n" << diff;
    }
  }
  EXPECT_EQ(failures, 0);
  EXPECT_GT(answered, n / 2) << answered << " of " << n << " range queries succeeded";
}

TEST_F(PrometheusCompat, RangeQueriesMatch) {
  struct Range {
    std::int64_t start, end, step;
  };
  Range ranges[] = {{base_ + 10 * 60000, base_ + 44 * 60000, 60000},
                    {base_ + 20 * 60000 + 300, base_ + 35 * 60000, 37000},
                    {base_ + 24 * 60000 + 59000, base_ + 26 * 60000, 4000}};
  int failures = 0;
  for (const auto& query : kQueries) {
    for (const auto& r : ranges) {
      std::string diff = compare(query, true, 0, r.start, r.end, r.step);
      if (!diff.empty()) {
        ++failures;
        ADD_FAILURE() << "range query " << query << "\n" << diff;
        break;
      }
    }
  }
  EXPECT_EQ(failures, 0);
}

}  // namespace
