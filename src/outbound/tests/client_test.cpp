// The curl client over loopback (the agent tests' FakeServer): signing both
// ways, kept-alive connections, Retry-After, and what a dead address gives.
#include "metrics/outbound/client.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string_view>
#include <thread>
#include <vector>

#include "fake_server.hpp"
#include "metrics/core/signature.hpp"
#include "metrics/outbound/retry.hpp"

namespace metrics::outbound {
namespace {

using namespace std::chrono_literals;
using agent::testing::FakeServer;
using agent::testing::Reply;

std::uint16_t dead_port() {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

ClientOptions with_timeout(std::chrono::milliseconds timeout) {
  ClientOptions o;
  o.timeout = timeout;
  return o;
}

Request post(std::string url, std::string_view body = {}, std::string_view key = {}) {
  Request r;
  r.url = std::move(url);
  r.body = body;
  r.sign_key = key;
  return r;
}

TEST(ClientTest, SignsTheBodyVerifiesTheAnswerAndKeepsTheConnection) {
  FakeServer server("k1");
  server.set_handler([](const auto&) { return Reply{}; });
  Client client(with_timeout(3s));
  const std::string url = "http://" + server.address() + "/updates/";
  for (int i = 0; i < 3; ++i) {
    Request request = post(url, "[1]", "k1");
    request.headers = {"Content-Type: application/json"};
    const Response r = client.perform(request);
    EXPECT_EQ(r.transport, Transport::answered);
    EXPECT_EQ(r.status, 200);
    EXPECT_TRUE(r.signature_ok) << r.error;
    EXPECT_EQ(classify(r).verdict, Verdict::success);
  }
  const auto requests = server.requests();
  ASSERT_EQ(requests.size(), 3U);
  EXPECT_EQ(requests[0].headers.at("hashsha256"), core::hmac_sha256_hex("k1", "[1]"));
  EXPECT_EQ(requests[0].headers.at("content-type"), "application/json");
  EXPECT_EQ(requests[0].body, "[1]");
  EXPECT_EQ(server.connection_count(), 1U);
}

TEST(ClientTest, WrongAnswerSignatureIsNotASuccess) {
  FakeServer server("other");
  server.set_handler([](const auto&) { return Reply{}; });
  Client client(with_timeout(3s));
  const Request request = post("http://" + server.address() + "/x", "b", "k");
  const Response r = client.perform(request);
  EXPECT_EQ(r.status, 200);
  EXPECT_FALSE(r.signature_ok);
  EXPECT_EQ(classify(r).verdict, Verdict::unknown);
}

TEST(ClientTest, RetryAfterIsRead) {
  FakeServer server;
  server.set_handler([](const auto&) {
    Reply r;
    r.status = 503;
    r.headers = {{"Retry-After", "3"}};
    return r;
  });
  Client client(with_timeout(3s));
  const Response r = client.perform(post("http://" + server.address() + "/x"));
  EXPECT_EQ(r.status, 503);
  const auto c = classify(r);
  EXPECT_EQ(c.verdict, Verdict::retry_after);
  EXPECT_EQ(c.retry_after, 3s);
}

TEST(ClientTest, DeadAddressIsNotSent) {
  Client client(with_timeout(2s));
  const Response r = client.perform(post("http://127.0.0.1:" + std::to_string(dead_port()) + "/x"));
  EXPECT_EQ(r.transport, Transport::not_sent);
  EXPECT_FALSE(r.error.empty());
  EXPECT_EQ(classify(r).verdict, Verdict::retry_later);
}

TEST(ClientTest, SlowAnswerAfterSendingIsOutcomeUnknown) {
  FakeServer server;
  server.set_handler([](const auto&) {
    Reply r;
    r.delay = 1500ms;
    return r;
  });
  Client client(with_timeout(300ms));
  const Response r = client.perform(post("http://" + server.address() + "/x", "b"));
  EXPECT_EQ(r.transport, Transport::unknown) << r.error;
  EXPECT_EQ(classify(r).verdict, Verdict::unknown);
}

// A listening TCP socket on a free 127.0.0.1 port (set in `port`).
int listen_on_loopback(std::uint16_t& port) {
  const int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(fd, 4);
  socklen_t len = sizeof addr;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port = ntohs(addr.sin_port);
  return fd;
}

// A one-shot raw server: for each connection in `answers`, reads one request
// (headers and Content-Length body) per answer and writes the bytes given;
// an empty string closes the connection without answering.
class RawServer {
 public:
  using Answers = std::vector<std::vector<std::string>>;
  explicit RawServer(Answers answers) {
    fd_ = listen_on_loopback(port_);
    thread_ = std::thread([this, answers = std::move(answers)] {
      for (const auto& connection : answers) {
        const int c = ::accept(fd_, nullptr, nullptr);
        if (c < 0) return;
        ++accepted_;
        for (const auto& answer : connection) {
          std::string in;
          char buf[4096];
          while (in.find("\r\n\r\n") == std::string::npos) {
            const ssize_t n = ::recv(c, buf, sizeof buf, 0);
            if (n <= 0) break;
            in.append(buf, static_cast<std::size_t>(n));
          }
          if (answer.empty()) break;
          (void)::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
        }
        ::close(c);
      }
    });
  }
  ~RawServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  [[nodiscard]] std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/x";
  }
  [[nodiscard]] int accepted() const { return accepted_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

TEST(PlainClientTest, ChunkedAndContentLengthAnswersOnOneConnection) {
  RawServer server(RawServer::Answers{std::vector<std::string>{
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n",
      "HTTP/1.1 503 Busy\r\nRetry-After: 7\r\nContent-Length: 4\r\n\r\nfull"}});
  Client client(with_timeout(2s));
  const Response first = client.perform(post(server.url(), "b"));
  EXPECT_EQ(first.transport, Transport::answered) << first.error;
  EXPECT_EQ(first.status, 200);
  EXPECT_EQ(first.body, "abcde");
  const Response second = client.perform(post(server.url(), "b"));
  EXPECT_EQ(second.status, 503) << second.error;
  EXPECT_EQ(second.body, "full");
  EXPECT_EQ(classify(second).retry_after, 7s);
  EXPECT_EQ(server.accepted(), 1);
}

TEST(PlainClientTest, AnswerCutHalfwayIsOutcomeUnknown) {
  RawServer server(RawServer::Answers{
      std::vector<std::string>{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part"}});
  Client client(with_timeout(2s));
  const Response r = client.perform(post(server.url(), "b"));
  EXPECT_EQ(r.transport, Transport::unknown);
  EXPECT_FALSE(r.error.empty());
  EXPECT_EQ(classify(r).verdict, Verdict::unknown);
}

TEST(PlainClientTest, KeptAliveConnectionClosedByThePeerIsReplacedOnce) {
  // First connection: one answer, then the server closes it before the
  // second request's answer; the client sends that one again on a fresh one.
  RawServer server(RawServer::Answers{
      std::vector<std::string>{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", ""},
      std::vector<std::string>{"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nok2"}});
  Client client(with_timeout(2s));
  EXPECT_EQ(client.perform(post(server.url(), "b")).body, "ok");
  const Response r = client.perform(post(server.url(), "b"));
  EXPECT_EQ(r.transport, Transport::answered) << r.error;
  EXPECT_EQ(r.body, "ok2");
  EXPECT_EQ(server.accepted(), 2);
}

// Accepts connections, reads what comes and never answers; with `drip`, it
// writes the start of an answer one byte every 50 ms and never finishes it,
// so that only a deadline for the whole request (not one per read) ends it.
class SilentServer {
 public:
  explicit SilentServer(bool drip) {
    fd_ = listen_on_loopback(port_);
    thread_ = std::thread([this, drip] {
      static constexpr std::string_view kHead = "HTTP/1.1 200 OK\r\nX-Slow: ";
      std::vector<int> connections;
      std::size_t dripped = 0;
      while (!stop_) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, 50) > 0) {
          const int c = ::accept(fd_, nullptr, nullptr);
          if (c >= 0) {
            connections.push_back(c);
            ++accepted_;
          }
        }
        for (const int c : connections) {
          char buf[4096];
          while (::recv(c, buf, sizeof buf, MSG_DONTWAIT) > 0) {
          }
          if (!drip) continue;
          const char byte = dripped < kHead.size() ? kHead[dripped] : 'x';
          (void)::send(c, &byte, 1, MSG_NOSIGNAL);
        }
        ++dripped;
      }
      for (const int c : connections)
        ::close(c);
    });
  }
  ~SilentServer() {
    stop_ = true;
    thread_.join();
    ::close(fd_);
  }
  SilentServer(const SilentServer&) = delete;
  SilentServer& operator=(const SilentServer&) = delete;
  [[nodiscard]] std::string url() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/x";
  }
  [[nodiscard]] int accepted() const { return accepted_; }

 private:
  int fd_ = -1;
  std::uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> accepted_{0};
  std::thread thread_;
};

TEST(PlainClientTest, ServerThatNeverAnswersTimesOutWithinTheTimeout) {
  for (const bool drip : {false, true}) {
    SCOPED_TRACE(drip ? "an answer dripping in" : "no answer at all");
    SilentServer server(drip);
    Client client(with_timeout(400ms));
    const auto start = std::chrono::steady_clock::now();
    const Response r = client.perform(post(server.url(), "b"));
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(r.transport, Transport::unknown) << r.error;
    EXPECT_FALSE(r.error.empty());
    EXPECT_EQ(classify(r).verdict, Verdict::unknown);
    EXPECT_GE(took, 400ms);
    // Poll slices are 50 ms; the rest is slack for a loaded machine.
    EXPECT_LT(took, 1000ms);
    EXPECT_EQ(server.accepted(), 1);
  }
}

TEST(PercentEncodeTest, OnlyUnreservedStayAsIs) {
  EXPECT_EQ(percent_encode("Alloc"), "Alloc");
  EXPECT_EQ(percent_encode("a b/c%d"), "a%20b%2Fc%25d");
  EXPECT_EQ(percent_encode("x-y_z.~"), "x-y_z.~");
  EXPECT_EQ(percent_encode("\xc3\xa9"), "%C3%A9");
}

}  // namespace
}  // namespace metrics::outbound
