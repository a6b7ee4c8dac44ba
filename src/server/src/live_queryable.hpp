// The service's query::Queryable for rule evaluation (rule_output.cpp).
#pragma once

#include <chrono>
#include <memory>

#include "metrics/core/clock.hpp"
#include "metrics/history/store.hpp"
#include "metrics/query/queryable.hpp"
#include "metrics/series/index.hpp"

namespace metrics::server::detail {

// A HistoryQueryable made at each select() with the clock's time as now.
[[nodiscard]] std::unique_ptr<query::Queryable> make_live_queryable(
    const series::SeriesIndex& index, const history::HistoryStore* store,
    std::shared_ptr<core::Clock> clock, std::chrono::milliseconds stale_after);

}  // namespace metrics::server::detail
