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
  const std::vector<Update> one = {Update::gauge("a", 1)};
  EXPECT_EQ(merge_batch(one), one);
}

TEST(MergeBatch, SumsCountersLastGaugeWinsFirstAppearanceOrder) {
  const std::vector<Update> batch = {
      Update::gauge("g", 1),   Update::counter("c", 1), Update::gauge("h", 7),
      Update::counter("c", 2), Update::gauge("g", 2),   Update::counter("c", -10),
  };
  EXPECT_THAT(merge_batch(batch),
              ElementsAre(Update::gauge("g", 2), Update::counter("c", -7), Update::gauge("h", 7)));
}

TEST(MergeBatch, SameNameDifferentTypesAreDifferentMetrics) {
  const std::vector<Update> batch = {Update::gauge("x", 1.5), Update::counter("x", 3),
                                     Update::counter("x", 4), Update::gauge("x", 2.5)};
  EXPECT_THAT(merge_batch(batch), ElementsAre(Update::gauge("x", 2.5), Update::counter("x", 7)));
}

TEST(MergeBatch, OverflowIsInvalidInputNamingTheCounter) {
  const std::vector<Update> up = {Update::counter("c", INT64_MAX), Update::counter("c", 1)};
  try {
    (void)merge_batch(up);
    FAIL() << "expected InvalidInput";
  } catch (const InvalidInput& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("\"c\""));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("overflow"));
  }
  const std::vector<Update> down = {Update::counter("c", INT64_MIN), Update::counter("c", -1)};
  EXPECT_THROW((void)merge_batch(down), InvalidInput);
  // Reaching the limit exactly is fine, and so is coming back from it.
  const std::vector<Update> edge = {Update::counter("c", INT64_MAX - 1), Update::counter("c", 1),
                                    Update::counter("c", -5)};
  EXPECT_THAT(merge_batch(edge), ElementsAre(Update::counter("c", INT64_MAX - 5)));
}

TEST(MergeBatch, LargeBatchUsesTheSameRules) {
  // Enough distinct names to take the hashed path.
  std::vector<Update> batch;
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 100; ++i) {
      batch.push_back(Update::counter(numbered("c", i), i));
      batch.push_back(Update::gauge(numbered("g", i), round * 1000 + i));
    }
  }
  const auto merged = merge_batch(batch);
  ASSERT_EQ(merged.size(), 200U);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(merged[static_cast<std::size_t>(2 * i)], Update::counter(numbered("c", i), 3 * i));
    EXPECT_EQ(merged[static_cast<std::size_t>(2 * i + 1)],
              Update::gauge(numbered("g", i), 2000 + i));
  }
}

TEST(MergeInto, MergesWithPending) {
  std::vector<Update> pending = {Update::counter("PollCount", 5), Update::gauge("Alloc", 1)};
  const std::vector<Update> incoming = {Update::gauge("Alloc", 2), Update::counter("PollCount", 5),
                                        Update::gauge("New", 3), Update::counter("PollCount", 1)};
  EXPECT_TRUE(merge_into(pending, incoming));
  EXPECT_THAT(pending, ElementsAre(Update::counter("PollCount", 11), Update::gauge("Alloc", 2),
                                   Update::gauge("New", 3)));
}

TEST(MergeInto, OverflowLeavesPendingUnchanged) {
  std::vector<Update> pending = {Update::gauge("g", 1), Update::counter("c", INT64_MAX - 1)};
  const auto before = pending;
  const std::vector<Update> incoming = {Update::gauge("g", 9), Update::gauge("new", 1),
                                        Update::counter("c", 1), Update::counter("c", 1)};
  EXPECT_FALSE(merge_into(pending, incoming));
  EXPECT_EQ(pending, before);
}

TEST(MergeInto, IntoEmptyAndFromEmpty) {
  std::vector<Update> pending;
  const std::vector<Update> incoming = {Update::counter("c", 1), Update::counter("c", 1)};
  EXPECT_TRUE(merge_into(pending, incoming));
  EXPECT_THAT(pending, ElementsAre(Update::counter("c", 2)));
  EXPECT_TRUE(merge_into(pending, {}));
  EXPECT_THAT(pending, ElementsAre(Update::counter("c", 2)));
}

TEST(MergeInto, LargePendingTakesTheHashedPath) {
  std::vector<Update> pending;
  for (int i = 0; i < 50; ++i)
    pending.push_back(Update::counter(numbered("c", i), 1));
  std::vector<Update> incoming;
  for (int i = 49; i >= 0; --i)
    incoming.push_back(Update::counter(numbered("c", i), i));
  EXPECT_TRUE(merge_into(pending, incoming));
  ASSERT_EQ(pending.size(), 50U);
  for (int i = 0; i < 50; ++i) {
    EXPECT_EQ(pending[static_cast<std::size_t>(i)], Update::counter(numbered("c", i), 1 + i));
  }
}

TEST(MergeBatch, SeriesWithOtherLabelsAreMergedApart) {
  const Labels a = Labels::make({{"instance", "a"}});
  const Labels b = Labels::make({{"instance", "b"}});
  const std::vector<Update> batch = {Update::counter("c", 1, a), Update::counter("c", 2, b),
                                     Update::counter("c", 3, a), Update::counter("c", 4),
                                     Update::gauge("g", 1, b),   Update::gauge("g", 2, b)};
  EXPECT_THAT(merge_batch(batch),
              ElementsAre(Update::counter("c", 4, a), Update::counter("c", 2, b),
                          Update::counter("c", 4), Update::gauge("g", 2, b)));
}

TEST(MergeBatch, OverflowNamesTheSeries) {
  const Labels a = Labels::make({{"instance", "a"}});
  const std::vector<Update> up = {Update::counter("c", INT64_MAX, a), Update::counter("c", 1, a)};
  try {
    (void)merge_batch(up);
    FAIL() << "expected InvalidInput";
  } catch (const InvalidInput& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("c{instance=\"a\"}"));
  }
}

}  // namespace
}  // namespace metrics::core
