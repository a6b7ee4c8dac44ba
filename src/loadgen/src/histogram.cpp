#include "metrics/loadgen/histogram.hpp"

#include <algorithm>
#include <bit>
#include <cmath>

namespace metrics::loadgen {
namespace {

constexpr std::uint64_t kExact = 256;       // values below are their own bucket
constexpr std::uint64_t kSubBuckets = 128;  // buckets per power of two above
constexpr unsigned kExactBits = 8;          // bit_width(kExact - 1)
constexpr std::size_t kBucketCount = kExact + (64 - kExactBits) * kSubBuckets;

}  // namespace

LatencyHistogram::LatencyHistogram() : buckets_(kBucketCount, 0) {}

std::size_t LatencyHistogram::bucket_of(std::uint64_t value) noexcept {
  if (value < kExact) return static_cast<std::size_t>(value);
  const unsigned msb = static_cast<unsigned>(std::bit_width(value)) - 1;  // >= 8
  const unsigned shift = msb - 7;
  const std::uint64_t top = value >> shift;  // in [128, 256)
  return static_cast<std::size_t>(kExact + (msb - kExactBits) * kSubBuckets + (top - 128));
}

std::uint64_t LatencyHistogram::bucket_upper(std::size_t index) noexcept {
  if (index < kExact) return index;
  const std::size_t k = index - kExact;
  const unsigned msb = static_cast<unsigned>(kExactBits + k / kSubBuckets);
  const std::uint64_t top = 128 + k % kSubBuckets;
  const unsigned shift = msb - 7;
  // For the very last bucket this wraps to UINT64_MAX, which is its bound.
  return ((top + 1) << shift) - 1;
}

void LatencyHistogram::record(std::uint64_t value) noexcept {
  ++buckets_[bucket_of(value)];
  ++count_;
  min_ = std::min(min_, value);
  max_ = std::max(max_, value);
  sum_ += static_cast<long double>(value);
}

void LatencyHistogram::merge(const LatencyHistogram& other) noexcept {
  for (std::size_t i = 0; i < buckets_.size(); ++i)
    buckets_[i] += other.buckets_[i];
  count_ += other.count_;
  min_ = std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  sum_ += other.sum_;
}

double LatencyHistogram::mean() const noexcept {
  return count_ ? static_cast<double>(sum_ / static_cast<long double>(count_)) : 0.0;
}

std::uint64_t LatencyHistogram::percentile(double p) const noexcept {
  if (count_ == 0) return 0;
  if (p <= 0) return min();
  const double wanted = std::ceil(std::min(p, 100.0) / 100.0 * static_cast<double>(count_));
  const std::uint64_t rank =
      std::clamp<std::uint64_t>(static_cast<std::uint64_t>(wanted), 1, count_);
  std::uint64_t seen = 0;
  for (std::size_t i = 0; i < buckets_.size(); ++i) {
    seen += buckets_[i];
    if (seen >= rank) return std::min(bucket_upper(i), max_);
  }
  return max_;
}

}  // namespace metrics::loadgen
