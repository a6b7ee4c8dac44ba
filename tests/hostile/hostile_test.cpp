// Hostile input against the real metrics-server binary over raw loopback
// sockets: broken and explosive gzip, oversized bodies and headers, deep
// JSON, invalid UTF-8, non-finite and overflowing numbers, garbage request
// lines, slow and half-open clients, pipelined junk, invalid labels and
// envelopes, floods of new series past the limits.
//
// For each attack: a 4xx answer or a closed connection, nothing of it stored
// (the HTML page of every metric is unchanged), and afterwards the server
// still answers /ping with 200 quickly. Every loop is bounded in count and
// time; only 127.0.0.1 is used.
#include <arpa/inet.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <memory>
#include <optional>
#include <sstream>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "metrics/core/gzip.hpp"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

constexpr std::size_t kMaxBody = 65536;
constexpr std::size_t kMaxHeader = 8192;

// The server under test, started once for the suite.
class ServerProcess {
 public:
  ServerProcess() {
    log_path_ = std::filesystem::temp_directory_path() /
                ("hostile_test_" + std::to_string(::getpid()) + ".log");
    const std::vector<std::string> args{
        METRICS_SERVER_BINARY, "-a", "127.0.0.1:0", "-f", "", "--history-dir", "",
        "--max-body-bytes", std::to_string(kMaxBody), "--max-header-bytes",
        std::to_string(kMaxHeader), "--read-timeout", "1s", "--threads", "2",
        // Small series limits, so that a flood of
        // new series meets them.
        "--max-series", "1000", "--max-series-per-instance", "100", "--access-log=false"};
    std::vector<char*> argv;
    for (const auto& a : args)
      argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, 1, log_path_.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                     0644);
    posix_spawn_file_actions_adddup2(&actions, 1, 2);
    const int rc = ::posix_spawn(&pid_, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) throw std::runtime_error("cannot start " + args[0]);
    // The server logs "listening on ... (port N)" once it accepts.
    const auto deadline = Clock::now() + 20s;
    while (Clock::now() < deadline && port_ == 0 && alive()) {
      std::ifstream in(log_path_);
      std::stringstream text;
      text << in.rdbuf();
      const auto log = text.str();
      if (auto at = log.find("(port "); at != std::string::npos) {
        port_ = static_cast<std::uint16_t>(std::strtoul(log.c_str() + at + 6, nullptr, 10));
      }
      if (port_ == 0) std::this_thread::sleep_for(20ms);
    }
    if (port_ == 0) throw std::runtime_error("metrics-server did not start: " + log());
  }
  ~ServerProcess() {
    if (pid_ > 0) {
      ::kill(pid_, SIGTERM);
      int status = 0;
      const auto deadline = Clock::now() + 10s;
      while (::waitpid(pid_, &status, WNOHANG) == 0) {
        if (Clock::now() > deadline) {
          ::kill(pid_, SIGKILL);
          ::waitpid(pid_, &status, 0);
          break;
        }
        std::this_thread::sleep_for(10ms);
      }
    }
    std::error_code ignored;
    std::filesystem::remove(log_path_, ignored);
  }
  ServerProcess(const ServerProcess&) = delete;
  ServerProcess& operator=(const ServerProcess&) = delete;

  [[nodiscard]] std::uint16_t port() const { return port_; }
  [[nodiscard]] bool alive() const {
    int status = 0;
    return ::waitpid(pid_, &status, WNOHANG) == 0;
  }
  [[nodiscard]] std::string log() const {
    std::ifstream in(log_path_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  pid_t pid_ = -1;
  std::uint16_t port_ = 0;
  std::filesystem::path log_path_;
};

struct Answer {
  int status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
};

// A raw TCP connection to 127.0.0.1 with deadline-bounded reads.
class Conn {
 public:
  explicit Conn(std::uint16_t port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd_ < 0) throw std::runtime_error("socket: " + std::string(std::strerror(errno)));
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd_, reinterpret_cast<const sockaddr*>(&addr), sizeof addr) != 0) {
      const std::string err = std::strerror(errno);
      ::close(fd_);
      throw std::runtime_error("connect: " + err);
    }
    const int one = 1;
    ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Conn() {
    if (fd_ >= 0) ::close(fd_);
  }
  Conn(const Conn&) = delete;
  Conn& operator=(const Conn&) = delete;

  // False when the peer has closed or reset the connection.
  bool send(std::string_view data, std::chrono::milliseconds timeout = 5000ms) {
    const auto deadline = Clock::now() + timeout;
    while (!data.empty()) {
      if (!wait(POLLOUT, deadline)) return false;
      const auto n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return false;
      }
      data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
  }

  // The next answer, or nullopt when the connection closes (or the
  // deadline passes) first.
  std::optional<Answer> read_answer(std::chrono::milliseconds timeout = 5000ms) {
    const auto deadline = Clock::now() + timeout;
    std::size_t head_end = std::string::npos;
    while ((head_end = buffer_.find("\r\n\r\n")) == std::string::npos) {
      if (!fill(deadline)) return std::nullopt;
    }
    Answer a;
    const std::string head = buffer_.substr(0, head_end);
    if (head.size() < 12 || !head.starts_with("HTTP/1.")) return std::nullopt;
    a.status = std::atoi(head.c_str() + 9);
    std::size_t pos = head.find("\r\n");
    while (pos != std::string::npos && pos < head.size()) {
      const auto next = head.find("\r\n", pos + 2);
      const auto line =
          head.substr(pos + 2, next == std::string::npos ? std::string::npos : next - pos - 2);
      if (const auto colon = line.find(':'); colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (auto& c : name)
          c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        auto value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ')
          value.erase(0, 1);
        a.headers[name] = value;
      }
      pos = next;
    }
    const std::size_t length = a.headers.contains("content-length")
                                   ? std::strtoull(a.headers["content-length"].c_str(), nullptr, 10)
                                   : 0;
    while (buffer_.size() < head_end + 4 + length) {
      if (!fill(deadline)) return std::nullopt;
    }
    a.body = buffer_.substr(head_end + 4, length);
    buffer_.erase(0, head_end + 4 + length);
    return a;
  }

  // True when the server closes (or resets) the connection before the
  // deadline; whatever it sends first is discarded.
  bool closed_within(std::chrono::milliseconds timeout) {
    const auto deadline = Clock::now() + timeout;
    for (;;) {
      if (!wait(POLLIN, deadline)) return false;
      char buf[4096];
      const auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n == 0) return true;
      if (n < 0 && errno != EINTR && errno != EAGAIN) return true;
    }
  }

  [[nodiscard]] int fd() const { return fd_; }

 private:
  // False at end of stream, on an error or at the deadline.
  bool fill(Clock::time_point deadline) {
    if (!wait(POLLIN, deadline)) return false;
    char buf[16384];
    const auto n = ::recv(fd_, buf, sizeof buf, 0);
    if (n <= 0) return false;
    buffer_.append(buf, static_cast<std::size_t>(n));
    return true;
  }

  bool wait(short events, Clock::time_point deadline) {
    for (;;) {
      const auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, events, 0};
      const int rc = ::poll(&p, 1, static_cast<int>(left));
      if (rc > 0) return true;
      if (rc < 0 && errno != EINTR) return false;
    }
  }

  int fd_ = -1;
  std::string buffer_;
};

std::string request(std::string_view method, std::string_view target, std::string_view body = {},
                    std::vector<std::string> headers = {}) {
  std::string out;
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\nHost: 127.0.0.1\r\n");
  for (const auto& h : headers)
    out.append(h).append("\r\n");
  if (!body.empty() || method == "POST") {
    out += "Content-Length: " + std::to_string(body.size()) + "\r\n";
  }
  out += "\r\n";
  out.append(body);
  return out;
}

const std::string kJson = "Content-Type: application/json";

class Hostile : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // A client that writes to a connection the server closed must not die.
    ::signal(SIGPIPE, SIG_IGN);
    server_ = std::make_unique<ServerProcess>();
  }
  static void TearDownTestSuite() { server_.reset(); }

  void SetUp() override {
    ASSERT_TRUE(server_ && server_->alive());
    page_before_ = page();
  }

  // After every attack: the server lives and answers /ping fast.
  void TearDown() override {
    ASSERT_TRUE(server_->alive()) << server_->log();
    const auto started = Clock::now();
    auto a = call(request("GET", "/ping"));
    ASSERT_TRUE(a.has_value()) << "no answer to /ping after the attack";
    EXPECT_EQ(a->status, 200);
    EXPECT_LT(Clock::now() - started, 1s);
  }

  static std::uint16_t port() { return server_->port(); }

  // One request on a fresh connection.
  static std::optional<Answer> call(const std::string& raw,
                                    std::chrono::milliseconds timeout = 5000ms) {
    Conn c(port());
    if (!c.send(raw, timeout)) return std::nullopt;
    return c.read_answer(timeout);
  }

  // The HTML page of every stored metric: equal before and after an attack
  // means nothing was stored.
  static std::string page() {
    auto a = call(request("GET", "/"));
    EXPECT_TRUE(a.has_value());
    EXPECT_EQ(a ? a->status : 0, 200);
    return a ? a->body : std::string();
  }

  void expect_nothing_stored() {
    EXPECT_EQ(page(), page_before_) << "a rejected request stored data";
  }

  // A 4xx answer (`want` when given), or the connection closed without one
  // (a server may reset a connection whose request it refuses mid-upload).
  static void expect_4xx_or_closed(Conn& c, std::optional<int> want = std::nullopt,
                                   std::chrono::milliseconds timeout = 5000ms) {
    if (auto a = c.read_answer(timeout)) {
      EXPECT_GE(a->status, 400) << a->body;
      EXPECT_LT(a->status, 500) << a->body;
      if (want) {
        EXPECT_EQ(a->status, *want) << a->body;
      }
      EXPECT_FALSE(a->body.empty());
    } else {
      // read_answer gives up on close or at the deadline; tell them apart.
      EXPECT_TRUE(c.closed_within(100ms)) << "neither an answer nor a close";
    }
  }

  static void expect_status(const std::string& raw, int status) {
    auto a = call(raw);
    ASSERT_TRUE(a.has_value()) << "no answer to: " << raw.substr(0, 120);
    EXPECT_EQ(a->status, status) << raw.substr(0, 120) << "\n" << a->body;
  }

  // A series that must not exist: POST /value/ with its labels is 404.
  static void expect_no_series(const std::string& id, const std::string& labels) {
    auto a = call(request("POST", "/value/",
                          R"({"id":")" + id + R"(","type":"counter","labels":)" + labels + "}",
                          {kJson}));
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->status, 404) << id << " " << labels.substr(0, 80) << "\n" << a->body;
  }

  static std::unique_ptr<ServerProcess> server_;
  std::string page_before_;
};

std::unique_ptr<ServerProcess> Hostile::server_;

TEST_F(Hostile, BrokenGzipIs400) {
  const auto packed =
      metrics::core::gzip_compress(R"([{"id":"hostile_gzip","type":"counter","delta":1}])");
  expect_status(request("POST", "/updates/", packed.substr(0, packed.size() - 6),
                        {kJson, "Content-Encoding: gzip"}),
                400);
  std::string flipped = packed;
  flipped[flipped.size() / 2] = static_cast<char>(flipped[flipped.size() / 2] ^ 0x55);
  Conn c(port());
  ASSERT_TRUE(c.send(request("POST", "/updates/", flipped, {kJson, "Content-Encoding: gzip"})));
  expect_4xx_or_closed(c);
  expect_status(request("POST", "/update/gauge/hostile_gzip/1", "\x1f\x8b\x08junk",
                        {"Content-Encoding: gzip"}),
                400);
  expect_nothing_stored();
}

TEST_F(Hostile, GzipBombStopsAtTheLimit) {
  // 16 MiB of valid JSON that deflates to a few KiB, well under the body limit.
  std::string plain = R"([{"id":"hostile_bomb","type":"counter","delta":1})";
  plain.append(std::size_t{16} << 20, ' ');
  plain += "]";
  const auto packed = metrics::core::gzip_compress(plain, 9);
  ASSERT_LT(packed.size(), kMaxBody);
  const auto started = Clock::now();
  expect_status(request("POST", "/updates/", packed, {kJson, "Content-Encoding: gzip"}), 413);
  EXPECT_LT(Clock::now() - started, 3s);
  expect_nothing_stored();
}

TEST_F(Hostile, OversizedBody) {
  const std::string body =
      R"([{"id":"hostile_big","type":"counter","delta":1})" + std::string(kMaxBody, ' ') + "]";
  Conn c(port());
  c.send(request("POST", "/updates/", body, {kJson}));  // may fail once the server closes
  expect_4xx_or_closed(c, 413);
  expect_nothing_stored();
}

TEST_F(Hostile, OversizedHeader) {
  Conn c(port());
  c.send(
      request("POST", "/update/counter/hostile_hdr/1", "", {"X-Big: " + std::string(9000, 'a')}));
  expect_4xx_or_closed(c, 431);
  expect_nothing_stored();
}

TEST_F(Hostile, ThousandHeaderFields) {
  std::vector<std::string> fields;
  for (int i = 0; i < 1000; ++i)
    fields.push_back("X-Field-" + std::to_string(i) + ": value");
  Conn c(port());
  c.send(request("POST", "/update/counter/hostile_fields/1", "", fields));
  expect_4xx_or_closed(c, 431);
  expect_nothing_stored();
}

TEST_F(Hostile, DeepJson) {
  expect_status(request("POST", "/updates/", std::string(100'000 / 2, '['), {kJson}), 400);
  expect_status(
      request("POST", "/updates/", std::string(30'000, '[') + std::string(30'000, ']'), {kJson}),
      400);
  expect_status(request("POST", "/update/",
                        R"({"id":"hostile_deep","type":"counter","delta":1,"x":)" +
                            std::string(20'000, '[') + std::string(20'000, ']') + "}",
                        {kJson}),
                400);
  expect_nothing_stored();
}

TEST_F(Hostile, DeepJsonOf100kBrackets) {
  // 100k brackets are more than the 64 KiB limit: refused either way.
  Conn c(port());
  c.send(request("POST", "/updates/", std::string(100'000, '['), {kJson}));
  expect_4xx_or_closed(c, 413);
  expect_nothing_stored();
}

TEST_F(Hostile, InvalidUtf8) {
  expect_status(request("POST", "/update/gauge/%FF%FE/1"), 400);
  expect_status(request("POST", "/update/gauge/%C0%AF/1"), 400);
  expect_status(request("POST", "/update/gauge/%ED%A0%80/1"), 400);  // a UTF-16 surrogate
  expect_status(request("POST", "/update/gauge/ab\xff/1"), 400);
  expect_status(
      request("POST", "/update/", "{\"id\":\"bad\xff\",\"type\":\"gauge\",\"value\":1}", {kJson}),
      400);
  expect_status(request("POST", "/updates/",
                        "[{\"id\":\"ok\",\"type\":\"gauge\",\"value\":1},"
                        "{\"id\":\"\xc3\x28\",\"type\":\"gauge\",\"value\":1}]",
                        {kJson}),
                400);
  expect_status(request("POST", "/update/", R"({"id":"\ud800","type":"gauge","value":1})", {kJson}),
                400);
  expect_nothing_stored();
}

TEST_F(Hostile, NonFiniteAndOutOfRangeGauges) {
  for (const char* v :
       {"NaN", "nan", "Inf", "-Inf", "inf", "Infinity", "1e400", "-1e400", "0x1p3", "1e", "--1"}) {
    expect_status(request("POST", std::string("/update/gauge/hostile_nan/") + v), 400);
  }
  for (const char* v : {"NaN", "Infinity", "-Infinity", "1e400", "\"1\"", "null"}) {
    expect_status(
        request("POST", "/update/",
                std::string(R"({"id":"hostile_nan","type":"gauge","value":)") + v + "}", {kJson}),
        400);
  }
  expect_status(request("POST", "/updates/",
                        R"([{"id":"hostile_nan","type":"gauge","value":1e999}])", {kJson}),
                400);
  expect_nothing_stored();
}

TEST_F(Hostile, Int64Overflow) {
  expect_status(request("POST", "/update/counter/hostile_ovf/9223372036854775808"), 400);
  expect_status(request("POST", "/update/counter/hostile_ovf/-9223372036854775809"), 400);
  expect_status(
      request("POST", "/update/",
              R"({"id":"hostile_ovf","type":"counter","delta":9223372036854775808})", {kJson}),
      400);
  expect_status(request("POST", "/updates/",
                        R"([{"id":"hostile_ovf","type":"counter","delta":9223372036854775807},)"
                        R"({"id":"hostile_ovf","type":"counter","delta":1}])",
                        {kJson}),
                400);
  expect_nothing_stored();
  // A stored total that would overflow: the addition is refused, the total kept.
  expect_status(request("POST", "/update/counter/hostile_ovf_sum/9223372036854775807"), 200);
  expect_status(request("POST", "/update/counter/hostile_ovf_sum/1"), 400);
  expect_status(request("POST", "/updates/",
                        R"([{"id":"hostile_ovf_other","type":"counter","delta":1},)"
                        R"({"id":"hostile_ovf_sum","type":"counter","delta":1}])",
                        {kJson}),
                400);
  auto a = call(request("GET", "/value/counter/hostile_ovf_sum"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->body, "9223372036854775807");
  expect_status(request("GET", "/value/counter/hostile_ovf_other"), 404);
}

TEST_F(Hostile, UnknownContentEncoding) {
  expect_status(request("POST", "/updates/", R"([{"id":"hostile_enc","type":"counter","delta":1}])",
                        {kJson, "Content-Encoding: br"}),
                415);
  expect_status(request("POST", "/update/counter/hostile_enc/1", "x", {"Content-Encoding: zstd"}),
                415);
  expect_nothing_stored();
}

TEST_F(Hostile, BinaryGarbageRequestLine) {
  std::string junk;
  std::uint32_t x = 12345;
  for (int i = 0; i < 4096; ++i) {
    x = x * 1103515245 + 12345;
    junk.push_back(static_cast<char>(x >> 24));
  }
  for (const std::string& raw :
       {junk, std::string("\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", 11),
        std::string("GARBAGE\r\n\r\n"), std::string("GET\r\n\r\n"),
        std::string("GET / HTTP/9.9\r\n\r\n"), std::string("\r\n\r\n\r\n\r\n"),
        std::string("POST /update/counter/hostile_junk/1 HTTP/1.1\r\nContent-Length: -5\r\n\r\n"),
        std::string("POST /update/counter/hostile_junk/1 HTTP/1.1\r\nContent-Length: 1\r\n"
                    "Content-Length: 2\r\n\r\nab")}) {
    Conn c(port());
    c.send(raw);
    expect_4xx_or_closed(c);
  }
  expect_nothing_stored();
}

TEST_F(Hostile, RequestLineOf100KB) {
  Conn c(port());
  c.send("GET /value/gauge/" + std::string(100 * 1024, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  expect_4xx_or_closed(c, 431);
  Conn d(port());
  d.send("POST /update/counter/" + std::string(100 * 1024, 'b') + "/1 HTTP/1.1\r\n\r\n");
  expect_4xx_or_closed(d);
  expect_nothing_stored();
}

TEST_F(Hostile, SlowlorisIsCutOffWhileOthersAreServed) {
  Conn slow(port());
  const std::string raw =
      request("POST", "/update/counter/hostile_slow/1", "", {"X-Pad: aaaaaaaa"});
  const auto started = Clock::now();
  std::optional<Clock::duration> cut_after;
  std::size_t sent = 0;
  int pings = 0;
  Clock::duration worst_ping{};
  // One byte each 200 ms; the 1 s read timeout must end it within a few bytes.
  while (Clock::now() - started < 6s && sent < raw.size()) {
    if (!slow.send(std::string_view(raw).substr(sent, 1), 500ms)) {
      cut_after = Clock::now() - started;
      break;
    }
    ++sent;
    // Meanwhile another client is answered quickly.
    const auto t0 = Clock::now();
    auto a = call(request("GET", "/ping"), 1000ms);
    ASSERT_TRUE(a.has_value());
    EXPECT_EQ(a->status, 200);
    worst_ping = std::max(worst_ping, Clock::now() - t0);
    ++pings;
    if (slow.closed_within(200ms)) {
      cut_after = Clock::now() - started;
      break;
    }
  }
  ASSERT_TRUE(cut_after.has_value()) << "the slow client was never cut off (" << sent << " bytes)";
  EXPECT_LT(*cut_after, 3s);
  EXPECT_LT(sent, raw.size());
  EXPECT_GT(pings, 0);
  EXPECT_LT(worst_ping, 500ms);
  expect_nothing_stored();
}

TEST_F(Hostile, ThreeHundredHalfOpenConnections) {
  std::vector<std::unique_ptr<Conn>> held;
  for (int i = 0; i < 300; ++i) {
    held.push_back(std::make_unique<Conn>(port()));
    // Some say nothing, some start a request and stop.
    if (i % 3 == 1) held.back()->send("GET /pi");
    if (i % 3 == 2) held.back()->send("POST /update/counter/hostile_half/1 HTTP/1.1\r\nContent-Le");
  }
  // While they are held (the read timeout is 1 s), normal clients are served.
  const auto started = Clock::now();
  for (int i = 0; i < 20; ++i) {
    const auto t0 = Clock::now();
    auto a = call(request("GET", "/ping"), 1000ms);
    ASSERT_TRUE(a.has_value()) << "request " << i << " not answered";
    EXPECT_EQ(a->status, 200);
    EXPECT_LT(Clock::now() - t0, 750ms);
  }
  // Generous for sanitizer builds on a loaded machine; about 20 ms in release.
  EXPECT_LT(Clock::now() - started, 2s) << "the pings were slow while the others were held";
  // The held connections are closed by the server's read timeout.
  int closed = 0;
  for (auto& c : held) {
    if (c->closed_within(3000ms)) ++closed;
  }
  EXPECT_EQ(closed, 300);
  expect_nothing_stored();
}

TEST_F(Hostile, ChunkedBodyOverTheLimit) {
  Conn c(port());
  std::string raw =
      "POST /updates/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n";
  const std::string first = R"([{"id":"hostile_chunk","type":"counter","delta":1})";
  raw += (std::ostringstream() << std::hex << first.size()).str() + "\r\n" + first + "\r\n";
  const std::string chunk(16384, ' ');
  for (int i = 0; i < 6; ++i)
    raw += "4000\r\n" + chunk + "\r\n";
  raw += "1\r\n]\r\n0\r\n\r\n";
  c.send(raw);
  expect_4xx_or_closed(c, 413);

  // A chunk size that cannot be represented.
  Conn d(port());
  d.send(
      "POST /updates/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\nffffffffffffffffffff\r\n[]");
  expect_4xx_or_closed(d);
  expect_nothing_stored();
}

TEST_F(Hostile, PipelinedJunkAfterAValidRequest) {
  Conn c(port());
  ASSERT_TRUE(c.send(request("POST", "/update/counter/hostile_pipe/1") +
                     std::string("\x00\x01\x02 junk \xff\r\n\r\n", 14) +
                     request("POST", "/update/counter/hostile_pipe/1")));
  auto first = c.read_answer();
  ASSERT_TRUE(first.has_value());
  EXPECT_EQ(first->status, 200);
  expect_4xx_or_closed(c);
  // The valid request is stored once, nothing after the junk.
  auto a = call(request("GET", "/value/counter/hostile_pipe"));
  ASSERT_TRUE(a);
  EXPECT_EQ(a->status, 200);
  EXPECT_EQ(a->body, "1");
}

// ---- Labels and the /updates/ envelope (API.md Part 2).

TEST_F(Hostile, InvalidLabelsAre400AndStoreNothing) {
  std::string many;
  for (int i = 0; i < 33; ++i)
    many += (i != 0 ? "," : "") + ("\"l" + std::to_string(i) + "\":\"v\"");
  const std::vector<std::string> bad{
      R"({"bad-name":"v"})",
      R"({"9lives":"v"})",
      R"({"__name__":"hostile"})",
      R"({"ok":"v","sp ace":"v"})",
      "{\"" + std::string(129, 'n') + "\":\"v\"}",
      "{\"v\":\"" + std::string(1025, 'v') + "\"}",
      "{\"u\":\"\xff\xfe\"}",
      "{\"u\":\"\xed\xa0\x80\"}",
      R"({"u":"\ud800"})",
      "{" + many + "}",
      R"({"n":1})",
      R"({"n":null})",
      R"({"n":["v"]})",
      R"({"d":"a","d":"b"})",
      R"({"":"v"})",
      R"(["instance","h"])",
      R"("instance=h")",
  };
  for (const auto& labels : bad) {
    for (const auto& [target, body] : std::vector<std::pair<std::string, std::string>>{
             {"/update/",
              R"({"id":"hostile_lab","type":"counter","delta":1,"labels":)" + labels + "}"},
             {"/updates/", R"([{"id":"hostile_lab","type":"counter","delta":1},)"
                           R"({"id":"hostile_lab","type":"counter","delta":1,"labels":)" +
                               labels + "}]"},
             {"/updates/", R"({"labels":)" + labels +
                               R"(,"metrics":[{"id":"hostile_lab","type":"counter","delta":1}]})"},
             {"/value/", R"({"id":"hostile_lab","type":"counter","labels":)" + labels + "}"}}) {
      auto a = call(request("POST", target, body, {kJson}));
      ASSERT_TRUE(a.has_value()) << target;
      EXPECT_EQ(a->status, 400) << target << " " << labels.substr(0, 80) << "\n" << a->body;
      EXPECT_TRUE(a->body.starts_with(R"({"error":)")) << a->body;
    }
  }
  expect_nothing_stored();
  expect_no_series("hostile_lab", "{}");
}

TEST_F(Hostile, MalformedEnvelopesAre400) {
  const std::string m = R"({"id":"hostile_env","type":"counter","delta":1})";
  for (const std::string& body : {
           std::string(R"({"labels":{"instance":"h"}})"),
           std::string(R"({"labels":{"instance":"h"},"metrics":{}})"),
           std::string(R"({"labels":{"instance":"h"},"metrics":[1]})"),
           std::string(R"({"labels":{"instance":"h"},"metrics":[)") + m + ",null]}",
           std::string(R"({"labels":{"instance":"h"},"metrics":[)") + m + "]",
           std::string(R"({"labels":{"instance":"h"},"metrics":[)") + m + "]}junk",
           std::string(R"({"labels":)") + std::string(5000, '{') + std::string(5000, '}') +
               R"(,"metrics":[)" + m + "]}",
           std::string(R"({"labels":{"instance":"h"},"metrics":[)") + m +
               R"(,{"id":"x","type":"gauge","value":"1"}]})",
       }) {
    expect_status(request("POST", "/updates/", body, {kJson}), 400);
  }
  expect_nothing_stored();
  expect_no_series("hostile_env", R"({"instance":"h"})");
}

TEST_F(Hostile, TenThousandLabelsAreRefusedQuickly) {
  std::string labels = "{";
  for (int i = 0; i < 5000; ++i)
    labels += (i != 0 ? "," : "") + ("\"l" + std::to_string(i) + "\":\"\"");
  labels += "}";
  ASSERT_LT(labels.size(), kMaxBody);
  const auto started = Clock::now();
  expect_status(request("POST", "/updates/",
                        R"({"labels":)" + labels +
                            R"(,"metrics":[{"id":"hostile_many","type":"counter","delta":1}]})",
                        {kJson}),
                400);
  EXPECT_LT(Clock::now() - started, 2s);
  expect_nothing_stored();
}

TEST_F(Hostile, FloodOfNewSeriesMeetsTheLimitsAndStoresNothing) {
  // 101 new series of one instance: past --max-series-per-instance 100.
  std::string body = R"({"labels":{"instance":"hostile_flood"},"metrics":[)";
  for (int i = 0; i < 101; ++i)
    body += (i != 0 ? "," : "") +
            (R"({"id":"hostile_flood","type":"counter","delta":1,"labels":{"n":")" +
             std::to_string(i) + R"("}})");
  body += "]}";
  auto a = call(request("POST", "/updates/", body, {kJson}));
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->status, 429) << a->body;
  EXPECT_NE(a->body.find("--max-series-per-instance"), std::string::npos) << a->body;
  expect_nothing_stored();
  expect_no_series("hostile_flood", R"({"instance":"hostile_flood","n":"0"})");
  // Across instances: past --max-series 1000, over several requests; what
  // fits is stored, the request that would pass the limit stores nothing.
  int refused = 0;
  for (int r = 0; r < 12 && refused == 0; ++r) {
    std::string batch =
        R"({"labels":{"instance":"hostile_i)" + std::to_string(r) + R"("},"metrics":[)";
    for (int i = 0; i < 100; ++i)
      batch += (i != 0 ? "," : "") +
               (R"({"id":"hostile_total","type":"gauge","value":1,"labels":{"n":")" +
                std::to_string(i) + R"("}})");
    batch += "]}";
    auto b = call(request("POST", "/updates/", batch, {kJson}));
    ASSERT_TRUE(b.has_value());
    if (b->status == 429) {
      ++refused;
      EXPECT_NE(b->body.find("--max-series limit of 1000"), std::string::npos) << b->body;
      expect_no_series("hostile_total",
                       R"({"instance":"hostile_i)" + std::to_string(r) + R"(","n":"0"})");
    } else {
      EXPECT_EQ(b->status, 200) << b->body;
    }
  }
  EXPECT_EQ(refused, 1);
  // The server still serves, and existing series stay writable.
  expect_status(request("GET", "/ping"), 200);
  expect_status(request("POST", "/updates/",
                        R"({"labels":{"instance":"hostile_i0"},"metrics":[)"
                        R"({"id":"hostile_total","type":"gauge","value":2,"labels":{"n":"0"}}]})",
                        {kJson}),
                200);
}

}  // namespace
