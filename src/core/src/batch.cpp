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

// An open-addressing index from (type, name, labels) to a position in `merged`,
// sized for a load factor of at most one half: no per-metric allocation, and
// no allocation at all for ordinary batches. Positions are stored plus one,
// so that zero marks an empty slot.
class Index {
 public:
  Index(std::vector<Update>& merged, std::size_t capacity_hint) : merged_(merged) {
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
  Update* find_or_add(const Update& m) {
    std::size_t* slot = find_slot(m);
    if (*slot != 0) return &merged_[*slot - 1];
    merged_.push_back(m);
    *slot = merged_.size();
    return nullptr;
  }

 private:
  std::size_t* find_slot(const Update& m) noexcept {
    const std::size_t mask = slots_.size() - 1;
    std::size_t i = series_hash(m.type, m.id, m.labels) & mask;
    for (;;) {
      std::size_t& slot = slots_[i];
      if (slot == 0) return &slot;
      const Update& existing = merged_[slot - 1];
      if (existing.type == m.type && existing.id == m.id && existing.labels == m.labels) {
        return &slot;
      }
      i = (i + 1) & mask;
    }
  }

  std::vector<Update>& merged_;
  std::array<std::size_t, kInlineSlots> inline_;
  std::vector<std::size_t> heap_;
  std::span<std::size_t> slots_;
};

// Merges incoming into merged; false when a counter sum would overflow, in
// which case *overflowed names the metric.
bool merge(std::vector<Update>& merged, std::span<const Update> incoming,
           const Update** overflowed) {
  merged.reserve(merged.size() + incoming.size());
  Index index(merged, merged.size() + incoming.size());
  for (const Update& m : incoming) {
    Update* existing = index.find_or_add(m);
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

std::vector<Update> merge_batch(std::span<const Update> batch) {
  std::vector<Update> merged;
  const Update* overflowed = nullptr;
  if (!merge(merged, batch, &overflowed)) {
    std::string series = overflowed->id;
    if (!overflowed->labels.empty()) series += overflowed->labels.to_string();
    throw InvalidInput("counter \"" + series + "\": sum of deltas overflows int64");
  }
  return merged;
}

bool merge_into(std::vector<Update>& pending, std::span<const Update> incoming) {
  // Work on a copy so that a failure leaves pending exactly as it was.
  std::vector<Update> merged = pending;
  const Update* overflowed = nullptr;
  if (!merge(merged, incoming, &overflowed)) return false;
  pending = std::move(merged);
  return true;
}

}  // namespace metrics::core
