#include "metrics/loadgen/request_builder.hpp"

#include <gtest/gtest.h>

#include "metrics/core/gzip.hpp"
#include "metrics/core/json_codec.hpp"
#include "metrics/core/signature.hpp"
#include "metrics/core/value_format.hpp"
#include "metrics/loadgen/http_response.hpp"

namespace metrics::loadgen {
namespace {

Workload workload(Mode mode, std::size_t batch = 29) {
  return Workload{"r1_", batch, mode};
}

// Splits "head\r\n\r\n" into its header lines for lookups.
std::string header(const std::string& head, const std::string& name) {
  const auto at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return {};
  const auto from = at + name.size() + 4;
  return head.substr(from, head.find("\r\n", from) - from);
}

TEST(RequestBuilder, Names) {
  EXPECT_EQ(metric_name("r1_", 7, 0), "r1_a7_c");
  EXPECT_EQ(metric_name("r1_", 7, 1), "r1_loadgen_hot");
  EXPECT_EQ(metric_name("r1_", 7, 2), "r1_a7_g0");
  EXPECT_EQ(metric_name("", 12, 28), "a12_g26");
}

TEST(RequestBuilder, BatchIsTheAgentShapedJsonArray) {
  RequestBuilder b(workload(Mode::batch), "127.0.0.1:8080", "", false);
  RequestBytes r;
  b.build(3, 5, r);
  EXPECT_EQ(r.head.rfind("POST /updates/ HTTP/1.1\r\n", 0), 0u);
  EXPECT_EQ(header(r.head, "Host"), "127.0.0.1:8080");
  EXPECT_EQ(header(r.head, "Content-Type"), "application/json");
  EXPECT_EQ(header(r.head, "Content-Length"), std::to_string(r.body.size()));
  EXPECT_TRUE(r.head.ends_with("\r\n\r\n"));
  const auto metrics = core::decode_batch(r.body);
  ASSERT_EQ(metrics.size(), 29u);
  EXPECT_EQ(metrics[0], core::Metric::counter("r1_a3_c", agent_counter_delta(5)));
  EXPECT_EQ(metrics[1], core::Metric::counter("r1_loadgen_hot", hot_counter_delta(5)));
  for (std::size_t s = 2; s < 29; ++s)
    EXPECT_EQ(metrics[s], core::Metric::gauge(metric_name("r1_", 3, s), gauge_value(3, s, 5)));
}

TEST(RequestBuilder, ValuesChangeWithEveryRequest) {
  EXPECT_NE(gauge_value(1, 2, 1), gauge_value(1, 2, 2));
  EXPECT_NE(gauge_value(1, 2, 1), gauge_value(2, 2, 1));
  EXPECT_NE(agent_counter_delta(1), agent_counter_delta(2));
  EXPECT_GT(agent_counter_delta(0), 0);
  EXPECT_GT(hot_counter_delta(0), 0);
  // Exact in text form: the server prints it back byte for byte.
  EXPECT_EQ(core::parse_gauge(core::format_gauge(gauge_value(9, 5, 12345))),
            gauge_value(9, 5, 12345));
}

TEST(RequestBuilder, ReusesBuffersAcrossRequests) {
  RequestBuilder b(workload(Mode::batch), "h", "", false);
  RequestBytes r;
  b.build(1, 100, r);
  const auto* body_data = r.body.data();
  // Later requests of similar length are built in place: no allocation.
  for (std::uint64_t seq = 101; seq < 150; ++seq)
    b.build(1, seq, r);
  EXPECT_EQ(r.body.data(), body_data);
  EXPECT_EQ(core::decode_batch(r.body).size(), 29u);
}

TEST(RequestBuilder, GzipAndSignature) {
  RequestBuilder b(workload(Mode::batch), "h", "k3y", true);
  RequestBytes r;
  b.build(2, 9, r);
  EXPECT_EQ(header(r.head, "Content-Encoding"), "gzip");
  EXPECT_EQ(header(r.head, "Content-Length"), std::to_string(r.body.size()));
  // Signed over the compressed bytes, as sent.
  EXPECT_EQ(header(r.head, "HashSHA256"), core::hmac_sha256_hex("k3y", r.body));
  std::string plain;
  b.build_plain_body(2, 9, plain);
  EXPECT_EQ(core::gzip_decompress(r.body, 1 << 20), plain);
  b.build(2, 10, r);  // the reset stream compresses the next body as well
  b.build_plain_body(2, 10, plain);
  EXPECT_EQ(core::gzip_decompress(r.body, 1 << 20), plain);
}

TEST(RequestBuilder, SingleJsonTakesSlotsInTurn) {
  RequestBuilder b(workload(Mode::json, 4), "h", "", false);
  RequestBytes r;
  std::vector<core::Metric> seen;
  for (std::uint64_t seq = 1; seq <= 5; ++seq) {
    b.build(0, seq, r);
    EXPECT_EQ(r.head.rfind("POST /update/ HTTP/1.1\r\n", 0), 0u);
    seen.push_back(core::decode_metric(r.body));
  }
  EXPECT_EQ(seen[0], core::Metric::counter("r1_a0_c", agent_counter_delta(1)));
  EXPECT_EQ(seen[1], core::Metric::counter("r1_loadgen_hot", hot_counter_delta(2)));
  EXPECT_EQ(seen[2], core::Metric::gauge("r1_a0_g0", gauge_value(0, 2, 3)));
  EXPECT_EQ(seen[3], core::Metric::gauge("r1_a0_g1", gauge_value(0, 3, 4)));
  EXPECT_EQ(seen[4], core::Metric::counter("r1_a0_c", agent_counter_delta(5)));
  EXPECT_EQ(slots_of(workload(Mode::json, 4), 6).first, 1u);
}

TEST(RequestBuilder, TextPath) {
  RequestBuilder b(workload(Mode::text, 3), "h", "k", true);  // gzip ignored: no body
  RequestBytes r;
  b.build(4, 3, r);
  EXPECT_EQ(
      r.head.substr(0, r.head.find("\r\n")),
      "POST /update/gauge/r1_a4_g0/" + core::format_gauge(gauge_value(4, 2, 3)) + " HTTP/1.1");
  EXPECT_EQ(header(r.head, "Content-Length"), "0");
  EXPECT_EQ(header(r.head, "Content-Encoding"), "");
  EXPECT_EQ(header(r.head, "HashSHA256"), core::hmac_sha256_hex("k", ""));
  EXPECT_TRUE(r.body.empty());
  b.build(4, 1, r);
  EXPECT_EQ(r.head.substr(0, r.head.find("\r\n")),
            "POST /update/counter/r1_a4_c/" + std::to_string(agent_counter_delta(1)) + " HTTP/1.1");
}

TEST(RequestBuilder, PipelinedReads) {
  RequestBuilder b(workload(Mode::batch, 4), "h:1", "", false);
  std::string reads;
  b.build_reads(5, false, reads);
  EXPECT_EQ(reads,
            "GET /value/counter/r1_a5_c HTTP/1.1\r\nHost: h:1\r\n\r\n"
            "GET /value/gauge/r1_a5_g0 HTTP/1.1\r\nHost: h:1\r\n\r\n"
            "GET /value/gauge/r1_a5_g1 HTTP/1.1\r\nHost: h:1\r\n\r\n");
  reads.clear();
  b.build_reads(5, true, reads);
  EXPECT_NE(reads.find("GET /value/counter/r1_loadgen_hot "), std::string::npos);
}

TEST(RequestBuilder, RunIds) {
  EXPECT_TRUE(valid_run_id(""));
  EXPECT_TRUE(valid_run_id("lg-1.2_"));
  EXPECT_FALSE(valid_run_id("a b"));
  EXPECT_FALSE(valid_run_id("a%2F"));
  EXPECT_FALSE(valid_run_id(std::string(65, 'a')));
}

}  // namespace
}  // namespace metrics::loadgen
