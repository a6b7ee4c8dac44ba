// The in-memory Queryable: series in a map, samples in vectors.
#include <algorithm>
#include <stdexcept>

#include "metrics/query/queryable.hpp"

namespace metrics::query {

bool matches_all(std::span<const Matcher> matchers, const LabelSet& labels) {
  return std::all_of(matchers.begin(), matchers.end(),
                     [&](const Matcher& m) { return m.matches(get(labels, m.name())); });
}

void MemoryQueryable::add(const LabelSet& labels, std::int64_t t_ms, double v) {
  auto& s = series_[key_of(labels)];
  if (s.samples.empty()) {
    s.labels = labels;
  } else if (s.samples.back().t >= t_ms) {
    throw std::invalid_argument("out of order sample for " + to_string(labels));
  }
  s.samples.push_back({t_ms, v});
}

std::vector<SeriesData> MemoryQueryable::select(std::span<const Matcher> matchers,
                                                std::int64_t mint_ms, std::int64_t maxt_ms) const {
  std::vector<SeriesData> out;
  for (const auto& [key, s] : series_) {
    if (!matches_all(matchers, s.labels)) continue;
    auto lo = std::lower_bound(s.samples.begin(), s.samples.end(), mint_ms,
                               [](const SamplePoint& p, std::int64_t t) { return p.t < t; });
    auto hi = std::upper_bound(s.samples.begin(), s.samples.end(), maxt_ms,
                               [](std::int64_t t, const SamplePoint& p) { return t < p.t; });
    if (lo >= hi) continue;
    out.push_back({s.labels, std::vector<SamplePoint>(lo, hi)});
  }
  std::sort(out.begin(), out.end(), [](const SeriesData& a, const SeriesData& b) {
    return compare(a.labels, b.labels) < 0;
  });
  return out;
}

}  // namespace metrics::query
