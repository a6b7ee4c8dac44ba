// Parameter parsing of the Prometheus HTTP API (values as Prometheus 2.42's
// parseTime/parseDuration give them) and the HistoryQueryable.
#include "metrics/server/query_api.hpp"

#include <gtest/gtest.h>

#include <cmath>

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

}  // namespace
