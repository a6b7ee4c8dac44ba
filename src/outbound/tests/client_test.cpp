// The curl client over loopback (the agent tests' FakeServer): signing both
// ways, kept-alive connections, Retry-After, and what a dead address gives.
#include "metrics/outbound/client.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

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

TEST(PercentEncodeTest, OnlyUnreservedStayAsIs) {
  EXPECT_EQ(percent_encode("Alloc"), "Alloc");
  EXPECT_EQ(percent_encode("a b/c%d"), "a%20b%2Fc%25d");
  EXPECT_EQ(percent_encode("x-y_z.~"), "x-y_z.~");
  EXPECT_EQ(percent_encode("\xc3\xa9"), "%C3%A9");
}

}  // namespace
}  // namespace metrics::outbound
