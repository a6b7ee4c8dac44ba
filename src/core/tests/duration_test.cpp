#include "metrics/core/duration.hpp"

#include <gtest/gtest.h>

#include <chrono>

namespace metrics::core {
namespace {

using namespace std::chrono_literals;

TEST(ParseDuration, PlainNumbersAreSeconds) {
  EXPECT_EQ(parse_duration("10"), 10s);
  EXPECT_EQ(parse_duration("0"), 0s);
  EXPECT_EQ(parse_duration("1.5"), 1500ms);
  EXPECT_EQ(parse_duration("300"), 300s);
  EXPECT_EQ(parse_duration(".5"), 500ms);
  EXPECT_EQ(parse_duration("+2"), 2s);
}

TEST(ParseDuration, GoUnits) {
  EXPECT_EQ(parse_duration("500ms"), 500ms);
  EXPECT_EQ(parse_duration("10s"), 10s);
  EXPECT_EQ(parse_duration("1m"), 1min);
  EXPECT_EQ(parse_duration("2h"), 2h);
  EXPECT_EQ(parse_duration("1h30m"), 90min);
  EXPECT_EQ(parse_duration("1.5s"), 1500ms);
  EXPECT_EQ(parse_duration("1.5h"), 90min);
  EXPECT_EQ(parse_duration("3us"), 3us);
  EXPECT_EQ(parse_duration("3\xC2\xB5s"), 3us);
  EXPECT_EQ(parse_duration("3\xCE\xBCs"), 3us);
  EXPECT_EQ(parse_duration("7ns"), 7ns);
  EXPECT_EQ(parse_duration("0s"), 0s);
  EXPECT_EQ(parse_duration("1h2m3s4ms5us6ns"), 1h + 2min + 3s + 4ms + 5us + 6ns);
  EXPECT_EQ(parse_duration("0.000000001s"), 1ns);
  EXPECT_EQ(parse_duration("1.s"), 1s);
  EXPECT_EQ(parse_duration("+5m"), 5min);
}

TEST(ParseDuration, Limits) {
  EXPECT_EQ(parse_duration("9223372036854775807ns"), std::chrono::nanoseconds::max());
  EXPECT_EQ(parse_duration("2562047h47m16.854775807s"), std::chrono::nanoseconds::max());
  EXPECT_FALSE(parse_duration("9223372036854775808ns").has_value());
  EXPECT_FALSE(parse_duration("2562048h").has_value());
  EXPECT_FALSE(parse_duration("9999999999999999999999s").has_value());
  EXPECT_FALSE(parse_duration("9223372036854775807").has_value());
}

TEST(ParseDuration, Rejects) {
  for (const char* text :
       {"",     "+",  "-1s", "-1", "-0", "s",  "1x",  "1 s", " 1s", "1s ",  "1h30", "1.2.3",
        "..5s", ".s", "1sm", "ms", "1S", "1d", "abc", "10 ", "1e3", "0x10", "1ss"}) {
    EXPECT_FALSE(parse_duration(text).has_value()) << '"' << text << '"';
  }
}

TEST(ParseBool, GoSpellings) {
  for (const char* t : {"1", "t", "T", "TRUE", "true", "True"})
    EXPECT_EQ(parse_bool(t), true) << t;
  for (const char* f : {"0", "f", "F", "FALSE", "false", "False"}) {
    EXPECT_EQ(parse_bool(f), false) << f;
  }
  for (const char* bad : {"", "yes", "no", "tRUE", "on", "2", " true", "true ", "falsE"}) {
    EXPECT_FALSE(parse_bool(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace metrics::core
