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

TEST(EncodeBodyTest, GzipJsonArray) {
  const std::vector<core::Metric> batch{core::Metric::counter("PollCount", 3),
                                        core::Metric::gauge("RandomValue", 0.5)};
  const std::string body = encode_body(batch);
  ASSERT_GE(body.size(), 2U);
  EXPECT_EQ(static_cast<unsigned char>(body[0]), 0x1f);
  EXPECT_EQ(static_cast<unsigned char>(body[1]), 0x8b);
  EXPECT_EQ(core::gzip_decompress(body, 1 << 20), core::encode_batch(batch));
}

TEST(BaseUrlTest, WithoutTheEndpoint) {
  EXPECT_EQ(base_url("localhost:8080"), "http://localhost:8080");
  EXPECT_EQ(base_url("http://h:1/base/"), "http://h:1/base");
}

TEST(SingleMetricTest, JsonBodyIsTheGzipdObject) {
  const auto m = core::Metric::counter("PollCount", 3);
  EXPECT_EQ(core::gzip_decompress(encode_metric_body(m), 1 << 20), core::encode_metric(m));
}

TEST(SingleMetricTest, TextPathEncodesTheNameAndFormatsTheValue) {
  EXPECT_EQ(text_update_path(core::Metric::gauge("Alloc", 120500.5)),
            "/update/gauge/Alloc/120500.5");
  EXPECT_EQ(text_update_path(core::Metric::gauge("Big", 1e21)),
            "/update/gauge/Big/1000000000000000000000");
  EXPECT_EQ(text_update_path(core::Metric::counter("Poll Count%", -4)),
            "/update/counter/Poll%20Count%25/-4");
}

}  // namespace
}  // namespace metrics::agent::detail
