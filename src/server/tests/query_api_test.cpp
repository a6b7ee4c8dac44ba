// Parameter parsing of the Prometheus HTTP API (values as Prometheus 2.42's
// parseTime/parseDuration give them) and the HistoryQueryable.
#include "metrics/server/query_api.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "metrics/history/store.hpp"
#include "metrics/query/engine.hpp"
#include "metrics/query/json.hpp"
#include "metrics/server/history_queryable.hpp"

namespace {

namespace promapi = metrics::server::promapi;
namespace q = metrics::query;

TEST(QueryApiParams, UnixTimesRoundToMilliseconds) {
  EXPECT_EQ(promapi::parse_time("1700000000"), 1'700'000'000'000);
  EXPECT_EQ(promapi::parse_time("1700000000.123"), 1'700'000'000'123);
  EXPECT_EQ(promapi::parse_time("1700000000.1236"), 1'700'000'000'124);
  EXPECT_EQ(promapi::parse_time("-1.5"), -1500);
  EXPECT_EQ(promapi::parse_time("1e3"), 1'000'000);
  EXPECT_EQ(promapi::parse_time("0x10p0"), 16'000);
}

TEST(QueryApiParams, Rfc3339AndBoundaries) {
  EXPECT_EQ(promapi::parse_time("2023-11-14T22:13:20Z"), 1'700'000'000'000);
  EXPECT_EQ(promapi::parse_time("2023-11-14T22:13:20.5Z"), 1'700'000'000'500);
  EXPECT_EQ(promapi::parse_time("2023-11-14T23:13:20.123456789+01:00"), 1'700'000'000'123);
  EXPECT_EQ(promapi::parse_time("-292273086-05-16T16:47:06Z"), promapi::kMinTimeMs);
  EXPECT_EQ(promapi::parse_time("292277025-08-18T07:12:54.999999999Z"), promapi::kMaxTimeMs);
  EXPECT_THROW((void)promapi::parse_time("2023-02-30T00:00:00Z"), promapi::ParamError);
  EXPECT_THROW((void)promapi::parse_time("2023-11-14 22:13:20Z"), promapi::ParamError);
  EXPECT_THROW((void)promapi::parse_time(""), promapi::ParamError);
  EXPECT_THROW((void)promapi::parse_time(" 1"), promapi::ParamError);
  try {
    (void)promapi::parse_time("abc");
    FAIL();
  } catch (const promapi::ParamError& e) {
    EXPECT_STREQ(e.what(), "cannot parse \"abc\" to a valid timestamp");
  }
}

TEST(QueryApiParams, Durations) {
  EXPECT_EQ(promapi::parse_duration_ns("15"), 15'000'000'000);
  EXPECT_EQ(promapi::parse_duration_ns("0.5"), 500'000'000);
  EXPECT_EQ(promapi::parse_duration_ns("1m30s"), 90'000'000'000);
  EXPECT_EQ(promapi::parse_duration_ns("1h"), 3'600'000'000'000);
  EXPECT_EQ(promapi::parse_duration_ns("-1"), -1'000'000'000);
  EXPECT_THROW((void)promapi::parse_duration_ns("1s1m"), promapi::ParamError);
  EXPECT_THROW((void)promapi::parse_duration_ns("1e10"), promapi::ParamError);  // overflows
  EXPECT_THROW((void)promapi::parse_duration_ns(""), promapi::ParamError);
}

TEST(QueryApiParams, GoFloatSyntax) {
  double v = 0;
  EXPECT_TRUE(promapi::parse_go_float("Inf", v));
  EXPECT_TRUE(std::isinf(v));
  EXPECT_TRUE(promapi::parse_go_float("-infinity", v));
  EXPECT_TRUE(promapi::parse_go_float("NaN", v));
  EXPECT_FALSE(promapi::parse_go_float("+NaN", v));
  EXPECT_FALSE(promapi::parse_go_float("0x10", v));  // hex needs a p exponent
  EXPECT_FALSE(promapi::parse_go_float("1e", v));
  EXPECT_FALSE(promapi::parse_go_float("1e999", v));
  EXPECT_TRUE(promapi::parse_go_float(".5", v));
  EXPECT_EQ(v, 0.5);
}

TEST(HistoryQueryable, CountersAreTotalsAndNamesSelectTheirSeries) {
  metrics::history::HistoryOptions options;
  options.retention = std::chrono::milliseconds{0};
  metrics::history::HistoryStore store(options);
  metrics::series::SeriesIndex index;
  const metrics::core::SeriesKey a{metrics::core::MetricType::counter, "reqs",
                                   metrics::core::Labels::make({{"job", "api"}})};
  const metrics::core::SeriesKey b{metrics::core::MetricType::gauge, "temp", {}};
  ASSERT_TRUE(store.append(1, a, 1000, std::int64_t{5}));
  ASSERT_TRUE(store.append(1, a, 2000, std::int64_t{7}));
  ASSERT_TRUE(store.append(2, b, 1500, 0.25));
  metrics::server::HistoryQueryable hq(index, &store, {.now_ms = 3000});
  q::Engine engine;
  EXPECT_EQ(q::encode_data(engine.instant(hq, "reqs", 2500)),
            R"({"resultType":"vector","result":[{"metric":{"__name__":"reqs","job":"api"},)"
            R"("value":[2.500,"7"]}]})");
  EXPECT_EQ(q::encode_data(engine.instant(hq, R"({__name__=~"t.*"})", 2500)),
            R"({"resultType":"vector","result":[{"metric":{"__name__":"temp"},)"
            R"("value":[2.500,"0.25"]}]})");
  EXPECT_EQ(q::encode_data(engine.instant(hq, R"({job="api"})", 2500)),
            R"({"resultType":"vector","result":[{"metric":{"__name__":"reqs","job":"api"},)"
            R"("value":[2.500,"7"]}]})");
  EXPECT_EQ(store.names(), (std::vector<std::string>{"reqs", "temp"}));
}

// /api/v1/series, labels and label values list from the store's chunk
// bounds: the same label sets as selecting the samples, for ranges before,
// inside, between and after the samples; a gauge and a counter of one label
// set are one series; no sample is decoded for a range that covers them.
TEST(HistoryQueryable, SeriesListingEqualsSelectingSamples) {
  metrics::history::HistoryOptions options;
  options.retention = std::chrono::milliseconds{0};
  metrics::history::HistoryStore store(options);
  metrics::series::SeriesIndex index;
  const auto labels = [](std::string job) {
    return metrics::core::Labels::make({{"job", std::move(job)}});
  };
  for (std::uint64_t r = 1; r <= 30; ++r) {
    const metrics::core::SeriesKey key{
        r % 4 == 0 ? metrics::core::MetricType::counter : metrics::core::MetricType::gauge,
        r % 3 == 0 ? "x" : "y", labels("j" + std::to_string(r % 5))};
    for (std::int64_t t = static_cast<std::int64_t>(r) * 1000; t < 60'000;
         t += static_cast<std::int64_t>(r) * 700) {
      if (key.type == metrics::core::MetricType::counter) {
        ASSERT_TRUE(store.append(r, key, t, t));
      } else {
        ASSERT_TRUE(store.append(r, key, t, 0.5));
      }
    }
  }
  metrics::server::HistoryQueryable hq(index, &store, {.now_ms = 60'000});
  const std::vector<std::vector<q::Matcher>> selectors = {
      {q::Matcher::make(q::MatchType::equal, "__name__", "x")},
      {q::Matcher::make(q::MatchType::regex, "job", "j[12]")},
  };
  auto by_select = [&](std::span<const std::vector<q::Matcher>> sels, std::int64_t mint,
                       std::int64_t maxt) {
    std::map<std::string, q::LabelSet> found;
    for (const auto& sel : sels)
      for (auto& s : hq.select(sel, mint, maxt))
        found.try_emplace(q::key_of(s.labels), s.labels);
    std::vector<q::LabelSet> out;
    for (auto& [k, l] : found)
      out.push_back(l);
    return out;
  };
  for (std::int64_t mint = -5000; mint < 65'000; mint += 2'345) {
    for (const std::int64_t len : {0, 1, 500, 9'000, 100'000}) {
      EXPECT_EQ(hq.series(selectors, mint, mint + len), by_select(selectors, mint, mint + len))
          << mint;
      EXPECT_EQ(hq.series(std::span(selectors).first(1), mint, mint + len),
                by_select(std::span(selectors).first(1), mint, mint + len))
          << mint;
    }
  }
  const auto decodes = store.bounds_decodes();
  EXPECT_FALSE(hq.series({}, 0, 60'000).empty());
  EXPECT_EQ(store.bounds_decodes(), decodes);
}

}  // namespace
