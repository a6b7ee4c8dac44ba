// One behaviour suite for every Repository, run through the interface only.
//
// A storage joins by providing a factory type with
//   void SetUp();                                   // may GTEST_SKIP / fail
//   std::unique_ptr<Repository> make();              // a fresh, empty storage
// and instantiating: INSTANTIATE_TYPED_TEST_SUITE_P(Name, RepositoryConformance, Types);
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdint>
#include <latch>
#include <limits>
#include <memory>
#include <thread>
#include <vector>

#include "metrics/core/errors.hpp"
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

using core::Metric;
using core::MetricKey;
using core::MetricType;

TYPED_TEST_P(RepositoryConformance, GaugesReplace) {
  auto& repo = *this->repo_;
  EXPECT_EQ(apply_sync(repo, {Metric::gauge("Alloc", 1.5)}),
            std::vector<Metric>{Metric::gauge("Alloc", 1.5)});
  EXPECT_EQ(apply_sync(repo, {Metric::gauge("Alloc", -0.1)}),
            std::vector<Metric>{Metric::gauge("Alloc", -0.1)});
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "Alloc"}), Metric::gauge("Alloc", -0.1));
}

TYPED_TEST_P(RepositoryConformance, GaugesKeepEveryBitOfTheDouble) {
  auto& repo = *this->repo_;
  const std::vector<double> values{
      0.1 + 0.2, 1e300, 4.9e-324, -1.7976931348623157e308, 1e21, 123456789.123456789};
  std::vector<Metric> batch;
  for (std::size_t i = 0; i < values.size(); ++i) {
    batch.push_back(Metric::gauge("g" + std::to_string(i), values[i]));
  }
  apply_sync(repo, batch);
  for (const auto& m : batch) {
    auto got = get_sync(repo, {MetricType::gauge, m.id});
    ASSERT_TRUE(got);
    EXPECT_EQ(got->value, m.value) << m.id;
  }
}

TYPED_TEST_P(RepositoryConformance, CountersSum) {
  auto& repo = *this->repo_;
  EXPECT_EQ(apply_sync(repo, {Metric::counter("PollCount", 5)}),
            std::vector<Metric>{Metric::counter("PollCount", 5)});
  EXPECT_EQ(apply_sync(repo, {Metric::counter("PollCount", -2)}),
            std::vector<Metric>{Metric::counter("PollCount", 3)});
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "PollCount"}), Metric::counter("PollCount", 3));
}

TYPED_TEST_P(RepositoryConformance, ApplyAnswersEveryMetricAsStoredInBatchOrder) {
  auto& repo = *this->repo_;
  apply_sync(repo, {Metric::counter("c", 10)});
  const auto stored =
      apply_sync(repo, {Metric::gauge("z", 2), Metric::counter("c", 1), Metric::gauge("a", 3)});
  EXPECT_EQ(stored, (std::vector<Metric>{Metric::gauge("z", 2), Metric::counter("c", 11),
                                         Metric::gauge("a", 3)}));
}

TYPED_TEST_P(RepositoryConformance, EmptyBatchChangesNothing) {
  auto& repo = *this->repo_;
  EXPECT_TRUE(apply_sync(repo, {}).empty());
  EXPECT_TRUE(list_sync(repo).empty());
}

TYPED_TEST_P(RepositoryConformance, BatchWithOverflowingCounterStoresNothing) {
  auto& repo = *this->repo_;
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  apply_sync(repo, {Metric::counter("big", kMax - 1), Metric::gauge("g", 1)});
  EXPECT_THROW(apply_sync(repo, {Metric::gauge("g", 2), Metric::counter("other", 7),
                                 Metric::counter("big", 2)}),
               core::InvalidInput);
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "big"}), Metric::counter("big", kMax - 1));
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "g"}), Metric::gauge("g", 1));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "other"}), std::nullopt);
  // Downwards too.
  apply_sync(repo, {Metric::counter("small", std::numeric_limits<std::int64_t>::min() + 1)});
  EXPECT_THROW(apply_sync(repo, {Metric::counter("small", -2)}), core::InvalidInput);
  // And the storage keeps working.
  EXPECT_EQ(apply_sync(repo, {Metric::counter("big", 1)}),
            std::vector<Metric>{Metric::counter("big", kMax)});
}

TYPED_TEST_P(RepositoryConformance, OverflowingBatchAmongConcurrentOnesFailsAlone) {
  auto& repo = *this->repo_;
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  apply_sync(repo, {Metric::counter("big", kMax - 10)});
  // Issued together so that group-committing storages put them in one group.
  constexpr int kBatches = 200;
  constexpr int kBad = 77;
  std::vector<std::exception_ptr> errors(kBatches);
  std::latch done(kBatches);
  for (int i = 0; i < kBatches; ++i) {
    std::vector<Metric> batch =
        i == kBad ? std::vector<Metric>{Metric::gauge("g", -1), Metric::counter("fresh", 1),
                                        Metric::counter("big", 100)}
                  : std::vector<Metric>{Metric::gauge("g", i), Metric::counter("n", 1),
                                        Metric::counter("big", 0)};
    repo.apply(std::move(batch), [&errors, &done, i](std::exception_ptr err, std::vector<Metric>) {
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
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "big"}), Metric::counter("big", kMax - 10));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "n"}), Metric::counter("n", kBatches - 1));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "fresh"}), std::nullopt);
  EXPECT_NE(get_sync(repo, {MetricType::gauge, "g"}), Metric::gauge("g", -1));
}

TYPED_TEST_P(RepositoryConformance, ListIsSortedByNameThenType) {
  auto& repo = *this->repo_;
  apply_sync(repo, {Metric::counter("b", 1), Metric::gauge("a", 1), Metric::gauge("B", 2),
                    Metric::gauge("b", 3), Metric::counter("a_", 4)});
  EXPECT_EQ(list_sync(repo), (std::vector<Metric>{Metric::gauge("B", 2), Metric::gauge("a", 1),
                                                  Metric::counter("a_", 4), Metric::gauge("b", 3),
                                                  Metric::counter("b", 1)}));
}

TYPED_TEST_P(RepositoryConformance, GetMissingIsNullopt) {
  auto& repo = *this->repo_;
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "nothing"}), std::nullopt);
  apply_sync(repo, {Metric::gauge("x", 1)});
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "x"}), std::nullopt);
}

TYPED_TEST_P(RepositoryConformance, SameNameDifferentTypesAreDistinct) {
  auto& repo = *this->repo_;
  apply_sync(repo, {Metric::gauge("m", 2.5), Metric::counter("m", 7)});
  apply_sync(repo, {Metric::counter("m", 1)});
  EXPECT_EQ(get_sync(repo, {MetricType::gauge, "m"}), Metric::gauge("m", 2.5));
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "m"}), Metric::counter("m", 8));
  EXPECT_EQ(list_sync(repo).size(), 2U);
}

TYPED_TEST_P(RepositoryConformance, NamesWithAnyUtf8AndQuotesRoundTrip) {
  auto& repo = *this->repo_;
  const std::vector<std::string> names{"with space",    "quote\"s",          "back\\slash",
                                       "comma,{brace}", "\xc3\xa9t\xc3\xa9", std::string(255, 'n')};
  std::vector<Metric> batch;
  for (const auto& n : names)
    batch.push_back(Metric::counter(n, 1));
  apply_sync(repo, batch);
  for (const auto& n : names) {
    EXPECT_EQ(get_sync(repo, {MetricType::counter, n}), Metric::counter(n, 1)) << n;
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
      for (int i = 0; i < kBatches; ++i) {
        apply_sync(repo,
                   {Metric::counter("shared", 1), Metric::counter("own" + std::to_string(t), 2),
                    Metric::gauge("last" + std::to_string(t), i)});
      }
    });
  }
  for (auto& th : threads)
    th.join();
  EXPECT_EQ(get_sync(repo, {MetricType::counter, "shared"}),
            Metric::counter("shared", kThreads * kBatches));
  for (int t = 0; t < kThreads; ++t) {
    EXPECT_EQ(get_sync(repo, {MetricType::counter, "own" + std::to_string(t)}),
              Metric::counter("own" + std::to_string(t), 2 * kBatches));
    EXPECT_EQ(get_sync(repo, {MetricType::gauge, "last" + std::to_string(t)}),
              Metric::gauge("last" + std::to_string(t), kBatches - 1));
  }
}

REGISTER_TYPED_TEST_SUITE_P(RepositoryConformance, GaugesReplace, GaugesKeepEveryBitOfTheDouble,
                            CountersSum, ApplyAnswersEveryMetricAsStoredInBatchOrder,
                            EmptyBatchChangesNothing, BatchWithOverflowingCounterStoresNothing,
                            OverflowingBatchAmongConcurrentOnesFailsAlone,
                            ListIsSortedByNameThenType, GetMissingIsNullopt,
                            SameNameDifferentTypesAreDistinct, NamesWithAnyUtf8AndQuotesRoundTrip,
                            PingAnswers, ConcurrentWritersSumExactly);

}  // namespace metrics::storage::testing
