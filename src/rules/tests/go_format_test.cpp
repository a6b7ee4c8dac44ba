// Go's fmt output for the values alert templates print (the expected
// strings are what Go 1.19 prints).
#include "metrics/rules/go_format.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "metrics/rules/template.hpp"

namespace {

using metrics::rules::go_format_float;
using metrics::rules::go_print;
using metrics::rules::go_sprintf;
using metrics::rules::GoArg;

TEST(GoFormat, PercentVOfFloats) {
  EXPECT_EQ(go_print(2.5e9), "2.5e+09");
  EXPECT_EQ(go_print(1.0), "1");
  EXPECT_EQ(go_print(0.25), "0.25");
  EXPECT_EQ(go_print(100000.0), "100000");
  EXPECT_EQ(go_print(1e6), "1e+06");
  EXPECT_EQ(go_print(123456789.0), "1.23456789e+08");
  EXPECT_EQ(go_print(0.0001), "0.0001");
  EXPECT_EQ(go_print(0.00001), "1e-05");
  EXPECT_EQ(go_print(-3.5), "-3.5");
  EXPECT_EQ(go_print(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(go_print(std::numeric_limits<double>::infinity()), "+Inf");
  EXPECT_EQ(go_print(-std::numeric_limits<double>::infinity()), "-Inf");
  EXPECT_EQ(go_print(std::nan("")), "NaN");
  EXPECT_EQ(go_print(0.0), "0");
  EXPECT_EQ(go_print(-0.0), "-0");
  EXPECT_EQ(go_print(1e21), "1e+21");
  EXPECT_EQ(go_print(5e-324), "5e-324");
}

TEST(GoFormat, FixedPrecisionG) {
  EXPECT_EQ(go_format_float(2.5, 'g', 4), "2.5");
  EXPECT_EQ(go_format_float(12345, 'g', 4), "1.234e+04");
  EXPECT_EQ(go_format_float(100000, 'g', 4), "1e+05");
  EXPECT_EQ(go_format_float(0, 'g', 4), "0");
  EXPECT_EQ(go_format_float(0.00012345, 'g', 4), "0.0001234");
  EXPECT_EQ(go_format_float(0.000012345, 'g', 4), "1.234e-05");
  EXPECT_EQ(go_format_float(2.5e9, 'e', -1), "2.5e+09");
  EXPECT_EQ(go_format_float(1, 'e', -1), "1e+00");
  EXPECT_EQ(go_format_float(1.0 / 3, 'f', 2), "0.33");
}

TEST(GoFormat, Sprintf) {
  const std::vector<GoArg> a{12.345};
  EXPECT_EQ(go_sprintf("%.2f%%", a), "12.35%");  // 12.345 is 12.3449999... in binary
  const std::vector<GoArg> b{std::string("x"), std::int64_t{3}};
  EXPECT_EQ(go_sprintf("%s/%d", b), "x/3");
  EXPECT_EQ(go_sprintf("%5s|%-5d|%05d",
                       std::vector<GoArg>{std::string("ab"), std::int64_t{7}, std::int64_t{-42}}),
            "   ab|7    |-0042");
  EXPECT_EQ(go_sprintf("%d", std::vector<GoArg>{2.5}), "%!d(float64=2.5)");
  EXPECT_EQ(go_sprintf("%s", std::vector<GoArg>{2.5}), "%!s(float64=2.5)");
  EXPECT_EQ(go_sprintf("%d %d", std::vector<GoArg>{std::int64_t{1}}), "1 %!d(MISSING)");
  EXPECT_EQ(go_sprintf("x", std::vector<GoArg>{std::int64_t{1}}), "x%!(EXTRA int=1)");
  EXPECT_EQ(go_sprintf("%v %v", std::vector<GoArg>{2.5e9, std::string("s")}), "2.5e+09 s");
  EXPECT_EQ(go_sprintf("%g %e", std::vector<GoArg>{1e6, 1e6}), "1e+06 1.000000e+06");
  EXPECT_EQ(go_sprintf("%q", std::vector<GoArg>{std::string("a\"b")}), "\"a\\\"b\"");
  EXPECT_EQ(go_sprintf("%+.1f", std::vector<GoArg>{2.0}), "+2.0");
  EXPECT_EQ(go_sprintf("%v", std::vector<GoArg>{metrics::rules::GoMap{{"a", "1"}, {"b", "2"}}}),
            "map[a:1 b:2]");
}

TEST(GoFormat, Humanize) {
  using namespace metrics::rules;
  EXPECT_EQ(humanize(2.5e9), "2.5G");
  EXPECT_EQ(humanize(0.0012), "1.2m");
  EXPECT_EQ(humanize(0), "0");
  EXPECT_EQ(humanize(1234567), "1.235M");
  EXPECT_EQ(humanize1024(2.5e9), "2.328Gi");
  EXPECT_EQ(humanize1024(1), "1");
  EXPECT_EQ(humanize1024(1024), "1ki");
  EXPECT_EQ(humanize_duration(2.5e9), "28935d 4h 26m 40s");
  EXPECT_EQ(humanize_duration(90), "1m 30s");
  EXPECT_EQ(humanize_duration(1.5), "1.5s");
  EXPECT_EQ(humanize_duration(0.0015), "1.5ms");
  EXPECT_EQ(humanize_duration(0), "0s");
  EXPECT_EQ(humanize_duration(-3700), "-1h 1m 40s");
  EXPECT_EQ(humanize_percentage(0.1234), "12.34%");
  EXPECT_EQ(humanize_percentage(2.5e9), "2.5e+11%");
}

}  // namespace
