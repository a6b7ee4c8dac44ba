// Every handler of the route table, driven through Service::handle with a
// fake Repository: no sockets, no threads.
#include "metrics/server/service.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <stdexcept>

#include "metrics/core/errors.hpp"
#include "metrics/core/gzip.hpp"
#include "metrics/core/signature.hpp"
#include "test_repository.hpp"

namespace metrics::server {
namespace {
namespace http = boost::beast::http;
using testing::FakeRepository;
using ::testing::HasSubstr;
using testing::LogCapture;
using testing::make_request;
using testing::run;

constexpr std::string_view kJson = "application/json";

class ServiceTest : public ::testing::Test {
 protected:
  FakeRepository repo_;
  Service service_{repo_, {}};

  Response send(http::verb method, std::string target, std::string body = {},
                std::string content_type = {}) {
    return run(service_,
               make_request(method, std::move(target), std::move(body), std::move(content_type)));
  }
};

TEST_F(ServiceTest, EveryRowOfTheTableHasAHandler) {
  std::vector<std::string_view> names;
  for (const auto& r : default_routes()) {
    EXPECT_NE(r.handler, nullptr) << r.name;
    names.push_back(r.name);
  }
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("home", "ping", "update_json", "updates_json",
                                                     "value_json", "update_text", "value_text"));
}

TEST_F(ServiceTest, Home) {
  repo_.put(core::Metric::gauge("<b>", 1.5));
  auto res = send(http::verb::get, "/");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_THAT(res.body(), HasSubstr("&lt;b&gt;"));
  EXPECT_EQ(repo_.lists, 1);
}

TEST_F(ServiceTest, Ping) {
  auto res = send(http::verb::get, "/ping");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "ok\n");
  EXPECT_EQ(repo_.pings, 1);
  repo_.fail = [] { throw core::StorageUnavailable("down"); };
  EXPECT_EQ(send(http::verb::get, "/ping").result_int(), 500);  // the contract: 500, not 503
}

TEST_F(ServiceTest, UpdateText) {
  auto res = send(http::verb::post, "/update/counter/c/5");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "");
  ASSERT_EQ(repo_.applied.size(), 1u);
  EXPECT_EQ(repo_.applied[0][0].id, "c");
  EXPECT_EQ(repo_.applied[0][0].delta, 5);
  EXPECT_EQ(send(http::verb::post, "/update/gauge/g/nope").result_int(), 400);
  EXPECT_EQ(send(http::verb::post, "/update/meter/g/1").result_int(), 400);
  EXPECT_EQ(repo_.applied.size(), 1u);  // bad input stores nothing
}

TEST_F(ServiceTest, ValueTextNamesTheMissingMetric) {
  repo_.put(core::Metric::gauge("Alloc", 2.5));
  auto res = send(http::verb::get, "/value/gauge/Alloc");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "2.5");
  res = send(http::verb::get, "/value/counter/Alloc");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_EQ(res.body(), "metric not found: counter Alloc\n");
}

TEST_F(ServiceTest, UpdateJson) {
  auto res = send(http::verb::post, "/update/", R"({"id":"c","type":"counter","delta":2})",
                  "application/json");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_type], kJson);
  EXPECT_EQ(res.body(), R"({"id":"c","type":"counter","delta":2})");
  res = send(http::verb::post, "/update/", R"({"id":"c"})", "application/json");
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_THAT(res.body(), ::testing::StartsWith(R"({"error":)"));
  EXPECT_EQ(send(http::verb::post, "/update/", "{}", "text/plain").result_int(), 415);
  EXPECT_EQ(repo_.applied.size(), 1u);
}

TEST_F(ServiceTest, ValueJsonNamesTheMissingMetric) {
  repo_.put(core::Metric::counter("PollCount", 7));
  auto res = send(http::verb::post, "/value/", R"({"id":"PollCount","type":"counter"})");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"id":"PollCount","type":"counter","delta":7})");
  res = send(http::verb::post, "/value/", R"({"id":"Alloc","type":"gauge"})");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_EQ(res[http::field::content_type], kJson);
  EXPECT_EQ(res.body(), R"({"error":"metric not found: gauge Alloc"})");
}

TEST_F(ServiceTest, UpdatesJson) {
  auto res =
      send(http::verb::post, "/updates/",
           R"([{"id":"c","type":"counter","delta":1},{"id":"c","type":"counter","delta":2}])");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"([{"id":"c","type":"counter","delta":3}])");
  ASSERT_EQ(repo_.applied.size(), 1u);
  EXPECT_EQ(repo_.applied[0].size(), 1u);  // merged before it reaches the storage
  res = send(http::verb::post, "/updates/", "[]");
  EXPECT_EQ(res.body(), "[]");
  EXPECT_EQ(repo_.applied.size(), 1u);  // an empty batch asks nothing of the storage
}

TEST_F(ServiceTest, MethodNotAllowedTakesAllowAndFormatFromTheTable) {
  auto res = send(http::verb::get, "/updates/");
  EXPECT_EQ(res.result_int(), 405);
  EXPECT_EQ(res[http::field::allow], "POST");
  EXPECT_EQ(res[http::field::content_type], kJson);
  res = send(http::verb::post, "/ping");
  EXPECT_EQ(res.result_int(), 405);
  EXPECT_EQ(res[http::field::allow], "GET");
  EXPECT_EQ(res.body(), "method POST not allowed; use GET\n");
}

TEST_F(ServiceTest, NonStdExceptionFromTheRepositoryIsA500AndLogged) {
  LogCapture log;
  repo_.fail = [] { throw 42; };
  for (auto [target, body] : {std::pair{"/updates/", R"([{"id":"a","type":"gauge","value":1}])"},
                              std::pair{"/value/", R"({"id":"a","type":"gauge"})"}}) {
    auto res = send(http::verb::post, target, body);
    EXPECT_EQ(res.result_int(), 500) << target;
    EXPECT_EQ(res.body(), R"({"error":"internal error"})") << target;
  }
  auto res = send(http::verb::get, "/value/gauge/a");
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), "internal error\n");
  EXPECT_THAT(log.text(), HasSubstr("error GET /value/gauge/a: an exception not derived from"));
  // And the next request is served as usual.
  repo_.fail = nullptr;
  EXPECT_EQ(send(http::verb::get, "/ping").result_int(), 200);
}

TEST_F(ServiceTest, AsynchronousNonStdFailureIsA500) {
  struct Throws : FakeRepository {
    void ping(storage::Callback<bool> done) override { done(std::make_exception_ptr(42), false); }
  } repo;
  Service service(repo, {});
  auto res = run(service, make_request(http::verb::get, "/ping"));
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), "internal error\n");
}

TEST(ServiceFinish, AFailureWhileFinishingIsASigned500AndLogged) {
  FakeRepository repo;
  int calls = 0;
  Service service(repo, {.key = "k", .finish_hook = [&](const Response& res) {
                           ++calls;
                           if (res.result() == http::status::ok && calls == 1) {
                             throw std::runtime_error("deflate broke");
                           }
                         }});
  LogCapture log;
  auto req = make_request(http::verb::get, "/ping");
  req.set(http::field::accept_encoding, "gzip");
  auto res = run(service, req);
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), "internal error\n");
  EXPECT_EQ(res[http::field::content_encoding], "");
  EXPECT_EQ(res[http::field::content_length], std::to_string(res.body().size()));
  EXPECT_EQ(res[core::kSignatureHeader], core::hmac_sha256_hex("k", res.body()));
  EXPECT_THAT(log.text(), HasSubstr("GET /ping: finishing the answer failed: deflate broke"));
  res = run(service, req);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(core::gzip_decompress(res.body(), 100), "ok\n");
}

TEST(ServiceFinish, ANonStdFailureWhileFinishingIsA500) {
  FakeRepository repo;
  Service service(repo, {.key = "", .finish_hook = [](const Response&) { throw 7; }});
  auto res = run(service, make_request(http::verb::post, "/updates/", "[]"));
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), R"({"error":"internal error"})");
}

// ---- Signing (docs/API.md "Signing").

class SignedService : public ::testing::Test {
 protected:
  FakeRepository repo_;

  Request signed_request(std::string target, std::string body, std::string_view key) {
    auto req = make_request(http::verb::post, std::move(target), std::move(body));
    if (!key.empty()) req.set(core::kSignatureHeader, core::hmac_sha256_hex(key, req.body()));
    return req;
  }
};

TEST_F(SignedService, ReadsNeedNoSignature) {
  Service service(repo_, {.key = "secret"});
  repo_.put(core::Metric::gauge("g", 1));
  auto res = run(service, signed_request("/value/", R"({"id":"g","type":"gauge"})", ""));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[core::kSignatureHeader], core::hmac_sha256_hex("secret", res.body()));
  res = run(service, signed_request("/value/", R"({"id":"x","type":"gauge"})", ""));
  EXPECT_EQ(res.result_int(), 404);
  // A wrong signature is a wrong signature, on a read too.
  res = run(service, signed_request("/value/", R"({"id":"g","type":"gauge"})", "wrong"));
  EXPECT_EQ(res.result_int(), 401);
  EXPECT_EQ(res.body(), R"({"error":"wrong HashSHA256 signature"})");
}

TEST_F(SignedService, WritesNeedOneUnlessUnsignedIsAllowed) {
  const std::string body = R"([{"id":"c","type":"counter","delta":1}])";
  Service strict(repo_, {.key = "secret"});
  EXPECT_EQ(run(strict, signed_request("/updates/", body, "")).result_int(), 401);
  EXPECT_EQ(run(strict, make_request(http::verb::post, "/update/counter/c/1")).result_int(), 401);
  EXPECT_TRUE(repo_.applied.empty());

  Service lax(repo_, {.key = "secret", .allow_unsigned = true});
  EXPECT_EQ(run(lax, signed_request("/updates/", body, "")).result_int(), 200);
  EXPECT_EQ(run(lax, make_request(http::verb::post, "/update/counter/c/1")).result_int(), 200);
  EXPECT_EQ(repo_.applied.size(), 2u);
  auto res = run(lax, signed_request("/updates/", body, "wrong"));
  EXPECT_EQ(res.result_int(), 401);
  EXPECT_EQ(repo_.applied.size(), 2u);
  EXPECT_EQ(run(lax, signed_request("/updates/", body, "secret")).result_int(), 200);
}

// ---- A table of another shape: a form body and query parameters, as the
// Prometheus API will need.

boost::asio::awaitable<Response> echo_params(RequestContext& ctx, const RouteMatch& m,
                                             std::string&) {
  std::string out;
  for (auto v : m.query.all("match[]")) {
    out += v;
    out += ';';
  }
  out += m.query.get("time").value_or("-");
  Response res{http::status::ok, ctx.request.version()};
  res.set(http::field::content_type, "text/plain");
  res.body() = out;
  co_return res;
}

constexpr RouteSpec kFormRoutes[] = {{.name = "series",
                                      .pattern = "/api/v1/series",
                                      .methods = {http::verb::get, http::verb::post},
                                      .handler = echo_params,
                                      .errors = ErrorFormat::json,
                                      .body = BodyKind::form,
                                      .query = {"match[]", "time"}}};

TEST(ServiceForm, QueryAndFormParametersReachTheHandler) {
  FakeRepository repo;
  Service service(repo, {}, kFormRoutes);
  auto res = run(service, make_request(http::verb::get, "/api/v1/series?match[]=a&match%5B%5D=b"));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "a;b;-");
  res = run(service, make_request(http::verb::post, "/api/v1/series?match[]=q",
                                  "match[]=up%7Bx%3D%22y%22%7D&time=12+3",
                                  "application/x-www-form-urlencoded"));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"(q;up{x="y"};12 3)");
  res = run(service, make_request(http::verb::post, "/api/v1/series", "match[]=a", "text/plain"));
  EXPECT_EQ(res.result_int(), 415);
  EXPECT_THAT(res.body(), ::testing::StartsWith(R"({"error":)"));
  res = run(service, make_request(http::verb::post, "/api/v1/series", "time=%",
                                  "application/x-www-form-urlencoded"));
  EXPECT_EQ(res.result_int(), 400);
  res = run(service, make_request(http::verb::delete_, "/api/v1/series"));
  EXPECT_EQ(res.result_int(), 405);
  EXPECT_EQ(res[http::field::allow], "GET, POST");
}

// ---- reject(): the answer to a request that could not be read in full.

TEST(ServiceReject, UsesTheEndpointsErrorFormat) {
  FakeRepository repo;
  Service service(repo, {});
  Request partial;
  partial.method(http::verb::post);
  partial.target("/updates/");
  auto res = service.reject(http::status::payload_too_large, "too big", partial);
  EXPECT_EQ(res[http::field::content_type], kJson);
  EXPECT_EQ(res.body(), R"({"error":"too big"})");
  partial.target("/update/gauge/a/1");
  res = service.reject(http::status::payload_too_large, "too big", partial);
  EXPECT_EQ(res.body(), "too big\n");
}

}  // namespace
}  // namespace metrics::server
