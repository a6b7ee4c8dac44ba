#include "metrics/loadgen/request_builder.hpp"

#include <gtest/gtest.h>

#include "metrics/core/gzip.hpp"
#include "metrics/core/json_codec.hpp"
#include "metrics/core/signature.hpp"
#include "metrics/core/value_format.hpp"
#include "metrics/loadgen/http_response.hpp"

namespace metrics::loadgen {
namespace {

// The unlabelled workload of Part 1 (per-agent names), unless `labels`.
Workload workload(Mode mode, std::size_t batch = 29, bool labels = false) {
  return Workload{"r1_", batch, mode, labels};
}
Workload labelled(Mode mode, std::size_t batch = 29) {
  return workload(mode, batch, true);
}

// Splits "head\r\n\r\n" into its header lines for lookups.
std::string header(const std::string& head, const std::string& name) {
  const auto at = head.find("\r\n" + name + ": ");
  if (at == std::string::npos) return {};
  const auto from = at + name.size() + 4;
  return head.substr(from, head.find("\r\n", from) - from);
}

TEST(RequestBuilder, Names) {
  const Workload w = workload(Mode::batch);
  EXPECT_EQ(metric_name(w, 7, 0), "r1_a7_c");
  EXPECT_EQ(metric_name(w, 7, 1), "r1_loadgen_hot");
  EXPECT_EQ(metric_name(w, 7, 2), "r1_a7_g0");
  EXPECT_EQ(metric_name(Workload{"", 29, Mode::batch, false}, 12, 28), "a12_g26");
}

TEST(RequestBuilder, LabelledNamesAreSharedByTheAgents) {
  const Workload w = labelled(Mode::batch);
  EXPECT_EQ(metric_name(w, 7, 0), "r1_c");
  EXPECT_EQ(metric_name(w, 8, 0), "r1_c");
  EXPECT_EQ(metric_name(w, 7, 1), "r1_loadgen_hot");
  EXPECT_EQ(metric_name(w, 7, 28), "r1_g26");
  EXPECT_EQ(agent_labels(w, 7),
            core::Labels::make({{"instance", "loadgen-7"}, {"job", "loadgen"}}));
  EXPECT_TRUE(agent_labels(workload(Mode::batch), 7).empty());
}

TEST(RequestBuilder, LabelsAreTheDefault) {
  EXPECT_TRUE(Workload{}.labelled());
  // The text path has no room for labels.
  EXPECT_FALSE(labelled(Mode::text).labelled());
  EXPECT_EQ(metric_name(labelled(Mode::text), 7, 0), "r1_a7_c");
  EXPECT_TRUE(labelled(Mode::json).labelled());
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
  EXPECT_EQ(r.body.front(), '[');  // a plain array, exactly as in Part 1
  const auto batch = core::decode_updates(r.body);
  EXPECT_FALSE(batch.envelope);
  const auto& metrics = batch.updates;
  ASSERT_EQ(metrics.size(), 29u);
  EXPECT_EQ(metrics[0], core::Update::counter("r1_a3_c", agent_counter_delta(5)));
  EXPECT_EQ(metrics[1], core::Update::counter("r1_loadgen_hot", hot_counter_delta(5)));
  for (std::size_t s = 2; s < 29; ++s)
    EXPECT_EQ(metrics[s],
              core::Update::gauge(metric_name(workload(Mode::batch), 3, s), gauge_value(3, s, 5)));
}

TEST(RequestBuilder, AuthorizationOnWritesAndReads) {
  RequestBuilder b(workload(Mode::batch), "h", "", false);
  RequestBytes r;
  b.build(1, 1, r);
  EXPECT_EQ(r.head.find("Authorization"), std::string::npos);
  b.set_authorization("Bearer tok-1");
  b.build(1, 2, r);
  EXPECT_EQ(header(r.head, "Authorization"), "Bearer tok-1");
  EXPECT_TRUE(r.head.ends_with("\r\n\r\n"));
  std::string reads;
  b.build_read(1, {Scope::series, 0}, reads);
  EXPECT_NE(reads.find("\r\nAuthorization: Bearer tok-1\r\n\r\n{"), std::string::npos) << reads;
}

TEST(RequestBuilder, LabelledBatchIsAnEnvelopeWithTheAgentsInstance) {
  const Workload w = labelled(Mode::batch);
  RequestBuilder b(w, "127.0.0.1:8080", "", false);
  RequestBytes r;
  b.build(3, 5, r);
  EXPECT_EQ(r.head.rfind("POST /updates/ HTTP/1.1\r\n", 0), 0u);
  EXPECT_EQ(header(r.head, "Content-Length"), std::to_string(r.body.size()));
  EXPECT_EQ(
      r.body.rfind("{\"labels\":{\"instance\":\"loadgen-3\",\"job\":\"loadgen\"},\"metrics\":[", 0),
      0u);
  const auto batch = core::decode_updates(r.body);
  EXPECT_TRUE(batch.envelope);
  const core::Labels own = agent_labels(w, 3);
  EXPECT_EQ(batch.labels, own);
  ASSERT_EQ(batch.updates.size(), 29u);
  EXPECT_EQ(batch.updates[0], core::Update::counter("r1_c", agent_counter_delta(5), own));
  EXPECT_EQ(batch.updates[1], core::Update::counter("r1_loadgen_hot", hot_counter_delta(5), own));
  for (std::size_t s = 2; s < 29; ++s)
    EXPECT_EQ(batch.updates[s],
              core::Update::gauge("r1_g" + std::to_string(s - 2), gauge_value(3, s, 5), own));
  // Another agent: same names, its own instance.
  b.build(4, 5, r);
  const auto other = core::decode_updates(r.body);
  EXPECT_EQ(other.labels.get("instance"), "loadgen-4");
  EXPECT_EQ(other.updates[0].id, "r1_c");
}

TEST(RequestBuilder, LabelledSingleJsonCarriesTheLabels) {
  const Workload w = labelled(Mode::json, 4);
  RequestBuilder b(w, "h", "", false);
  RequestBytes r;
  b.build(2, 3, r);
  EXPECT_EQ(r.head.rfind("POST /update/ HTTP/1.1\r\n", 0), 0u);
  EXPECT_EQ(core::decode_update(r.body),
            core::Update::gauge("r1_g0", gauge_value(2, 2, 3), agent_labels(w, 2)));
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
  for (bool labels : {false, true}) {
    RequestBuilder b(workload(Mode::batch, 29, labels), "h", "", false);
    RequestBytes r;
    b.build(1, 100, r);
    const auto* body_data = r.body.data();
    const auto* head_data = r.head.data();
    // Later requests of similar length are built in place: no allocation,
    // the envelope included.
    for (std::uint64_t seq = 101; seq < 150; ++seq)
      b.build(1, seq, r);
    EXPECT_EQ(r.body.data(), body_data) << labels;
    EXPECT_EQ(r.head.data(), head_data) << labels;
    const auto batch = core::decode_updates(r.body);
    EXPECT_EQ(batch.updates.size(), 29u);
    EXPECT_EQ(batch.envelope, labels);
  }
}

TEST(RequestBuilder, GzipAndSignature) {
  RequestBuilder b(labelled(Mode::batch), "h", "k3y", true);
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
  std::vector<core::Update> seen;
  for (std::uint64_t seq = 1; seq <= 5; ++seq) {
    b.build(0, seq, r);
    EXPECT_EQ(r.head.rfind("POST /update/ HTTP/1.1\r\n", 0), 0u);
    seen.push_back(core::decode_update(r.body));
  }
  EXPECT_EQ(seen[0], core::Update::counter("r1_a0_c", agent_counter_delta(1)));
  EXPECT_EQ(seen[1], core::Update::counter("r1_loadgen_hot", hot_counter_delta(2)));
  EXPECT_EQ(seen[2], core::Update::gauge("r1_a0_g0", gauge_value(0, 2, 3)));
  EXPECT_EQ(seen[3], core::Update::gauge("r1_a0_g1", gauge_value(0, 3, 4)));
  EXPECT_EQ(seen[4], core::Update::counter("r1_a0_c", agent_counter_delta(5)));
  EXPECT_EQ(slots_of(workload(Mode::json, 4), 6).first, 1u);
}

TEST(RequestBuilder, TextPath) {
  // gzip ignored: no body; labels ignored: no room for them.
  RequestBuilder b(labelled(Mode::text, 3), "h", "k", true);
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

// Splits pipelined POST /value/ requests into their JSON bodies.
std::vector<std::string> bodies_of(const std::string& reads) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < reads.size()) {
    const auto end = reads.find("\r\n\r\n", at);
    EXPECT_NE(end, std::string::npos);
    if (end == std::string::npos) break;
    const std::string head = reads.substr(at, end + 4 - at);
    EXPECT_EQ(head.rfind("POST /value/ HTTP/1.1\r\n", 0), 0u) << head;
    EXPECT_EQ(header(head, "Content-Type"), "application/json");
    const auto length = std::stoul(header(head, "Content-Length"));
    out.push_back(reads.substr(end + 4, length));
    at = end + 4 + length;
  }
  return out;
}

TEST(RequestBuilder, ReadsAskForTheSeriesOrTheClassicValue) {
  const Workload w = labelled(Mode::batch, 4);
  RequestBuilder b(w, "h:1", "", false);
  const ReadTarget series{Scope::series, 2};
  const ReadTarget classic{Scope::classic, 0};
  std::string reads;
  b.build_reads(5, std::vector<ReadTarget>{series, classic}, reads);
  EXPECT_EQ(header(reads.substr(0, reads.find("\r\n\r\n") + 4), "Host"), "h:1");
  const auto bodies = bodies_of(reads);
  ASSERT_EQ(bodies.size(), 2u);
  const auto q0 = core::decode_value_query(bodies[0]);
  EXPECT_EQ(q0.key, (core::MetricKey{core::MetricType::gauge, "r1_g0"}));
  EXPECT_EQ(q0.labels, agent_labels(w, 5));
  const auto q1 = core::decode_value_query(bodies[1]);
  EXPECT_EQ(q1.key, (core::MetricKey{core::MetricType::counter, "r1_c"}));
  EXPECT_FALSE(q1.labels.has_value());  // no "labels": the classic value
}

TEST(RequestBuilder, UnlabelledSeriesReadsAskForTheSeriesWithoutLabels) {
  RequestBuilder b(workload(Mode::batch, 4), "h", "", false);
  std::string reads;
  b.build_read(5, {Scope::series, 0}, reads);
  const auto q = core::decode_value_query(bodies_of(reads).at(0));
  EXPECT_EQ(q.key.id, "r1_a5_c");
  ASSERT_TRUE(q.labels.has_value());  // "labels":{} reads the series, not the classic value
  EXPECT_TRUE(q.labels->empty());
}

TEST(RequestBuilder, ReadPlans) {
  using T = ReadTarget;
  const auto S = Scope::series;
  const auto C = Scope::classic;
  // Labelled: the agent's series are its own, the classic values everybody's.
  const Workload l = labelled(Mode::batch, 4);
  EXPECT_EQ(read_plan(l, true, false), (std::vector<T>{{S, 0}, {S, 1}}));
  EXPECT_EQ(read_plan(l, true, true), (std::vector<T>{{S, 0}, {S, 1}, {C, 0}, {C, 1}}));
  EXPECT_EQ(read_plan(l, false, false), (std::vector<T>{{S, 0}, {S, 1}, {S, 2}, {S, 3}}));
  EXPECT_EQ(read_plan(l, false, true).size(), 8u);
  // Unlabelled: both scopes per agent, the hot counter shared.
  const Workload u = workload(Mode::batch, 4);
  EXPECT_EQ(read_plan(u, true, false), (std::vector<T>{{S, 0}, {C, 0}}));
  EXPECT_EQ(read_plan(u, true, true), (std::vector<T>{{S, 0}, {S, 1}, {C, 0}, {C, 1}}));
  EXPECT_EQ(read_plan(u, false, false),
            (std::vector<T>{{S, 0}, {S, 2}, {S, 3}, {C, 0}, {C, 2}, {C, 3}}));
  EXPECT_EQ(read_plan(workload(Mode::batch, 1), false, true), (std::vector<T>{{S, 0}, {C, 0}}));
}

TEST(RequestBuilder, IdempotencyKeyPerRequest) {
  for (Mode mode : {Mode::batch, Mode::json, Mode::text}) {
    Workload w = labelled(mode);
    RequestBuilder plain(w, "h", "", false);
    RequestBytes bytes;
    plain.build(3, 9, bytes);
    EXPECT_EQ(header(bytes.head, "Idempotency-Key"), "");
    w.idempotency_keys = true;
    RequestBuilder keyed(w, "h", "k", true);
    keyed.build(3, 9, bytes);
    EXPECT_EQ(header(bytes.head, "Idempotency-Key"), "r1_k3-9") << to_string(mode);
    const std::string again = bytes.head;
    keyed.build(3, 10, bytes);
    EXPECT_EQ(header(bytes.head, "Idempotency-Key"), "r1_k3-10");
    keyed.build(4, 9, bytes);
    EXPECT_EQ(header(bytes.head, "Idempotency-Key"), "r1_k4-9");
    // The same request number rebuilt is the same bytes: a resend's key
    // comes with the same body.
    keyed.build(3, 9, bytes);
    EXPECT_EQ(bytes.head, again);
  }
  std::string longest;
  append_idempotency_key(longest, Workload{std::string(64, 'r'), 29, Mode::batch, true}, UINT32_MAX,
                         UINT64_MAX);
  EXPECT_LE(longest.size(), 128u);
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
