// The seam between the PromQL engine and the samples it reads. A Queryable
// returns every series matching all matchers, with its samples in
// [mint_ms, maxt_ms] (both ends inclusive) in timestamp order; a series with
// no sample in that range may be left out. Samples may be Prometheus's stale
// marker (the NaN 0x7ff0000000000002), which ends a series.
//
//   query::MemoryQueryable store;
//   store.add(query::make_labels({{"__name__", "up"}}), 1000, 1.0);
//   auto series = store.select(matchers, 0, 2000);
//
// MemoryQueryable: add() must not run concurrently with anything else;
// select() alone may run from many threads.
#pragma once

#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <vector>

#include "metrics/query/matcher.hpp"
#include "metrics/query/value.hpp"

namespace metrics::query {

class Queryable {
 public:
  virtual ~Queryable() = default;
  [[nodiscard]] virtual std::vector<SeriesData> select(std::span<const Matcher> matchers,
                                                       std::int64_t mint_ms,
                                                       std::int64_t maxt_ms) const = 0;
  // The same when the caller needs only each series' newest sample in
  // [mint_ms, maxt_ms] (an instant vector selector evaluated at maxt_ms
  // alone): an answer may leave out every other sample. The default reads
  // them all; a store that can find the newest without reading the rest
  // overrides it.
  [[nodiscard]] virtual std::vector<SeriesData> select_newest(std::span<const Matcher> matchers,
                                                              std::int64_t mint_ms,
                                                              std::int64_t maxt_ms) const {
    return select(matchers, mint_ms, maxt_ms);
  }
};

// True when every matcher matches the series' labels.
[[nodiscard]] bool matches_all(std::span<const Matcher> matchers, const LabelSet& labels);

// Series in memory, for tests and small tools. Samples of one series must
// be added in increasing timestamp order (a repeat or an older one throws
// std::invalid_argument, as a TSDB rejects it).
class MemoryQueryable final : public Queryable {
 public:
  void add(const LabelSet& labels, std::int64_t t_ms, double v);
  [[nodiscard]] std::vector<SeriesData> select(std::span<const Matcher> matchers,
                                               std::int64_t mint_ms,
                                               std::int64_t maxt_ms) const override;

 private:
  std::map<std::string, SeriesData> series_;  // by key_of(labels): Prometheus's order
};

}  // namespace metrics::query
