#include <gtest/gtest.h>

#include <vector>

#include "http_sender.hpp"
#include "metrics/core/gzip.hpp"
#include "metrics/core/json_codec.hpp"

namespace metrics::agent::detail {
namespace {

using namespace std::chrono_literals;

TEST(UpdatesUrlTest, AcceptedForms) {
  EXPECT_EQ(updates_url("localhost:8080"), "http://localhost:8080/updates/");
  EXPECT_EQ(updates_url(":8080"), "http://localhost:8080/updates/");
  EXPECT_EQ(updates_url("[::1]:9000"), "http://[::1]:9000/updates/");
  EXPECT_EQ(updates_url("http://example.com"), "http://example.com/updates/");
  EXPECT_EQ(updates_url("https://example.com:8443/"), "https://example.com:8443/updates/");
  EXPECT_EQ(updates_url("http://h:1/base/"), "http://h:1/base/updates/");
}

TEST(UpdatesUrlTest, RejectedForms) {
  for (const char* bad :
       {"", "localhost", "localhost:", "localhost:0", "localhost:70000", "localhost:http",
        "ftp://x:1", "host/path:80", "::1:80", "http://", "http://:8080", "a b:80"}) {
    std::string why;
    EXPECT_FALSE(updates_url(bad, &why)) << bad;
    EXPECT_FALSE(why.empty()) << bad;
  }
}

const core::Labels& identity() {
  static const core::Labels labels =
      core::Labels::make({{"instance", "h:42"}, {"job", "app"}, {"env", "prod"}});
  return labels;
}

TEST(EncodeBodyTest, GzipEnvelopeWithTheIdentity) {
  const std::vector<core::Update> batch{
      core::Update::counter("PollCount", 3), core::Update::gauge("RandomValue", 0.5),
      core::Update::counter("Requests", 1, core::Labels::make({{"route", "/a"}}))};
  const std::string body = encode_body(identity(), batch);
  ASSERT_GE(body.size(), 2U);
  EXPECT_EQ(static_cast<unsigned char>(body[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(body[1]), 0x8b);
  const std::string json = core::gzip_decompress(body, 1 << 20);
  EXPECT_EQ(json, core::encode_envelope(identity(), batch));
  EXPECT_TRUE(
      json.starts_with(R"({"labels":{"env":"prod","instance":"h:42","job":"app"},"metrics":[)"))
      << json;
  // What the server reads back: the identity on every metric, the own
  // labels added.
  const auto decoded = core::decode_updates(json);
  EXPECT_TRUE(decoded.envelope);
  EXPECT_EQ(decoded.labels, identity());
  ASSERT_EQ(decoded.updates.size(), 3U);
  EXPECT_EQ(decoded.updates[0].id, "PollCount");
}

TEST(EncodeBodyTest, EmptyIdentityIsStillAnEnvelope) {
  const std::vector<core::Update> batch{core::Update::counter("PollCount", 1)};
  EXPECT_EQ(core::gzip_decompress(encode_body(core::Labels{}, batch), 1 << 20),
            core::encode_envelope(core::Labels{}, batch));
}

TEST(BaseUrlTest, WithoutTheEndpoint) {
  EXPECT_EQ(base_url("localhost:8080"), "http://localhost:8080");
  EXPECT_EQ(base_url("http://h:1/base/"), "http://h:1/base");
}

TEST(SingleMetricTest, JsonBodyIsTheGzipdObjectWithTheIdentity) {
  const auto m = core::Update::counter("PollCount", 3);
  EXPECT_EQ(core::gzip_decompress(encode_metric_body(identity(), m), 1 << 20),
            core::encode_update(core::Update::counter("PollCount", 3, identity())));
  // Own labels add to the identity and win on a clash.
  const auto own =
      core::Update::gauge("Q", 1.5, core::Labels::make({{"env", "dev"}, {"queue", "q1"}}));
  const auto decoded =
      core::decode_update(core::gzip_decompress(encode_metric_body(identity(), own), 1 << 20));
  EXPECT_EQ(
      decoded.labels,
      core::Labels::make({{"env", "dev"}, {"instance", "h:42"}, {"job", "app"}, {"queue", "q1"}}));
  EXPECT_EQ(decoded.value, 1.5);
}

TEST(SingleMetricTest, TextPathEncodesTheNameAndFormatsTheValue) {
  // Text mode carries no labels.
  EXPECT_EQ(text_update_path(core::Update::counter("C", 1, identity())), "/update/counter/C/1");
  EXPECT_EQ(text_update_path(core::Update::gauge("Alloc", 120500.5)),
            "/update/gauge/Alloc/120500.5");
  EXPECT_EQ(text_update_path(core::Update::gauge("Big", 1e21)),
            "/update/gauge/Big/1000000000000000000000");
  EXPECT_EQ(text_update_path(core::Update::counter("Poll Count%", -4)),
            "/update/counter/Poll%20Count%25/-4");
}

}  // namespace
}  // namespace metrics::agent::detail
