// MemoryRepository beyond the conformance suite: its synchronous forms (used
// by the file storage), shard counts, rollback of unmerged batches, and
// concurrency with labelled and unlabelled writers.
#include "metrics/storage/memory_repository.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <exception>
#include <limits>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "metrics/core/errors.hpp"

namespace metrics::storage {
namespace {

using core::Labels;
using core::MetricKey;
using core::MetricType;
using core::Point;
using core::SeriesKey;
using core::Update;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

// prefix followed by n. Built by appending: GCC 12 at -O3 reports a false
// -Wrestrict for "literal" + std::string (GCC bug 105329).
std::string numbered(std::string_view prefix, long long n) {
  std::string out(prefix);
  out += std::to_string(n);
  return out;
}

Labels inst(std::string_view name) {
  return Labels::make({{"instance", std::string(name)}});
}

Point at(Point p, std::int64_t ms) {
  p.timestamp_ms = ms;
  return p;
}

TEST(MemoryRepository, StartsEmpty) {
  MemoryRepository repo;
  EXPECT_THAT(repo.list_now(), IsEmpty());
  EXPECT_THAT(repo.list_series_now(), IsEmpty());
  EXPECT_FALSE(repo.get_classic_now({MetricType::gauge, "x"}).has_value());
  EXPECT_FALSE(repo.get_now({MetricType::gauge, "x", {}}).has_value());
  EXPECT_TRUE(ping_sync(repo));
}

TEST(MemoryRepository, KeepsExactDoubles) {
  MemoryRepository repo;
  const double tiny = std::numeric_limits<double>::denorm_min();
  (void)repo.apply_now({Update::gauge("tiny", tiny), Update::gauge("negzero", -0.0, inst("a")),
                        Update::gauge("max", std::numeric_limits<double>::max())},
                       1);
  EXPECT_EQ(repo.get_classic_now({MetricType::gauge, "tiny"})->value, tiny);
  EXPECT_EQ(repo.get_now({MetricType::gauge, "tiny", {}})->value, tiny);
  EXPECT_TRUE(std::signbit(repo.get_classic_now({MetricType::gauge, "negzero"})->value));
  EXPECT_TRUE(std::signbit(repo.get_now({MetricType::gauge, "negzero", inst("a")})->value));
}

TEST(MemoryRepository, CounterExtremes) {
  MemoryRepository repo;
  (void)repo.apply_now({Update::counter("c", INT64_MAX)}, 1);
  EXPECT_EQ(repo.get_classic_now({MetricType::counter, "c"}), Point::counter("c", INT64_MAX));
  (void)repo.apply_now({Update::counter("c", INT64_MIN)}, 2);
  EXPECT_EQ(repo.get_classic_now({MetricType::counter, "c"}), Point::counter("c", -1));
  EXPECT_EQ(repo.get_now({MetricType::counter, "c", {}}), at(Point::counter("c", -1), 2));
  (void)repo.apply_now({Update::counter("d", INT64_MIN)}, 3);
  EXPECT_THROW((void)repo.apply_now({Update::counter("d", -1)}, 4), core::InvalidInput);
  EXPECT_EQ(repo.get_classic_now({MetricType::counter, "d"}), Point::counter("d", INT64_MIN));
}

TEST(MemoryRepository, OverflowRejectsTheWholeBatchAndChangesNothing) {
  MemoryRepository repo;
  (void)repo.apply_now({Update::counter("big", INT64_MAX - 1, inst("a")), Update::gauge("g", 1),
                        Update::counter("c", 10), Update::counter("c", 3, inst("b"))},
                       1);
  const auto before = repo.contents_now();

  std::vector<Update> batch = {Update::gauge("g", 99), Update::counter("c", 5),
                               Update::counter("c", 5, inst("b")), Update::gauge("new_gauge", 1),
                               Update::counter("new_counter", 1, inst("n"))};
  batch.push_back(Update::counter("big", 2, inst("a")));  // overflows, after the others
  batch.push_back(Update::gauge("after", 3));

  std::exception_ptr error;
  Applied result{{Point::gauge("sentinel", 0)}, {Point::gauge("sentinel", 0)}};
  repo.apply(batch, 2, [&](std::exception_ptr e, Applied stored) {
    error = e;
    result = std::move(stored);
  });
  ASSERT_TRUE(error);
  try {
    std::rethrow_exception(error);
  } catch (const core::InvalidInput& e) {
    EXPECT_THAT(e.what(), HasSubstr("\"big\"{instance=\"a\"}"));
    EXPECT_THAT(e.what(), HasSubstr("overflow"));
  }
  EXPECT_THAT(result.series, IsEmpty());
  EXPECT_THAT(result.classic, IsEmpty());
  EXPECT_EQ(repo.list_now(), before.classic);
  EXPECT_EQ(repo.list_series_now(), before.series);
  EXPECT_THROW((void)repo.apply_now(batch, 3), core::InvalidInput);
  EXPECT_EQ(repo.list_now(), before.classic);
  EXPECT_EQ(repo.list_series_now(), before.series);
}

TEST(MemoryRepository, OverflowFromRepeatsInAnUnmergedBatchRollsBack) {
  MemoryRepository repo;
  (void)repo.apply_now({Update::counter("c", 1)}, 1);
  // Not merged on purpose: the storage still has to be atomic.
  EXPECT_THROW(
      (void)repo.apply_now(
          {Update::gauge("g", 1), Update::counter("c", INT64_MAX - 1), Update::counter("c", 1)}, 2),
      core::InvalidInput);
  EXPECT_THAT(repo.list_now(), ElementsAre(Point::counter("c", 1)));
  EXPECT_THAT(repo.list_series_now(), ElementsAre(at(Point::counter("c", 1), 1)));
}

TEST(MemoryRepository, OverflowOfANewNameRemovesItsEntriesAgain) {
  MemoryRepository repo;
  // A new name whose classic entry is created by the first series, then
  // overflowed by the second: neither may stay behind.
  EXPECT_THROW(
      (void)repo.apply_now(
          {Update::counter("n", INT64_MAX, inst("a")), Update::counter("n", 1, inst("b"))}, 1),
      core::InvalidInput);
  EXPECT_THAT(repo.list_now(), IsEmpty());
  EXPECT_THAT(repo.list_series_now(), IsEmpty());
  EXPECT_EQ(repo.get_classic_now({MetricType::counter, "n"}), std::nullopt);
}

TEST(MemoryRepository, UnmergedRepeatsApplyInOrder) {
  MemoryRepository repo;
  const auto stored =
      repo.apply_now({Update::counter("c", 1), Update::counter("c", 2), Update::gauge("g", 1),
                      Update::gauge("g", 2), Update::counter("c", 4, inst("a"))},
                     5);
  EXPECT_THAT(stored.series,
              ElementsAre(at(Point::counter("c", 1), 5), at(Point::counter("c", 3), 5),
                          at(Point::gauge("g", 1), 5), at(Point::gauge("g", 2), 5),
                          at(Point::counter("c", 4, inst("a")), 5)));
  EXPECT_THAT(stored.classic,
              ElementsAre(Point::counter("c", 7), Point::counter("c", 7), Point::gauge("g", 2),
                          Point::gauge("g", 2), Point::counter("c", 7)));
  EXPECT_THAT(repo.list_now(), ElementsAre(Point::counter("c", 7), Point::gauge("g", 2)));
}

TEST(MemoryRepository, CallbacksCompleteInlineExactlyOnce) {
  MemoryRepository repo;
  int calls = 0;
  repo.apply({Update::counter("c", 2, inst("a"))}, 9, [&](std::exception_ptr e, Applied stored) {
    ++calls;
    EXPECT_FALSE(e);
    EXPECT_THAT(stored.series, ElementsAre(at(Point::counter("c", 2, inst("a")), 9)));
    EXPECT_THAT(stored.classic, ElementsAre(Point::counter("c", 2)));
  });
  repo.get({MetricType::counter, "c", inst("a")},
           [&](std::exception_ptr e, std::optional<Point> m) {
             ++calls;
             EXPECT_FALSE(e);
             EXPECT_EQ(m, at(Point::counter("c", 2, inst("a")), 9));
           });
  repo.get_classic({MetricType::gauge, "c"}, [&](std::exception_ptr e, std::optional<Point> m) {
    ++calls;
    EXPECT_FALSE(e);
    EXPECT_FALSE(m.has_value());
  });
  repo.list([&](std::exception_ptr e, std::vector<Point> all) {
    ++calls;
    EXPECT_FALSE(e);
    EXPECT_EQ(all.size(), 1U);
  });
  repo.list_series([&](std::exception_ptr e, std::vector<Point> all) {
    ++calls;
    EXPECT_FALSE(e);
    EXPECT_EQ(all.size(), 1U);
  });
  repo.expire(10, [&](std::exception_ptr e, std::vector<SeriesKey> gone) {
    ++calls;
    EXPECT_FALSE(e);
    EXPECT_THAT(gone, ElementsAre(SeriesKey{MetricType::counter, "c", inst("a")}));
  });
  repo.ping([&](std::exception_ptr e, bool ok) {
    ++calls;
    EXPECT_FALSE(e);
    EXPECT_TRUE(ok);
  });
  EXPECT_EQ(calls, 7);
  repo.close();
}

// A storage that overrides only ping(): health() is derived from it.
class PingOnly final : public Repository {
 public:
  explicit PingOnly(std::exception_ptr err) : err_(std::move(err)) {}
  void apply(std::vector<Update>, std::int64_t, Callback<Applied> done) override {
    done(nullptr, {});
  }
  void get(SeriesKey, Callback<std::optional<Point>> done) override { done(nullptr, {}); }
  void get_classic(MetricKey, Callback<std::optional<Point>> done) override { done(nullptr, {}); }
  void list(Callback<std::vector<Point>> done) override { done(nullptr, {}); }
  void list_series(Callback<std::vector<Point>> done) override { done(nullptr, {}); }
  void expire(std::int64_t, Callback<std::vector<SeriesKey>> done) override { done(nullptr, {}); }
  void ping(Callback<bool> done) override { done(err_, !err_); }
  void close() override {}

 private:
  std::exception_ptr err_;
};

TEST(RepositoryHealth, TheDefaultTakesTheReasonFromPing) {
  PingOnly up(nullptr);
  EXPECT_EQ(health_sync(up), Health{});
  PingOnly down(std::make_exception_ptr(core::StorageUnavailable("disk on fire")));
  EXPECT_EQ(health_sync(down), (Health{.ok = false, .reason = "disk on fire"}));
  // Not a verdict on the storage: passed on as the error it is.
  PingOnly busy(std::make_exception_ptr(core::Overloaded("queue is full")));
  EXPECT_THROW(health_sync(busy), core::Overloaded);
}

TEST(MemoryRepository, ErrorsGoToTheCallbackNotToTheCaller) {
  MemoryRepository repo;
  (void)repo.apply_now({Update::counter("c", INT64_MAX)}, 1);
  int calls = 0;
  EXPECT_NO_THROW(repo.apply({Update::counter("c", 1)}, 2, [&](std::exception_ptr e, Applied) {
    ++calls;
    EXPECT_TRUE(e);
  }));
  EXPECT_EQ(calls, 1);
  EXPECT_THROW((void)apply_sync(repo, {Update::counter("c", 1)}), core::InvalidInput);
}

TEST(MemoryRepository, ResetReplacesBothTables) {
  MemoryRepository repo;
  (void)repo.apply_now({Update::gauge("old", 1), Update::counter("c", 100, inst("x"))}, 1);
  const std::vector<Point> classic{Point::counter("c", 5), Point::gauge("g", 2.5),
                                   Point::gauge("g", 3.5)};
  const std::vector<Point> series{at(Point::counter("c", 2, inst("a")), 7),
                                  at(Point::counter("c", 3), 8)};
  repo.reset(classic, series);
  EXPECT_THAT(repo.list_now(), ElementsAre(Point::counter("c", 5), Point::gauge("g", 3.5)));
  EXPECT_THAT(repo.list_series_now(),
              ElementsAre(at(Point::counter("c", 3), 8), at(Point::counter("c", 2, inst("a")), 7)));
  const auto a = repo.apply_now({Update::counter("c", 1, inst("a"))}, 9);
  EXPECT_THAT(a.series, ElementsAre(at(Point::counter("c", 3, inst("a")), 9)));
  EXPECT_THAT(a.classic, ElementsAre(Point::counter("c", 6)));
  repo.reset({}, {});
  EXPECT_THAT(repo.list_now(), IsEmpty());
  EXPECT_THAT(repo.list_series_now(), IsEmpty());
}

TEST(MemoryRepository, StoreNowSetsValuesAsGiven) {
  MemoryRepository repo;
  (void)repo.apply_now({Update::counter("c", 1, inst("a")), Update::gauge("g", 1)}, 1);
  repo.store_now({{at(Point::counter("c", 40, inst("a")), 5), at(Point::counter("c", 2), 6),
                   at(Point::gauge("h", 7, inst("b")), 6)}},
                 {{Point::counter("c", 42), Point::gauge("h", 7)}});
  EXPECT_EQ(repo.get_now({MetricType::counter, "c", inst("a")}),
            at(Point::counter("c", 40, inst("a")), 5));
  EXPECT_EQ(repo.get_now({MetricType::counter, "c", {}}), at(Point::counter("c", 2), 6));
  EXPECT_THAT(repo.list_now(),
              ElementsAre(Point::counter("c", 42), Point::gauge("g", 1), Point::gauge("h", 7)));
  EXPECT_EQ(repo.list_series_now().size(), 4U);
}

TEST(MemoryRepository, ExpiredKeysRemoveNowAndExpireNowAgree) {
  MemoryRepository repo;
  (void)repo.apply_now({Update::counter("c", 1, inst("a")), Update::counter("c", 1),
                        Update::gauge("g", 1, inst("a"))},
                       10);
  (void)repo.apply_now({Update::gauge("g", 2, inst("b"))}, 20);
  auto keys = repo.expired_keys_now(15);
  std::sort(keys.begin(), keys.end());
  EXPECT_THAT(keys, ElementsAre(SeriesKey{MetricType::counter, "c", {}},
                                SeriesKey{MetricType::counter, "c", inst("a")},
                                SeriesKey{MetricType::gauge, "g", inst("a")}));
  EXPECT_EQ(repo.list_series_now().size(), 4U);  // only looked
  repo.remove_now(keys);
  EXPECT_THAT(repo.list_series_now(), ElementsAre(at(Point::gauge("g", 2, inst("b")), 20)));
  EXPECT_THAT(repo.list_now(), ElementsAre(Point::counter("c", 2), Point::gauge("g", 2)));
  repo.remove_now(keys);  // gone already: nothing happens
  EXPECT_THAT(repo.expire_now(21), ElementsAre(SeriesKey{MetricType::gauge, "g", inst("b")}));
  EXPECT_THAT(repo.list_series_now(), IsEmpty());
  EXPECT_EQ(repo.list_now().size(), 2U);
}

TEST(MemoryRepository, AnyShardCountWorks) {
  for (std::size_t shards : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{64},
                             std::size_t{100}, std::size_t{5000}}) {
    MemoryRepository repo(shards);
    std::vector<Update> batch;
    for (int i = 0; i < 300; ++i) {
      batch.push_back(Update::counter(numbered("c", i), i));
      batch.push_back(Update::counter(numbered("c", i), i, inst(numbered("h", i % 7))));
    }
    (void)repo.apply_now(batch, 1);
    (void)repo.apply_now(batch, 2);
    const auto all = repo.list_now();
    ASSERT_EQ(all.size(), 300U) << shards;
    for (const Point& m : all) {
      EXPECT_EQ(m.total, 4 * std::stoll(m.id.substr(1))) << m.id;
    }
    EXPECT_EQ(repo.list_series_now().size(), 600U) << shards;
  }
}

TEST(MemoryRepository, LargeBatchIsAtomicToo) {
  MemoryRepository repo;
  (void)repo.apply_now({Update::counter("c150", INT64_MAX)}, 1);
  std::vector<Update> batch;
  for (int i = 0; i < 300; ++i)
    batch.push_back(Update::counter(numbered("c", i), 1, inst("a")));
  EXPECT_THROW((void)repo.apply_now(batch, 2), core::InvalidInput);
  EXPECT_THAT(repo.list_now(), ElementsAre(Point::counter("c150", INT64_MAX)));
  EXPECT_THAT(repo.list_series_now(), ElementsAre(at(Point::counter("c150", INT64_MAX), 1)));
}

// The series of one name share one flat table: a batch that adds many of
// them grows it several times while earlier updates of the same batch have
// changed slots that then move. The rollback must still find each one.
TEST(MemoryRepository, RollbackFindsSeriesMovedByTheBatchsOwnGrowth) {
  MemoryRepository repo(1);
  std::vector<Update> first;
  for (int i = 0; i < 10; ++i)
    first.push_back(Update::counter("c", i + 1, inst(numbered("old", i))));
  (void)repo.apply_now(first, 1);
  const auto before = repo.contents_now();

  std::vector<Update> batch;
  for (int i = 0; i < 10; ++i)  // existing series, changed first
    batch.push_back(Update::counter("c", 100, inst(numbered("old", i))));
  for (int i = 0; i < 2000; ++i)  // then enough new ones to grow the table 8 times
    batch.push_back(Update::counter("c", 1, inst(numbered("new", i))));
  for (int i = 0; i < 10; ++i)  // the old ones again, after the growth
    batch.push_back(Update::counter("c", 1000, inst(numbered("old", i))));
  batch.push_back(Update::counter("c", INT64_MAX, inst("old3")));  // overflows
  EXPECT_THROW((void)repo.apply_now(batch, 2), core::InvalidInput);
  EXPECT_EQ(repo.list_series_now(), before.series);
  EXPECT_EQ(repo.list_now(), before.classic);

  batch.pop_back();  // without the overflow, everything lands
  (void)repo.apply_now(batch, 3);
  const auto series = repo.list_series_now();
  ASSERT_EQ(series.size(), 2010U);
  for (const Point& p : series) {
    const auto instance = std::string(*p.labels.get("instance"));
    if (instance.starts_with("old")) {
      EXPECT_EQ(p.total, std::stoll(instance.substr(3)) + 1 + 1100) << instance;
    } else {
      EXPECT_EQ(p.total, 1) << instance;
    }
  }
}

// Expiry erases slots one after another from the middle of their runs; the
// series left behind must all still be found, with their values.
TEST(MemoryRepository, ExpiringHalfOfOneNamesSeriesKeepsTheOtherHalfFindable) {
  MemoryRepository repo(1);
  for (int i = 0; i < 3000; ++i) {
    (void)repo.apply_now({Update::gauge("g", i, inst(numbered("h", i)))}, i % 2 == 0 ? 10 : 20);
  }
  EXPECT_EQ(repo.expire_now(15).size(), 1500U);
  for (int i = 0; i < 3000; ++i) {
    const auto found = repo.get_now({MetricType::gauge, "g", inst(numbered("h", i))});
    if (i % 2 == 0) {
      EXPECT_EQ(found, std::nullopt) << i;
    } else {
      ASSERT_TRUE(found.has_value()) << i;
      EXPECT_EQ(found->value, i);
      EXPECT_EQ(found->timestamp_ms, 20);
    }
  }
  EXPECT_EQ(repo.list_series_now().size(), 1500U);
}

TEST(MemoryRepositoryConcurrency, HammeringOneCounterFromManySeriesSumsExactly) {
  MemoryRepository repo;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&repo, t] {
      const Labels me = inst(numbered("h", t));
      for (int i = 0; i < kPerThread; ++i) {
        (void)apply_sync(repo,
                         {Update::counter("hot", t + 1), Update::counter("hot", 1, me),
                          Update::gauge("last", t)},
                         i);
      }
    });
  }
  for (auto& th : threads)
    th.join();
  std::int64_t want = 0;
  for (int t = 0; t < kThreads; ++t)
    want += static_cast<std::int64_t>(t + 1) * kPerThread;
  EXPECT_EQ(repo.get_now({MetricType::counter, "hot", {}})->total, want);
  EXPECT_EQ(repo.get_classic_now({MetricType::counter, "hot"}),
            Point::counter("hot", want + kThreads * kPerThread));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(repo.get_now({MetricType::counter, "hot", inst(numbered("h", t))})->total,
              kPerThread);
  }
  const auto last = repo.get_classic_now({MetricType::gauge, "last"});
  ASSERT_TRUE(last.has_value());
  EXPECT_GE(last->value, 0);
  EXPECT_LT(last->value, kThreads);
}

TEST(MemoryRepositoryConcurrency, OverlappingBatchesInAnyOrderNeitherDeadlockNorLoseUpdates) {
  MemoryRepository repo(8);  // few shards: many overlapping lock sets
  constexpr int kThreads = 6;
  constexpr int kBatches = 2000;
  constexpr int kNames = 40;
  std::vector<std::thread> threads;
  std::atomic<bool> stop{false};
  // A reader checking that a batch is never seen half-applied: every batch
  // adds 1 to "pair_a" (a labelled series) and "pair_b" (unlabelled), so
  // their series and classic values are always equal, in one snapshot.
  std::thread reader([&] {
    while (!stop.load()) {
      const auto all = repo.contents_now();
      std::int64_t a = 0;
      std::int64_t b = 0;
      for (const Point& m : all.classic) {
        if (m.id == "pair_a") a = m.total;
        if (m.id == "pair_b") b = m.total;
      }
      EXPECT_EQ(a, b);
      std::int64_t sa = 0;
      std::int64_t sb = 0;
      for (const Point& m : all.series) {
        if (m.id == "pair_a") sa += m.total;
        if (m.id == "pair_b") sb += m.total;
      }
      EXPECT_EQ(sa, a);
      EXPECT_EQ(sb, b);
    }
  });
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&repo, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::vector<int> order(kNames);
      for (int i = 0; i < kNames; ++i)
        order[static_cast<std::size_t>(i)] = i;
      const Labels me = inst(numbered("h", t));
      for (int n = 0; n < kBatches; ++n) {
        std::shuffle(order.begin(), order.end(), rng);
        std::vector<Update> batch;
        batch.push_back(Update::counter("pair_a", 1, me));
        for (int i = 0; i < 10; ++i) {
          batch.push_back(
              Update::counter(numbered("n", order[static_cast<std::size_t>(i)]), 1, me));
        }
        batch.push_back(Update::counter("pair_b", 1));
        repo.apply(std::move(batch), n, [](std::exception_ptr e, Applied) { EXPECT_FALSE(e); });
      }
    });
  }
  for (auto& th : threads)
    th.join();
  stop = true;
  reader.join();
  std::int64_t total = 0;
  for (const Point& m : repo.list_now()) {
    if (m.id.starts_with("n")) total += m.total;
  }
  EXPECT_EQ(total, std::int64_t{kThreads} * kBatches * 10);
  EXPECT_EQ(repo.get_classic_now({MetricType::counter, "pair_a"}),
            Point::counter("pair_a", std::int64_t{kThreads} * kBatches));
  EXPECT_EQ(repo.get_classic_now({MetricType::counter, "pair_b"}),
            Point::counter("pair_b", std::int64_t{kThreads} * kBatches));
}

TEST(MemoryRepositoryConcurrency, ReadersResetAndExpiryAlongsideWriters) {
  MemoryRepository repo;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 3000; ++i) {
      (void)repo.apply_now({Update::gauge("g", i), Update::counter("c", 1),
                            Update::counter("c", 1, inst(numbered("h", i % 50)))},
                           i);
    }
    stop = true;
  });
  std::thread reader([&] {
    while (!stop.load()) {
      (void)repo.get_now({MetricType::gauge, "g", {}});
      (void)repo.get_now({MetricType::counter, "c", inst("h1")});
      (void)list_sync(repo);
      (void)list_series_sync(repo);
    }
  });
  std::thread expirer([&] {
    for (int i = 0; !stop.load(); ++i)
      (void)repo.expire_now(i);
  });
  std::thread resetter([&] {
    const std::vector<Point> classic{Point::counter("c", 0)};
    const std::vector<Point> series{Point::counter("c", 0, inst("h1"))};
    for (int i = 0; i < 50 && !stop.load(); ++i)
      repo.reset(classic, series);
  });
  writer.join();
  reader.join();
  expirer.join();
  resetter.join();
  EXPECT_TRUE(repo.get_classic_now({MetricType::counter, "c"}).has_value());
}

}  // namespace
}  // namespace metrics::storage
