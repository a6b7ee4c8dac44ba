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

using core::Metric;
using core::MetricKey;
using core::MetricType;
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

TEST(MemoryRepository, StartsEmpty) {
  MemoryRepository repo;
  EXPECT_THAT(repo.list_now(), IsEmpty());
  EXPECT_FALSE(repo.get_now({MetricType::gauge, "x"}).has_value());
  EXPECT_TRUE(ping_sync(repo));
}

TEST(MemoryRepository, GaugeReplacesCounterAdds) {
  MemoryRepository repo;
  EXPECT_THAT(apply_sync(repo, {Metric::gauge("g", 1.5), Metric::counter("c", 5)}),
              ElementsAre(Metric::gauge("g", 1.5), Metric::counter("c", 5)));
  EXPECT_THAT(apply_sync(repo, {Metric::counter("c", 3), Metric::gauge("g", -2)}),
              ElementsAre(Metric::counter("c", 8), Metric::gauge("g", -2)));
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "g"}), Metric::gauge("g", -2));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "c"}), Metric::counter("c", 8));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "g"}), std::nullopt);
}

TEST(MemoryRepository, SameNameDifferentTypesAreDifferentMetrics) {
  MemoryRepository repo;
  (void)repo.apply_now({Metric::gauge("x", 2.5), Metric::counter("x", 7)});
  EXPECT_EQ(repo.get_now({MetricType::gauge, "x"}), Metric::gauge("x", 2.5));
  EXPECT_EQ(repo.get_now({MetricType::counter, "x"}), Metric::counter("x", 7));
  EXPECT_THAT(repo.list_now(), ElementsAre(Metric::gauge("x", 2.5), Metric::counter("x", 7)));
}

TEST(MemoryRepository, EmptyBatchChangesNothing) {
  MemoryRepository repo;
  EXPECT_THAT(apply_sync(repo, {}), IsEmpty());
  EXPECT_THAT(repo.list_now(), IsEmpty());
}

TEST(MemoryRepository, ListIsSortedByNameThenType) {
  MemoryRepository repo;
  (void)repo.apply_now({Metric::counter("b", 1), Metric::gauge("c", 3), Metric::gauge("b", 2),
                        Metric::counter("a", 4)});
  EXPECT_THAT(list_sync(repo), ElementsAre(Metric::counter("a", 4), Metric::gauge("b", 2),
                                           Metric::counter("b", 1), Metric::gauge("c", 3)));
}

TEST(MemoryRepository, KeepsExactDoubles) {
  MemoryRepository repo;
  const double tiny = std::numeric_limits<double>::denorm_min();
  (void)repo.apply_now({Metric::gauge("tiny", tiny), Metric::gauge("negzero", -0.0),
                        Metric::gauge("max", std::numeric_limits<double>::max())});
  EXPECT_EQ(repo.get_now({MetricType::gauge, "tiny"})->value, tiny);
  EXPECT_TRUE(std::signbit(repo.get_now({MetricType::gauge, "negzero"})->value));
}

TEST(MemoryRepository, CounterExtremes) {
  MemoryRepository repo;
  (void)repo.apply_now({Metric::counter("c", INT64_MAX)});
  EXPECT_EQ(repo.get_now({MetricType::counter, "c"}), Metric::counter("c", INT64_MAX));
  (void)repo.apply_now({Metric::counter("c", INT64_MIN)});
  EXPECT_EQ(repo.get_now({MetricType::counter, "c"}), Metric::counter("c", -1));
  (void)repo.apply_now({Metric::counter("d", INT64_MIN)});
  EXPECT_THROW((void)repo.apply_now({Metric::counter("d", -1)}), core::InvalidInput);
  EXPECT_EQ(repo.get_now({MetricType::counter, "d"}), Metric::counter("d", INT64_MIN));
}

TEST(MemoryRepository, OverflowRejectsTheWholeBatchAndChangesNothing) {
  MemoryRepository repo;
  (void)repo.apply_now(
      {Metric::counter("big", INT64_MAX - 1), Metric::gauge("g", 1), Metric::counter("c", 10)});
  const auto before = repo.list_now();

  std::vector<Metric> batch = {Metric::gauge("g", 99), Metric::counter("c", 5),
                               Metric::gauge("new_gauge", 1), Metric::counter("new_counter", 1)};
  batch.push_back(Metric::counter("big", 2));  // overflows, after the others
  batch.push_back(Metric::gauge("after", 3));

  std::exception_ptr error;
  std::vector<Metric> result = {Metric::gauge("sentinel", 0)};
  repo.apply(batch, [&](std::exception_ptr e, std::vector<Metric> stored) {
    error = e;
    result = std::move(stored);
  });
  ASSERT_TRUE(error);
  try {
    std::rethrow_exception(error);
  } catch (const core::InvalidInput& e) {
    EXPECT_THAT(e.what(), HasSubstr("\"big\""));
    EXPECT_THAT(e.what(), HasSubstr("overflow"));
  }
  EXPECT_THAT(result, IsEmpty());
  EXPECT_EQ(repo.list_now(), before);
  EXPECT_THROW((void)repo.apply_now(batch), core::InvalidInput);
  EXPECT_EQ(repo.list_now(), before);
}

TEST(MemoryRepository, OverflowFromRepeatsInAnUnmergedBatchRollsBack) {
  MemoryRepository repo;
  (void)repo.apply_now({Metric::counter("c", 1)});
  // Not merged on purpose: the storage still has to be atomic.
  EXPECT_THROW((void)repo.apply_now({Metric::gauge("g", 1), Metric::counter("c", INT64_MAX - 1),
                                     Metric::counter("c", 1)}),
               core::InvalidInput);
  EXPECT_THAT(repo.list_now(), ElementsAre(Metric::counter("c", 1)));
}

TEST(MemoryRepository, UnmergedRepeatsApplyInOrder) {
  MemoryRepository repo;
  const auto stored = repo.apply_now({Metric::counter("c", 1), Metric::counter("c", 2),
                                      Metric::gauge("g", 1), Metric::gauge("g", 2)});
  EXPECT_THAT(stored, ElementsAre(Metric::counter("c", 1), Metric::counter("c", 3),
                                  Metric::gauge("g", 1), Metric::gauge("g", 2)));
  EXPECT_THAT(repo.list_now(), ElementsAre(Metric::counter("c", 3), Metric::gauge("g", 2)));
}

TEST(MemoryRepository, CallbacksCompleteInlineExactlyOnce) {
  MemoryRepository repo;
  int calls = 0;
  repo.apply({Metric::counter("c", 2)}, [&](std::exception_ptr e, std::vector<Metric> stored) {
    ++calls;
    EXPECT_FALSE(e);
    EXPECT_THAT(stored, ElementsAre(Metric::counter("c", 2)));
  });
  repo.get({MetricType::counter, "c"}, [&](std::exception_ptr e, std::optional<Metric> m) {
    ++calls;
    EXPECT_FALSE(e);
    EXPECT_EQ(m, Metric::counter("c", 2));
  });
  repo.get({MetricType::gauge, "c"}, [&](std::exception_ptr e, std::optional<Metric> m) {
    ++calls;
    EXPECT_FALSE(e);
    EXPECT_FALSE(m.has_value());
  });
  repo.list([&](std::exception_ptr e, std::vector<Metric> all) {
    ++calls;
    EXPECT_FALSE(e);
    EXPECT_EQ(all.size(), 1U);
  });
  repo.ping([&](std::exception_ptr e, bool ok) {
    ++calls;
    EXPECT_FALSE(e);
    EXPECT_TRUE(ok);
  });
  EXPECT_EQ(calls, 5);
  repo.close();
}

// A storage that overrides only ping(): health() is derived from it.
class PingOnly final : public Repository {
 public:
  explicit PingOnly(std::exception_ptr err) : err_(std::move(err)) {}
  void apply(std::vector<Metric>, Callback<std::vector<Metric>> done) override {
    done(nullptr, {});
  }
  void get(core::MetricKey, Callback<std::optional<Metric>> done) override { done(nullptr, {}); }
  void list(Callback<std::vector<Metric>> done) override { done(nullptr, {}); }
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
  (void)repo.apply_now({Metric::counter("c", INT64_MAX)});
  int calls = 0;
  EXPECT_NO_THROW(
      repo.apply({Metric::counter("c", 1)}, [&](std::exception_ptr e, const std::vector<Metric>&) {
        ++calls;
        EXPECT_TRUE(e);
      }));
  EXPECT_EQ(calls, 1);
  EXPECT_THROW((void)apply_sync(repo, {Metric::counter("c", 1)}), core::InvalidInput);
}

TEST(MemoryRepository, ResetReplacesEverything) {
  MemoryRepository repo;
  (void)repo.apply_now({Metric::gauge("old", 1), Metric::counter("c", 100)});
  repo.reset({Metric::counter("c", 5), Metric::gauge("g", 2.5), Metric::gauge("g", 3.5)});
  EXPECT_THAT(repo.list_now(), ElementsAre(Metric::counter("c", 5), Metric::gauge("g", 3.5)));
  (void)repo.apply_now({Metric::counter("c", 1)});
  EXPECT_EQ(repo.get_now({MetricType::counter, "c"}), Metric::counter("c", 6));
  repo.reset({});
  EXPECT_THAT(repo.list_now(), IsEmpty());
}

TEST(MemoryRepository, AnyShardCountWorks) {
  for (std::size_t shards : {std::size_t{0}, std::size_t{1}, std::size_t{3}, std::size_t{64},
                             std::size_t{100}, std::size_t{5000}}) {
    MemoryRepository repo(shards);
    std::vector<Metric> batch;
    for (int i = 0; i < 300; ++i)
      batch.push_back(Metric::counter(numbered("c", i), i));
    (void)repo.apply_now(batch);
    (void)repo.apply_now(batch);
    const auto all = repo.list_now();
    ASSERT_EQ(all.size(), 300U) << shards;
    for (const Metric& m : all) {
      EXPECT_EQ(m.delta, 2 * std::stoll(m.id.substr(1))) << m.id;
    }
  }
}

TEST(MemoryRepository, LargeBatchIsAtomicToo) {
  MemoryRepository repo;
  (void)repo.apply_now({Metric::counter("c150", INT64_MAX)});
  std::vector<Metric> batch;
  for (int i = 0; i < 300; ++i)
    batch.push_back(Metric::counter(numbered("c", i), 1));
  EXPECT_THROW((void)repo.apply_now(batch), core::InvalidInput);
  EXPECT_THAT(repo.list_now(), ElementsAre(Metric::counter("c150", INT64_MAX)));
}

TEST(MemoryRepositoryConcurrency, HammeringOneCounterSumsExactly) {
  MemoryRepository repo;
  constexpr int kThreads = 8;
  constexpr int kPerThread = 5000;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&repo, t] {
      for (int i = 0; i < kPerThread; ++i) {
        (void)apply_sync(repo, {Metric::counter("hot", t + 1), Metric::gauge("last", t)});
      }
    });
  }
  for (auto& th : threads)
    th.join();
  std::int64_t want = 0;
  for (int t = 0; t < kThreads; ++t)
    want += static_cast<std::int64_t>(t + 1) * kPerThread;
  EXPECT_EQ(repo.get_now({MetricType::counter, "hot"}), Metric::counter("hot", want));
  const auto last = repo.get_now({MetricType::gauge, "last"});
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
  // adds 1 to both "pair_a" and "pair_b", so they are always equal.
  std::thread reader([&] {
    while (!stop.load()) {
      const auto all = repo.list_now();
      std::int64_t a = 0;
      std::int64_t b = 0;
      for (const Metric& m : all) {
        if (m.id == "pair_a") a = m.delta;
        if (m.id == "pair_b") b = m.delta;
      }
      EXPECT_EQ(a, b);
    }
  });
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&repo, t] {
      std::mt19937 rng(static_cast<unsigned>(t));
      std::vector<int> order(kNames);
      for (int i = 0; i < kNames; ++i)
        order[static_cast<std::size_t>(i)] = i;
      for (int n = 0; n < kBatches; ++n) {
        std::shuffle(order.begin(), order.end(), rng);
        std::vector<Metric> batch;
        batch.push_back(Metric::counter("pair_a", 1));
        for (int i = 0; i < 10; ++i) {
          batch.push_back(Metric::counter(numbered("n", order[static_cast<std::size_t>(i)]), 1));
        }
        batch.push_back(Metric::counter("pair_b", 1));
        repo.apply(std::move(batch),
                   [](std::exception_ptr e, const std::vector<Metric>&) { EXPECT_FALSE(e); });
      }
    });
  }
  for (auto& th : threads)
    th.join();
  stop = true;
  reader.join();
  std::int64_t total = 0;
  for (const Metric& m : repo.list_now()) {
    if (m.id.starts_with("n")) total += m.delta;
  }
  EXPECT_EQ(total, std::int64_t{kThreads} * kBatches * 10);
  EXPECT_EQ(repo.get_now({MetricType::counter, "pair_a"}),
            Metric::counter("pair_a", std::int64_t{kThreads} * kBatches));
  EXPECT_EQ(repo.get_now({MetricType::counter, "pair_b"}),
            Metric::counter("pair_b", std::int64_t{kThreads} * kBatches));
}

TEST(MemoryRepositoryConcurrency, ReadersAndResetAlongsideWriters) {
  MemoryRepository repo;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; i < 3000; ++i)
      (void)repo.apply_now({Metric::gauge("g", i), Metric::counter("c", 1)});
    stop = true;
  });
  std::thread reader([&] {
    while (!stop.load()) {
      (void)repo.get_now({MetricType::gauge, "g"});
      (void)list_sync(repo);
    }
  });
  std::thread resetter([&] {
    for (int i = 0; i < 50 && !stop.load(); ++i)
      repo.reset({Metric::counter("c", 0)});
  });
  writer.join();
  reader.join();
  resetter.join();
  EXPECT_TRUE(repo.get_now({MetricType::counter, "c"}).has_value());
}

}  // namespace
}  // namespace metrics::storage
