// A fixed-memory latency histogram with HDR-style log-linear buckets.
//
// Values (nanoseconds) below 256 are counted exactly; above, every power of
// two is split into 128 equal buckets, so a reported percentile is at most
// 1/128 (0.8%) above the true sample. Recording is a few integer operations
// and never allocates, which matters when one generator thread records
// hundreds of thousands of samples a second.
//
//   LatencyHistogram h;
//   h.record(1'500'000);                 // 1.5 ms
//   std::uint64_t p99 = h.percentile(99);
//
// Not thread-safe: keep one per thread and merge() them at the end.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace metrics::loadgen {

class LatencyHistogram {
 public:
  LatencyHistogram();

  void record(std::uint64_t value) noexcept;
  void merge(const LatencyHistogram& other) noexcept;

  [[nodiscard]] std::uint64_t count() const noexcept { return count_; }
  [[nodiscard]] std::uint64_t min() const noexcept { return count_ ? min_ : 0; }
  [[nodiscard]] std::uint64_t max() const noexcept { return max_; }
  [[nodiscard]] double mean() const noexcept;
  // The smallest bucket bound at or below which at least p percent of the
  // samples lie (p in [0, 100]), never more than max(); 0 when empty.
  [[nodiscard]] std::uint64_t percentile(double p) const noexcept;

  // Bucket arithmetic, exposed for the tests.
  [[nodiscard]] static std::size_t bucket_of(std::uint64_t value) noexcept;
  [[nodiscard]] static std::uint64_t bucket_upper(std::size_t index) noexcept;

 private:
  std::vector<std::uint64_t> buckets_;
  std::uint64_t count_ = 0;
  std::uint64_t min_ = UINT64_MAX;
  std::uint64_t max_ = 0;
  long double sum_ = 0;
};

}  // namespace metrics::loadgen
