// The snapshot and write-ahead log formats: version 2 round trips (series
// with labels and timestamps, classic values, removals), and the files of
// version 1 (and the Go server's bare array) as the previous writer made
// them, which must still load.
#include "detail/file_format.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <zlib.h>

#include <bit>
#include <limits>

#include "old_file_format.hpp"

namespace metrics::storage::detail {

void PrintTo(const LogChange& c, std::ostream* os) {
  *os << static_cast<int>(c.kind) << ":" << c.point.id << c.point.labels.to_string() << "="
      << c.point.total << "/" << c.point.value << "@" << c.point.timestamp_ms;
}

namespace {

using core::Labels;
using core::MetricType;
using core::Point;
using core::SeriesKey;
using ::testing::ElementsAre;

Labels labels(std::vector<core::Label> l) {
  return Labels::make(std::move(l));
}

Point at(Point p, std::int64_t ms) {
  p.timestamp_ms = ms;
  return p;
}

void expect_same_bits(const std::vector<Point>& got, const std::vector<Point>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (std::size_t i = 0; i < want.size(); ++i) {
    EXPECT_EQ(got[i].id, want[i].id);
    EXPECT_EQ(got[i].type, want[i].type);
    EXPECT_EQ(got[i].labels, want[i].labels);
    EXPECT_EQ(got[i].total, want[i].total);
    EXPECT_EQ(got[i].timestamp_ms, want[i].timestamp_ms);
    EXPECT_EQ(std::bit_cast<std::uint64_t>(got[i].value),
              std::bit_cast<std::uint64_t>(want[i].value))
        << want[i].id;
  }
}

TEST(SnapshotFormat, RoundTripsEveryBitOfGaugesAndSeries) {
  const std::vector<Point> classic{
      Point::gauge("a", 0.1 + 0.2),
      Point::gauge("b", -0.0),
      Point::gauge("c", std::numeric_limits<double>::denorm_min()),
      Point::gauge("d", std::numeric_limits<double>::max()),
      Point::gauge("e", 1e21),
      Point::gauge("f", 120500),
      Point::gauge("f2", 18446744073709551616.0 * 4),
      Point::gauge("f3", 123456789012345680.0),
      Point::counter("g", std::numeric_limits<std::int64_t>::min()),
      Point::counter("h\"\\", std::numeric_limits<std::int64_t>::max()),
  };
  const Labels odd = labels({{"instance", "h:1"}, {"v", "quote\" back\\ \xc3\xa9 {}=,\n"}});
  const std::vector<Point> series{
      at(Point::gauge("a", 0.1 + 0.2), 1'700'000'000'123),
      at(Point::gauge("b", -0.0, odd), 0),
      at(Point::counter("g", std::numeric_limits<std::int64_t>::min(), odd), -5),
      at(Point::counter("h\"\\", 7, labels({{"job", "x"}})),
         std::numeric_limits<std::int64_t>::max()),
  };
  const auto text = encode_snapshot(classic, series, 0xfeedfacecafebeefULL, 42);
  const auto snap = decode_snapshot(text);
  expect_same_bits(snap.classic, classic);
  expect_same_bits(snap.series, series);
  EXPECT_EQ(snap.log_id, 0xfeedfacecafebeefULL);
  EXPECT_EQ(snap.seq, 42U);
  EXPECT_EQ(snap.version, 2);
  EXPECT_THAT(text, ::testing::StartsWith(R"({"format":"metrics-snapshot","version":2,)"));
}

// Remote write keeps any double: NaN (with its payload, the stale marker's
// 0x7ff0000000000002) and infinities are written as their bits.
TEST(SnapshotFormat, NonFiniteSeriesValuesKeepTheirBits) {
  const std::vector<Point> series{
      at(Point::gauge("nan", std::bit_cast<double>(std::uint64_t{0x7ff0000000000002ULL}),
                      labels({{"job", "x"}})),
         1),
      at(Point::gauge("inf", std::numeric_limits<double>::infinity()), 2),
      at(Point::gauge("ninf", -std::numeric_limits<double>::infinity()), 3),
  };
  const auto text = encode_snapshot({}, series, std::nullopt, 0);
  EXPECT_THAT(text, ::testing::HasSubstr(R"("value_bits":"7ff0000000000002")"));
  const auto snap = decode_snapshot(text);
  expect_same_bits(snap.series, series);
  EXPECT_THROW((void)decode_snapshot(R"({"format":"metrics-snapshot","version":2,"metrics":[],)"
                                     R"("series":[{"id":"a","type":"gauge","labels":{},)"
                                     R"("value_bits":"xyz","timestamp_ms":0}]})"),
               std::runtime_error);
}

TEST(SnapshotFormat, WithoutLogIdHasNone) {
  const auto snap = decode_snapshot(encode_snapshot({}, {}, std::nullopt, 0));
  EXPECT_FALSE(snap.log_id);
  EXPECT_TRUE(snap.classic.empty());
  EXPECT_TRUE(snap.series.empty());
}

TEST(SnapshotFormat, ReadsTheGoServersBareArray) {
  const auto snap = decode_snapshot(
      R"([{"id":"Alloc","type":"gauge","value":1.5},{"id":"PollCount","type":"counter","delta":3}])");
  EXPECT_EQ(snap.version, 0);
  EXPECT_EQ(snap.classic,
            (std::vector<Point>{Point::gauge("Alloc", 1.5), Point::counter("PollCount", 3)}));
  // Each becomes its unlabelled series too, of unknown time.
  EXPECT_EQ(snap.series, snap.classic);
}

// Written by the version 1 writer (the file storage before series).
constexpr std::string_view kVersion1Snapshot =
    R"({"format":"metrics-snapshot","version":1,"log_id":"00000000000000ff","seq":3,"metrics":[
{"id":"Alloc","type":"gauge","value":1.5},
{"id":"PollCount","type":"counter","delta":-9223372036854775808},
{"id":"quote\"s","type":"gauge","value":-0.0}
]}
)";

TEST(SnapshotFormat, ReadsVersion1AsClassicValuesAndUnlabelledSeries) {
  const auto snap = decode_snapshot(kVersion1Snapshot);
  EXPECT_EQ(snap.version, 1);
  EXPECT_EQ(snap.log_id, 0xffU);
  EXPECT_EQ(snap.seq, 3U);
  const std::vector<Point> want{
      Point::gauge("Alloc", 1.5),
      Point::counter("PollCount", std::numeric_limits<std::int64_t>::min()),
      Point::gauge("quote\"s", -0.0)};
  expect_same_bits(snap.classic, want);
  expect_same_bits(snap.series, want);
}

TEST(SnapshotFormat, RejectsDamage) {
  for (
      const char* bad : {
          "",
          "{",
          "null",
          "{\"format\":\"x\",\"version\":1,\"metrics\":[]}",
          R"({"format":"metrics-snapshot","version":3,"metrics":[],"series":[]})",
          R"({"format":"metrics-snapshot","version":0,"metrics":[]})",
          R"({"format":"metrics-snapshot","version":1})",
          R"({"format":"metrics-snapshot","version":2,"metrics":[]})",
          R"([{"id":"a","type":"gauge"}])",
          R"([{"id":"a","type":"counter","delta":1.5}])",
          R"([{"id":"","type":"gauge","value":1}])",
          R"([{"id":"a","type":"histogram","value":1}])",
          // Series without labels, with invalid ones, or without a time.
          R"({"format":"metrics-snapshot","version":2,"metrics":[],"series":[{"id":"a","type":"gauge","value":1,"timestamp_ms":1}]})",
          R"({"format":"metrics-snapshot","version":2,"metrics":[],"series":[{"id":"a","type":"gauge","value":1,"labels":{"__x":"1"},"timestamp_ms":1}]})",
          R"({"format":"metrics-snapshot","version":2,"metrics":[],"series":[{"id":"a","type":"gauge","value":1,"labels":{"x":""},"timestamp_ms":1}]})",
          R"({"format":"metrics-snapshot","version":2,"metrics":[],"series":[{"id":"a","type":"gauge","value":1,"labels":{"x":1},"timestamp_ms":1}]})",
          R"({"format":"metrics-snapshot","version":2,"metrics":[],"series":[{"id":"a","type":"gauge","value":1,"labels":{}}]})",
      }) {
    EXPECT_THROW((void)decode_snapshot(bad), std::runtime_error) << bad;
  }
}

std::vector<LogChange> replay_all(std::string_view records, std::uint64_t min_seq,
                                  ReplayResult* result = nullptr, std::uint64_t log_id = 9,
                                  int version = 2) {
  std::vector<LogChange> out;
  auto r = replay_log(records, LogHeader{log_id, version}, min_seq,
                      [&out](LogChange c) { out.push_back(std::move(c)); });
  if (result) *result = r;
  return out;
}

LogChange series(Point p) {
  return {LogChange::Kind::series, std::move(p)};
}
LogChange classic(Point p) {
  return {LogChange::Kind::classic, std::move(p)};
}
LogChange removed(SeriesKey k) {
  return {LogChange::Kind::removed, Point{k.id, k.type, k.labels, 0, 0, 0}};
}

// Record i of a counter c: its series and classic value.
void append_counter(std::string& log, std::uint64_t seq, std::int64_t v) {
  const std::vector<Point> s{at(Point::counter("c", v), 10)};
  const std::vector<Point> c{Point::counter("c", v)};
  append_log_record(log, 9, seq, s, c);
}

TEST(LogFormat, HeaderRoundTrips) {
  const auto h = decode_log_header(encode_log_header(7));
  ASSERT_TRUE(h);
  EXPECT_EQ(h->log_id, 7U);
  EXPECT_EQ(h->version, 3);
  const auto v2 = decode_log_header(std::string("MTRCWAL2\x07\0\0\0\0\0\0\0", 16));
  ASSERT_TRUE(v2);
  EXPECT_EQ(v2->version, 2);
  EXPECT_EQ(decode_log_header(encode_log_header(7).substr(0, 10)), std::nullopt);
  EXPECT_EQ(decode_log_header(""), std::nullopt);
  EXPECT_THROW((void)decode_log_header("{\"format\":\"metrics-snapshot\"}"), std::runtime_error);
  EXPECT_THROW((void)decode_log_header("MTRCWAL9xxxxxxxx"), std::runtime_error);
}

// Exactly-once writes: a record carries the keys of its batches (version 3
// only), and a snapshot with keys is version 3 (without, still version 2).
TEST(LogFormat, IdempotencyKeysRoundTripInRecordsAndSnapshots) {
  const metrics::storage::KeyRecord k{metrics::storage::Guard::of("key-1", "body"), 1234};
  std::string log;
  const std::vector<Point> s{at(Point::counter("c", 1), 10)};
  const std::vector<Point> c{Point::counter("c", 1)};
  append_log_record(log, 9, 1, s, c, {}, std::span(&k, 1));
  const auto changes = replay_all(log, 0, nullptr, 9, 3);
  ASSERT_EQ(changes.size(), 3U);
  EXPECT_EQ(changes[2].kind, LogChange::Kind::key);
  EXPECT_EQ(changes[2].key, k);
  // A version 2 log has no kind 3: such a record is malformed there.
  EXPECT_THROW((void)replay_all(log, 0, nullptr, 9, 2), std::runtime_error);

  const auto with_keys = encode_snapshot(c, s, std::nullopt, 0, std::span(&k, 1));
  EXPECT_THAT(with_keys, ::testing::StartsWith(R"({"format":"metrics-snapshot","version":3,)"));
  const auto snap = decode_snapshot(with_keys);
  EXPECT_EQ(snap.version, 3);
  ASSERT_EQ(snap.keys.size(), 1U);
  EXPECT_EQ(snap.keys[0], k);
  EXPECT_THAT(encode_snapshot(c, s, std::nullopt, 0),
              ::testing::StartsWith(R"({"format":"metrics-snapshot","version":2,)"));
  EXPECT_THROW((void)decode_snapshot(
                   R"({"format":"metrics-snapshot","version":3,"metrics":[],"series":[]})"),
               std::runtime_error);
}

TEST(LogFormat, RecordsReplayInOrderAndSkipOldOnes) {
  const Labels a = labels({{"instance", "a"}, {"job", "j"}});
  std::string log;
  append_counter(log, 1, 1);
  const std::vector<Point> s2{at(Point::counter("c", 2, a), 20), at(Point::gauge("g", -0.5), 21)};
  const std::vector<Point> c2{Point::counter("c", 3), Point::gauge("g", -0.5)};
  const std::vector<SeriesKey> r2{{MetricType::gauge, "old", a}, {MetricType::counter, "c", {}}};
  append_log_record(log, 9, 2, s2, c2, r2);
  append_counter(log, 5, 3);
  ReplayResult r;
  EXPECT_THAT(replay_all(log, 0, &r),
              ElementsAre(classic(Point::counter("c", 1)), series(at(Point::counter("c", 1), 10)),
                          // Within a record: removals, classic values, series.
                          removed(r2[0]), removed(r2[1]), classic(c2[0]), classic(c2[1]),
                          series(s2[0]), series(s2[1]), classic(Point::counter("c", 3)),
                          series(at(Point::counter("c", 3), 10))));
  EXPECT_EQ(r.last_seq, 5U);
  EXPECT_EQ(r.records, 3U);
  EXPECT_EQ(r.ignored_bytes, 0U);
  EXPECT_EQ(replay_all(log, 2).size(), 2U);
}

TEST(LogFormat, TornOrDamagedTailIsIgnored) {
  std::string log;
  append_counter(log, 1, 1);
  const auto first = log.size();
  append_counter(log, 2, 2);
  for (std::size_t cut = first; cut < log.size(); ++cut) {
    ReplayResult r;
    EXPECT_EQ(replay_all(log.substr(0, cut), 0, &r).size(), 2U);
    EXPECT_EQ(r.ignored_bytes, cut - first);
  }
  auto flipped = log;
  flipped[log.size() - 3] ^= 0x10;
  EXPECT_EQ(replay_all(flipped, 0).size(), 2U);
}

TEST(LogFormat, RecordsOfAnotherLogIdAreNotReplayed) {
  std::string log;
  append_counter(log, 1, 1);
  EXPECT_TRUE(replay_all(log, 0, nullptr, 10).empty());
}

TEST(LogFormat, ZerosAfterTheLastRecordAreNotATornTail) {
  std::string log;
  append_counter(log, 1, 1);
  ReplayResult r;
  EXPECT_EQ(replay_all(log + std::string(4096, '\0'), 0, &r).size(), 2U);
  EXPECT_FALSE(r.torn);
  EXPECT_EQ(r.ignored_bytes, 4096U);
  (void)replay_all(log + "x", 0, &r);
  EXPECT_TRUE(r.torn);
}

TEST(LogFormat, StaleRecordAfterNewerOneEndsReplay) {
  std::string log;
  append_counter(log, 4, 4);
  append_counter(log, 3, 3);
  EXPECT_THAT(replay_all(log, 0),
              ElementsAre(classic(Point::counter("c", 4)), series(at(Point::counter("c", 4), 10))));
}

TEST(LogFormat, Version1LogsReplayAsClassicValuesAndUnlabelledSeries) {
  const std::string log = testing::old_format::log_header(9);
  const auto header = decode_log_header(log);
  ASSERT_TRUE(header);
  EXPECT_EQ(header->version, 1);
  EXPECT_EQ(header->log_id, 9U);
  std::string records;
  testing::old_format::append_record(records, 9, 1,
                                     {Point::counter("c", 5), Point::gauge("g", 2.5)});
  testing::old_format::append_record(records, 9, 2, {Point::counter("c", 7)});
  ReplayResult r;
  std::vector<LogChange> out;
  r = replay_log(records, *header, 0, [&out](LogChange c) { out.push_back(std::move(c)); });
  EXPECT_EQ(r.records, 2U);
  EXPECT_EQ(r.last_seq, 2U);
  EXPECT_THAT(out, ElementsAre(classic(Point::counter("c", 5)), series(Point::counter("c", 5)),
                               classic(Point::gauge("g", 2.5)), series(Point::gauge("g", 2.5)),
                               classic(Point::counter("c", 7)), series(Point::counter("c", 7))));
  // A version 2 reader of the same bytes would not make sense of them.
  EXPECT_THROW((void)replay_all(records, 0, nullptr, 9, 2), std::runtime_error);
}

TEST(LogFormat, MalformedLabelsWithAValidChecksumAreAnError) {
  // A series entry whose labels are not a canonical encoding.
  std::string log;
  const std::vector<Point> s{at(Point::counter("c", 1, labels({{"b", "1"}, {"a", "2"}})), 1)};
  append_log_record(log, 9, 1, s, {});
  // Swap the two labels' bytes in place: same length, valid crc recomputed below.
  const auto pos = log.find("a\xff");
  ASSERT_NE(pos, std::string::npos);
  std::string entries = log.substr(16);
  const auto at_labels = entries.find("a\xff");
  entries.replace(at_labels, 8,
                  std::string("b\xff"
                              "1\xff"
                              "a\xff"
                              "2\xff"));
  std::string bad;
  std::string id(8, '\0');
  id[0] = 9;
  std::string body = log.substr(8, 8) + entries;
  auto crc = ::crc32(0L, reinterpret_cast<const Bytef*>(id.data()), static_cast<uInt>(id.size()));
  crc = ::crc32(crc, reinterpret_cast<const Bytef*>(body.data()), static_cast<uInt>(body.size()));
  bad = log.substr(0, 4);
  for (int i = 0; i < 4; ++i)
    bad.push_back(static_cast<char>((crc >> (8 * i)) & 0xff));
  bad += body;
  EXPECT_THROW((void)replay_all(bad, 0), std::runtime_error);
}

}  // namespace
}  // namespace metrics::storage::detail
