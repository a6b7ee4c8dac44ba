// Every row of the wire contract, over real loopback sockets against an
// in-process server with in-memory storage.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/read.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <thread>
#include <vector>

#include "metrics/core/gzip.hpp"
#include "metrics/core/signature.hpp"
#include "test_support.hpp"

namespace metrics::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

class HttpApi : public ::testing::Test {
 protected:
  TestServer server_;
  Client client_{server_.port()};
};

TEST_F(HttpApi, TextUpdateAndReadGauge) {
  auto res = client_.post("/update/gauge/Alloc/120500.50");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_THAT(std::string(res[http::field::content_type]), StartsWith("text/plain"));
  res = client_.get("/value/gauge/Alloc");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "120500.5");

  client_.post("/update/gauge/Alloc/1e21");
  EXPECT_EQ(client_.get("/value/gauge/Alloc").body(), "1000000000000000000000");
  client_.post("/update/gauge/Alloc/-0.1");
  EXPECT_EQ(client_.get("/value/gauge/Alloc").body(), "-0.1");
}

TEST_F(HttpApi, TextCounterSumsAndRejectsOverflow) {
  EXPECT_EQ(client_.post("/update/counter/Polls/9223372036854775806").result_int(), 200);
  EXPECT_EQ(client_.post("/update/counter/Polls/1").result_int(), 200);
  auto res = client_.post("/update/counter/Polls/1");
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_THAT(res.body(), HasSubstr("overflow"));
  EXPECT_EQ(client_.get("/value/counter/Polls").body(), "9223372036854775807");
  EXPECT_EQ(client_.post("/update/counter/Polls/-9223372036854775807").result_int(), 200);
  EXPECT_EQ(client_.get("/value/counter/Polls").body(), "0");
}

TEST_F(HttpApi, TextBadValuesAre400) {
  for (auto target :
       {"/update/gauge/x/abc", "/update/gauge/x/NaN", "/update/gauge/x/Inf", "/update/gauge/x/-inf",
        "/update/gauge/x/1e400", "/update/counter/x/1.5", "/update/counter/x/99999999999999999999",
        "/update/counter/x/abc", "/update/unknown/x/1", "/update/gauge/a%2Fb/1",
        "/update/gauge/a%01b/1", "/update/gauge/a%ZZ/1"}) {
    auto res = client_.post(target);
    EXPECT_EQ(res.result_int(), 400) << target;
    EXPECT_FALSE(res.body().empty()) << target;
  }
  // Nothing of the rejected requests was stored.
  EXPECT_EQ(client_.get("/value/gauge/x").result_int(), 404);
  EXPECT_EQ(client_.get("/value/counter/x").result_int(), 404);
}

TEST_F(HttpApi, MissingNameIs404AndUnknownPathIs404) {
  for (auto target : {"/update/gauge/", "/update/counter/", "/update/gauge", "/update/gauge/x"}) {
    EXPECT_EQ(client_.post(target).result_int(), 404) << target;
  }
  EXPECT_EQ(client_.get("/value/gauge/").result_int(), 404);
  EXPECT_EQ(client_.get("/nothing/here").result_int(), 404);
  EXPECT_EQ(client_.get("/value/gauge/never-written").result_int(), 404);
  EXPECT_EQ(client_.get("/value/counter/never-written").result_int(), 404);
}

TEST_F(HttpApi, SameNameDifferentTypesAreDifferentMetrics) {
  client_.post("/update/gauge/m/2.5");
  client_.post("/update/counter/m/3");
  EXPECT_EQ(client_.get("/value/gauge/m").body(), "2.5");
  EXPECT_EQ(client_.get("/value/counter/m").body(), "3");
}

TEST_F(HttpApi, WrongMethodIs405WithAllow) {
  struct Case {
    http::verb method;
    const char* target;
    const char* allow;
  };
  for (auto c :
       {Case{http::verb::get, "/update/gauge/x/1", "POST"},
        Case{http::verb::post, "/value/gauge/x", "GET"}, Case{http::verb::get, "/update/", "POST"},
        Case{http::verb::get, "/updates/", "POST"}, Case{http::verb::get, "/value/", "POST"},
        Case{http::verb::post, "/", "GET"}, Case{http::verb::delete_, "/ping", "GET"}}) {
    auto res = client_.request(c.method, c.target);
    EXPECT_EQ(res.result_int(), 405) << c.target;
    EXPECT_EQ(res[http::field::allow], c.allow) << c.target;
  }
  auto res = client_.request(http::verb::get, "/update/");
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_THAT(res.body(), StartsWith("{\"error\":"));
}

TEST_F(HttpApi, JsonUpdateAnswersStoredMetric) {
  auto res = client_.post_json("/update/", R"({"id":"c","type":"counter","delta":5})");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_type], "application/json");
  EXPECT_EQ(res.body(), R"({"id":"c","type":"counter","delta":5})");
  res = client_.post_json("/update/", R"({"id":"c","type":"counter","delta":7,"extra":[1,2]})");
  EXPECT_EQ(res.body(), R"({"id":"c","type":"counter","delta":12})");
  res = client_.post_json("/update/", R"({"id":"g","type":"gauge","value":0.1})");
  EXPECT_EQ(res.body(), R"({"id":"g","type":"gauge","value":0.1})");
  // No Content-Type at all is accepted as JSON.
  res = client_.post("/update/", R"({"id":"g","type":"gauge","value":3})");
  EXPECT_EQ(res.body(), R"({"id":"g","type":"gauge","value":3})");
}

TEST_F(HttpApi, JsonValueReadsAndMissingIs404) {
  client_.post("/update/gauge/g/42.25");
  auto res = client_.post_json("/value/", R"({"id":"g","type":"gauge"})");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"id":"g","type":"gauge","value":42.25})");
  res = client_.post_json("/value/", R"({"id":"nope","type":"counter"})");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_THAT(res.body(), StartsWith("{\"error\":"));
}

TEST_F(HttpApi, JsonErrorsAre400WithJsonBody) {
  for (auto body :
       {R"({"id":"c","type":"counter"})", R"({"id":"c","type":"counter","delta":1.5})",
        R"({"id":"c","type":"counter","delta":"5"})", R"({"id":"g","type":"gauge"})",
        R"({"id":"g","type":"gauge","value":"1"})", R"({"type":"gauge","value":1})",
        R"({"id":"g","type":"histogram","value":1})", R"({"id":"","type":"gauge","value":1})",
        R"({"id":"g","type":"gauge","value":1)", R"([1,2])", "", "null",
        "{\"id\":\"\xff\",\"type\":\"gauge\",\"value\":1}"}) {
    auto res = client_.post_json("/update/", body);
    EXPECT_EQ(res.result_int(), 400) << body;
    EXPECT_EQ(res[http::field::content_type], "application/json") << body;
    EXPECT_THAT(res.body(), StartsWith("{\"error\":\"")) << body;
  }
  EXPECT_EQ(
      client_.post_json("/update/", R"({"id":"g","type":"gauge","value":1e999})").result_int(),
      400);
  EXPECT_EQ(client_.get("/value/gauge/g").result_int(), 404);
}

TEST_F(HttpApi, DeepJsonIsRejected) {
  std::string deep = R"({"id":"g","type":"gauge","value":1,"x":)" + std::string(5000, '[') +
                     std::string(5000, ']') + "}";
  EXPECT_EQ(client_.post_json("/update/", deep).result_int(), 400);
}

TEST_F(HttpApi, BatchMergesRepeatsAndAnswersEachDistinctMetric) {
  auto res = client_.post_json("/updates/", R"([
      {"id":"c","type":"counter","delta":1},
      {"id":"g","type":"gauge","value":1},
      {"id":"c","type":"counter","delta":2},
      {"id":"g","type":"gauge","value":2.5},
      {"id":"c","type":"gauge","value":9}])");
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(),
            R"([{"id":"c","type":"counter","delta":3},{"id":"g","type":"gauge","value":2.5},)"
            R"({"id":"c","type":"gauge","value":9}])");
  res = client_.post_json("/updates/", R"([{"id":"c","type":"counter","delta":10}])");
  EXPECT_EQ(res.body(), R"([{"id":"c","type":"counter","delta":13}])");
}

TEST_F(HttpApi, BatchIsAtomic) {
  client_.post("/update/counter/c/1");
  for (auto body : {R"([{"id":"c","type":"counter","delta":5},{"id":"bad","type":"gauge"}])",
                    R"([{"id":"c","type":"counter","delta":5},{"id":"g","type":"gauge","value":1},
                        {"id":"big","type":"counter","delta":9223372036854775807},
                        {"id":"big","type":"counter","delta":1}])",
                    R"([{"id":"c","type":"counter","delta":5},
                        {"id":"c","type":"counter","delta":9223372036854775807}])"}) {
    auto res = client_.post_json("/updates/", body);
    EXPECT_EQ(res.result_int(), 400) << body;
  }
  // The stored total would overflow only when combined with what is stored.
  auto res = client_.post_json(
      "/updates/",
      R"([{"id":"g","type":"gauge","value":7},{"id":"c","type":"counter","delta":9223372036854775807}])");
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_EQ(client_.get("/value/counter/c").body(), "1");
  EXPECT_EQ(client_.get("/value/gauge/g").result_int(), 404);
  EXPECT_EQ(client_.get("/value/counter/big").result_int(), 404);
}

TEST_F(HttpApi, EmptyBatchIsValid) {
  auto res = client_.post_json("/updates/", "[]");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "[]");
  EXPECT_EQ(client_.post_json("/updates/", "{}").result_int(), 400);
}

TEST_F(HttpApi, NonJsonContentTypeIs415) {
  for (auto target : {"/update/", "/updates/", "/value/"}) {
    auto res = client_.request(http::verb::post, target, R"({"id":"g","type":"gauge","value":1})",
                               "text/plain");
    EXPECT_EQ(res.result_int(), 415) << target;
    EXPECT_THAT(res.body(), StartsWith("{\"error\":"));
  }
  // The text endpoint takes any Content-Type.
  EXPECT_EQ(
      client_.request(http::verb::post, "/update/gauge/g/1", "ignored", "text/plain").result_int(),
      200);
}

TEST_F(HttpApi, GzipRequestBodies) {
  Request req{http::verb::post, "/updates/", 11};
  req.set(http::field::content_type, "application/json");
  req.set(http::field::content_encoding, "gzip");
  req.body() = core::gzip_compress(R"([{"id":"z","type":"counter","delta":4}])");
  auto res = client_.send(req);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(client_.get("/value/counter/z").body(), "4");

  req.body() = "this is not gzip";
  res = client_.send(req);
  EXPECT_EQ(res.result_int(), 400);

  auto packed = core::gzip_compress(R"([{"id":"z","type":"counter","delta":4}])");
  req.body() = packed.substr(0, packed.size() / 2);
  EXPECT_EQ(client_.send(req).result_int(), 400);

  req.set(http::field::content_encoding, "br");
  req.body() = "[]";
  EXPECT_EQ(client_.send(req).result_int(), 415);
  EXPECT_EQ(client_.get("/value/counter/z").body(), "4");
}

TEST_F(HttpApi, GzipAnswersFollowAcceptEncoding) {
  client_.post("/update/gauge/g/1.5");
  Request req{http::verb::get, "/value/gauge/g", 11};
  req.set(http::field::accept_encoding, "deflate, gzip;q=0.8");
  auto res = client_.send(req);
  EXPECT_EQ(res[http::field::content_encoding], "gzip");
  EXPECT_EQ(res[http::field::vary], "Accept-Encoding");
  EXPECT_EQ(core::gzip_decompress(res.body(), 1 << 20), "1.5");

  req.set(http::field::accept_encoding, "gzip;q=0, identity");
  res = client_.send(req);
  EXPECT_EQ(res[http::field::content_encoding], "");
  EXPECT_EQ(res[http::field::vary], "Accept-Encoding");
  EXPECT_EQ(res.body(), "1.5");

  Request page{http::verb::get, "/", 11};
  page.set(http::field::accept_encoding, "gzip");
  res = client_.send(page);
  EXPECT_EQ(res[http::field::content_encoding], "gzip");
  EXPECT_THAT(core::gzip_decompress(res.body(), 1 << 20), HasSubstr("<td>g</td>"));
}

TEST(HttpLimits, OversizedBodiesAre413BeforeAndAfterInflation) {
  auto config = TestServer::default_config();
  config.max_body_bytes = 4096;
  TestServer server(config);
  {
    Client client(server.port());
    auto res = client.post_json("/updates/", std::string(5000, ' ') + "[]");
    EXPECT_EQ(res.result_int(), 413);
  }
  {
    Client client(server.port());
    Request req{http::verb::post, "/updates/", 11};
    req.set(http::field::content_encoding, "gzip");
    req.body() = core::gzip_compress(std::string(1 << 20, ' ') + "[]");  // a small bomb
    ASSERT_LT(req.body().size(), 4096u);
    auto res = client.send(req);
    EXPECT_EQ(res.result_int(), 413);
    // The connection is still usable after a rejected inflation.
    EXPECT_EQ(client.get("/ping").result_int(), 200);
  }
}

TEST(HttpLimits, OversizedHeaderIs431) {
  auto config = TestServer::default_config();
  config.max_header_bytes = 1024;
  TestServer server(config);
  Client client(server.port());
  Request req{http::verb::get, "/ping", 11};
  req.set("X-Padding", std::string(4000, 'a'));
  EXPECT_EQ(client.send(req).result_int(), 431);
  Client again(server.port());
  EXPECT_EQ(again.get("/ping").result_int(), 200);
}

TEST(HttpLimits, SlowClientIsCutOffAndOthersAreServed) {
  auto config = TestServer::default_config();
  config.read_timeout = std::chrono::milliseconds{300};
  TestServer server(config);
  Client slow(server.port());
  boost::asio::write(slow.stream().socket(),
                     boost::asio::buffer(std::string("GET /ping HTTP/1.1\r\n")));
  Client fast(server.port());
  EXPECT_EQ(fast.get("/ping").result_int(), 200);
  std::this_thread::sleep_for(std::chrono::milliseconds{800});
  char byte = 0;
  boost::system::error_code ec;
  boost::asio::read(slow.stream().socket(), boost::asio::buffer(&byte, 1), ec);
  EXPECT_TRUE(ec == boost::asio::error::eof || ec == boost::asio::error::connection_reset)
      << ec.message();
}

TEST_F(HttpApi, HtmlPageListsSortedEscapedMetrics) {
  client_.post("/update/gauge/zeta/1");
  client_.post("/update/counter/alpha/2");
  client_.post("/update/gauge/%3Cscript%3E/3");
  auto res = client_.get("/");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_THAT(std::string(res[http::field::content_type]), StartsWith("text/html"));
  const auto& page = res.body();
  EXPECT_THAT(page, HasSubstr("&lt;script&gt;"));
  EXPECT_THAT(page, ::testing::Not(HasSubstr("<script>")));
  auto a = page.find("&lt;script&gt;"), b = page.find(">alpha<"), c = page.find(">zeta<");
  ASSERT_NE(b, std::string::npos);
  ASSERT_NE(c, std::string::npos);
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
}

TEST_F(HttpApi, PingAnswers200) {
  auto res = client_.get("/ping");
  EXPECT_EQ(res.result_int(), 200);
}

TEST_F(HttpApi, PipelinedRequestsAreAnsweredInOrder) {
  std::string wire =
      "POST /update/counter/p/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
      "POST /update/counter/p/2 HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\n\r\n"
      "GET /value/counter/p HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /value/counter/missing HTTP/1.1\r\nHost: x\r\n\r\n";
  boost::asio::write(client_.stream().socket(), boost::asio::buffer(wire));
  EXPECT_EQ(client_.read().result_int(), 200);
  EXPECT_EQ(client_.read().result_int(), 200);
  auto third = client_.read();
  EXPECT_EQ(third.body(), "3");
  EXPECT_EQ(client_.read().result_int(), 404);
}

TEST_F(HttpApi, ExpectContinueIsHonoured) {
  Request req{http::verb::post, "/updates/", 11};
  req.set(http::field::expect, "100-continue");
  req.set(http::field::content_type, "application/json");
  req.body() = R"([{"id":"e","type":"counter","delta":1}])";
  req.prepare_payload();
  http::request_serializer<http::string_body> sr{req};
  http::write_header(client_.stream(), sr);
  auto interim = client_.read();
  EXPECT_EQ(interim.result_int(), 100);
  http::write(client_.stream(), sr);
  EXPECT_EQ(client_.read().result_int(), 200);
}

TEST_F(HttpApi, ConnectionCloseIsRespected) {
  Request req{http::verb::get, "/ping", 11};
  req.set(http::field::connection, "close");
  auto res = client_.send(req);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_FALSE(res.keep_alive());
}

TEST_F(HttpApi, MalformedRequestIs400) {
  boost::asio::write(client_.stream().socket(), boost::asio::buffer(std::string("BLAH\r\n\r\n")));
  EXPECT_EQ(client_.read().result_int(), 400);
}

TEST_F(HttpApi, ConcurrentWritersSumExactly) {
  constexpr int kThreads = 8;
  constexpr int kRequests = 200;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Client c(server_.port());
      for (int i = 0; i < kRequests; ++i) {
        auto body = R"([{"id":"hot","type":"counter","delta":1},{"id":"own)" + std::to_string(t) +
                    R"(","type":"counter","delta":2}])";
        if (c.post_json("/updates/", body).result_int() != 200) ++failures;
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(client_.get("/value/counter/hot").body(), std::to_string(kThreads * kRequests));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(client_.get("/value/counter/own" + std::to_string(t)).body(),
              std::to_string(2 * kRequests));
  }
}

class SignedApi : public ::testing::Test {
 protected:
  static server::ServerConfig config() {
    auto c = TestServer::default_config();
    c.key = "secret";
    return c;
  }
  TestServer server_{config()};
  Client client_{server_.port()};
};

TEST_F(SignedApi, WritesNeedAValidSignature) {
  const std::string body = R"([{"id":"s","type":"counter","delta":1}])";
  auto res = client_.post_json("/updates/", body);
  EXPECT_EQ(res.result_int(), 401);

  Request req{http::verb::post, "/updates/", 11};
  req.set(http::field::content_type, "application/json");
  req.body() = body;
  req.set(core::kSignatureHeader, core::hmac_sha256_hex("wrong", body));
  EXPECT_EQ(client_.send(req).result_int(), 401);
  EXPECT_EQ(client_.get("/value/counter/s").result_int(), 404);

  req.set(core::kSignatureHeader, core::hmac_sha256_hex("secret", body));
  res = client_.send(req);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[core::kSignatureHeader], core::hmac_sha256_hex("secret", res.body()));

  // Signed over the bytes as sent: the compressed body.
  Request gz{http::verb::post, "/updates/", 11};
  gz.set(http::field::content_encoding, "gzip");
  gz.set(http::field::accept_encoding, "gzip");
  gz.body() = core::gzip_compress(body);
  gz.set(core::kSignatureHeader, core::hmac_sha256_hex("secret", gz.body()));
  res = client_.send(gz);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_encoding], "gzip");
  EXPECT_EQ(res[core::kSignatureHeader], core::hmac_sha256_hex("secret", res.body()));
  EXPECT_EQ(client_.get("/value/counter/s").body(), "2");
}

TEST_F(SignedApi, ReadsNeedNoSignatureButAreSigned) {
  auto res = client_.get("/ping");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[core::kSignatureHeader], core::hmac_sha256_hex("secret", res.body()));
}

}  // namespace
}  // namespace metrics::testing
