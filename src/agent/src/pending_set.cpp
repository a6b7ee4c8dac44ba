#include "pending_set.hpp"

#include <utility>

namespace metrics::agent::detail {

core::Update* PendingSet::find_or_insert(const core::Update& metric, bool& inserted) {
  inserted = false;
  if (const auto it = index_.find(core::SeriesView(metric)); it != index_.end()) {
    return &items_[it->second];
  }
  if (items_.size() >= max_size_) {
    ++dropped_;
    return nullptr;
  }
  index_.emplace(core::SeriesKey::of(metric), items_.size());
  items_.push_back(metric);
  inserted = true;
  return &items_.back();
}

void PendingSet::merge(const core::Update& metric) {
  bool inserted = false;
  core::Update* held = find_or_insert(metric, inserted);
  if (held == nullptr || inserted) return;
  if (metric.type == core::MetricType::gauge) {
    held->value = metric.value;
    return;
  }
  if (const auto sum = core::checked_add(held->delta, metric.delta)) {
    held->delta = *sum;
  } else {
    ++dropped_;
  }
}

void PendingSet::restore(std::span<const core::Update> older) {
  for (const auto& metric : older) {
    bool inserted = false;
    core::Update* held = find_or_insert(metric, inserted);
    if (held == nullptr || inserted || metric.type == core::MetricType::gauge) continue;
    if (const auto sum = core::checked_add(held->delta, metric.delta)) {
      held->delta = *sum;
    } else {
      ++dropped_;
    }
  }
}

std::vector<core::Update> PendingSet::take() {
  index_.clear();
  return std::exchange(items_, {});
}

}  // namespace metrics::agent::detail
