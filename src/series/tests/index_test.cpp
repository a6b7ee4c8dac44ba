#include "metrics/series/index.hpp"

#include <gtest/gtest.h>

#include <thread>

#include "metrics/core/errors.hpp"

namespace metrics::series {
namespace {

core::Labels L(std::vector<core::Label> labels) {
  return core::Labels::make(std::move(labels));
}

core::Update gauge(std::string id, core::Labels labels = {}) {
  return core::Update::gauge(std::move(id), 1.0, std::move(labels));
}

TEST(SeriesIndex, NewSeriesGetStableDistinctIdsAndCount) {
  SeriesIndex index;
  std::vector<core::Update> batch{gauge("a"), gauge("a", L({{"instance", "h:1"}})),
                                  core::Update::counter("a", 1)};
  auto r = index.reserve(batch);
  EXPECT_EQ(r.created(), 3U);
  EXPECT_NE(r.id(0), r.id(1));
  EXPECT_NE(r.id(1), r.id(2));
  const auto id1 = r.id(1);
  r.commit(5000);
  EXPECT_EQ(index.size(), 3U);
  EXPECT_EQ(index.instance_size("h:1"), 1U);

  auto again = index.reserve(batch);
  EXPECT_EQ(again.created(), 0U);
  EXPECT_EQ(again.id(1), id1);
  again.commit(6000);
  auto found = index.find(core::SeriesView(batch[1]));
  ASSERT_TRUE(found);
  EXPECT_EQ(found->id, id1);
  EXPECT_EQ(found->last_write_ms, 6000);
}

TEST(SeriesIndex, ReleaseForgetsNewSeriesAndKeepsOld) {
  SeriesIndex index;
  std::vector<core::Update> old{gauge("old")};
  index.reserve(old).commit(1);
  {
    std::vector<core::Update> batch{gauge("old"), gauge("new", L({{"instance", "i"}}))};
    auto r = index.reserve(batch);
    EXPECT_EQ(index.size(), 2U);  // reserved counts at once
    r.release();
  }
  EXPECT_EQ(index.size(), 1U);
  EXPECT_EQ(index.instance_size("i"), 0U);
  EXPECT_TRUE(index.find(core::SeriesView(old[0])));
  EXPECT_FALSE(index.find(core::SeriesView(gauge("new", L({{"instance", "i"}})))));
  {
    // Destroyed uncommitted: the same as release().
    std::vector<core::Update> batch{gauge("new2")};
    auto r = index.reserve(batch);
  }
  EXPECT_EQ(index.size(), 1U);
}

TEST(SeriesIndex, SharedNewSeriesSurvivesWhenOneOfTwoRequestsFails) {
  SeriesIndex index;
  std::vector<core::Update> batch{gauge("x")};
  auto a = index.reserve(batch);
  auto b = index.reserve(batch);
  EXPECT_EQ(a.created() + b.created(), 1U);
  EXPECT_EQ(index.size(), 1U);
  b.commit(10);
  a.release();
  EXPECT_EQ(index.size(), 1U);
  EXPECT_TRUE(index.find(core::SeriesView(batch[0])));
}

TEST(SeriesIndex, MaxSeriesRefusesTheWholeRequest) {
  SeriesIndex index(Limits{.max_series = 2, .max_series_per_instance = 0});
  std::vector<core::Update> first{gauge("a")};
  index.reserve(first).commit(1);
  std::vector<core::Update> batch{gauge("a"), gauge("b"), gauge("c")};
  try {
    (void)index.reserve(batch);
    FAIL() << "no LimitExceeded";
  } catch (const core::LimitExceeded& e) {
    EXPECT_NE(std::string(e.what()).find("--max-series limit of 2"), std::string::npos) << e.what();
  }
  EXPECT_EQ(index.size(), 1U);
  EXPECT_FALSE(index.find(core::SeriesView(batch[1])));
  // Existing series are still writable at the limit.
  std::vector<core::Update> second{gauge("b")};
  index.reserve(second).commit(2);
  std::vector<core::Update> at_limit{gauge("a"), gauge("b")};
  EXPECT_NO_THROW(index.reserve(at_limit).commit(3));
}

TEST(SeriesIndex, MaxSeriesPerInstanceCountsOnlyThatInstance) {
  SeriesIndex index(Limits{.max_series = 0, .max_series_per_instance = 1});
  std::vector<core::Update> a{gauge("m", L({{"instance", "a"}}))};
  index.reserve(a).commit(1);
  std::vector<core::Update> b{gauge("m", L({{"instance", "b"}})), gauge("free")};
  EXPECT_NO_THROW(index.reserve(b).commit(1));
  std::vector<core::Update> more{gauge("n", L({{"instance", "a"}}))};
  try {
    (void)index.reserve(more);
    FAIL() << "no LimitExceeded";
  } catch (const core::LimitExceeded& e) {
    EXPECT_NE(std::string(e.what()).find("--max-series-per-instance limit of 1"),
              std::string::npos);
    EXPECT_NE(std::string(e.what()).find("\"a\""), std::string::npos);
  }
  EXPECT_EQ(index.instance_size("a"), 1U);
}

TEST(SeriesIndex, ConcurrentCreatorsNeverOvershoot) {
  SeriesIndex index(Limits{.max_series = 100, .max_series_per_instance = 0});
  std::vector<std::thread> threads;
  std::atomic<int> refused{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        std::vector<core::Update> batch{gauge("t" + std::to_string(t) + "_" + std::to_string(i))};
        try {
          index.reserve(batch).commit(1);
        } catch (const core::LimitExceeded&) {
          refused.fetch_add(1);
        }
      }
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(index.size(), 100U);
  EXPECT_EQ(refused.load(), 300);
}

TEST(SeriesIndex, ConcurrentWritersFailuresAndExpiryKeepTheCountsExact) {
  SeriesIndex index(Limits{.max_series = 0, .max_series_per_instance = 0});
  std::vector<std::vector<core::Update>> batches;
  for (int b = 0; b < 8; ++b) {
    std::vector<core::Update> batch;
    for (int i = 0; i < 16; ++i) {
      batch.push_back(gauge("m" + std::to_string(i),
                            L({{"instance", "h" + std::to_string(b % 4)}, {"job", "j"}})));
    }
    batches.push_back(std::move(batch));
  }
  // Batches b and b + 4 write the same series: the keys of the first four.
  std::vector<core::SeriesKey> keys;
  for (std::size_t b = 0; b < 4; ++b)
    for (const auto& u : batches[b])
      keys.push_back(core::SeriesKey::of(u));
  std::atomic<bool> stop{false};
  std::vector<std::thread> threads;
  for (int t = 0; t < 3; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 2000; ++round) {
        auto r = index.reserve(batches[static_cast<std::size_t>((round + t) % 8)]);
        if ((round + t) % 3 == 0) {
          r.release();  // a storage failure
        } else {
          r.commit(round);
        }
      }
    });
  }
  threads.emplace_back([&] {
    while (!stop.load()) {
      (void)index.remove(keys, 1'000'000);  // everything not being written is old
      (void)index.liveness(0, 1);
    }
  });
  for (std::size_t i = 0; i + 1 < threads.size(); ++i)
    threads[i].join();
  stop.store(true);
  threads.back().join();
  std::uint64_t live = 0;
  for (const auto& key : keys)
    live += index.find(core::SeriesView(key)) ? 1U : 0U;
  EXPECT_EQ(index.size(), live);
  std::uint64_t per_instance = 0;
  for (int i = 0; i < 4; ++i)
    per_instance += index.instance_size("h" + std::to_string(i));
  EXPECT_EQ(per_instance, live);
  EXPECT_EQ(index.remove(keys, 1'000'000), live);
  EXPECT_EQ(index.size(), 0U);
}

TEST(SeriesIndex, LivenessPerInstanceAndJob) {
  SeriesIndex index;
  std::vector<core::Update> batch{gauge("a", L({{"instance", "h:1"}, {"job", "agent"}})),
                                  gauge("b", L({{"instance", "h:1"}, {"job", "agent"}})),
                                  gauge("c", L({{"instance", "h:2"}})), gauge("d")};
  index.reserve(batch).commit(10'000);
  auto all = index.liveness(70'000, 60'000);
  ASSERT_EQ(all.size(), 2U);
  EXPECT_EQ(all[0], (Liveness{"h:1", "agent", 10'000, false}));
  EXPECT_EQ(all[1], (Liveness{"h:2", "", 10'000, false}));
  EXPECT_TRUE(index.liveness("h:1", "agent", 69'999, 60'000)->up);

  auto up = index.liveness_point(kAgentUp, L({{"instance", "h:2"}}), 20'000, 60'000);
  ASSERT_TRUE(up);
  EXPECT_EQ(up->value, 1.0);
  EXPECT_EQ(up->labels, L({{"instance", "h:2"}}));
  auto last = index.liveness_point(kAgentLastPush, L({{"instance", "h:1"}, {"job", "agent"}}),
                                   20'000, 60'000);
  ASSERT_TRUE(last);
  EXPECT_EQ(last->value, 10.0);
  EXPECT_FALSE(index.liveness_point(kAgentUp, L({{"instance", "h:3"}}), 0, 60'000));
  EXPECT_FALSE(
      index.liveness_point(kAgentUp, L({{"instance", "h:2"}, {"x", "y"}}), 20'000, 60'000));
  EXPECT_FALSE(index.liveness_point("other", L({{"instance", "h:2"}}), 20'000, 60'000));
  EXPECT_EQ(index.liveness_points(20'000, 60'000).size(), 4U);
  // Liveness series do not count toward the limits.
  EXPECT_EQ(index.size(), 4U);
}

// Remote write in: one request holds many instances, ordered by metric name
// (as a scrape is), so the runs of equal labels are one update long and the
// same (instance, job) comes back once per metric.
TEST(SeriesIndex, LivenessOfManyInstancesInOneRequest) {
  SeriesIndex index;
  std::vector<core::Update> batch;
  constexpr int kInstances = 100;
  for (const char* name : {"a", "b", "c"}) {
    for (int i = 0; i < kInstances; ++i) {
      // Every other instance with a job, and one instance under two jobs.
      std::vector<core::Label> labels{{"instance", "h:" + std::to_string(i)}};
      if (i % 2 == 0) labels.push_back({"job", "agent"});
      batch.push_back(gauge(name, L(std::move(labels))));
    }
    batch.push_back(gauge(name, L({{"instance", "h:1"}, {"job", "other"}})));
  }
  auto r = index.reserve(batch);
  EXPECT_EQ(r.created(), batch.size());
  r.commit(10'000);
  const auto all = index.liveness(10'000, 60'000);
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kInstances + 1));
  std::size_t with_job = 0;
  for (const auto& l : all) {
    EXPECT_EQ(l.last_push_ms, 10'000) << l.instance;
    EXPECT_TRUE(l.up) << l.instance;
    if (!l.job.empty()) ++with_job;
  }
  EXPECT_EQ(with_job, static_cast<std::size_t>(kInstances / 2 + 1));
  ASSERT_TRUE(index.liveness("h:1", "other", 10'000, 60'000));
  ASSERT_TRUE(index.liveness("h:1", "", 10'000, 60'000));
  EXPECT_FALSE(index.liveness("h:1", "agent", 10'000, 60'000));
}

TEST(SeriesIndex, FailedWriteDoesNotTouchLiveness) {
  SeriesIndex index;
  std::vector<core::Update> batch{gauge("a", L({{"instance", "h"}}))};
  index.reserve(batch).release();
  EXPECT_TRUE(index.liveness(0, 1).empty());
}

TEST(SeriesIndex, RemoveForgetsOnlyWhatWasNotWrittenSince) {
  SeriesIndex index;
  std::vector<core::Update> old{gauge("old", L({{"instance", "i"}}))};
  std::vector<core::Update> fresh{gauge("fresh")};
  index.reserve(old).commit(1000);
  index.reserve(fresh).commit(5000);
  std::vector<core::SeriesKey> keys{core::SeriesKey::of(old[0]), core::SeriesKey::of(fresh[0])};
  // A request writing "old" right now keeps it.
  {
    auto r = index.reserve(old);
    EXPECT_EQ(index.remove(keys, 2000), 0U);
  }
  EXPECT_EQ(index.remove(keys, 2000), 1U);
  EXPECT_FALSE(index.find(core::SeriesView(old[0])));
  EXPECT_TRUE(index.find(core::SeriesView(fresh[0])));
  EXPECT_EQ(index.size(), 1U);
  EXPECT_EQ(index.instance_size("i"), 0U);
  EXPECT_TRUE(index.liveness(0, 1).empty());  // silent since before the cutoff
  // Written again: a new id.
  auto r = index.reserve(old);
  EXPECT_EQ(r.created(), 1U);
}

TEST(SeriesIndex, LoadCountsStoredSeriesAndDerivesLiveness) {
  SeriesIndex index(Limits{.max_series = 1, .max_series_per_instance = 1});
  auto p1 = core::Point::gauge("a", 1, L({{"instance", "h"}, {"job", "j"}}));
  p1.timestamp_ms = 7000;
  auto p2 = core::Point::counter("b", 2, L({{"instance", "h"}, {"job", "j"}}));  // ts unknown
  std::vector<core::Point> stored{p1, p2};
  index.load(stored, 9000);
  EXPECT_EQ(index.size(), 2U);  // past the limit: what is stored counts
  EXPECT_EQ(index.find(core::SeriesView(p1))->last_write_ms, 7000);
  EXPECT_EQ(index.find(core::SeriesView(p2))->last_write_ms, 9000);
  EXPECT_EQ(index.liveness("h", "j", 9000, 1)->last_push_ms, 9000);
  std::vector<core::Update> more{gauge("c")};
  EXPECT_THROW((void)index.reserve(more), core::LimitExceeded);
}

// The shards' tables grow and shift slots back on erase while requests hold
// their entries: every series keeps its id across both, a held request's
// release forgets only its own new series, and an expired half leaves the
// other half findable.
TEST(SeriesIndex, GrowthAndErasureKeepEverySeriesAndItsId) {
  SeriesIndex index(Limits{.max_series = 0, .max_series_per_instance = 0});
  constexpr std::size_t kInstances = 300;
  constexpr std::size_t kPerInstance = 29;
  std::vector<std::vector<core::Update>> batches;
  for (std::size_t i = 0; i < kInstances; ++i) {
    auto labels = L({{"instance", "h:" + std::to_string(i)}, {"job", "j"}});
    auto& b = batches.emplace_back();
    for (std::size_t m = 0; m < kPerInstance; ++m)
      b.push_back(gauge("m" + std::to_string(m), labels));
    // And one unlabelled series per request, spread over other shards.
    b.push_back(gauge("plain" + std::to_string(i)));
  }
  // Every request is held (uncommitted) while the later ones make the
  // tables grow; then every other one commits and the rest release.
  std::vector<SeriesIndex::Reservation> held;
  std::vector<std::vector<std::uint64_t>> ids(kInstances);
  for (std::size_t i = 0; i < kInstances; ++i) {
    held.push_back(index.reserve(batches[i]));
    EXPECT_EQ(held.back().created(), kPerInstance + 1U);
    for (std::size_t k = 0; k < batches[i].size(); ++k)
      ids[i].push_back(held.back().id(k));
  }
  EXPECT_EQ(index.size(), kInstances * (kPerInstance + 1U));
  for (std::size_t i = 0; i < kInstances; ++i) {
    if (i % 2 == 0) {
      held[i].commit(static_cast<std::int64_t>(1000 + i));
    } else {
      held[i].release();
    }
  }
  EXPECT_EQ(index.size(), (kInstances / 2) * (kPerInstance + 1U));
  for (std::size_t i = 0; i < kInstances; ++i) {
    for (std::size_t k = 0; k < batches[i].size(); ++k) {
      auto found = index.find(core::SeriesView(batches[i][k]));
      ASSERT_EQ(found.has_value(), i % 2 == 0) << i << " " << k;
      if (found) {
        EXPECT_EQ(found->id, ids[i][k]);
        EXPECT_EQ(found->last_write_ms, static_cast<std::int64_t>(1000 + i));
      }
    }
  }
  // Expire the committed requests of the first half: the second half's
  // series (moved back by the erasures) are still found with their ids.
  std::vector<core::SeriesKey> keys;
  for (std::size_t i = 0; i < kInstances / 2; i += 2) {
    for (const auto& u : batches[i])
      keys.push_back(core::SeriesKey::of(u));
  }
  EXPECT_EQ(index.remove(keys, static_cast<std::int64_t>(1000 + kInstances)), keys.size());
  for (std::size_t i = 0; i < kInstances; i += 2) {
    for (std::size_t k = 0; k < batches[i].size(); ++k) {
      auto found = index.find(core::SeriesView(batches[i][k]));
      ASSERT_EQ(found.has_value(), i >= kInstances / 2) << i << " " << k;
      if (found) {
        EXPECT_EQ(found->id, ids[i][k]);
      }
    }
  }
  // Written again, each series is the same one.
  auto again = index.reserve(batches[kInstances - 2]);
  EXPECT_EQ(again.created(), 0U);
  EXPECT_EQ(again.id(0), ids[kInstances - 2][0]);
}

}  // namespace
}  // namespace metrics::series
