#include "detail/file_format.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <bit>
#include <limits>

namespace metrics::storage::detail {
namespace {

using core::Metric;

TEST(SnapshotFormat, RoundTripsEveryBitOfGauges) {
  const std::vector<Metric> metrics{
      Metric::gauge("a", 0.1 + 0.2),
      Metric::gauge("b", -0.0),
      Metric::gauge("c", std::numeric_limits<double>::denorm_min()),
      Metric::gauge("d", std::numeric_limits<double>::max()),
      Metric::gauge("e", 1e21),
      Metric::gauge("f", 120500),
      Metric::gauge("f2", 18446744073709551616.0 * 4),
      Metric::gauge("f3", 123456789012345680.0),
      Metric::counter("g", std::numeric_limits<std::int64_t>::min()),
      Metric::counter("h\"\\", std::numeric_limits<std::int64_t>::max()),
  };
  const auto text = encode_snapshot(metrics, 0xfeedfacecafebeefULL, 42);
  const auto snap = decode_snapshot(text);
  ASSERT_EQ(snap.metrics.size(), metrics.size());
  for (std::size_t i = 0; i < metrics.size(); ++i) {
    EXPECT_EQ(snap.metrics[i].id, metrics[i].id);
    EXPECT_EQ(snap.metrics[i].type, metrics[i].type);
    EXPECT_EQ(snap.metrics[i].delta, metrics[i].delta);
    EXPECT_EQ(std::bit_cast<std::uint64_t>(snap.metrics[i].value),
              std::bit_cast<std::uint64_t>(metrics[i].value))
        << metrics[i].id;
  }
  EXPECT_EQ(snap.log_id, 0xfeedfacecafebeefULL);
  EXPECT_EQ(snap.seq, 42U);
  EXPECT_THAT(text, ::testing::StartsWith(R"({"format":"metrics-snapshot","version":1,)"));
}

TEST(SnapshotFormat, WithoutLogIdHasNone) {
  const auto snap = decode_snapshot(encode_snapshot({}, std::nullopt, 0));
  EXPECT_FALSE(snap.log_id);
  EXPECT_TRUE(snap.metrics.empty());
}

TEST(SnapshotFormat, ReadsTheGoServersBareArray) {
  const auto snap = decode_snapshot(
      R"([{"id":"Alloc","type":"gauge","value":1.5},{"id":"PollCount","type":"counter","delta":3}])");
  EXPECT_EQ(snap.metrics,
            (std::vector<Metric>{Metric::gauge("Alloc", 1.5), Metric::counter("PollCount", 3)}));
}

TEST(SnapshotFormat, RejectsDamage) {
  for (const char* bad :
       {"", "{", "null", "{\"format\":\"x\",\"version\":1,\"metrics\":[]}",
        R"({"format":"metrics-snapshot","version":2,"metrics":[]})",
        R"({"format":"metrics-snapshot","version":1})", R"([{"id":"a","type":"gauge"}])",
        R"([{"id":"a","type":"counter","delta":1.5}])", R"([{"id":"","type":"gauge","value":1}])",
        R"([{"id":"a","type":"histogram","value":1}])"}) {
    EXPECT_THROW((void)decode_snapshot(bad), std::runtime_error) << bad;
  }
}

std::vector<Metric> replay_all(std::string_view records, std::uint64_t min_seq,
                               ReplayResult* result = nullptr, std::uint64_t log_id = 9) {
  std::vector<Metric> out;
  auto r = replay_log(records, log_id, min_seq, [&out](Metric m) { out.push_back(std::move(m)); });
  if (result) *result = r;
  return out;
}

TEST(LogFormat, HeaderRoundTrips) {
  EXPECT_EQ(decode_log_header(encode_log_header(7)), 7U);
  EXPECT_EQ(decode_log_header(encode_log_header(7).substr(0, 10)), std::nullopt);
  EXPECT_EQ(decode_log_header(""), std::nullopt);
  EXPECT_THROW((void)decode_log_header("{\"format\":\"metrics-snapshot\"}"), std::runtime_error);
}

TEST(LogFormat, RecordsReplayInOrderAndSkipOldOnes) {
  std::string log;
  append_log_record(log, 9, 1, std::vector<Metric>{Metric::counter("c", 1)});
  append_log_record(log, 9, 2,
                    std::vector<Metric>{Metric::counter("c", 2), Metric::gauge("g", -0.5)});
  append_log_record(log, 9, 5, std::vector<Metric>{Metric::counter("c", 3)});
  ReplayResult r;
  EXPECT_EQ(replay_all(log, 0, &r),
            (std::vector<Metric>{Metric::counter("c", 1), Metric::counter("c", 2),
                                 Metric::gauge("g", -0.5), Metric::counter("c", 3)}));
  EXPECT_EQ(r.last_seq, 5U);
  EXPECT_EQ(r.records, 3U);
  EXPECT_EQ(r.ignored_bytes, 0U);
  EXPECT_EQ(replay_all(log, 2), (std::vector<Metric>{Metric::counter("c", 3)}));
}

TEST(LogFormat, TornOrDamagedTailIsIgnored) {
  std::string log;
  append_log_record(log, 9, 1, std::vector<Metric>{Metric::counter("c", 1)});
  const auto first = log.size();
  append_log_record(log, 9, 2, std::vector<Metric>{Metric::counter("c", 2)});
  for (std::size_t cut = first; cut < log.size(); ++cut) {
    ReplayResult r;
    EXPECT_EQ(replay_all(log.substr(0, cut), 0, &r), std::vector<Metric>{Metric::counter("c", 1)});
    EXPECT_EQ(r.ignored_bytes, cut - first);
  }
  auto flipped = log;
  flipped[log.size() - 3] ^= 0x10;
  EXPECT_EQ(replay_all(flipped, 0), std::vector<Metric>{Metric::counter("c", 1)});
}

TEST(LogFormat, RecordsOfAnotherLogIdAreNotReplayed) {
  std::string log;
  append_log_record(log, 9, 1, std::vector<Metric>{Metric::counter("c", 1)});
  EXPECT_TRUE(replay_all(log, 0, nullptr, 10).empty());
}

TEST(LogFormat, ZerosAfterTheLastRecordAreNotATornTail) {
  std::string log;
  append_log_record(log, 9, 1, std::vector<Metric>{Metric::counter("c", 1)});
  ReplayResult r;
  EXPECT_EQ(replay_all(log + std::string(4096, '\0'), 0, &r),
            std::vector<Metric>{Metric::counter("c", 1)});
  EXPECT_FALSE(r.torn);
  EXPECT_EQ(r.ignored_bytes, 4096U);
  (void)replay_all(log + "x", 0, &r);
  EXPECT_TRUE(r.torn);
}

TEST(LogFormat, StaleRecordAfterNewerOneEndsReplay) {
  std::string log;
  append_log_record(log, 9, 4, std::vector<Metric>{Metric::counter("c", 4)});
  append_log_record(log, 9, 3, std::vector<Metric>{Metric::counter("c", 3)});
  EXPECT_EQ(replay_all(log, 0), std::vector<Metric>{Metric::counter("c", 4)});
}

}  // namespace
}  // namespace metrics::storage::detail
