// The PromQL engine: instant and range queries over a Queryable with
// Prometheus 2.42's semantics (5-minute lookback, staleness, rate
// extrapolation, vector matching, offset/@, subqueries).
//
//   query::Engine engine({.lookback_delta_ms = 300'000});
//   query::Result r = engine.instant(store, "rate(x[5m])", now_ms);
//   std::string data = query::encode_data(r);  // the HTTP API's "data"
//
// An Engine holds only its options: one may serve many threads at once, as
// long as the Queryable's select() may.
#pragma once

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string_view>

#include "metrics/query/ast.hpp"
#include "metrics/query/error.hpp"
#include "metrics/query/queryable.hpp"
#include "metrics/query/value.hpp"

namespace metrics::query {

struct EngineOptions {
  std::int64_t lookback_delta_ms = 300'000;  // --query-lookback-delta
  std::int64_t default_step_ms = 60'000;     // subqueries without a step
  // Samples a query may hold: those its selectors read within one step
  // plus the result points gathered so far (Prometheus limits the peak the
  // same way, --query.max-samples); past it: execution error.
  std::size_t max_samples = 50'000'000;
  // Range queries of the common shapes (selectors, range functions of
  // matrix selectors, sum/avg/min/max/count/group/stddev, operators with a
  // number) evaluated series by series, with one cursor per series and
  // labels computed once; false: step by step for every query (the two
  // give the same results to the bit; tests compare them).
  bool range_by_series = true;
};

// Per-query limits: a deadline (timeout error past it) and flags another
// thread may set to cancel (canceled error): `cancel` (the server stops)
// and `client_gone` (the client closed its connection).
struct QueryControl {
  std::optional<std::chrono::steady_clock::time_point> deadline;
  const std::atomic<bool>* cancel = nullptr;
  const std::atomic<bool>* client_gone = nullptr;
};

class Engine {
 public:
  explicit Engine(EngineOptions options = {}) : options_(options) {}

  // Evaluates at one time. Throws QueryError.
  [[nodiscard]] Result instant(const Queryable& q, std::string_view query, std::int64_t time_ms,
                               const QueryControl& control = {}) const;
  [[nodiscard]] Result instant(const Queryable& q, const Expr& expr, std::int64_t time_ms,
                               const QueryControl& control = {}) const;
  // Evaluates at start, start+step, ... <= end; the result is a Matrix
  // sorted by labels. Only scalar and instant-vector expressions (bad_data
  // otherwise). Throws QueryError.
  [[nodiscard]] Result range(const Queryable& q, std::string_view query, std::int64_t start_ms,
                             std::int64_t end_ms, std::int64_t step_ms,
                             const QueryControl& control = {}) const;
  [[nodiscard]] Result range(const Queryable& q, const Expr& expr, std::int64_t start_ms,
                             std::int64_t end_ms, std::int64_t step_ms,
                             const QueryControl& control = {}) const;

  [[nodiscard]] const EngineOptions& options() const noexcept { return options_; }

 private:
  EngineOptions options_;
};

}  // namespace metrics::query
