// The metrics the agent holds until the server acknowledges them: one entry
// per series (type, name, labels), counters summed, gauges latest, bounded
// in size.
//
// At the bound an update of a new series is dropped (and counted); series
// already held are still merged, so a counter that is held stays exact. A
// counter delta whose sum would overflow int64 is dropped (and counted)
// rather than wrapping.
//
// Not thread-safe: the agent guards it with its mutex.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "metrics/core/metric.hpp"

namespace metrics::agent::detail {

class PendingSet {
 public:
  explicit PendingSet(std::size_t max_size) : max_size_(max_size) {}

  // Merges newer data: counters add, gauges replace.
  void merge(const core::Update& metric);
  void merge(std::span<const core::Update> metrics) {
    for (const auto& m : metrics)
      merge(m);
  }
  // Puts back a batch that could not be sent. It is older than what is held:
  // counters add, but a held gauge keeps its (newer) value.
  void restore(std::span<const core::Update> older);

  // Takes everything out, in first-seen order.
  [[nodiscard]] std::vector<core::Update> take();

  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
  [[nodiscard]] std::uint64_t dropped() const noexcept { return dropped_; }

 private:
  // Returns the held entry for the key, inserting a copy of `metric` when
  // there is room; nullptr when the series is new and the set is full.
  core::Update* find_or_insert(const core::Update& metric, bool& inserted);

  std::size_t max_size_;
  std::vector<core::Update> items_;
  std::unordered_map<core::SeriesKey, std::size_t, core::SeriesHash, core::SeriesEqual> index_;
  std::uint64_t dropped_ = 0;
};

}  // namespace metrics::agent::detail
