// The encoder against the real thing: a Prometheus 2.42 (Debian's package)
// started on a loopback port with its own data folder and
// --web.enable-remote-write-receiver accepts what append_series and
// snappy_compress produce, with the four headers, and its query API then
// returns the values sent, bit for bit as Prometheus prints them. Skips only
// when no prometheus binary was found at configure time.
#include <curl/curl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "metrics/exposition/remote_write.hpp"
#include "metrics/exposition/snappy_block.hpp"

namespace metrics::exposition {
namespace {

std::uint16_t free_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  // NOLINTNEXTLINE(cppcoreguidelines-pro-type-reinterpret-cast): the sockets API
  (void)::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  (void)::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

struct Response {
  long status = 0;
  std::string body;
};

std::size_t collect(char* data, std::size_t size, std::size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// One request with libcurl; status 0 when the connection failed.
Response http(const std::string& url, const std::string* post = nullptr) {
  Response r;
  CURL* curl = curl_easy_init();
  curl_slist* headers = nullptr;
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, collect);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 10L);
  if (post != nullptr) {
    headers = curl_slist_append(headers, "Content-Encoding: snappy");
    headers = curl_slist_append(headers, "Content-Type: application/x-protobuf");
    headers = curl_slist_append(headers, "X-Prometheus-Remote-Write-Version: 0.1.0");
    headers = curl_slist_append(headers, "User-Agent: metrics-exposition-test");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, post->data());
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE, static_cast<long>(post->size()));
  }
  if (curl_easy_perform(curl) == CURLE_OK) {
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &r.status);
  }
  curl_slist_free_all(headers);
  curl_easy_cleanup(curl);
  return r;
}

class PrometheusReceiver : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::string binary = METRICS_PROMETHEUS;
    if (binary.empty()) GTEST_SKIP() << "prometheus not found at configure time";
    dir_ = std::filesystem::temp_directory_path() /
           ("exposition_prometheus_" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_ / "data");
    std::ofstream(dir_ / "prometheus.yml") << "global:\n  scrape_interval: 1h\n";
    port_ = free_port();
    const std::vector<std::string> args{binary,
                                        "--config.file=" + (dir_ / "prometheus.yml").string(),
                                        "--storage.tsdb.path=" + (dir_ / "data").string(),
                                        "--web.listen-address=127.0.0.1:" + std::to_string(port_),
                                        "--web.enable-remote-write-receiver",
                                        "--log.level=warn"};
    pid_ = ::fork();
    if (pid_ == 0) {
      std::vector<char*> argv;
      for (const auto& a : args)
        argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    // Readiness, not timing: poll /-/ready until Prometheus has opened its
    // TSDB (a few seconds), giving up after a minute.
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(1);
    while (http(base() + "/-/ready").status != 200) {
      ASSERT_LT(std::chrono::steady_clock::now(), deadline) << "prometheus did not become ready";
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }
  void TearDown() override {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      ::waitpid(pid_, nullptr, 0);
    }
    std::error_code ignored;
    if (!dir_.empty()) std::filesystem::remove_all(dir_, ignored);
  }
  [[nodiscard]] std::string base() const { return "http://127.0.0.1:" + std::to_string(port_); }

  std::filesystem::path dir_;
  std::uint16_t port_ = 0;
  pid_t pid_ = -1;
};

TEST_F(PrometheusReceiver, AcceptsTheEncodersRequestsAndReturnsTheValues) {
  const std::int64_t t0 = 1'700'000'000'000;
  std::string body;
  append_metadata(
      body, {static_cast<std::uint32_t>(MetadataType::gauge), "rw_test_gauge", "A gauge.", ""});
  append_series(body, "rw_test_gauge",
                core::Labels::make({{"Zone", "eu"}, {"job", "j"}, {"path", "/a \"b\"\n\\"}}),
                std::array{Sample{1.5, t0}, Sample{-0.25, t0 + 1000}});
  append_series(body, "rw_test_total", core::Labels::make({{"job", "j"}}),
                std::array{Sample{9007199254740993.0, t0}, Sample{1e300, t0 + 1000}});
  const std::string wire = snappy_compress(body);
  const Response posted = http(base() + "/api/v1/write", &wire);
  ASSERT_EQ(posted.status, 204) << posted.body;

  const Response g = http(base() + "/api/v1/query?query=rw_test_gauge&time=1700000001");
  EXPECT_EQ(g.status, 200) << g.body;
  EXPECT_EQ(g.body,
            "{\"status\":\"success\",\"data\":{\"resultType\":\"vector\",\"result\":[{\"metric\":{"
            "\"Zone\":\"eu\",\"__name__\":\"rw_test_gauge\",\"job\":\"j\",\"path\":\"/a "
            "\\\"b\\\"\\n\\\\\"},\"value\":[1700000001,\"-0.25\"]}]}}");
  const Response c = http(base() + "/api/v1/query?query=rw_test_total&time=1700000000");
  EXPECT_NE(c.body.find("\"value\":[1700000000,\"9007199254740992\"]"), std::string::npos)
      << c.body;
  const Response c2 = http(base() + "/api/v1/query?query=rw_test_total&time=1700000001");
  EXPECT_NE(c2.body.find("\"value\":[1700000001,\"1e+300\"]"), std::string::npos) << c2.body;

  // A body that is not snappy is refused with 400.
  const std::string junk = "not snappy at all";
  EXPECT_EQ(http(base() + "/api/v1/write", &junk).status, 400);
}

}  // namespace
}  // namespace metrics::exposition
