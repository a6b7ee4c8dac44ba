#include "metrics/loadgen/histogram.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

namespace metrics::loadgen {
namespace {

TEST(LatencyHistogram, EmptyReportsZero) {
  LatencyHistogram h;
  EXPECT_EQ(h.count(), 0u);
  EXPECT_EQ(h.percentile(50), 0u);
  EXPECT_EQ(h.max(), 0u);
  EXPECT_EQ(h.min(), 0u);
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram h;
  for (std::uint64_t v = 1; v <= 100; ++v)
    h.record(v);
  EXPECT_EQ(h.percentile(50), 50u);
  EXPECT_EQ(h.percentile(99), 99u);
  EXPECT_EQ(h.percentile(100), 100u);
  EXPECT_EQ(h.percentile(0), 1u);
  EXPECT_DOUBLE_EQ(h.mean(), 50.5);
}

TEST(LatencyHistogram, BucketsCoverEveryValueWithBoundedError) {
  const std::uint64_t values[] = {
      0, 1, 255, 256, 257, 1000, 123456789, (std::uint64_t{1} << 40) + 12345, UINT64_MAX};
  for (std::uint64_t v : values) {
    const std::size_t b = LatencyHistogram::bucket_of(v);
    const std::uint64_t upper = LatencyHistogram::bucket_upper(b);
    EXPECT_GE(upper, v) << v;
    // The bucket's upper bound is within 1/128 of any value in it.
    EXPECT_LE(static_cast<long double>(upper - v), static_cast<long double>(v) / 128.0L + 1) << v;
    if (b > 0) {
      EXPECT_LT(LatencyHistogram::bucket_upper(b - 1), v) << v;
    }
  }
}

TEST(LatencyHistogram, PercentilesMatchSortedSamplesWithinOnePercent) {
  std::mt19937_64 rng(42);
  std::lognormal_distribution<double> dist(13.0, 1.0);  // around 0.4 ms, long tail
  std::vector<std::uint64_t> samples;
  LatencyHistogram h;
  for (int i = 0; i < 100'000; ++i) {
    const auto v = static_cast<std::uint64_t>(dist(rng));
    samples.push_back(v);
    h.record(v);
  }
  std::sort(samples.begin(), samples.end());
  for (double p : {50.0, 90.0, 99.0, 99.9}) {
    const auto rank =
        static_cast<std::size_t>(std::ceil(p / 100.0 * static_cast<double>(samples.size())));
    const double exact = static_cast<double>(samples[rank - 1]);
    const double got = static_cast<double>(h.percentile(p));
    EXPECT_GE(got, exact) << p;
    EXPECT_LE(got, exact * 1.01) << p;
  }
  EXPECT_EQ(h.max(), samples.back());
  EXPECT_EQ(h.percentile(100), samples.back());
}

TEST(LatencyHistogram, MergeEqualsRecordingEverything) {
  LatencyHistogram a;
  LatencyHistogram b;
  LatencyHistogram all;
  for (std::uint64_t v = 1; v < 5000; v += 7) {
    (v % 2 ? a : b).record(v * 1000);
    all.record(v * 1000);
  }
  a.merge(b);
  EXPECT_EQ(a.count(), all.count());
  EXPECT_EQ(a.max(), all.max());
  EXPECT_EQ(a.min(), all.min());
  for (double p : {10.0, 50.0, 99.0, 99.9})
    EXPECT_EQ(a.percentile(p), all.percentile(p));
}

}  // namespace
}  // namespace metrics::loadgen
