#include "metrics/core/metric.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <string>
#include <unordered_set>
#include <vector>

namespace metrics::core {
namespace {

TEST(MetricType, RoundTripsThroughText) {
  EXPECT_EQ(to_string(MetricType::gauge), "gauge");
  EXPECT_EQ(to_string(MetricType::counter), "counter");
  EXPECT_EQ(parse_type("gauge"), MetricType::gauge);
  EXPECT_EQ(parse_type("counter"), MetricType::counter);
  EXPECT_FALSE(parse_type("Gauge").has_value());
  EXPECT_FALSE(parse_type("COUNTER").has_value());
  EXPECT_FALSE(parse_type("").has_value());
  EXPECT_FALSE(parse_type("histogram").has_value());
  EXPECT_FALSE(parse_type("gauge ").has_value());
}

TEST(ValidateName, AcceptsOrdinaryNames) {
  for (const char* name :
       {"Alloc", "PollCount", "a", "heap.inuse-bytes_total", "with space", "名前",
        "emoji \xF0\x9F\x98\x80", "\xC2\xA9", "\xEF\xBF\xBD", "\xF4\x8F\xBF\xBF"}) {
    EXPECT_FALSE(validate_name(name).has_value()) << name;
  }
}

TEST(ValidateName, LengthBounds) {
  EXPECT_EQ(validate_name(""), "metric name is empty");
  EXPECT_FALSE(validate_name(std::string(255, 'a')).has_value());
  const auto too_long = validate_name(std::string(256, 'a'));
  ASSERT_TRUE(too_long.has_value());
  EXPECT_NE(too_long->find("255"), std::string::npos);
}

TEST(ValidateName, RejectsSlashAndControlCharacters) {
  EXPECT_EQ(validate_name("a/b"), "metric name contains '/'");
  EXPECT_EQ(validate_name("/"), "metric name contains '/'");
  for (const std::string& name : {std::string("a\nb"), std::string("\t"), std::string("a\x7f"),
                                  std::string("a\0b", 3), std::string("\x1f")}) {
    EXPECT_EQ(validate_name(name), "metric name contains a control character");
  }
}

TEST(ValidateName, RejectsInvalidUtf8) {
  for (const char* name : {
           "\x80",              // lone continuation byte
           "a\xC3",             // truncated 2-byte sequence
           "\xC0\xAF",          // overlong '/'
           "\xC1\xBF",          // overlong
           "\xE0\x80\xAF",      // overlong 3-byte
           "\xED\xA0\x80",      // UTF-16 surrogate U+D800
           "\xED\xBF\xBF",      // surrogate U+DFFF
           "\xF0\x80\x80\xAF",  // overlong 4-byte
           "\xF4\x90\x80\x80",  // above U+10FFFF
           "\xF5\x80\x80\x80",  // invalid lead
           "\xFF",              // never valid
           "\xE2\x82",          // truncated 3-byte
           "\xE2\x28\xA1",      // bad continuation
       }) {
    EXPECT_EQ(validate_name(name), "metric name is not valid UTF-8") << name;
  }
}

TEST(ValidateName, LengthCountsBytesNotCharacters) {
  std::string name;
  for (int i = 0; i < 85; ++i)
    name += "\xE2\x82\xAC";  // 85 euro signs = 255 bytes
  EXPECT_FALSE(validate_name(name).has_value());
  name += "a";
  EXPECT_TRUE(validate_name(name).has_value());
}

TEST(Update, FactoriesAndEquality) {
  const Update g = Update::gauge("g", 1.5);
  EXPECT_EQ(g.type, MetricType::gauge);
  EXPECT_EQ(g.value, 1.5);
  const Update c = Update::counter("c", -3);
  EXPECT_EQ(c.type, MetricType::counter);
  EXPECT_EQ(c.delta, -3);
  EXPECT_EQ(g, Update::gauge("g", 1.5));
  EXPECT_NE(g, Update::gauge("g", 2.5));
  EXPECT_NE(Update::gauge("x", 0), Update::counter("x", 0));
  EXPECT_NE(Update::gauge("x", 0), Update::gauge("x", 0, Labels::make({{"a", "1"}})));
}

TEST(Point, CounterCarriesItsTotal) {
  const Point c = Point::counter("c", 42, Labels::make({{"job", "a"}}));
  EXPECT_EQ(c.total, 42);
  EXPECT_EQ(c.labels.get("job"), "a");
  EXPECT_EQ(c.timestamp_ms, 0);
}

TEST(PointLess, OrdersByNameThenTypeThenLabels) {
  const Labels a1 = Labels::make({{"a", "1"}});
  const Labels a2 = Labels::make({{"a", "2"}});
  std::vector<Point> points = {Point::counter("b", 1),   Point::gauge("b", 1, a2),
                               Point::gauge("b", 1, a1), Point::counter("a", 1),
                               Point::gauge("c", 1),     Point::gauge("b", 1)};
  std::sort(points.begin(), points.end(), point_less);
  EXPECT_EQ(points[0], Point::counter("a", 1));
  EXPECT_EQ(points[1], Point::gauge("b", 1));
  EXPECT_EQ(points[2], Point::gauge("b", 1, a1));
  EXPECT_EQ(points[3], Point::gauge("b", 1, a2));
  EXPECT_EQ(points[4], Point::counter("b", 1));
  EXPECT_EQ(points[5], Point::gauge("c", 1));
  EXPECT_FALSE(point_less(points[0], points[0]));
}

TEST(SeriesKey, LabelsArePartOfTheIdentity) {
  std::unordered_set<SeriesKey, SeriesHash, SeriesEqual> keys;
  keys.insert({MetricType::gauge, "x", {}});
  keys.insert({MetricType::counter, "x", {}});
  keys.insert({MetricType::gauge, "x", Labels::make({{"i", "1"}})});
  keys.insert({MetricType::gauge, "x", Labels::make({{"i", "2"}})});
  keys.insert({MetricType::gauge, "x", Labels::make({{"i", "1"}, {"j", ""}})});
  EXPECT_EQ(keys.size(), 4U);
  // Heterogeneous lookup: an update finds its series without a copy.
  const Update u = Update::gauge("x", 3, Labels::make({{"i", "2"}}));
  EXPECT_NE(keys.find(SeriesView(u)), keys.end());
  EXPECT_EQ(keys.find(SeriesView(Update::gauge("x", 3, Labels::make({{"i", "3"}})))), keys.end());
  EXPECT_LT((SeriesKey{MetricType::gauge, "x", {}}), (SeriesKey{MetricType::gauge, "x", u.labels}));
}

TEST(MetricKey, OrderingMatchesPointLess) {
  const MetricKey a{MetricType::counter, "a"};
  const MetricKey b_gauge{MetricType::gauge, "b"};
  const MetricKey b_counter{MetricType::counter, "b"};
  EXPECT_LT(a, b_gauge);
  EXPECT_LT(b_gauge, b_counter);
  EXPECT_EQ(a, (MetricKey{MetricType::counter, "a"}));
}

TEST(MetricKeyHash, TypeIsPartOfTheKey) {
  std::unordered_set<MetricKey, MetricKeyHash> keys;
  keys.insert({MetricType::gauge, "x"});
  keys.insert({MetricType::counter, "x"});
  keys.insert({MetricType::gauge, "x"});
  EXPECT_EQ(keys.size(), 2U);
}

TEST(CheckedAdd, DetectsOverflowBothWays) {
  EXPECT_EQ(checked_add(1, 2), 3);
  EXPECT_EQ(checked_add(INT64_MAX, 0), INT64_MAX);
  EXPECT_EQ(checked_add(INT64_MAX, -1), INT64_MAX - 1);
  EXPECT_EQ(checked_add(INT64_MIN, INT64_MAX), -1);
  EXPECT_FALSE(checked_add(INT64_MAX, 1).has_value());
  EXPECT_FALSE(checked_add(INT64_MIN, -1).has_value());
  EXPECT_FALSE(checked_add(INT64_MIN, INT64_MIN).has_value());
  static_assert(checked_add(2, 3) == 5);
}

}  // namespace
}  // namespace metrics::core
