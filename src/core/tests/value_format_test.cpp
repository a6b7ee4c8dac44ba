#include "metrics/core/value_format.hpp"

#include <gtest/gtest.h>

#include <array>
#include <cfloat>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>
#include <string>

namespace metrics::core {
namespace {

TEST(FormatGauge, ShortestPlainDecimal) {
  EXPECT_EQ(format_gauge(120500.0), "120500");
  EXPECT_EQ(format_gauge(0.1), "0.1");
  EXPECT_EQ(format_gauge(-1.75), "-1.75");
  EXPECT_EQ(format_gauge(0.0), "0");
  EXPECT_EQ(format_gauge(1.0), "1");
  EXPECT_EQ(format_gauge(1e-7), "0.0000001");
  EXPECT_EQ(format_gauge(123.456), "123.456");
}

TEST(FormatGauge, LargeValuesHaveNoExponent) {
  EXPECT_EQ(format_gauge(1e21), "1000000000000000000000");
  EXPECT_EQ(format_gauge(1e22), "10000000000000000000000");
  const std::string max = format_gauge(DBL_MAX);
  EXPECT_EQ(max.size(), 309U);
  EXPECT_EQ(max.find_first_not_of("0123456789"), std::string::npos);
}

TEST(FormatGauge, IntegralValuesAroundTheExactIntegerLimit) {
  EXPECT_EQ(format_gauge(-5.0), "-5");
  EXPECT_EQ(format_gauge(1e15), "1000000000000000");
  EXPECT_EQ(format_gauge(9007199254740991.0), "9007199254740991");
  EXPECT_EQ(format_gauge(-9007199254740991.0), "-9007199254740991");
  EXPECT_EQ(format_gauge(9007199254740992.0), "9007199254740992");
  EXPECT_EQ(format_gauge(18014398509481988.0), "18014398509481988");
  // Shortest digits, padded with zeros, as Go's FormatFloat(v, 'f', -1, 64).
  EXPECT_EQ(format_gauge(9223372036854775808.0), "9223372036854776000");
  EXPECT_EQ(format_gauge(-9223372036854775808.0), "-9223372036854776000");
  for (int shift = 0; shift < 80; ++shift) {
    const double v = std::ldexp(1.0, shift) + (shift < 52 ? 1.0 : 0.0);
    EXPECT_EQ(parse_gauge(format_gauge(v)), v) << shift;
    EXPECT_EQ(parse_gauge(format_gauge(-v)), -v) << shift;
  }
}

TEST(FormatGauge, NegativeZeroKeepsItsSign) {
  EXPECT_EQ(format_gauge(-0.0), "-0");
}

TEST(FormatGauge, DenormalsRoundTrip) {
  const double smallest = std::numeric_limits<double>::denorm_min();
  const std::string text = format_gauge(smallest);
  EXPECT_EQ(text.rfind("0.000", 0), 0U);
  EXPECT_EQ(text.back(), '5');
  EXPECT_EQ(text.find('e'), std::string::npos);
  ASSERT_TRUE(parse_gauge(text).has_value());
  EXPECT_EQ(*parse_gauge(text), smallest);
  EXPECT_EQ(*parse_gauge(format_gauge(DBL_MIN)), DBL_MIN);
}

TEST(FormatGauge, AppendsToExistingText) {
  std::string out = "x=";
  append_gauge(out, 2.5);
  append_counter(out, -7);
  EXPECT_EQ(out, "x=2.5-7");
}

TEST(FormatGauge, RandomDoublesRoundTripExactly) {
  std::mt19937_64 rng(42);
  for (int i = 0; i < 20000; ++i) {
    const std::uint64_t bits = rng();
    double v = 0;
    static_assert(sizeof v == sizeof bits);
    std::memcpy(&v, &bits, sizeof v);
    if (!std::isfinite(v)) continue;
    const std::string text = format_gauge(v);
    ASSERT_EQ(text.find_first_of("eE"), std::string::npos) << text;
    const auto back = parse_gauge(text);
    ASSERT_TRUE(back.has_value()) << text;
    ASSERT_EQ(std::signbit(*back), std::signbit(v)) << text;
    ASSERT_EQ(*back, v) << text;
  }
}

TEST(FormatCounter, Extremes) {
  EXPECT_EQ(format_counter(0), "0");
  EXPECT_EQ(format_counter(-5), "-5");
  EXPECT_EQ(format_counter(INT64_MAX), "9223372036854775807");
  EXPECT_EQ(format_counter(INT64_MIN), "-9223372036854775808");
}

TEST(ParseGauge, AcceptsDecimalAndExponentForms) {
  EXPECT_EQ(parse_gauge("1.5"), 1.5);
  EXPECT_EQ(parse_gauge("-1.5"), -1.5);
  EXPECT_EQ(parse_gauge("+1.5"), 1.5);
  EXPECT_EQ(parse_gauge("120500"), 120500.0);
  EXPECT_EQ(parse_gauge("1e21"), 1e21);
  EXPECT_EQ(parse_gauge("1E-3"), 1e-3);
  EXPECT_EQ(parse_gauge(".5"), 0.5);
  EXPECT_EQ(parse_gauge("5."), 5.0);
  EXPECT_EQ(parse_gauge("1e-310"), 1e-310);
  const auto neg_zero = parse_gauge("-0");
  ASSERT_TRUE(neg_zero.has_value());
  EXPECT_TRUE(std::signbit(*neg_zero));
}

TEST(ParseGauge, RejectsNonFiniteAndJunk) {
  for (const char* text :
       {"",      "+",      "-",     "nan", "NaN", "-nan", "inf",  "-inf",  "Inf", "infinity",
        "1e309", "-1e309", " 1",    "1 ",  "1\n", "1x",   "0x10", "0x1p3", "+-1", "-+1",
        "++1",   "1,5",    "1_000", "e5",  ".",   "1e",   "1e+",  "abc"}) {
    EXPECT_FALSE(parse_gauge(text).has_value()) << '"' << text << '"';
  }
}

TEST(ParseGauge, RejectsEmbeddedNul) {
  EXPECT_FALSE(parse_gauge(std::string_view("1\0", 2)).has_value());
}

TEST(ParseCounter, AcceptsSignedDecimalIntegers) {
  EXPECT_EQ(parse_counter("0"), 0);
  EXPECT_EQ(parse_counter("42"), 42);
  EXPECT_EQ(parse_counter("+42"), 42);
  EXPECT_EQ(parse_counter("-42"), -42);
  EXPECT_EQ(parse_counter("9223372036854775807"), INT64_MAX);
  EXPECT_EQ(parse_counter("-9223372036854775808"), INT64_MIN);
}

TEST(ParseCounter, RejectsOverflowAndJunk) {
  for (const char* text :
       {"", "+", "-", "9223372036854775808", "-9223372036854775809", "99999999999999999999999",
        "1.5", "1e3", "1.0", " 1", "1 ", "0x10", "+-1", "--1", "abc", "1a"}) {
    EXPECT_FALSE(parse_counter(text).has_value()) << '"' << text << '"';
  }
}

// The text form is the shortest round-trip digits (those of std::to_chars's
// shortest form) laid out in plain decimal: no exponent, padded with zeros,
// as Go's FormatFloat(v, 'f', -1, 64). Checked across magnitudes, signs and
// raw bit patterns.
std::string significant_digits(std::string_view text) {
  std::string digits;
  for (char c : text) {
    if (c == 'e' || c == 'E') break;
    if (c >= '0' && c <= '9') digits.push_back(c);
  }
  const auto first = digits.find_first_not_of('0');
  if (first == std::string::npos) return "0";
  digits.erase(0, first);
  digits.erase(digits.find_last_not_of('0') + 1);
  return digits;
}

TEST(FormatGauge, ShortestDigitsInPlainDecimalOnRandomDoubles) {
  std::mt19937_64 rng(20261125);
  std::uniform_int_distribution<std::uint64_t> bits;
  std::uniform_real_distribution<double> unit(-1.0, 1.0);
  std::uniform_int_distribution<int> exp10(-30, 30);
  std::array<char, 64> buf;
  for (int i = 0; i < 200'000; ++i) {
    double v = 0;
    if (i % 2 == 0) {
      const std::uint64_t b = bits(rng);
      std::memcpy(&v, &b, sizeof v);
      if (!std::isfinite(v)) continue;
    } else {
      v = unit(rng) * std::pow(10.0, exp10(rng));
    }
    const std::string text = format_gauge(v);
    ASSERT_EQ(text.find_first_of("eE+"), std::string::npos) << text;
    if (text.find('.') != std::string::npos) {
      ASSERT_NE(text.back(), '0') << text;
      ASSERT_NE(text.back(), '.') << text;
    }
    const auto parsed = parse_gauge(text);
    ASSERT_TRUE(parsed.has_value()) << text;
    ASSERT_EQ(std::memcmp(&*parsed, &v, sizeof v), 0) << text;
    const auto end =
        std::to_chars(buf.data(), buf.data() + buf.size(), v, std::chars_format::scientific).ptr;
    ASSERT_EQ(significant_digits(text), significant_digits({buf.data(), end})) << text;
  }
}

}  // namespace
}  // namespace metrics::core
