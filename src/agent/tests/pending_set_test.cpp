#include "pending_set.hpp"

#include <gtest/gtest.h>

namespace metrics::agent::detail {
namespace {

using core::Update;

TEST(PendingSetTest, CountersSumAndGaugesKeepTheLatest) {
  PendingSet set(10);
  set.merge(Update::counter("c", 2));
  set.merge(Update::gauge("g", 1.5));
  set.merge(Update::counter("c", 3));
  set.merge(Update::gauge("g", 2.5));
  const auto all = set.take();
  ASSERT_EQ(all.size(), 2U);
  EXPECT_EQ(all[0], Update::counter("c", 5));
  EXPECT_EQ(all[1], Update::gauge("g", 2.5));
  EXPECT_TRUE(set.empty());
}

TEST(PendingSetTest, SameNameDifferentTypesAreDifferentMetrics) {
  PendingSet set(10);
  set.merge(Update::counter("x", 1));
  set.merge(Update::gauge("x", 1));
  EXPECT_EQ(set.size(), 2U);
}

TEST(PendingSetTest, RestoredBatchIsOlderThanWhatIsHeld) {
  PendingSet set(10);
  set.merge(Update::gauge("g", 9));  // newer sample, taken after the failed batch
  set.merge(Update::counter("c", 4));
  const std::vector<Update> failed{Update::gauge("g", 1), Update::counter("c", 6),
                                   Update::gauge("old", 3)};
  set.restore(failed);
  const auto all = set.take();
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all[0], Update::gauge("g", 9));
  EXPECT_EQ(all[1], Update::counter("c", 10));
  EXPECT_EQ(all[2], Update::gauge("old", 3));
}

TEST(PendingSetTest, AtTheBoundNewNamesAreDroppedButHeldCountersStayExact) {
  PendingSet set(2);
  set.merge(Update::counter("a", 1));
  set.merge(Update::gauge("b", 1));
  set.merge(Update::counter("new", 1));
  set.merge(Update::counter("a", 41));
  EXPECT_EQ(set.size(), 2U);
  EXPECT_EQ(set.dropped(), 1U);
  set.restore(std::vector<Update>{Update::counter("a", 100), Update::counter("other", 1)});
  EXPECT_EQ(set.dropped(), 2U);
  const auto all = set.take();
  EXPECT_EQ(all[0], Update::counter("a", 142));
}

TEST(PendingSetTest, EachLabelSetIsASeriesOfItsOwn) {
  PendingSet set(8);
  const auto a = core::Labels::make({{"route", "/a"}});
  const auto b = core::Labels::make({{"route", "/b"}});
  set.merge(Update::counter("r", 1, a));
  set.merge(Update::counter("r", 2, b));
  set.merge(Update::counter("r", 4));
  set.merge(Update::counter("r", 8, a));
  set.merge(Update::gauge("g", 1, a));
  set.merge(Update::gauge("g", 2, b));
  set.merge(Update::gauge("g", 3, a));
  set.restore(std::vector<Update>{Update::counter("r", 16, b), Update::gauge("g", 0, b)});
  const auto all = set.take();
  ASSERT_EQ(all.size(), 5U);
  EXPECT_EQ(all[0], Update::counter("r", 9, a));
  EXPECT_EQ(all[1], Update::counter("r", 18, b));
  EXPECT_EQ(all[2], Update::counter("r", 4));
  EXPECT_EQ(all[3], Update::gauge("g", 3, a));
  EXPECT_EQ(all[4], Update::gauge("g", 2, b));  // the held gauge is newer than the restored one
}

TEST(PendingSetTest, OverflowingDeltaIsDroppedNotWrapped) {
  PendingSet set(4);
  set.merge(Update::counter("c", INT64_MAX - 1));
  set.merge(Update::counter("c", 5));
  EXPECT_EQ(set.dropped(), 1U);
  EXPECT_EQ(set.take()[0].delta, INT64_MAX - 1);
}

}  // namespace
}  // namespace metrics::agent::detail
