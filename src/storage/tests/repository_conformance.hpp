// One behaviour suite for every Repository, run through the interface only:
// the series table (type, name, labels -> value and last write time) and the
// classic values (type, name; every write of that type and name applies to
// them), as API.md Part 2 "Series: instances and labels" describes them.
//
// A storage joins by providing a factory type with
//   void SetUp();                                   // may GTEST_SKIP / fail
//   std::unique_ptr<Repository> make();              // a fresh, empty storage
// and instantiating: INSTANTIATE_TYPED_TEST_SUITE_P(Name, RepositoryConformance, Types);
//
// Conventions the suite pins down (and every storage must share): a series
// point's timestamp_ms is the received_ms of the batch that last wrote it;
// a classic point's timestamp_ms is 0 (classic values carry no time).
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <latch>
#include <limits>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "metrics/core/errors.hpp"
#include "metrics/core/labels.hpp"
#include "metrics/storage/repository.hpp"

namespace metrics::storage::testing {

template <class Factory>
class RepositoryConformance : public ::testing::Test {
 protected:
  void SetUp() override {
    factory_.SetUp();
    if (::testing::Test::IsSkipped() || ::testing::Test::HasFailure()) return;
    repo_ = factory_.make();
  }
  void TearDown() override {
    if (repo_) repo_->close();
  }

  Factory factory_;
  std::unique_ptr<Repository> repo_;
};

TYPED_TEST_SUITE_P(RepositoryConformance);

namespace conformance {

using core::Labels;
using core::MetricKey;
using core::MetricType;
using core::Point;
using core::SeriesKey;
using core::Update;

inline Labels labels(std::vector<core::Label> l) {
  return Labels::make(std::move(l));
}
inline Labels inst(const std::string& instance) {
  return labels({{"instance", instance}});
}

// A point as a storage answers it: with its labels and its time.
inline Point at(Point p, std::int64_t ms) {
  p.timestamp_ms = ms;
  return p;
}
inline Point gauge(std::string id, double value, Labels l = {}, std::int64_t ms = 0) {
  return at(Point::gauge(std::move(id), value, std::move(l)), ms);
}
inline Point counter(std::string id, std::int64_t total, Labels l = {}, std::int64_t ms = 0) {
  return at(Point::counter(std::move(id), total, std::move(l)), ms);
}

inline std::vector<Point> series_of(const Applied& a) {
  return a.series;
}
inline std::vector<Point> classic_of(const Applied& a) {
  return a.classic;
}

}  // namespace conformance

using namespace conformance;  // NOLINT(google-build-using-namespace): test vocabulary

// --- Unlabelled writes: Part 1 through both tables -------------------------

TYPED_TEST_P(RepositoryConformance, GaugesReplace) {
  auto& repo = *this->repo_;
  auto a = apply_sync(repo, {Update::gauge("Alloc", 1.5)}, 10);
  EXPECT_EQ(a.classic, std::vector<Point>{gauge("Alloc", 1.5)});
  EXPECT_EQ(a.series, std::vector<Point>{gauge("Alloc", 1.5, {}, 10)});
  a = apply_sync(repo, {Update::gauge("Alloc", -0.1)}, 20);
  EXPECT_EQ(a.classic, std::vector<Point>{gauge("Alloc", -0.1)});
  EXPECT_EQ(a.series, std::vector<Point>{gauge("Alloc", -0.1, {}, 20)});
  EXPECT_EQ(get_classic_sync(repo, {MetricType::gauge, "Alloc"}), gauge("Alloc", -0.1));
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "Alloc", {}}), gauge("Alloc", -0.1, {}, 20));
}

TYPED_TEST_P(RepositoryConformance, GaugesKeepEveryBitOfTheDouble) {
  auto& repo = *this->repo_;
  const std::vector<double> values{
      0.1 + 0.2, 1e300, 4.9e-324, -1.7976931348623157e308, 1e21, 123456789.123456789};
  std::vector<Update> batch;
  for (std::size_t i = 0; i < values.size(); ++i) {
    batch.push_back(Update::gauge("g" + std::to_string(i), values[i]));
    batch.push_back(Update::gauge("g" + std::to_string(i), values[i], inst("a")));
  }
  apply_sync(repo, batch, 1);
  for (const auto& u : batch) {
    auto got = get_sync(repo, SeriesKey::of(u));
    ASSERT_TRUE(got) << u.id;
    EXPECT_EQ(got->value, u.value) << u.id;
    auto classic = get_classic_sync(repo, {MetricType::gauge, u.id});
    ASSERT_TRUE(classic) << u.id;
    EXPECT_EQ(classic->value, u.value) << u.id;
  }
}

TYPED_TEST_P(RepositoryConformance, CountersSum) {
  auto& repo = *this->repo_;
  auto a = apply_sync(repo, {Update::counter("PollCount", 5)}, 7);
  EXPECT_EQ(a.classic, std::vector<Point>{counter("PollCount", 5)});
  EXPECT_EQ(a.series, std::vector<Point>{counter("PollCount", 5, {}, 7)});
  a = apply_sync(repo, {Update::counter("PollCount", -2)}, 8);
  EXPECT_EQ(a.classic, std::vector<Point>{counter("PollCount", 3)});
  EXPECT_EQ(a.series, std::vector<Point>{counter("PollCount", 3, {}, 8)});
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "PollCount"}), counter("PollCount", 3));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "PollCount", {}}), counter("PollCount", 3, {}, 8));
}

TYPED_TEST_P(RepositoryConformance, ApplyAnswersEveryMetricAsStoredInBatchOrder) {
  auto& repo = *this->repo_;
  apply_sync(repo, {Update::counter("c", 10)}, 1);
  const auto a =
      apply_sync(repo, {Update::gauge("z", 2), Update::counter("c", 1), Update::gauge("a", 3)}, 2);
  EXPECT_EQ(a.classic, (std::vector<Point>{gauge("z", 2), counter("c", 11), gauge("a", 3)}));
  EXPECT_EQ(a.series, (std::vector<Point>{gauge("z", 2, {}, 2), counter("c", 11, {}, 2),
                                          gauge("a", 3, {}, 2)}));
}

TYPED_TEST_P(RepositoryConformance, EmptyBatchChangesNothing) {
  auto& repo = *this->repo_;
  const auto a = apply_sync(repo, {}, 5);
  EXPECT_TRUE(a.series.empty());
  EXPECT_TRUE(a.classic.empty());
  EXPECT_TRUE(list_sync(repo).empty());
  EXPECT_TRUE(list_series_sync(repo).empty());
}

TYPED_TEST_P(RepositoryConformance, BatchWithOverflowingCounterStoresNothing) {
  auto& repo = *this->repo_;
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  apply_sync(repo, {Update::counter("big", kMax - 1), Update::gauge("g", 1)}, 1);
  EXPECT_THROW(
      apply_sync(
          repo, {Update::gauge("g", 2), Update::counter("other", 7), Update::counter("big", 2)}, 2),
      core::InvalidInput);
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "big"}), counter("big", kMax - 1));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "big", {}}), counter("big", kMax - 1, {}, 1));
  EXPECT_EQ(get_classic_sync(repo, {MetricType::gauge, "g"}), gauge("g", 1));
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "g", {}}), gauge("g", 1, {}, 1));
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "other"}), std::nullopt);
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "other", {}}), std::nullopt);
  // Downwards too.
  apply_sync(repo, {Update::counter("small", std::numeric_limits<std::int64_t>::min() + 1)}, 3);
  EXPECT_THROW(apply_sync(repo, {Update::counter("small", -2)}, 4), core::InvalidInput);
  // And the storage keeps working.
  EXPECT_EQ(apply_sync(repo, {Update::counter("big", 1)}, 5).classic,
            std::vector<Point>{counter("big", kMax)});
}

TYPED_TEST_P(RepositoryConformance, OverflowingBatchAmongConcurrentOnesFailsAlone) {
  auto& repo = *this->repo_;
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  apply_sync(repo, {Update::counter("big", kMax - 10)}, 1);
  // Issued together so that group-committing storages put them in one group.
  constexpr int kBatches = 200;
  constexpr int kBad = 77;
  std::vector<std::exception_ptr> errors(kBatches);
  std::latch done(kBatches);
  for (int i = 0; i < kBatches; ++i) {
    std::vector<Update> batch =
        i == kBad
            ? std::vector<Update>{Update::gauge("g", -1), Update::counter("fresh", 1),
                                  Update::counter("big", 100, inst("x"))}
            : std::vector<Update>{Update::gauge("g", i), Update::counter("n", 1),
                                  Update::counter("n", 1, inst("x")), Update::counter("big", 0)};
    repo.apply(std::move(batch), 2, [&errors, &done, i](std::exception_ptr err, Applied) {
      errors[static_cast<std::size_t>(i)] = std::move(err);
      done.count_down();
    });
  }
  done.wait();
  for (int i = 0; i < kBatches; ++i) {
    if (i == kBad) {
      ASSERT_TRUE(errors[kBad]);
      EXPECT_THROW(std::rethrow_exception(errors[kBad]), core::InvalidInput);
    } else {
      EXPECT_FALSE(errors[static_cast<std::size_t>(i)]) << i;
    }
  }
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "big"}), counter("big", kMax - 10));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "big", inst("x")}), std::nullopt);
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "n"}), counter("n", 2 * (kBatches - 1)));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "n", inst("x")}),
            counter("n", kBatches - 1, inst("x"), 2));
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "fresh"}), std::nullopt);
  EXPECT_NE(get_classic_sync(repo, {MetricType::gauge, "g"}), gauge("g", -1));
}

TYPED_TEST_P(RepositoryConformance, ListIsSortedByNameThenType) {
  auto& repo = *this->repo_;
  apply_sync(repo, {Update::counter("b", 1), Update::gauge("a", 1), Update::gauge("B", 2),
                    Update::gauge("b", 3), Update::counter("a_", 4)});
  EXPECT_EQ(list_sync(repo), (std::vector<Point>{gauge("B", 2), gauge("a", 1), counter("a_", 4),
                                                 gauge("b", 3), counter("b", 1)}));
}

TYPED_TEST_P(RepositoryConformance, GetMissingIsNullopt) {
  auto& repo = *this->repo_;
  EXPECT_EQ(get_classic_sync(repo, {MetricType::gauge, "nothing"}), std::nullopt);
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "nothing", {}}), std::nullopt);
  apply_sync(repo, {Update::gauge("x", 1)});
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "x"}), std::nullopt);
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "x", {}}), std::nullopt);
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "x", inst("a")}), std::nullopt);
}

TYPED_TEST_P(RepositoryConformance, SameNameDifferentTypesAreDistinct) {
  auto& repo = *this->repo_;
  apply_sync(repo, {Update::gauge("m", 2.5), Update::counter("m", 7),
                    Update::counter("m", 3, inst("a")), Update::gauge("m", 9, inst("a"))});
  apply_sync(repo, {Update::counter("m", 1)});
  EXPECT_EQ(get_classic_sync(repo, {MetricType::gauge, "m"}), gauge("m", 9));
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "m"}), counter("m", 11));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "m", {}}), counter("m", 8));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "m", inst("a")}), counter("m", 3, inst("a")));
  EXPECT_EQ(list_sync(repo).size(), 2U);
  EXPECT_EQ(list_series_sync(repo).size(), 4U);
}

TYPED_TEST_P(RepositoryConformance, NamesWithAnyUtf8AndQuotesRoundTrip) {
  auto& repo = *this->repo_;
  const std::vector<std::string> names{"with space",    "quote\"s",          "back\\slash",
                                       "comma,{brace}", "\xc3\xa9t\xc3\xa9", std::string(255, 'n')};
  const Labels odd =
      labels({{"v", "quote\" back\\ \xc3\xa9 {}=,"}, {"long", std::string(1024, 'l')}});
  std::vector<Update> batch;
  for (const auto& n : names) {
    batch.push_back(Update::counter(n, 1));
    batch.push_back(Update::counter(n, 2, odd));
  }
  apply_sync(repo, batch, 3);
  for (const auto& n : names) {
    EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, n}), counter(n, 3)) << n;
    EXPECT_EQ(get_sync(repo, {MetricType::counter, n, {}}), counter(n, 1, {}, 3)) << n;
    EXPECT_EQ(get_sync(repo, {MetricType::counter, n, odd}), counter(n, 2, odd, 3)) << n;
  }
}

TYPED_TEST_P(RepositoryConformance, PingAnswers) {
  EXPECT_TRUE(ping_sync(*this->repo_));
  EXPECT_EQ(health_sync(*this->repo_), Health{});
}

TYPED_TEST_P(RepositoryConformance, ConcurrentWritersSumExactly) {
  auto& repo = *this->repo_;
  constexpr int kThreads = 8;
  constexpr int kBatches = 150;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&repo, t] {
      const Labels me = inst("h:" + std::to_string(t));
      for (int i = 0; i < kBatches; ++i) {
        apply_sync(repo,
                   {Update::counter("shared", 1), Update::counter("shared", 1, me),
                    Update::counter("own" + std::to_string(t), 2),
                    Update::gauge("last" + std::to_string(t), i)},
                   i);
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "shared"}),
            counter("shared", 2 * kThreads * kBatches));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "shared", {}}),
            counter("shared", kThreads * kBatches, {}, kBatches - 1));
  for (int t = 0; t < kThreads; ++t) {
    const Labels me = inst("h:" + std::to_string(t));
    EXPECT_EQ(get_sync(repo, {MetricType::counter, "shared", me}),
              counter("shared", kBatches, me, kBatches - 1));
    EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "own" + std::to_string(t)}),
              counter("own" + std::to_string(t), 2 * kBatches));
    EXPECT_EQ(get_classic_sync(repo, {MetricType::gauge, "last" + std::to_string(t)}),
              gauge("last" + std::to_string(t), kBatches - 1));
  }
}

// --- Series and classic values ----------------------------------------------

TYPED_TEST_P(RepositoryConformance, LabelledWritesAreSeparateSeries) {
  auto& repo = *this->repo_;
  const auto a = apply_sync(
      repo, {Update::gauge("temp", 20, inst("a")), Update::gauge("temp", 30, inst("b"))}, 100);
  EXPECT_EQ(a.series, (std::vector<Point>{gauge("temp", 20, inst("a"), 100),
                                          gauge("temp", 30, inst("b"), 100)}));
  // Both updates carry the classic value after the whole batch: the last gauge written.
  EXPECT_EQ(a.classic, (std::vector<Point>{gauge("temp", 30), gauge("temp", 30)}));
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "temp", inst("a")}),
            gauge("temp", 20, inst("a"), 100));
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "temp", inst("b")}),
            gauge("temp", 30, inst("b"), 100));
  EXPECT_EQ(get_classic_sync(repo, {MetricType::gauge, "temp"}), gauge("temp", 30));
  // No unlabelled write happened: the unlabelled series does not exist.
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "temp", {}}), std::nullopt);
}

TYPED_TEST_P(RepositoryConformance, ClassicCounterSumsAcrossSeries) {
  auto& repo = *this->repo_;
  apply_sync(repo, {Update::counter("req", 5, inst("a")), Update::counter("req", 7, inst("b"))}, 1);
  const auto a =
      apply_sync(repo, {Update::counter("req", 1), Update::counter("req", 2, inst("a"))}, 2);
  EXPECT_EQ(a.series,
            (std::vector<Point>{counter("req", 1, {}, 2), counter("req", 7, inst("a"), 2)}));
  EXPECT_EQ(a.classic, (std::vector<Point>{counter("req", 15), counter("req", 15)}));
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "req"}), counter("req", 15));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "req", inst("b")}),
            counter("req", 7, inst("b"), 1));
}

TYPED_TEST_P(RepositoryConformance, UnlabelledSeriesHoldsUnlabelledWritesOnly) {
  auto& repo = *this->repo_;
  apply_sync(repo, {Update::counter("c", 10), Update::gauge("g", 1)}, 1);
  apply_sync(repo, {Update::counter("c", 100, inst("a")), Update::gauge("g", 50, inst("a"))}, 2);
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "c", {}}), counter("c", 10, {}, 1));
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "g", {}}), gauge("g", 1, {}, 1));
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "c"}), counter("c", 110));
  EXPECT_EQ(get_classic_sync(repo, {MetricType::gauge, "g"}), gauge("g", 50));
}

TYPED_TEST_P(RepositoryConformance, GaugeClassicTakesTheLastWriteInBatchOrder) {
  auto& repo = *this->repo_;
  auto a = apply_sync(repo, {Update::gauge("g", 1, inst("a")), Update::gauge("g", 2)}, 1);
  EXPECT_EQ(a.classic, (std::vector<Point>{gauge("g", 2), gauge("g", 2)}));
  a = apply_sync(repo, {Update::gauge("g", 3), Update::gauge("g", 4, inst("a"))}, 2);
  EXPECT_EQ(a.classic, (std::vector<Point>{gauge("g", 4), gauge("g", 4)}));
  EXPECT_EQ(get_classic_sync(repo, {MetricType::gauge, "g"}), gauge("g", 4));
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "g", {}}), gauge("g", 3, {}, 2));
}

TYPED_TEST_P(RepositoryConformance, SeriesTimestampIsTheLastWritesReceiveTime) {
  auto& repo = *this->repo_;
  constexpr std::int64_t kT1 = 1'700'000'000'123;
  constexpr std::int64_t kT2 = 1'700'000'060'456;
  apply_sync(repo, {Update::gauge("g", 1, inst("a")), Update::gauge("g", 1, inst("b"))}, kT1);
  apply_sync(repo, {Update::gauge("g", 2, inst("b"))}, kT2);
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "g", inst("a")})->timestamp_ms, kT1);
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "g", inst("b")})->timestamp_ms, kT2);
  // Classic values carry no time.
  EXPECT_EQ(get_classic_sync(repo, {MetricType::gauge, "g"})->timestamp_ms, 0);
  for (const auto& p : list_sync(repo))
    EXPECT_EQ(p.timestamp_ms, 0) << p.id;
}

TYPED_TEST_P(RepositoryConformance, SeriesAndClassicAreAtomicTogether) {
  auto& repo = *this->repo_;
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  // The series total fits, the classic total overflows.
  apply_sync(repo, {Update::counter("c", kMax - 5, inst("a")), Update::gauge("g", 1, inst("a"))},
             1);
  EXPECT_THROW(apply_sync(repo,
                          {Update::gauge("g", 2, inst("a")), Update::gauge("new", 1, inst("n")),
                           Update::counter("c", 10, inst("b"))},
                          2),
               core::InvalidInput);
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "c", inst("b")}), std::nullopt);
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "new", inst("n")}), std::nullopt);
  EXPECT_EQ(get_classic_sync(repo, {MetricType::gauge, "new"}), std::nullopt);
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "g", inst("a")}), gauge("g", 1, inst("a"), 1));
  EXPECT_EQ(get_classic_sync(repo, {MetricType::gauge, "g"}), gauge("g", 1));
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "c"}), counter("c", kMax - 5));
  EXPECT_EQ(list_series_sync(repo).size(), 2U);
  EXPECT_EQ(list_sync(repo).size(), 2U);
}

TYPED_TEST_P(RepositoryConformance, ClassicOverflowFromTwoSeriesOfOneBatchIsRejected) {
  auto& repo = *this->repo_;
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  // Each series fits on its own; their classic sum does not.
  EXPECT_THROW(apply_sync(repo,
                          {Update::counter("c", kMax - 1, inst("a")),
                           Update::counter("c", 2, inst("b")), Update::gauge("g", 1)},
                          1),
               core::InvalidInput);
  EXPECT_TRUE(list_sync(repo).empty());
  EXPECT_TRUE(list_series_sync(repo).empty());
  // Downwards too, against an existing classic total.
  constexpr auto kMin = std::numeric_limits<std::int64_t>::min();
  apply_sync(repo, {Update::counter("d", kMin + 1, inst("a"))}, 2);
  EXPECT_THROW(apply_sync(repo, {Update::counter("d", -2, inst("b"))}, 3), core::InvalidInput);
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "d", inst("b")}), std::nullopt);
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "d"}), counter("d", kMin + 1));
}

TYPED_TEST_P(RepositoryConformance, ListSeriesIsSortedByNameTypeThenLabels) {
  auto& repo = *this->repo_;
  const Labels a = labels({{"instance", "a"}});
  const Labels a_job = labels({{"instance", "a"}, {"job", "x"}});
  const Labels b = labels({{"instance", "b"}});
  const Labels job = labels({{"job", "x"}});
  apply_sync(repo,
             {Update::counter("m", 1, job), Update::gauge("m", 2, b), Update::gauge("m", 3),
              Update::counter("m", 4, a), Update::gauge("m", 5, a_job), Update::gauge("m", 6, a),
              Update::gauge("B", 7, b), Update::counter("m", 8)},
             9);
  EXPECT_EQ(
      list_series_sync(repo),
      (std::vector<Point>{gauge("B", 7, b, 9), gauge("m", 3, {}, 9), gauge("m", 6, a, 9),
                          gauge("m", 5, a_job, 9), gauge("m", 2, b, 9), counter("m", 8, {}, 9),
                          counter("m", 4, a, 9), counter("m", 1, job, 9)}));
  EXPECT_EQ(list_sync(repo), (std::vector<Point>{gauge("B", 7), gauge("m", 6), counter("m", 13)}));
}

TYPED_TEST_P(RepositoryConformance, ExpireRemovesOnlyOldSeriesAndKeepsClassicValues) {
  auto& repo = *this->repo_;
  apply_sync(repo, {Update::counter("c", 1, inst("old")), Update::gauge("g", 1)}, 1000);
  apply_sync(repo, {Update::counter("c", 2, inst("new")), Update::gauge("g", 2, inst("new"))},
             2000);
  // Strictly older than the cutoff goes; the cutoff itself stays.
  auto gone = expire_sync(repo, 2000);
  std::sort(gone.begin(), gone.end());
  EXPECT_EQ(gone, (std::vector<SeriesKey>{{MetricType::counter, "c", inst("old")},
                                          {MetricType::gauge, "g", {}}}));
  EXPECT_EQ(list_series_sync(repo), (std::vector<Point>{counter("c", 2, inst("new"), 2000),
                                                        gauge("g", 2, inst("new"), 2000)}));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "c", inst("old")}), std::nullopt);
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "g", {}}), std::nullopt);
  EXPECT_EQ(list_sync(repo), (std::vector<Point>{counter("c", 3), gauge("g", 2)}));
  // Nothing more to expire at the same cutoff.
  EXPECT_TRUE(expire_sync(repo, 2000).empty());
  EXPECT_EQ(expire_sync(repo, 2001).size(), 2U);
  EXPECT_TRUE(list_series_sync(repo).empty());
  EXPECT_EQ(list_sync(repo), (std::vector<Point>{counter("c", 3), gauge("g", 2)}));
}

TYPED_TEST_P(RepositoryConformance, SeriesWrittenAgainAfterExpiryStartsFresh) {
  auto& repo = *this->repo_;
  apply_sync(repo, {Update::counter("c", 40, inst("a")), Update::counter("c", 2)}, 10);
  EXPECT_EQ(expire_sync(repo, 11).size(), 2U);
  const auto a =
      apply_sync(repo, {Update::counter("c", 1, inst("a")), Update::counter("c", 3)}, 20);
  EXPECT_EQ(a.series,
            (std::vector<Point>{counter("c", 1, inst("a"), 20), counter("c", 3, {}, 20)}));
  // The classic value kept counting through the expiry.
  EXPECT_EQ(a.classic, (std::vector<Point>{counter("c", 46), counter("c", 46)}));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "c", inst("a")}), counter("c", 1, inst("a"), 20));
}

TYPED_TEST_P(RepositoryConformance, ExpireOnEmptyStorageReturnsNothing) {
  auto& repo = *this->repo_;
  EXPECT_TRUE(expire_sync(repo, std::numeric_limits<std::int64_t>::max()).empty());
  apply_sync(repo, {Update::gauge("g", 1, inst("a"))}, 5);
  EXPECT_TRUE(expire_sync(repo, 5).empty());
  EXPECT_TRUE(expire_sync(repo, 0).empty());
  EXPECT_EQ(list_series_sync(repo).size(), 1U);
}

TYPED_TEST_P(RepositoryConformance, LabelSetsDifferingInOneLabelAreDistinct) {
  auto& repo = *this->repo_;
  const Labels a = labels({{"instance", "a"}, {"job", "x"}});
  const Labels b = labels({{"instance", "a"}, {"job", "y"}});
  const Labels c = labels({{"instance", "a"}});
  apply_sync(repo,
             {Update::counter("n", 1, a), Update::counter("n", 2, b), Update::counter("n", 4, c)},
             1);
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "n", a}), counter("n", 1, a, 1));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "n", b}), counter("n", 2, b, 1));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "n", c}), counter("n", 4, c, 1));
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "n"}), counter("n", 7));
}

TYPED_TEST_P(RepositoryConformance, ManySeriesOfOneNameListAndExpire) {
  auto& repo = *this->repo_;
  constexpr int kInstances = 300;
  std::vector<Update> batch;
  for (int i = 0; i < kInstances; ++i)
    batch.push_back(Update::counter("n", 1, inst("h" + std::to_string(i))));
  apply_sync(repo, batch, 100);
  batch.clear();
  for (int i = 0; i < kInstances; i += 2)
    batch.push_back(Update::counter("n", 1, inst("h" + std::to_string(i))));
  apply_sync(repo, batch, 200);
  EXPECT_EQ(get_classic_sync(repo, {MetricType::counter, "n"}),
            counter("n", kInstances + kInstances / 2));
  const auto all = list_series_sync(repo);
  ASSERT_EQ(all.size(), static_cast<std::size_t>(kInstances));
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end(), core::point_less));
  EXPECT_EQ(expire_sync(repo, 150).size(), static_cast<std::size_t>(kInstances / 2));
  for (const auto& p : list_series_sync(repo)) {
    EXPECT_EQ(p.total, 2) << p.labels.to_string();
    EXPECT_EQ(p.timestamp_ms, 200) << p.labels.to_string();
  }
}

// --- Series-only writes (remote write in) -----------------------------------

TYPED_TEST_P(RepositoryConformance, SeriesOnlyWritesLeaveTheClassicValueAlone) {
  auto& repo = *this->repo_;
  const auto only = [](std::string id, double v, Labels l) {
    Update u = Update::gauge(std::move(id), v, std::move(l));
    u.series_only = true;
    return u;
  };
  apply_sync(repo, {only("rw", 1.5, inst("a")), only("rw_plain", 2.5, {})}, 10);
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "rw", inst("a")}), gauge("rw", 1.5, inst("a"), 10));
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "rw_plain", {}}), gauge("rw_plain", 2.5, {}, 10));
  EXPECT_FALSE(get_classic_sync(repo, {MetricType::gauge, "rw"}));
  EXPECT_FALSE(get_classic_sync(repo, {MetricType::gauge, "rw_plain"}));
  EXPECT_TRUE(list_sync(repo).empty());
  EXPECT_EQ(list_series_sync(repo).size(), 2u);
  // A classic write starts the classic value; series-only writes leave it.
  apply_sync(repo, {Update::gauge("rw", 7, inst("b"))}, 20);
  apply_sync(repo, {only("rw", 9, inst("a"))}, 30);
  EXPECT_EQ(get_classic_sync(repo, {MetricType::gauge, "rw"}), gauge("rw", 7));
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "rw", inst("a")}), gauge("rw", 9, inst("a"), 30));
  // Any double is a value.
  apply_sync(repo,
             {only("nan", std::numeric_limits<double>::quiet_NaN(), inst("a")),
              only("inf", -std::numeric_limits<double>::infinity(), inst("a"))},
             40);
  auto nan = get_sync(repo, {MetricType::gauge, "nan", inst("a")});
  ASSERT_TRUE(nan);
  EXPECT_TRUE(std::isnan(nan->value));
  auto inf = get_sync(repo, {MetricType::gauge, "inf", inst("a")});
  ASSERT_TRUE(inf);
  EXPECT_EQ(inf->value, -std::numeric_limits<double>::infinity());
  EXPECT_EQ(list_sync(repo).size(), 1u);
}

REGISTER_TYPED_TEST_SUITE_P(
    RepositoryConformance, GaugesReplace, GaugesKeepEveryBitOfTheDouble, CountersSum,
    ApplyAnswersEveryMetricAsStoredInBatchOrder, EmptyBatchChangesNothing,
    BatchWithOverflowingCounterStoresNothing, OverflowingBatchAmongConcurrentOnesFailsAlone,
    ListIsSortedByNameThenType, GetMissingIsNullopt, SameNameDifferentTypesAreDistinct,
    NamesWithAnyUtf8AndQuotesRoundTrip, PingAnswers, ConcurrentWritersSumExactly,
    LabelledWritesAreSeparateSeries, ClassicCounterSumsAcrossSeries,
    UnlabelledSeriesHoldsUnlabelledWritesOnly, GaugeClassicTakesTheLastWriteInBatchOrder,
    SeriesTimestampIsTheLastWritesReceiveTime, SeriesAndClassicAreAtomicTogether,
    ClassicOverflowFromTwoSeriesOfOneBatchIsRejected, ListSeriesIsSortedByNameTypeThenLabels,
    ExpireRemovesOnlyOldSeriesAndKeepsClassicValues, SeriesWrittenAgainAfterExpiryStartsFresh,
    ExpireOnEmptyStorageReturnsNothing, LabelSetsDifferingInOneLabelAreDistinct,
    ManySeriesOfOneNameListAndExpire, SeriesOnlyWritesLeaveTheClassicValueAlone);

}  // namespace metrics::storage::testing
