#include "metrics/core/batch.hpp"

#include <cstddef>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "metrics/core/errors.hpp"

namespace metrics::core {
namespace {

// Below this size a linear scan beats building a hash index.
constexpr std::size_t kLinearScanLimit = 16;

struct KeyView {
  std::string_view id;
  MetricType type;
  friend bool operator==(const KeyView&, const KeyView&) = default;
};

struct KeyViewHash {
  std::size_t operator()(const KeyView& k) const noexcept {
    return std::hash<std::string_view>{}(k.id) ^
           (static_cast<std::size_t>(k.type) * 0x9e3779b97f4a7c15ULL);
  }
};

// Finds the merged entry for a metric of the batch, or reports that there is
// none yet. Keys view strings owned by `merged`, whose elements never move
// while the index is in use because `merged` is reserved up front.
class Index {
 public:
  Index(std::vector<Metric>& merged, std::size_t expected) : merged_(merged) {
    if (expected > kLinearScanLimit)
      map_.reserve(expected);
    use_map_ = expected > kLinearScanLimit;
    if (use_map_) {
      for (std::size_t i = 0; i < merged_.size(); ++i) {
        map_.emplace(KeyView{merged_[i].id, merged_[i].type}, i);
      }
    }
  }

  Metric* find(const Metric& m) {
    if (use_map_) {
      const auto it = map_.find(KeyView{m.id, m.type});
      return it == map_.end() ? nullptr : &merged_[it->second];
    }
    for (Metric& existing : merged_) {
      if (existing.type == m.type && existing.id == m.id)
        return &existing;
    }
    return nullptr;
  }

  void add(const Metric& m) {
    merged_.push_back(m);
    if (use_map_)
      map_.emplace(KeyView{merged_.back().id, m.type}, merged_.size() - 1);
  }

 private:
  std::vector<Metric>& merged_;
  std::unordered_map<KeyView, std::size_t, KeyViewHash> map_;
  bool use_map_ = false;
};

// Merges incoming into merged; false when a counter sum would overflow, in
// which case *overflowed names the metric.
bool merge(std::vector<Metric>& merged, std::span<const Metric> incoming,
           const Metric** overflowed) {
  merged.reserve(merged.size() + incoming.size());
  Index index(merged, merged.size() + incoming.size());
  for (const Metric& m : incoming) {
    Metric* existing = index.find(m);
    if (existing == nullptr) {
      index.add(m);
      continue;
    }
    if (m.type == MetricType::gauge) {
      existing->value = m.value;
      continue;
    }
    const auto sum = checked_add(existing->delta, m.delta);
    if (!sum) {
      *overflowed = &m;
      return false;
    }
    existing->delta = *sum;
  }
  return true;
}

}  // namespace

std::vector<Metric> merge_batch(std::span<const Metric> batch) {
  std::vector<Metric> merged;
  const Metric* overflowed = nullptr;
  if (!merge(merged, batch, &overflowed)) {
    throw InvalidInput("counter \"" + overflowed->id + "\": sum of deltas overflows int64");
  }
  return merged;
}

bool merge_into(std::vector<Metric>& pending, std::span<const Metric> incoming) {
  // Work on a copy so that a failure leaves pending exactly as it was.
  std::vector<Metric> merged = pending;
  const Metric* overflowed = nullptr;
  if (!merge(merged, incoming, &overflowed))
    return false;
  pending = std::move(merged);
  return true;
}

}  // namespace metrics::core
