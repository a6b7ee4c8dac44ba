// The session's read loop over boost::beast::test::stream: partial reads,
// pipelining, 100-continue, every limit, peers that vanish and injected
// I/O failures, without sockets.
#include "session.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/_experimental/test/stream.hpp>
#include <boost/beast/http/read.hpp>
#include <optional>

#include "metrics/core/gzip.hpp"
#include "test_repository.hpp"

namespace metrics::server {
namespace {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using testing::FakeRepository;
using ::testing::HasSubstr;
using ::testing::StartsWith;

struct TestObserver {
  std::vector<std::string> lines;
  bool stop = false;
  bool stopping() const { return stop; }
  void idle(bool) {}
  void expires_after(std::chrono::milliseconds) {}
  bool logging() const { return true; }
  void log(std::string_view method, std::string_view target, unsigned status, std::size_t bytes,
           std::chrono::microseconds) {
    lines.push_back(std::string(method) + " " + std::string(target) + " " + std::to_string(status) +
                    " " + std::to_string(bytes) + "B");
  }
};

class Session : public ::testing::Test {
 protected:
  void start(ServiceOptions options = {},
             detail::SessionLimits limits = {.max_header_bytes = 1024, .max_body_bytes = 4096},
             std::optional<beast::test::fail_count> fail = std::nullopt) {
    options.max_body_bytes = limits.max_body_bytes;
    service_.emplace(repo_, std::move(options));
    limits_ = limits;
    if (fail) {
      fail_.emplace(std::move(*fail));
      server_.emplace(ioc_, *fail_);
    } else {
      server_.emplace(ioc_);
    }
    client_.emplace(ioc_);
    server_->connect(*client_);
    asio::co_spawn(ioc_, detail::serve_connection(*server_, *service_, limits_, observer_),
                   [this](std::exception_ptr err) {
                     finished_ = true;
                     threw_ = err != nullptr;
                   });
    pump();
  }

  // Runs everything that is ready (the session waits for input otherwise).
  void pump() {
    for (int i = 0; i < 1000; ++i) {
      ioc_.restart();
      if (ioc_.poll() == 0) break;
    }
  }

  // What the client sends arrives at the server (and wakes its read).
  void send(std::string_view bytes) {
    asio::write(*client_, asio::buffer(bytes.data(), bytes.size()));
    pump();
  }
  void hang_up() {
    client_->close();
    pump();
  }

  // Every complete answer the server wrote so far.
  std::vector<Response> answers() {
    std::vector<Response> out;
    std::string_view rest = client_->str();
    while (!rest.empty()) {
      http::response_parser<http::string_body> parser;
      parser.body_limit(1 << 20);
      boost::system::error_code ec;
      while (!rest.empty() && !parser.is_done()) {
        const std::size_t used = parser.put(asio::buffer(rest.data(), rest.size()), ec);
        rest.remove_prefix(used);
        if (ec || used == 0) break;
      }
      if (ec || !parser.is_done()) break;
      out.push_back(parser.release());
    }
    return out;
  }

  FakeRepository repo_;
  asio::io_context ioc_;
  std::optional<Service> service_;
  detail::SessionLimits limits_;
  std::optional<beast::test::fail_count> fail_;
  std::optional<beast::test::stream> server_;
  std::optional<beast::test::stream> client_;
  TestObserver observer_;
  bool finished_ = false;
  bool threw_ = false;
};

constexpr std::string_view kPing = "GET /ping HTTP/1.1\r\nHost: x\r\n\r\n";

TEST_F(Session, OneByteAtATime) {
  start();
  server_->read_size(1);
  send("POST /update/counter/c/3 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n");
  auto res = answers();
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].result_int(), 200);
  ASSERT_EQ(repo_.applied.size(), 1u);
  EXPECT_EQ(repo_.applied[0][0].delta, 3);
  EXPECT_FALSE(finished_);  // kept alive
  hang_up();
  EXPECT_TRUE(finished_);
  EXPECT_FALSE(threw_);
}

TEST_F(Session, PipelinedRequestsAreAnsweredInOrderFromOneRead) {
  start();
  const auto reads_before = server_->nread();
  send(std::string("POST /update/gauge/g/1 HTTP/1.1\r\nHost: x\r\n\r\n") +
       "GET /value/gauge/g HTTP/1.1\r\nHost: x\r\n\r\n" + std::string(kPing));
  auto res = answers();
  ASSERT_EQ(res.size(), 3u);
  EXPECT_EQ(res[0].result_int(), 200);
  EXPECT_EQ(res[1].body(), "1");
  EXPECT_EQ(res[2].body(), "ok\n");
  // One read took all three (the session now waits in a second one).
  EXPECT_EQ(server_->nread() - reads_before, 1u);
  EXPECT_THAT(observer_.lines,
              ::testing::ElementsAre("POST /update/gauge/g/1 200 0B", "GET /value/gauge/g 200 1B",
                                     "GET /ping 200 3B"));
}

TEST_F(Session, ExpectContinueIsAnsweredBeforeTheBody) {
  start();
  const std::string body = R"([{"id":"c","type":"counter","delta":2}])";
  send("POST /updates/ HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: " +
       std::to_string(body.size()) + "\r\n\r\n");
  EXPECT_EQ(client_->str(), "HTTP/1.1 100 Continue\r\n\r\n");
  EXPECT_TRUE(repo_.applied.empty());
  send(body);
  std::string_view out = client_->str();
  ASSERT_TRUE(out.starts_with("HTTP/1.1 100 Continue\r\n\r\n"));
  client_->buffer().consume(std::string_view("HTTP/1.1 100 Continue\r\n\r\n").size());
  auto res = answers();
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].result_int(), 200);
  EXPECT_EQ(repo_.applied.size(), 1u);
}

TEST_F(Session, OversizedRequestLineIs431WithMethodAndPathLogged) {
  start();
  send("GET /value/gauge/" + std::string(2000, 'a') + " HTTP/1.1\r\nHost: x\r\n\r\n");
  auto res = answers();
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].result_int(), 431);
  ASSERT_EQ(observer_.lines.size(), 1u);
  EXPECT_THAT(observer_.lines[0], StartsWith("GET /value/gauge/aaaa"));
}

TEST_F(Session, OversizedHeaderIs431WithMethodAndPathLogged) {
  start();
  send("POST /updates/ HTTP/1.1\r\nHost: x\r\nX-Pad: " + std::string(2000, 'a') + "\r\n\r\n");
  auto res = answers();
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].result_int(), 431);
  EXPECT_EQ(res[0][http::field::content_type], "application/json");
  EXPECT_THAT(res[0].body(), StartsWith(R"({"error":"request header larger than 1024 bytes)"));
  EXPECT_FALSE(res[0].keep_alive());
  EXPECT_TRUE(finished_);
  ASSERT_EQ(observer_.lines.size(), 1u);
  EXPECT_THAT(observer_.lines[0], StartsWith("POST /updates/ 431 "));
}

TEST_F(Session, ContentLengthOverTheLimitIs413InTheEndpointsFormat) {
  start();
  send("POST /updates/ HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
  auto res = answers();
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].result_int(), 413);
  EXPECT_EQ(res[0][http::field::content_type], "application/json");
  EXPECT_EQ(res[0].body(), R"({"error":"request body larger than 4096 bytes"})");
  EXPECT_TRUE(finished_);
  ASSERT_EQ(observer_.lines.size(), 1u);
  EXPECT_THAT(observer_.lines[0], StartsWith("POST /updates/ 413 "));
  EXPECT_TRUE(repo_.applied.empty());
}

TEST_F(Session, TextEndpointKeepsTextErrors) {
  start();
  send("POST /update/gauge/a/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 5000\r\n\r\n");
  auto res = answers();
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].result_int(), 413);
  EXPECT_EQ(res[0].body(), "request body larger than 4096 bytes\n");
}

TEST_F(Session, ChunkedBodyOverTheLimitIs413) {
  start();
  send(
      "POST /updates/ HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "10\r\n[               \r\n"
      "2000\r\n");
  auto res = answers();
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].result_int(), 413);
  EXPECT_EQ(res[0][http::field::content_type], "application/json");
  EXPECT_TRUE(finished_);
  EXPECT_TRUE(repo_.applied.empty());
}

TEST_F(Session, InflatedBodyOverTheLimitIs413AndTheConnectionGoesOn) {
  start();
  const std::string bomb = core::gzip_compress(std::string(1 << 20, ' ') + "[]");
  ASSERT_LT(bomb.size(), 4096u);
  send("POST /updates/ HTTP/1.1\r\nHost: x\r\nContent-Encoding: gzip\r\nContent-Length: " +
       std::to_string(bomb.size()) + "\r\n\r\n" + bomb);
  send(kPing);
  auto res = answers();
  ASSERT_EQ(res.size(), 2u);
  EXPECT_EQ(res[0].result_int(), 413);
  EXPECT_THAT(res[0].body(), StartsWith(R"({"error":)"));
  EXPECT_EQ(res[1].result_int(), 200);
  EXPECT_FALSE(finished_);
}

TEST_F(Session, PeerThatVanishesMidBodyGetsNoAnswerAndStoresNothing) {
  start();
  send("POST /updates/ HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n[{\"id\":");
  EXPECT_FALSE(finished_);
  hang_up();
  EXPECT_TRUE(finished_);
  EXPECT_FALSE(threw_);
  EXPECT_TRUE(client_->str().empty());
  EXPECT_TRUE(repo_.applied.empty());
  EXPECT_TRUE(observer_.lines.empty());
}

TEST_F(Session, InjectedReadFailureEndsTheSessionQuietly) {
  // The first I/O succeeds (a whole request), the second fails.
  start({}, {.max_header_bytes = 1024, .max_body_bytes = 4096}, beast::test::fail_count(1));
  send(kPing);
  EXPECT_TRUE(finished_);
  EXPECT_FALSE(threw_);
}

TEST_F(Session, InjectedWriteFailureEndsTheSessionQuietly) {
  start({}, {.max_header_bytes = 1024, .max_body_bytes = 4096}, beast::test::fail_count(2));
  send(kPing);
  EXPECT_TRUE(finished_);
  EXPECT_FALSE(threw_);
  EXPECT_EQ(repo_.pings, 1);
}

TEST_F(Session, MalformedRequestIs400AndCloses) {
  start();
  send("GET /ping HTTP/1.1\r\nBad Header\r\n\r\n");
  auto res = answers();
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].result_int(), 400);
  EXPECT_TRUE(finished_);
}

TEST_F(Session, RepositoryThrowingANonStdExceptionIsA500AndTheConnectionGoesOn) {
  start();
  repo_.fail = [] { throw 42; };
  send(kPing);
  repo_.fail = nullptr;
  send(kPing);
  auto res = answers();
  ASSERT_EQ(res.size(), 2u);
  EXPECT_EQ(res[0].result_int(), 500);
  EXPECT_EQ(res[0].body(), "internal error\n");
  EXPECT_EQ(res[1].result_int(), 200);
  EXPECT_FALSE(finished_);
}

TEST_F(Session, FailureWhileFinishingIsA500AndTheConnectionGoesOn) {
  int calls = 0;
  start({.key = "", .finish_hook = [&](const Response&) {
           if (++calls == 1) throw std::runtime_error("boom");
         }});
  send(std::string(kPing) + std::string(kPing));
  auto res = answers();
  ASSERT_EQ(res.size(), 2u);
  EXPECT_EQ(res[0].result_int(), 500);
  EXPECT_EQ(res[1].result_int(), 200);
  EXPECT_FALSE(finished_);
}

TEST_F(Session, StoppingServerAnswersWithConnectionClose) {
  start();
  observer_.stop = true;
  send(kPing);
  auto res = answers();
  ASSERT_EQ(res.size(), 1u);
  EXPECT_EQ(res[0].result_int(), 200);
  EXPECT_FALSE(res[0].keep_alive());
  EXPECT_TRUE(finished_);
}

TEST(RequestLine, TakenFromRawBytes) {
  Request req;
  detail::read_request_line("POST /updates/?x=1 HTTP/1.1\r\nHost: a", req);
  EXPECT_EQ(req.method(), http::verb::post);
  EXPECT_EQ(req.target(), "/updates/?x=1");
  Request none;
  detail::read_request_line("garbage", none);
  EXPECT_EQ(none.target(), "");
  detail::read_request_line("get / HTTP/1.1\r\n", none);
  EXPECT_EQ(none.target(), "");
}

}  // namespace
}  // namespace metrics::server
