#include "metrics/core/batch.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "metrics/core/errors.hpp"

namespace metrics::core {
namespace {

using ::testing::ElementsAre;

// prefix followed by n. Built by appending: GCC 12 at -O3 reports a false
// -Wrestrict for "literal" + std::string (GCC bug 105329).
std::string numbered(std::string_view prefix, long long n) {
  std::string out(prefix);
  out += std::to_string(n);
  return out;
}

TEST(MergeBatch, EmptyAndSingle) {
  EXPECT_TRUE(merge_batch({}).empty());
  const std::vector<Metric> one = {Metric::gauge("a", 1)};
  EXPECT_EQ(merge_batch(one), one);
}

TEST(MergeBatch, SumsCountersLastGaugeWinsFirstAppearanceOrder) {
  const std::vector<Metric> batch = {
      Metric::gauge("g", 1),   Metric::counter("c", 1), Metric::gauge("h", 7),
      Metric::counter("c", 2), Metric::gauge("g", 2),   Metric::counter("c", -10),
  };
  EXPECT_THAT(merge_batch(batch),
              ElementsAre(Metric::gauge("g", 2), Metric::counter("c", -7), Metric::gauge("h", 7)));
}

TEST(MergeBatch, SameNameDifferentTypesAreDifferentMetrics) {
  const std::vector<Metric> batch = {Metric::gauge("x", 1.5), Metric::counter("x", 3),
                                     Metric::counter("x", 4), Metric::gauge("x", 2.5)};
  EXPECT_THAT(merge_batch(batch), ElementsAre(Metric::gauge("x", 2.5), Metric::counter("x", 7)));
}

TEST(MergeBatch, OverflowIsInvalidInputNamingTheCounter) {
  const std::vector<Metric> up = {Metric::counter("c", INT64_MAX), Metric::counter("c", 1)};
  try {
    (void)merge_batch(up);
    FAIL() << "expected InvalidInput";
  } catch (const InvalidInput& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("\"c\""));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("overflow"));
  }
  const std::vector<Metric> down = {Metric::counter("c", INT64_MIN), Metric::counter("c", -1)};
  EXPECT_THROW((void)merge_batch(down), InvalidInput);
  // Reaching the limit exactly is fine, and so is coming back from it.
  const std::vector<Metric> edge = {Metric::counter("c", INT64_MAX - 1), Metric::counter("c", 1),
                                    Metric::counter("c", -5)};
  EXPECT_THAT(merge_batch(edge), ElementsAre(Metric::counter("c", INT64_MAX - 5)));
}

TEST(MergeBatch, LargeBatchUsesTheSameRules) {
  // Enough distinct names to take the hashed path.
  std::vector<Metric> batch;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 100; ++i) {
      batch.push_back(Metric::counter(numbered("c", i), i));
      batch.push_back(Metric::gauge(numbered("g", i), round * 1000 + i));
    }
  }
  const auto merged = merge_batch(batch);
  ASSERT_EQ(merged.size(), 200U);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(merged[static_cast<std::size_t>(2 * i)], Metric::counter(numbered("c", i), 3 * i));
    EXPECT_EQ(merged[static_cast<std::size_t>(2 * i + 1)],
              Metric::gauge(numbered("g", i), 2000 + i));
  }
}

TEST(MergeInto, MergesWithPending) {
  std::vector<Metric> pending = {Metric::counter("PollCount", 5), Metric::gauge("Alloc", 1)};
  const std::vector<Metric> incoming = {Metric::gauge("Alloc", 2), Metric::counter("PollCount", 5),
                                        Metric::gauge("New", 3), Metric::counter("PollCount", 1)};
  EXPECT_TRUE(merge_into(pending, incoming));
  EXPECT_THAT(pending, ElementsAre(Metric::counter("PollCount", 11), Metric::gauge("Alloc", 2),
                                   Metric::gauge("New", 3)));
}

TEST(MergeInto, OverflowLeavesPendingUnchanged) {
  std::vector<Metric> pending = {Metric::gauge("g", 1), Metric::counter("c", INT64_MAX - 1)};
  const auto before = pending;
  const std::vector<Metric> incoming = {Metric::gauge("g", 9), Metric::gauge("new", 1),
                                        Metric::counter("c", 1), Metric::counter("c", 1)};
  EXPECT_FALSE(merge_into(pending, incoming));
  EXPECT_EQ(pending, before);
}

TEST(MergeInto, IntoEmptyAndFromEmpty) {
  std::vector<Metric> pending;
  const std::vector<Metric> incoming = {Metric::counter("c", 1), Metric::counter("c", 1)};
  EXPECT_TRUE(merge_into(pending, incoming));
  EXPECT_THAT(pending, ElementsAre(Metric::counter("c", 2)));
  EXPECT_TRUE(merge_into(pending, {}));
  EXPECT_THAT(pending, ElementsAre(Metric::counter("c", 2)));
}

TEST(MergeInto, LargePendingTakesTheHashedPath) {
  std::vector<Metric> pending;
  for (int i = 0; i < 50; ++i)
    pending.push_back(Metric::counter(numbered("c", i), 1));
  std::vector<Metric> incoming;
  for (int i = 49; i >= 0; --i)
    incoming.push_back(Metric::counter(numbered("c", i), i));
  EXPECT_TRUE(merge_into(pending, incoming));
  ASSERT_EQ(pending.size(), 50U);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(pending[static_cast<std::size_t>(i)], Metric::counter(numbered("c", i), 1 + i));
  }
}

}  // namespace
}  // namespace metrics::core
