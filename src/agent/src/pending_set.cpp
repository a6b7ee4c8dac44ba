#include "pending_set.hpp"

#include <utility>

namespace metrics::agent::detail {

core::Metric* PendingSet::find_or_insert(const core::Metric& metric, bool& inserted) {
  inserted = false;
  core::MetricKey key{metric.type, metric.id};
  if (const auto it = index_.find(key); it != index_.end()) return &items_[it->second];
  if (items_.size() >= max_size_) {
    ++dropped_;
    return nullptr;
  }
  index_.emplace(std::move(key), items_.size());
  items_.push_back(metric);
  inserted = true;
  return &items_.back();
}

void PendingSet::merge(const core::Metric& metric) {
  bool inserted = false;
  core::Metric* held = find_or_insert(metric, inserted);
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

void PendingSet::restore(std::span<const core::Metric> older) {
  for (const auto& metric : older) {
    bool inserted = false;
    core::Metric* held = find_or_insert(metric, inserted);
    if (held == nullptr || inserted || metric.type == core::MetricType::gauge) continue;
    if (const auto sum = core::checked_add(held->delta, metric.delta)) {
      held->delta = *sum;
    } else {
      ++dropped_;
    }
  }
}

std::vector<core::Metric> PendingSet::take() {
  index_.clear();
  return std::exchange(items_, {});
}

}  // namespace metrics::agent::detail
