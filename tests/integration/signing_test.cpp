// Signing as docs/API.md "Signing" says, over real sockets: reads need no
// signature, --allow-unsigned accepts unsigned writes but never wrong ones.
#include <gtest/gtest.h>

#include "metrics/core/signature.hpp"
#include "test_support.hpp"

namespace metrics::testing {
namespace {

server::ServerConfig keyed(bool allow_unsigned) {
  auto c = TestServer::default_config();
  c.key = "secret";
  c.allow_unsigned = allow_unsigned;
  return c;
}

Request json_post(std::string target, std::string body, std::string_view key = {}) {
  Request req{http::verb::post, target, 11};
  req.set(http::field::content_type, "application/json");
  req.body() = std::move(body);
  if (!key.empty()) req.set(core::kSignatureHeader, core::hmac_sha256_hex(key, req.body()));
  return req;
}

TEST(Signing, UnsignedJsonReadIsAnsweredOnAKeyedServer) {
  TestServer server(keyed(false));
  Client client(server.port());
  auto res = client.send(json_post("/value/", R"({"id":"g","type":"gauge"})"));
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_EQ(res.body(), R"({"error":"metric not found: gauge g"})");
  EXPECT_EQ(res[core::kSignatureHeader], core::hmac_sha256_hex("secret", res.body()));

  ASSERT_EQ(client.send(json_post("/update/", R"({"id":"g","type":"gauge","value":2.5})", "secret"))
                .result_int(),
            200);
  res = client.send(json_post("/value/", R"({"id":"g","type":"gauge"})"));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"id":"g","type":"gauge","value":2.5})");
  // A wrong signature is refused, on a read too.
  EXPECT_EQ(client.send(json_post("/value/", R"({"id":"g","type":"gauge"})", "wrong")).result_int(),
            401);
}

TEST(Signing, WritesStillNeedASignatureByDefault) {
  TestServer server(keyed(false));
  Client client(server.port());
  EXPECT_EQ(
      client.send(json_post("/update/", R"({"id":"c","type":"counter","delta":1})")).result_int(),
      401);
  EXPECT_EQ(client.get("/value/counter/c").result_int(), 404);
}

TEST(Signing, AllowUnsignedAcceptsUnsignedWritesButNotWrongOnes) {
  TestServer server(keyed(true));
  Client client(server.port());
  auto res = client.send(json_post("/update/", R"({"id":"c","type":"counter","delta":1})"));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[core::kSignatureHeader], core::hmac_sha256_hex("secret", res.body()));
  EXPECT_EQ(client.post("/update/counter/c/2").result_int(), 200);

  res = client.send(json_post("/update/", R"({"id":"c","type":"counter","delta":100})", "wrong"));
  EXPECT_EQ(res.result_int(), 401);
  EXPECT_EQ(res.body(), R"({"error":"wrong HashSHA256 signature"})");
  res = client.send(json_post("/updates/", R"([{"id":"w","type":"gauge","value":1}])", "wrong"));
  EXPECT_EQ(res.result_int(), 401);
  EXPECT_EQ(client.get("/value/counter/c").body(), "3");  // the wrong one stored nothing
  EXPECT_EQ(client.get("/value/gauge/w").result_int(), 404);

  res = client.send(json_post("/update/", R"({"id":"c","type":"counter","delta":1})", "secret"));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(client.get("/value/counter/c").body(), "4");
}

}  // namespace
}  // namespace metrics::testing
