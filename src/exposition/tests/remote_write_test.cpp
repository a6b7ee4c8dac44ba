// Remote write 1.0 codec: exact bytes of the encoder, the decoder's
// strictness (every malformed input is an InvalidInput that says why),
// validation against the project's rules, and random round trips.
#include "metrics/exposition/remote_write.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cmath>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "metrics/core/errors.hpp"
#include "metrics/exposition/snappy_block.hpp"

namespace metrics::exposition {
namespace {

using ::testing::HasSubstr;

std::string bytes(std::initializer_list<int> list) {
  std::string out;
  for (int b : list)
    out.push_back(static_cast<char>(b));
  return out;
}

// The message of the InvalidInput that `f` throws ("" when it throws none).
template <typename F>
std::string error_of(F&& f) {
  try {
    f();
  } catch (const core::InvalidInput& e) {
    return e.what();
  }
  return "";
}

// Decoding and validation together: the validated samples view into the
// request, which must stay alive beside them.
struct Decoded {
  WriteRequestView request;
  std::vector<ValidSeries> series;
};
Decoded decode_valid(std::string_view in, const DecodeLimits& limits = {}) {
  Decoded d;
  d.request = decode_write_request(in, limits);
  d.series = validate(d.request);
  return d;
}

std::string encode_one(std::vector<core::LabelView> labels, std::vector<Sample> samples) {
  std::string out;
  append_series(out, labels, samples);
  return out;
}

TEST(RemoteWriteEncode, ExactBytesOfOneSeries) {
  std::string out;
  const std::array samples{Sample{1.0, 1000}};
  append_series(out, "up", core::Labels{}, samples);
  // TimeSeries(1) len 30: Label(1) len 14 {name(1) "__name__", value(2) "up"},
  // Sample(2) len 12 {value(1) fixed64 1.0, timestamp(2) varint 1000}.
  std::string want = bytes({0x0A, 30, 0x0A, 14, 0x0A, 8});
  want += "__name__";
  want += bytes({0x12, 2});
  want += "up";
  want += bytes({0x12, 12, 0x09, 0, 0, 0, 0, 0, 0, 0xF0, 0x3F, 0x10, 0xE8, 0x07});
  EXPECT_EQ(out, want);
}

TEST(RemoteWriteEncode, DefaultsAreLeftOutButNegativeZeroIsKept) {
  // value +0.0 and timestamp 0 are proto3 defaults: an empty Sample.
  EXPECT_EQ(encode_one({}, {Sample{0.0, 0}}), bytes({0x0A, 2, 0x12, 0}));
  const std::string neg = encode_one({}, {Sample{-0.0, 0}});
  ASSERT_EQ(neg.size(), 13U);
  const auto req = decode_write_request(neg);
  ASSERT_EQ(req.samples.size(), 1U);
  EXPECT_TRUE(std::signbit(req.samples[0].value));
}

TEST(RemoteWriteEncode, NameGoesInItsSortedPlace) {
  std::string out;
  append_series(out, "m", core::Labels::make({{"b", "2"}, {"A", "1"}, {"_x", "3"}}),
                std::array{Sample{1, 1}});
  const auto req = decode_write_request(out);
  ASSERT_EQ(req.series.size(), 1U);
  std::vector<std::string_view> names;
  for (const auto& l : req.labels_of(req.series[0]))
    names.push_back(l.name);
  // 'A' < '_' (0x5F): "__name__" < "_x" < "b".
  EXPECT_THAT(names, ::testing::ElementsAre("A", "__name__", "_x", "b"));
}

TEST(RemoteWriteEncode, MetadataRoundTrips) {
  std::string out;
  append_metadata(out, {static_cast<std::uint32_t>(MetadataType::counter), "http_requests_total",
                        "Requests served.", "requests"});
  append_series(out, "x", core::Labels{}, std::array{Sample{2, 3}});
  const auto req = decode_write_request(out);
  ASSERT_EQ(req.metadata.size(), 1U);
  EXPECT_EQ(req.metadata[0].type, 1U);
  EXPECT_EQ(req.metadata[0].family_name, "http_requests_total");
  EXPECT_EQ(req.metadata[0].help, "Requests served.");
  EXPECT_EQ(req.metadata[0].unit, "requests");
  EXPECT_EQ(req.series.size(), 1U);
}

TEST(RemoteWriteDecode, EmptyRequestHasNoSeries) {
  const auto req = decode_write_request("");
  EXPECT_TRUE(req.series.empty());
  EXPECT_TRUE(validate(req).empty());
}

TEST(RemoteWriteDecode, MalformedInputSaysWhy) {
  // Truncated varint (continuation bit on the last byte).
  EXPECT_THAT(error_of([] {
                (void)decode_write_request(bytes({0x0A, 0x80}));
              }),
              HasSubstr("truncated varint at byte 1"));
  // A varint of 11 bytes.
  std::string longv = bytes({0x10});  // an unknown varint field
  longv.append(10, '\x80');
  longv.push_back('\x01');
  EXPECT_THAT(error_of([&] { (void)decode_write_request(longv); }), HasSubstr("malformed varint"));
  // Ten bytes whose last carries more than bit 63.
  std::string over = bytes({0x10});
  over.append(9, '\xFF');
  over.push_back('\x02');
  EXPECT_THAT(error_of([&] { (void)decode_write_request(over); }), HasSubstr("more than 64 bits"));
  // A length past the end.
  EXPECT_THAT(error_of([] {
                (void)decode_write_request(bytes({0x0A, 5, 0x0A}));
              }),
              HasSubstr("length 5 at byte 1 runs past the end of its message (1 bytes left)"));
  // A nested length past the end of its parent (but not of the buffer).
  EXPECT_THAT(error_of([] {
                (void)decode_write_request(bytes({0x0A, 2, 0x0A, 3, 0x0A, 0, 0, 0}));
              }),
              HasSubstr("runs past the end"));
  // Wrong wire type for a known field.
  EXPECT_THAT(error_of([] {
                (void)decode_write_request(bytes({0x08, 1}));
              }),
              HasSubstr("WriteRequest.timeseries (1) has wire type 0, expected 2 at byte 0"));
  EXPECT_THAT(error_of([] {
                (void)decode_write_request(bytes({0x0A, 3, 0x12, 1, 0x09}));
              }),
              HasSubstr("truncated 64-bit field"));
  EXPECT_THAT(error_of([] {
                (void)decode_write_request(bytes({0x0A, 4, 0x12, 2, 0x08, 1}));
              }),
              HasSubstr("Sample.value (1) has wire type 0, expected 1"));
  EXPECT_THAT(error_of([] {
                (void)decode_write_request(bytes({0x0A, 4, 0x0A, 2, 0x08, 1}));
              }),
              HasSubstr("Label.name (1) has wire type 0, expected 2"));
  // Field number 0 and wire types 6 and 7.
  EXPECT_THAT(error_of([] {
                (void)decode_write_request(bytes({0x02, 0}));
              }),
              HasSubstr("invalid field number 0"));
  EXPECT_THAT(error_of([] { (void)decode_write_request(bytes({0x0E})); }),
              HasSubstr("invalid wire type 6"));
  EXPECT_THAT(error_of([] { (void)decode_write_request(bytes({0x0F})); }),
              HasSubstr("invalid wire type 7"));
  // A group end without its start, a group never closed, a mismatched end.
  EXPECT_THAT(error_of([] { (void)decode_write_request(bytes({0x2C})); }),
              HasSubstr("end of group 5 without its start"));
  EXPECT_THAT(error_of([] {
                (void)decode_write_request(bytes({0x2B, 0x08, 1}));
              }),
              HasSubstr("group 5 is not closed"));
  EXPECT_THAT(error_of([] {
                (void)decode_write_request(bytes({0x2B, 0x34}));
              }),
              HasSubstr("end of group 6 closes group 5"));
  // A truncated 32-bit field.
  EXPECT_THAT(error_of([] {
                (void)decode_write_request(bytes({0x2D, 1, 2}));
              }),
              HasSubstr("truncated 32-bit field"));
}

TEST(RemoteWriteDecode, UnknownFieldsAreSkippedByWireType) {
  std::string in;
  in += bytes({0x10, 0x96, 0x01});                 // field 2 varint (Cortex's Source)
  in += bytes({0x21, 1, 2, 3, 4, 5, 6, 7, 8});     // field 4 fixed64
  in += bytes({0x2D, 1, 2, 3, 4});                 // field 5 fixed32
  in += bytes({0x32, 3, 'a', 'b', 'c'});           // field 6 bytes
  in += bytes({0x3B, 0x08, 1, 0x43, 0x44, 0x3C});  // group 7 holding group 8
  std::string series = encode_one({{"__name__", "x"}}, {Sample{4, 5}});
  // An exemplar (TimeSeries field 3) and a histogram (4) inside the series.
  series.insert(2, bytes({0x1A, 0}));
  series.insert(2, bytes({0x22, 2, 0x08, 1}));
  series[1] = static_cast<char>(series[1] + 6);
  in += series;
  const auto req = decode_write_request(in);
  ASSERT_EQ(req.series.size(), 1U);
  ASSERT_EQ(req.samples.size(), 1U);
  EXPECT_EQ(req.samples[0].value, 4);
  EXPECT_EQ(req.samples[0].timestamp_ms, 5);
}

TEST(RemoteWriteDecode, LaterScalarWins) {
  // Protobuf: a non-repeated field given twice keeps the last value.
  const std::string in = bytes({0x0A, 10, 0x0A, 6, 0x0A, 1, 'a', 0x0A, 1, 'b', 0x12, 0});
  const auto req = decode_write_request(in);  // views into `in`
  ASSERT_EQ(req.labels.size(), 1U);
  EXPECT_EQ(req.labels[0].name, "b");
}

TEST(RemoteWriteDecode, GroupsDeeperThanTheLimitAreRefused) {
  DecodeLimits limits;
  limits.max_group_depth = 4;
  const auto nested = [](int depth) {
    std::string s;
    for (int i = 0; i < depth; ++i)
      s.push_back(0x3B);  // start group 7
    for (int i = 0; i < depth; ++i)
      s.push_back(0x3C);
    return s;
  };
  EXPECT_NO_THROW((void)decode_write_request(nested(4), limits));
  EXPECT_THAT(error_of([&] { (void)decode_write_request(nested(5), limits); }),
              HasSubstr("groups nested deeper than 4"));
  // The default limit holds against a very deep input without exhausting the stack.
  EXPECT_THAT(error_of([&] { (void)decode_write_request(nested(100000)); }),
              HasSubstr("groups nested deeper than 32"));
}

TEST(RemoteWriteDecode, LimitsAreEnforced) {
  std::string two;
  append_series(two, "a", core::Labels{}, std::array{Sample{1, 1}, Sample{2, 2}});
  append_series(two, "b", core::Labels{}, std::array{Sample{1, 1}});
  DecodeLimits limits;
  limits.max_series = 1;
  EXPECT_THAT(error_of([&] { (void)decode_write_request(two, limits); }),
              HasSubstr("more than 1 series in one request"));
  limits = {};
  limits.max_samples = 2;
  EXPECT_THAT(error_of([&] { (void)decode_write_request(two, limits); }),
              HasSubstr("more than 2 samples in one request"));
  limits = {};
  limits.max_uncompressed_bytes = two.size() - 1;
  EXPECT_THAT(error_of([&] { (void)decode_write_request(two, limits); }),
              HasSubstr("exceeds the limit"));
  std::vector<core::LabelView> many(34, core::LabelView{"a", "b"});
  EXPECT_THAT(error_of([&] { (void)decode_write_request(encode_one(many, {})); }),
              HasSubstr("series 0 has more than 33 labels"));
  std::string meta;
  append_metadata(meta, {1, "a", "", ""});
  append_metadata(meta, {1, "b", "", ""});
  limits = {};
  limits.max_metadata = 1;
  EXPECT_THAT(error_of([&] { (void)decode_write_request(meta, limits); }),
              HasSubstr("more than 1 metadata entries"));
}

TEST(RemoteWriteDecode, EveryPrefixOfAValidRequestIsHandled) {
  std::string in;
  append_metadata(in, {2, "g", "help", "bytes"});
  append_series(in, "g", core::Labels::make({{"job", "a"}}),
                std::array{Sample{1.5, -1}, Sample{stale_marker(), 1LL << 40}});
  append_series(in, "h", core::Labels{}, std::array{Sample{-2, 7}});
  for (std::size_t n = 0; n < in.size(); ++n) {
    try {
      (void)decode_valid(std::string_view(in).substr(0, n));
    } catch (const core::InvalidInput&) {
    }
  }
  EXPECT_EQ(decode_valid(in).series.size(), 2U);
}

// ---- validation ----

std::string validation_error(std::vector<core::LabelView> labels, std::vector<Sample> samples) {
  const std::string in = encode_one(std::move(labels), std::move(samples));
  return error_of([&] { (void)decode_valid(in); });
}

TEST(RemoteWriteValidate, NameAndLabelsFollowTheProjectRules) {
  const std::vector<Sample> one{{1, 1}};
  EXPECT_EQ(validation_error({{"job", "a"}}, one), "series 0: no __name__ label");
  EXPECT_EQ(validation_error({{"__name__", "a"}, {"__name__", "b"}}, one),
            "series 0 a: __name__ given twice");
  EXPECT_EQ(validation_error({{"__name__", "a/b"}}, one),
            "series 0: __name__: metric name contains '/'");
  EXPECT_EQ(validation_error({{"__name__", ""}}, one), "series 0: __name__: metric name is empty");
  EXPECT_THAT(validation_error({{"__name__", "a"}, {"__meta_x", "1"}}, one),
              HasSubstr("series 0 a: label \"__meta_x\": names starting with \"__\" are reserved"));
  EXPECT_THAT(validation_error({{"__name__", "a"}, {"a-b", "1"}}, one),
              HasSubstr("name must match [a-zA-Z_][a-zA-Z0-9_]*"));
  EXPECT_THAT(validation_error({{"__name__", "a"}, {"v", "\xff"}}, one),
              HasSubstr("value is not valid UTF-8"));
  EXPECT_THAT(validation_error({{"__name__", "a"}, {"v", "1"}, {"v", "2"}}, one),
              HasSubstr("label \"v\" is given twice"));
  std::vector<core::LabelView> many{{"__name__", "a"}};
  std::vector<std::string> names;
  for (int i = 0; i < 33; ++i)
    names.push_back("l" + std::to_string(i));
  for (const auto& n : names)
    many.push_back({n, "v"});
  // Past the decoder's default limit (33 with __name__) the decoder refuses;
  // with a laxer decoder the label rule still holds.
  EXPECT_THAT(validation_error(many, one), HasSubstr("series 0 has more than 33 labels"));
  DecodeLimits lax;
  lax.max_labels_per_series = 100;
  const std::string in_many = encode_one(many, one);
  EXPECT_EQ(error_of([&] { (void)decode_valid(in_many, lax); }), "series 0 a: more than 32 labels");
  // A name is checked even when its value is empty (absent).
  EXPECT_THAT(validation_error({{"__name__", "a"}, {"", ""}}, one),
              HasSubstr("label name is empty"));
  EXPECT_THAT(validation_error({{"__name__", "a"}, {"__x", ""}}, one), HasSubstr("reserved"));
  // A 0xFF byte (the separator of core's label encoding) cannot smuggle in
  // other labels: "x\xFFy" = "z" would read as x="y", z=... if it were
  // encoded unchecked.
  EXPECT_THAT(validation_error({{"__name__", "a"}, {"x\xFFy", "z"}}, one),
              HasSubstr("name must match"));
  EXPECT_THAT(validation_error({{"__name__", "a"},
                                {"v",
                                 "1\xFF"
                                 "b\xFF"
                                 "c"}},
                               one),
              HasSubstr("value is not valid UTF-8"));
  // Names that PromQL cannot spell are fine here (the exposition maps them).
  EXPECT_EQ(validation_error({{"__name__", "my.metric é"}, {"v", "x\"y\n"}}, one), "");
  // Empty values mean "absent".
  const std::string in = encode_one({{"__name__", "a"}, {"gone", ""}, {"job", "j"}}, one);
  const Decoded decoded = decode_valid(in);
  const auto& series = decoded.series;
  ASSERT_EQ(series.size(), 1U);
  EXPECT_EQ(series[0].name, "a");
  EXPECT_EQ(series[0].labels, core::Labels::make({{"job", "j"}}));
}

TEST(RemoteWriteValidate, SamplesMustBeInTimestampOrder) {
  EXPECT_EQ(validation_error({{"__name__", "up"}, {"job", "a"}}, {{1, 20}, {1, 10}}),
            "series 0 up{job=\"a\"}: sample timestamps out of order (10 after 20)");
  EXPECT_EQ(validation_error({{"__name__", "up"}}, {{1, 20}, {2, 20}}),
            "series 0 up{}: sample timestamps out of order (20 repeats 20)");
  EXPECT_EQ(validation_error({{"__name__", "up"}}, {{1, std::numeric_limits<std::int64_t>::min()},
                                                    {1, std::numeric_limits<std::int64_t>::max()}}),
            "");
}

TEST(RemoteWriteValidate, OrderHoldsAcrossEntriesOfOneSeries) {
  std::string in;
  const auto job = core::Labels::make({{"job", "a"}});
  append_series(in, "up", job, std::array{Sample{1, 10}, Sample{1, 20}});
  append_series(in, "up", core::Labels::make({{"job", "b"}}), std::array{Sample{1, 5}});
  append_series(in, "up", job, std::array{Sample{1, 30}});
  EXPECT_EQ(decode_valid(in).series.size(), 3U);
  append_series(in, "up", job, std::array{Sample{1, 25}});
  EXPECT_EQ(error_of([&] { (void)decode_valid(in); }),
            "series 3 up{job=\"a\"}: sample timestamps out of order across entries of the same "
            "series (25 after 30)");
}

TEST(RemoteWriteValidate, SeriesWithoutSamplesAreLeftOut) {
  std::string in;
  append_series(in, "a", core::Labels{}, std::span<const Sample>{});
  append_series(in, "b", core::Labels{}, std::array{Sample{1, 1}});
  const Decoded decoded = decode_valid(in);
  const auto& series = decoded.series;
  ASSERT_EQ(series.size(), 1U);
  EXPECT_EQ(series[0].name, "b");
  // ... but their labels are still checked.
  EXPECT_THAT(validation_error({{"__name__", "a"}, {"1x", "v"}}, {}), HasSubstr("label \"1x\""));
}

TEST(RemoteWriteValidate, NaNsAreValuesAndTheStaleMarkerIsRecognised) {
  EXPECT_TRUE(is_stale_marker(stale_marker()));
  EXPECT_TRUE(std::isnan(stale_marker()));
  EXPECT_FALSE(is_stale_marker(std::numeric_limits<double>::quiet_NaN()));
  EXPECT_FALSE(is_stale_marker(0));
  EXPECT_FALSE(is_stale_marker(std::bit_cast<double>(kStaleNaNBits | (1ULL << 63))));
  const std::string in = encode_one(
      {{"__name__", "x"}},
      {{std::numeric_limits<double>::quiet_NaN(), 1}, {stale_marker(), 2}, {HUGE_VAL, 3}});
  const Decoded decoded = decode_valid(in);
  const auto& series = decoded.series;
  ASSERT_EQ(series.size(), 1U);
  ASSERT_EQ(series[0].samples.size(), 3U);
  EXPECT_FALSE(is_stale_marker(series[0].samples[0].value));
  EXPECT_TRUE(is_stale_marker(series[0].samples[1].value));
  EXPECT_EQ(series[0].samples[2].value, HUGE_VAL);
}

// ---- random round trips ----

TEST(RemoteWriteProperty, RandomRequestsRoundTripBitExact) {
  std::mt19937_64 rng(20261202);
  const auto pick = [&](std::uint64_t n) { return static_cast<std::size_t>(rng() % n); };
  constexpr std::array<std::int64_t, 7> kExtremes{std::numeric_limits<std::int64_t>::min(),
                                                  std::numeric_limits<std::int64_t>::min() + 1,
                                                  -1,
                                                  0,
                                                  1,
                                                  std::numeric_limits<std::int64_t>::max() - 1,
                                                  std::numeric_limits<std::int64_t>::max()};
  const auto random_string = [&](std::size_t max_len) {
    std::string s(pick(max_len + 1), ' ');
    for (char& c : s)
      c = static_cast<char>(rng());  // any byte: the codec does not care
    return s;
  };
  const auto random_double = [&]() -> double {
    switch (pick(5)) {
      case 0:  // NaN with a random payload (quiet or signalling)
        return std::bit_cast<double>((rng() | 0x7FF0000000000001ULL) &
                                     (0xFFFFFFFFFFFFFFFFULL >> pick(2)));
      case 1:
        return std::bit_cast<double>(rng());  // any bit pattern
      case 2:
        return std::array{0.0, -0.0, HUGE_VAL, -HUGE_VAL, 5e-324, stale_marker()}[pick(6)];
      default:
        return static_cast<double>(static_cast<std::int64_t>(rng() % 2000001) - 1000000) / 8;
    }
  };
  for (int round = 0; round < 300; ++round) {
    std::vector<std::vector<std::pair<std::string, std::string>>> labels(pick(8));
    std::vector<std::vector<Sample>> samples(labels.size());
    std::string in;
    for (std::size_t s = 0; s < labels.size(); ++s) {
      labels[s].resize(pick(6));
      for (auto& [n, v] : labels[s]) {
        n = random_string(12);
        v = random_string(40);
      }
      samples[s].resize(pick(5));
      for (Sample& x : samples[s]) {
        x.value = random_double();
        x.timestamp_ms =
            pick(2) == 0 ? kExtremes[pick(kExtremes.size())] : static_cast<std::int64_t>(rng());
      }
      std::vector<core::LabelView> views;
      for (const auto& [n, v] : labels[s])
        views.push_back({n, v});
      append_series(in, views, samples[s]);
    }
    // Through snappy too, as on the wire.
    const std::string wire = snappy_compress(in);
    const std::string plain = snappy_decompress(wire, in.size());
    ASSERT_EQ(plain, in);
    const auto req = decode_write_request(plain);
    ASSERT_EQ(req.series.size(), labels.size());
    for (std::size_t s = 0; s < labels.size(); ++s) {
      const auto got_labels = req.labels_of(req.series[s]);
      ASSERT_EQ(got_labels.size(), labels[s].size());
      for (std::size_t k = 0; k < labels[s].size(); ++k) {
        EXPECT_EQ(got_labels[k].name, labels[s][k].first);
        EXPECT_EQ(got_labels[k].value, labels[s][k].second);
      }
      const auto got = req.samples_of(req.series[s]);
      ASSERT_EQ(got.size(), samples[s].size());
      for (std::size_t k = 0; k < got.size(); ++k) {
        EXPECT_EQ(std::bit_cast<std::uint64_t>(got[k].value),
                  std::bit_cast<std::uint64_t>(samples[s][k].value));
        EXPECT_EQ(got[k].timestamp_ms, samples[s][k].timestamp_ms);
      }
    }
  }
}

TEST(RemoteWriteProperty, ValidSeriesRoundTripThroughTheModel) {
  std::mt19937_64 rng(7);
  for (int round = 0; round < 200; ++round) {
    std::vector<core::Label> raw;
    const std::size_t n = rng() % 6;
    for (std::size_t k = 0; k < n; ++k) {
      raw.push_back({"l" + std::to_string(rng() % 10) + (rng() % 2 ? "_A" : ""),
                     std::string(rng() % 5, static_cast<char>('a' + rng() % 26))});
    }
    std::sort(raw.begin(), raw.end(), [](auto& a, auto& b) { return a.name < b.name; });
    raw.erase(
        std::unique(raw.begin(), raw.end(), [](auto& a, auto& b) { return a.name == b.name; }),
        raw.end());
    const auto labels = core::Labels::make(raw);
    std::vector<Sample> samples;
    std::int64_t ts =
        std::numeric_limits<std::int64_t>::min() + static_cast<std::int64_t>(rng() % 3);
    const std::size_t count = rng() % 4 + 1;
    for (std::size_t k = 0; k < count; ++k) {
      samples.push_back({std::bit_cast<double>(rng()), ts});
      // Four steps below 2^61 each stay inside int64 from its minimum.
      ts += static_cast<std::int64_t>(rng() % (1ULL << 61)) + 1;
    }
    std::string in;
    const std::string name = "metric_" + std::to_string(round);
    append_series(in, name, labels, samples);
    const auto req = decode_write_request(in);
    const auto series = validate(req);
    ASSERT_EQ(series.size(), 1U);
    EXPECT_EQ(series[0].name, name);
    EXPECT_EQ(series[0].labels, labels);
    ASSERT_EQ(series[0].samples.size(), samples.size());
    for (std::size_t k = 0; k < samples.size(); ++k) {
      EXPECT_EQ(std::bit_cast<std::uint64_t>(series[0].samples[k].value),
                std::bit_cast<std::uint64_t>(samples[k].value));
      EXPECT_EQ(series[0].samples[k].timestamp_ms, samples[k].timestamp_ms);
    }
  }
}

}  // namespace
}  // namespace metrics::exposition
