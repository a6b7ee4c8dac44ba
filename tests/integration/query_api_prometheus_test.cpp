// The Prometheus HTTP API of metrics-server against the real Prometheus 2.42:
// samples pushed to the server (POST /updates/) are read back raw through
// the server's own /api/v1/query (a range selector) and written to
// Prometheus by remote write 1.0, then the same requests (instant and range
// queries, series, labels, label values, errors; Grafana's form POSTs and
// vmalert's POST with URL parameters) must get the same answers (parsed
// JSON; instant vectors as sets; for errors status and errorType).
// Fails when Prometheus is missing and CI=true; skips locally.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <snappy.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <boost/json.hpp>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "process_support.hpp"

namespace {

namespace json = boost::json;
constexpr const char* kPrometheus = "/usr/bin/prometheus";

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

struct HttpResult {
  long status = 0;
  std::string body;
};

HttpResult http(const std::string& url, const std::string* post_body = nullptr,
                const std::vector<std::string>& headers = {}) {
  HttpResult r;
  CURL* c = curl_easy_init();
  curl_slist* list = nullptr;
  for (const auto& h : headers)
    list = curl_slist_append(list, h.c_str());
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 30L);
  curl_easy_setopt(c, CURLOPT_NOPROXY, "*");
  if (post_body != nullptr) {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, post_body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(post_body->size()));
  }
  if (list != nullptr) curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
  if (curl_easy_perform(c) == CURLE_OK) curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(list);
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

// --- remote write 1.0 (prometheus.WriteRequest) -------------------------------
void varint(std::string& out, std::uint64_t v) {
  while (v >= 0x80) {
    out += static_cast<char>((v & 0x7f) | 0x80);
    v >>= 7;
  }
  out += static_cast<char>(v);
}
void bytes_field(std::string& out, int field, std::string_view b) {
  varint(out, static_cast<std::uint64_t>(field << 3 | 2));
  varint(out, b.size());
  out.append(b);
}

// A matrix result's series as a WriteRequest.
std::string write_request(const json::array& matrix) {
  std::string req;
  for (const auto& s : matrix) {
    std::string ts;
    for (const auto& [k, v] : s.at("metric").as_object()) {
      std::string label;
      bytes_field(label, 1, k);
      bytes_field(label, 2, v.as_string());
      bytes_field(ts, 1, label);
    }
    for (const auto& p : s.at("values").as_array()) {
      std::string sample;
      varint(sample, 1 << 3 | 1);
      const double v = std::strtod(p.as_array()[1].as_string().c_str(), nullptr);
      const auto bits = std::bit_cast<std::uint64_t>(v);
      for (int i = 0; i < 8; ++i)
        sample += static_cast<char>((bits >> (8 * i)) & 0xff);
      varint(sample, 2 << 3 | 0);
      const double t = p.as_array()[0].to_number<double>();
      varint(sample, static_cast<std::uint64_t>(std::llround(t * 1000)));
      bytes_field(ts, 2, sample);
    }
    bytes_field(req, 1, ts);
  }
  return req;
}

class PrometheusProcess {
 public:
  PrometheusProcess() {
    char tmpl[] = "/tmp/query-api-prom-XXXXXX";
    dir_ = mkdtemp(tmpl);
    std::ofstream(dir_ / "prometheus.yml") << "global:\n  scrape_interval: 15s\n";
    port_ = metrics::testing::free_port();
    const std::string log = (dir_ / "prometheus.log").string();
    pid_ = fork();
    if (pid_ == 0) {
      FILE* f = std::freopen(log.c_str(), "w", stdout);
      (void)f;
      dup2(fileno(stdout), 2);
      const std::string config = "--config.file=" + (dir_ / "prometheus.yml").string();
      const std::string data = "--storage.tsdb.path=" + (dir_ / "data").string();
      const std::string listen = "--web.listen-address=127.0.0.1:" + std::to_string(port_);
      execl(kPrometheus, kPrometheus, config.c_str(), data.c_str(), listen.c_str(),
            "--web.enable-remote-write-receiver", static_cast<char*>(nullptr));
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
  bool wait_ready() const {
    for (int i = 0; i < 300; ++i) {
      if (http(base() + "/-/ready").status == 200) return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return false;
  }
  [[nodiscard]] std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

// Instant vectors compare as sets: sorted by their serialized metric.
json::value normalise(json::value v) {
  if (!v.is_object()) return v;
  auto& o = v.as_object();
  if (auto* data = o.if_contains("data"); data != nullptr && data->is_object()) {
    auto& d = data->as_object();
    if (d.contains("resultType") && d.at("resultType") == "vector") {
      auto& r = d.at("result").as_array();
      std::sort(r.begin(), r.end(), [](const json::value& a, const json::value& b) {
        return json::serialize(a.at("metric")) < json::serialize(b.at("metric"));
      });
    }
  }
  o.erase("warnings");
  return v;
}

class QueryApiVsPrometheus : public ::testing::Test {
 protected:
  void SetUp() override {
    if (access(kPrometheus, X_OK) != 0) {
      const char* ci = std::getenv("CI");
      if (ci != nullptr && std::string(ci) == "true") FAIL() << kPrometheus << " is missing";
      GTEST_SKIP() << kPrometheus << " is missing";
    }
  }
};

TEST_F(QueryApiVsPrometheus, SameAnswers) {
  PrometheusProcess prom;
  metrics::testing::ServerProcess server({"-f", ""});
  ASSERT_TRUE(server.wait_ready());
  ASSERT_TRUE(prom.wait_ready());
  const std::string ours = "http://127.0.0.1:" + std::to_string(server.port());

  // Pushes: two instances, a counter (with a reset) and a gauge.
  for (int i = 0; i < 30; ++i) {
    for (const char* inst : {"a", "b"}) {
      const int delta = i == 15 && inst[0] == 'a' ? -200 : (i % 5) + 1 + (inst[0] == 'b' ? 3 : 0);
      const std::string body =
          std::string(R"({"labels":{"instance":")") + inst +
          R"(","job":"api"},"metrics":[{"id":"api_requests","type":"counter","delta":)" +
          std::to_string(delta) + R"(},{"id":"api_temp","type":"gauge","value":)" +
          std::to_string(20 + (i * 7 % 11) * 0.25) + "}]}";
      auto r = http(ours + "/updates/", &body, {"Content-Type: application/json"});
      ASSERT_EQ(r.status, 200) << r.body;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(30));
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the history sink

  const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::system_clock::now().time_since_epoch())
                          .count();
  const double now_s = static_cast<double>(now_ms) / 1000.0;
  const std::string at = std::to_string(now_s);
  auto raw =
      http(ours + "/api/v1/query?query=" + escape(R"({__name__=~"api_.*"}[10m])") + "&time=" + at);
  ASSERT_EQ(raw.status, 200) << raw.body;
  const auto matrix = json::parse(raw.body).at("data").at("result").as_array();
  ASSERT_EQ(matrix.size(), 4u);
  std::string compressed;
  const std::string req = write_request(matrix);
  snappy::Compress(req.data(), req.size(), &compressed);
  auto w = http(prom.base() + "/api/v1/write", &compressed,
                {"Content-Type: application/x-protobuf", "Content-Encoding: snappy",
                 "X-Prometheus-Remote-Write-Version: 0.1.0"});
  ASSERT_EQ(w.status, 204) << w.body;

  const double first = matrix[0].at("values").as_array()[0].as_array()[0].to_number<double>();
  const std::string start = std::to_string(first - 1), end = std::to_string(now_s);
  const std::vector<std::string> gets = {
      "/api/v1/query?query=api_requests&time=" + at,
      "/api/v1/query?query=" + escape("rate(api_requests[1m])") + "&time=" + at,
      "/api/v1/query?query=" + escape("sum by (instance) (api_temp)") + "&time=" + at,
      "/api/v1/query?query=" + escape("resets(api_requests[5m])") + "&time=" + at,
      "/api/v1/query?query=" + escape("api_temp > 21") + "&time=" + at + "&step=15",
      "/api/v1/query?query=" + escape("max_over_time(api_temp[1m])") + "&time=" + at,
      "/api/v1/query?query=nothing_here&time=" + at,
      "/api/v1/query?query=" + escape("sum(") + "&time=" + at,
      "/api/v1/query?query=api_temp&time=yesterday",
      "/api/v1/query_range?query=api_temp&start=" + start + "&end=" + end + "&step=0.25",
      "/api/v1/query_range?query=" + escape("increase(api_requests[2s])") + "&start=" + start +
          "&end=" + end + "&step=0.5",
      "/api/v1/query_range?query=api_temp&start=" + end + "&end=" + start + "&step=1",
      "/api/v1/query_range?query=api_temp&start=" + start + "&end=" + end + "&step=0",
      "/api/v1/query_range?query=api_temp&start=0&end=1000000&step=1",
      "/api/v1/query_range?query=" + escape("api_temp[1m]") + "&start=" + start + "&end=" + end +
          "&step=1",
      "/api/v1/series?match[]=api_requests",
      "/api/v1/series?match[]=" + escape(R"({__name__=~"api_.*",instance="b"})") +
          "&start=" + start + "&end=" + end,
      "/api/v1/series",
      "/api/v1/series?match[]=" + escape(R"({job=~".*"})"),
      "/api/v1/labels?match[]=api_temp",
      "/api/v1/label/__name__/values?match[]=" + escape(R"({__name__=~"api_.*"})"),
      "/api/v1/label/instance/values?match[]=api_temp&start=" + start + "&end=" + end,
      "/api/v1/label/job/values?match[]=api_requests",
      "/api/v1/rules",
      "/api/v1/alerts",
  };
  auto compare = [&](const std::string& what, const HttpResult& a, const HttpResult& b) {
    EXPECT_EQ(a.status, b.status) << what << "\nours: " << a.body << "\nprom: " << b.body;
    auto ja = normalise(json::parse(a.body)), jb = normalise(json::parse(b.body));
    if (jb.as_object().at("status") == "error") {
      EXPECT_EQ(ja.as_object().at("errorType"), jb.as_object().at("errorType")) << what;
    } else {
      EXPECT_EQ(ja, jb) << what << "\nours: " << a.body << "\nprom: " << b.body;
    }
  };
  for (const auto& g : gets)
    compare(g, http(ours + g), http(prom.base() + g));

  // Grafana: form-encoded POSTs; vmalert: URL parameters, an empty JSON body.
  const std::vector<std::pair<std::string, std::string>> posts = {
      {"/api/v1/query", "query=" + escape("sum(api_temp)") + "&time=" + at},
      {"/api/v1/query_range",
       "query=" + escape("rate(api_requests[5s])") + "&start=" + start + "&end=" + end + "&step=1"},
      {"/api/v1/series", "match[]=api_temp&start=" + start + "&end=" + end},
      {"/api/v1/labels", "match[]=api_requests&start=" + start + "&end=" + end},
  };
  for (const auto& [path, form] : posts) {
    compare(path + " POST " + form,
            http(ours + path, &form, {"Content-Type: application/x-www-form-urlencoded"}),
            http(prom.base() + path, &form, {"Content-Type: application/x-www-form-urlencoded"}));
  }
  const std::string empty;
  const std::string vmalert =
      "/api/v1/query?query=" + escape("sum(api_temp) > 0") + "&time=" + at + "&step=60s";
  compare("vmalert", http(ours + vmalert, &empty, {"Content-Type: application/json"}),
          http(prom.base() + vmalert, &empty, {"Content-Type: application/json"}));

  // buildinfo: the same shape, the version Grafana reads.
  auto bi = json::parse(http(ours + "/api/v1/status/buildinfo").body);
  auto pbi = json::parse(http(prom.base() + "/api/v1/status/buildinfo").body);
  for (const auto& [k, v] : pbi.at("data").as_object())
    EXPECT_TRUE(bi.at("data").as_object().contains(k)) << k;
  // Debian's build says 2.42.0+ds.
  EXPECT_TRUE(std::string(pbi.at("data").at("version").as_string())
                  .starts_with(std::string(bi.at("data").at("version").as_string())));
  // metadata: Prometheus knows none without scrapes; ours knows the types.
  auto md = json::parse(http(ours + "/api/v1/metadata").body);
  EXPECT_EQ(md.at("data").at("api_requests").as_array()[0].at("type"), "counter");
}

}  // namespace
