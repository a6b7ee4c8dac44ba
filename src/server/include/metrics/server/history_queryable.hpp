// The PromQL engine's view of the server (API.md Part 2, "Query API"): a
// query::Queryable over the history store and the live series index.
//
//   server::HistoryQueryable q(index, &store, {.now_ms = now, .stale_after_ms = 60'000});
//   auto result = engine.instant(q, "rate(x[5m])", now);
//
// A series is seen with the labels {__name__=<its name>, <its labels>}; a
// gauge's samples are its values, a counter's its stored totals (so rate()
// works; a total that goes down is a reset). A gauge and a counter of the
// same name and labels are one PromQL series, their samples merged by time
// (the later write wins on an equal timestamp), as Prometheus merges
// duplicate series. The liveness series agent_up and
// agent_last_push_timestamp_seconds of each (instance, job) are synthesized
// from its last accepted push: a sample at that push and one every
// `liveness_step_ms` after it up to now (agent_up 1 while the push is younger
// than stale_after, 0 from then on, with a sample at the change).
//
// A selector with `__name__="x"` reads only the series named x (the store's
// per-name postings); one with another matcher on __name__ reads the names
// that match; only a selector without a __name__ matcher reads every series.
//
// Thread-safe: select() may run from many threads at once (the store and
// the index are); the object only holds references and options.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "metrics/history/store.hpp"
#include "metrics/query/queryable.hpp"
#include "metrics/series/index.hpp"

namespace metrics::server {

struct HistoryQueryOptions {
  // The server's time: liveness samples stop here.
  std::int64_t now_ms = 0;
  // --stale-after.
  std::int64_t stale_after_ms = 60'000;
  // Spacing of the synthesized liveness samples (keep it below the lookback
  // delta so that they are always found).
  std::int64_t liveness_step_ms = 15'000;
  // Only the series the live index holds (API.md: an expired series is no
  // longer listed by /api/v1/series without a time range).
  bool live_only = false;
};

class HistoryQueryable final : public query::Queryable {
 public:
  // A null store (--no-history): only the liveness series.
  HistoryQueryable(const series::SeriesIndex& index, const history::HistoryStore* store,
                   HistoryQueryOptions options)
      : index_(index), store_(store), options_(options) {}

  [[nodiscard]] std::vector<query::SeriesData> select(std::span<const query::Matcher> matchers,
                                                      std::int64_t mint_ms,
                                                      std::int64_t maxt_ms) const override;
  // The newest sample per series, read off the open chunks where they hold
  // it (HistoryStore::read_last_named): no decoding for rules at "now".
  [[nodiscard]] std::vector<query::SeriesData> select_newest(
      std::span<const query::Matcher> matchers, std::int64_t mint_ms,
      std::int64_t maxt_ms) const override;

  // The label sets of the series that match every matcher of one of the
  // selectors and have a sample in [mint_ms, maxt_ms], sorted and distinct
  // (/api/v1/series, /api/v1/labels and label values with match[]). An
  // empty `selectors` means every series.
  [[nodiscard]] std::vector<query::LabelSet> series(
      std::span<const std::vector<query::Matcher>> selectors, std::int64_t mint_ms,
      std::int64_t maxt_ms) const;

 private:
  const series::SeriesIndex& index_;
  const history::HistoryStore* store_;
  [[nodiscard]] std::vector<query::SeriesData> read(std::span<const query::Matcher> matchers,
                                                    std::int64_t mint_ms, std::int64_t maxt_ms,
                                                    bool newest) const;

  HistoryQueryOptions options_;
};

}  // namespace metrics::server
