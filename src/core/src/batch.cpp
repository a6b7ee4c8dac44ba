#include "metrics/core/batch.hpp"

#include <algorithm>
#include <array>
#include <bit>
#include <cstddef>
#include <functional>
#include <string>
#include <string_view>

#include "metrics/core/errors.hpp"

namespace metrics::core {
namespace {

// Tables up to this many slots live on the stack (batches of up to 64).
constexpr std::size_t kInlineSlots = 128;

// An open-addressing index from (type, name) to a position in `merged`,
// sized for a load factor of at most one half: no per-metric allocation, and
// no allocation at all for ordinary batches. Positions are stored plus one,
// so that zero marks an empty slot.
class Index {
 public:
  Index(std::vector<Metric>& merged, std::size_t capacity_hint) : merged_(merged) {
    const std::size_t slots = std::bit_ceil(std::max<std::size_t>(16, capacity_hint * 2));
    if (slots <= kInlineSlots) {
      std::fill_n(inline_.begin(), slots, std::size_t{0});
      slots_ = std::span<std::size_t>(inline_.data(), slots);
    } else {
      heap_.assign(slots, 0);
      slots_ = std::span<std::size_t>(heap_);
    }
    for (std::size_t i = 0; i < merged_.size(); ++i) {
      *find_slot(merged_[i]) = i + 1;
    }
  }

  // The merged entry for m's metric, or nullptr after appending a copy of m
  // (the caller must have reserved room for it).
  Metric* find_or_add(const Metric& m) {
    std::size_t* slot = find_slot(m);
    if (*slot != 0) return &merged_[*slot - 1];
    merged_.push_back(m);
    *slot = merged_.size();
    return nullptr;
  }

 private:
  std::size_t* find_slot(const Metric& m) noexcept {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = (std::hash<std::string_view>{}(m.id) + static_cast<std::size_t>(m.type)) & mask;
    for (;;) {
      std::size_t& slot = slots_[i];
      if (slot == 0) return &slot;
      const Metric& existing = merged_[slot - 1];
      if (existing.type == m.type && existing.id == m.id) return &slot;
      i = (i + 1) & mask;
    }
  }

  std::vector<Metric>& merged_;
  std::array<std::size_t, kInlineSlots> inline_;
  std::vector<std::size_t> heap_;
  std::span<std::size_t> slots_;
};

// Merges incoming into merged; false when a counter sum would overflow, in
// which case *overflowed names the metric.
bool merge(std::vector<Metric>& merged, std::span<const Metric> incoming,
           const Metric** overflowed) {
  merged.reserve(merged.size() + incoming.size());
  Index index(merged, merged.size() + incoming.size());
  for (const Metric& m : incoming) {
    Metric* existing = index.find_or_add(m);
    if (existing == nullptr) continue;
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
  if (!merge(merged, incoming, &overflowed)) return false;
  pending = std::move(merged);
  return true;
}

}  // namespace metrics::core
