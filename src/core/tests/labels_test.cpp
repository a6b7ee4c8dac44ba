#include "metrics/core/labels.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <random>
#include <string>
#include <vector>

#include "metrics/core/errors.hpp"

namespace metrics::core {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

std::string make_error(std::vector<Label> labels) {
  try {
    (void)Labels::make(std::move(labels));
  } catch (const InvalidInput& e) {
    return e.what();
  }
  return "";
}

TEST(Labels, SortedWithoutEmptyValues) {
  const Labels l = Labels::make({{"job", "api"}, {"instance", "h:1"}, {"zone", ""}});
  std::vector<LabelView> items(l.begin(), l.end());
  EXPECT_THAT(items, ElementsAre(LabelView{"instance", "h:1"}, LabelView{"job", "api"}));
  EXPECT_EQ(l.size(), 2U);
  EXPECT_EQ(l.get("job"), "api");
  EXPECT_EQ(l.get("zone"), std::nullopt);
  EXPECT_EQ(l.to_string(), R"({instance="h:1",job="api"})");
}

TEST(Labels, EmptyIsTheDefault) {
  const Labels made = Labels::make({{"a", ""}});
  EXPECT_TRUE(made.empty());
  EXPECT_EQ(made, Labels{});
  EXPECT_EQ(made.hash(), Labels{}.hash());
  EXPECT_EQ(Labels{}.to_string(), "{}");
  EXPECT_EQ(Labels{}.begin(), Labels{}.end());
}

TEST(Labels, OrderOfInputDoesNotMatter) {
  const Labels a = Labels::make({{"b", "2"}, {"a", "1"}, {"c", "3"}});
  const Labels b = Labels::make({{"c", "3"}, {"a", "1"}, {"b", "2"}});
  EXPECT_EQ(a, b);
  EXPECT_EQ(a.hash(), b.hash());
  EXPECT_EQ(a.encoded(), b.encoded());
}

TEST(Labels, EncodingIsUnambiguous) {
  // The same bytes split differently between name and value, or between
  // pairs, must be different label sets.
  const Labels a = Labels::make({{"ab", "c"}});
  const Labels b = Labels::make({{"a", "bc"}});
  const Labels c = Labels::make({{"a", "b"}, {"c", "d"}});
  const Labels d = Labels::make({{"a", "bcd"}});
  EXPECT_NE(a, b);
  EXPECT_NE(c, d);
  EXPECT_NE(a.encoded(), b.encoded());
}

TEST(Labels, RoundTripsThroughTheEncoding) {
  const Labels l = Labels::make({{"job", "a\"b\\c"}, {"instance", "h\xC3\xA9:1"}, {"x", "\n"}});
  const auto back = Labels::from_encoded(l.encoded());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(*back, l);
  EXPECT_EQ(back->hash(), l.hash());
  EXPECT_EQ(l.to_string(), "{instance=\"h\xC3\xA9:1\",job=\"a\\\"b\\\\c\",x=\"\\n\"}");
}

TEST(Labels, FromEncodedRejectsWhatMakeWouldNot) {
  EXPECT_FALSE(Labels::from_encoded("a").has_value());  // no separator
  EXPECT_FALSE(Labels::from_encoded("a\xFF"
                                    "1")
                   .has_value());  // no value end
  EXPECT_FALSE(Labels::from_encoded("b\xFF"
                                    "1\xFF"
                                    "a\xFF"
                                    "1\xFF")
                   .has_value());  // unsorted
  EXPECT_FALSE(Labels::from_encoded("a\xFF"
                                    "1\xFF"
                                    "a\xFF"
                                    "2\xFF")
                   .has_value());                               // repeat
  EXPECT_FALSE(Labels::from_encoded("a\xFF\xFF").has_value());  // empty value
  EXPECT_FALSE(Labels::from_encoded("1a\xFF"
                                    "x\xFF")
                   .has_value());                                   // bad name
  EXPECT_FALSE(Labels::from_encoded("a\xFF\xC3\xFF").has_value());  // bad UTF-8
  EXPECT_TRUE(Labels::from_encoded("").has_value());
}

TEST(Labels, FromEncodedNeverCrashesOnRandomBytes) {
  std::mt19937 rng(7);
  for (int i = 0; i < 2000; ++i) {
    std::string bytes(rng() % 24, '\0');
    for (char& c : bytes)
      c = static_cast<char>("ab_1=\xFF\xC3\xA9"[rng() % 9]);
    if (auto l = Labels::from_encoded(bytes)) {
      EXPECT_EQ(l->encoded(), bytes);
      EXPECT_EQ(Labels::from_encoded(l->encoded()), l);
    }
  }
}

TEST(Labels, EveryRuleNamesTheLabel) {
  EXPECT_THAT(make_error({{"1abc", "x"}}), HasSubstr("\"1abc\""));
  EXPECT_THAT(make_error({{"a-b", "x"}}), HasSubstr("\"a-b\""));
  EXPECT_THAT(make_error({{"a b", "x"}}), HasSubstr("[a-zA-Z_][a-zA-Z0-9_]*"));
  EXPECT_THAT(make_error({{"__name__", "x"}}), HasSubstr("reserved"));
  EXPECT_THAT(make_error({{"__name__", "x"}}), HasSubstr("\"__name__\""));
  EXPECT_THAT(make_error({{std::string(129, 'a'), "x"}}), HasSubstr("longer than 128"));
  EXPECT_EQ(make_error({{std::string(128, 'a'), "x"}}), "");
  EXPECT_THAT(make_error({{"v", std::string(1025, 'x')}}), HasSubstr("\"v\": value is longer"));
  EXPECT_EQ(make_error({{"v", std::string(1024, 'x')}}), "");
  EXPECT_THAT(make_error({{"u", "\xC3"}}), HasSubstr("\"u\": value is not valid UTF-8"));
  EXPECT_THAT(make_error({{"d", "1"}, {"d", "2"}}), HasSubstr("\"d\" is given twice"));
  EXPECT_THAT(make_error({{"", "x"}}), HasSubstr("empty"));
  // A label starting with one underscore is the user's.
  EXPECT_EQ(make_error({{"_x", "1"}}), "");
}

TEST(Labels, AtMost32) {
  std::vector<Label> many;
  for (int i = 0; i < 33; ++i)
    many.push_back({"l" + std::to_string(i), "v"});
  EXPECT_THAT(make_error(many), HasSubstr("too many labels"));
  many.pop_back();
  EXPECT_EQ(make_error(many), "");
  // Empty values do not count: they are absent.
  many.push_back({"extra", ""});
  EXPECT_EQ(make_error(many), "");
}

TEST(Labels, MergeOwnWinsAndEmptyRemoves) {
  const Labels base = Labels::make({{"instance", "h:1"}, {"job", "api"}, {"zone", "a"}});
  const std::vector<Label> own = {{"zone", "b"}, {"job", ""}, {"disk", "sda"}};
  const Labels merged = Labels::merge(base, own);
  EXPECT_EQ(merged, Labels::make({{"instance", "h:1"}, {"zone", "b"}, {"disk", "sda"}}));
  EXPECT_EQ(Labels::merge(base, {}), base);
  EXPECT_EQ(Labels::merge(Labels{}, own), Labels::make({{"zone", "b"}, {"disk", "sda"}}));
}

TEST(Labels, MergePastTheLimitIsAnError) {
  std::vector<Label> base_labels;
  std::vector<Label> own;
  for (int i = 0; i < 20; ++i) {
    base_labels.push_back({"b" + std::to_string(i), "v"});
    own.push_back({"o" + std::to_string(i), "v"});
  }
  const Labels base = Labels::make(base_labels);
  EXPECT_THROW((void)Labels::merge(base, own), InvalidInput);
}

TEST(Labels, OrderedPairByPair) {
  EXPECT_LT(Labels{}, Labels::make({{"a", "1"}}));
  EXPECT_LT(Labels::make({{"a", "1"}}), Labels::make({{"a", "2"}}));
  EXPECT_LT(Labels::make({{"a", "1"}}), Labels::make({{"ab", "1"}}));
  EXPECT_LT(Labels::make({{"a", "1"}}), Labels::make({{"a", "1"}, {"b", "1"}}));
  EXPECT_LT(Labels::make({{"a", "1"}, {"b", "1"}}), Labels::make({{"b", "0"}}));
}

// The ordering reads the encodings without decoding them: it must agree with
// comparing the decoded pairs, names then values, on sets built to share
// prefixes (a name or value that is a prefix of another, equal up to the
// last pair, non-ASCII values whose bytes are over 0x7F).
TEST(Labels, OrderingAgreesWithComparingTheDecodedPairs) {
  const auto reference = [](const Labels& a, const Labels& b) {
    const std::vector<LabelView> x(a.begin(), a.end());
    const std::vector<LabelView> y(b.begin(), b.end());
    for (std::size_t i = 0; i < x.size() && i < y.size(); ++i) {
      if (auto c = x[i].name <=> y[i].name; c != 0) return c;
      if (auto c = x[i].value <=> y[i].value; c != 0) return c;
    }
    return x.size() <=> y.size();
  };
  const std::vector<std::string> names{"a", "ab", "abc", "b", "job", "jo", "instance", "z_"};
  const std::vector<std::string> values{"", "1", "10", "1\xC3\xA9", "2", "\xC3\xA9", "x", "xy"};
  std::mt19937 rng(7);
  auto random_labels = [&] {
    std::vector<Label> labels;
    const std::size_t n = rng() % 4;
    for (std::size_t i = 0; i < n; ++i) {
      const std::string& name = names[rng() % names.size()];
      bool seen = false;
      for (const Label& l : labels)
        seen = seen || l.name == name;
      if (!seen) labels.push_back({name, values[rng() % values.size()]});
    }
    return Labels::make(std::move(labels));
  };
  std::size_t less = 0, greater = 0, equal = 0;
  for (int i = 0; i < 20000; ++i) {
    const Labels a = random_labels();
    const Labels b = random_labels();
    const auto want = reference(a, b);
    ASSERT_EQ(a <=> b, want) << a.to_string() << " vs " << b.to_string();
    ASSERT_EQ(b <=> a, reference(b, a)) << b.to_string() << " vs " << a.to_string();
    less += want < 0 ? 1U : 0U;
    greater += want > 0 ? 1U : 0U;
    equal += want == 0 ? 1U : 0U;
  }
  // Every outcome was met, equal ones (from distinct encodings) included.
  EXPECT_GT(less, 1000U);
  EXPECT_GT(greater, 1000U);
  EXPECT_GT(equal, 100U);
}

}  // namespace
}  // namespace metrics::core
