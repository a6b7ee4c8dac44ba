// The evaluator shared by eval.cpp, functions.cpp and aggregations.cpp: it
// evaluates a node at one time (Prometheus's rangeEval does the same step by
// step), reading the samples that prepare() selected once for the query.
//
// One Evaluator per query, used by one thread.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "metrics/query/ast.hpp"
#include "metrics/query/engine.hpp"
#include "metrics/query/error.hpp"

namespace metrics::query::detail {

// A node's value at one time: scalar, string, instant vector or range vector.
using Value = std::variant<double, std::string, Vector, Matrix>;

[[noreturn]] inline void exec_error(const std::string& message) {
  throw QueryError(ErrorType::execution, message);
}

// Prometheus's stale marker (value.StaleNaN).
[[nodiscard]] bool is_stale_nan(double v) noexcept;

// Drops __name__ (enh.DropMetricName).
[[nodiscard]] LabelSet drop_name(LabelSet labels);

// Throws "vector cannot contain metrics with the same labelset" on a repeat.
void check_unique_labelsets(const Vector& v);

// Go's math.Max / math.Min (+Inf and -Inf win over NaN) and math.Pow.
[[nodiscard]] double go_max(double x, double y) noexcept;
[[nodiscard]] double go_min(double x, double y) noexcept;
[[nodiscard]] double go_pow(double x, double y) noexcept;
// Go's amd64 math.Exp and math.Log (go_math.cpp).
[[nodiscard]] double go_exp(double x) noexcept;
[[nodiscard]] double go_log(double x) noexcept;

// Go's sort.Sort over a vector with `less`: insertion sort up to 12
// elements (what pdqsort does, so ties keep Go's order), stable beyond.
template <typename T, typename Less>
void go_sort(std::vector<T>& v, Less less) {
  if (v.size() <= 12) {
    for (std::size_t i = 1; i < v.size(); ++i) {
      for (std::size_t j = i; j > 0 && less(v[j], v[j - 1]); --j)
        std::swap(v[j], v[j - 1]);
    }
  } else {
    std::stable_sort(v.begin(), v.end(),
                     [&](const T& a, const T& b) { return less(a, b) && !less(b, a); });
  }
}

// vectorElemBinop: the value and whether a comparison keeps the element.
[[nodiscard]] std::pair<double, bool> elem_binop(BinaryOp op, double l, double r);
// Whether an operator drops __name__ (the arithmetic ones).
[[nodiscard]] bool drops_metric_name(BinaryOp op) noexcept;

// A range-vector function (rate, irate, *_over_time, ...) of the samples p
// of one series in [range_start, range_end] (no stale markers), evaluated
// at t; scalar_arg is quantile_over_time's q or predict_linear's duration.
// nullopt: no output element for the series.
[[nodiscard]] std::optional<double> range_value(Function f, std::span<const SamplePoint> p,
                                                std::int64_t range_start, std::int64_t range_end,
                                                std::int64_t range_ms, std::int64_t t,
                                                double scalar_arg);

// Prometheus's quantile() over values (NaN sorts first).
[[nodiscard]] double quantile(double q, std::vector<double> values);

class Evaluator {
 public:
  Evaluator(const Queryable& q, const EngineOptions& options, const QueryControl& control,
            std::int64_t query_start, std::int64_t query_end);

  // Selects, for every selector of the tree, the samples that evaluating it
  // at times [start, end] can read.
  void prepare(const Expr& root, std::int64_t start, std::int64_t end);

  [[nodiscard]] Value eval(const Expr& e, std::int64_t t);
  [[nodiscard]] Vector eval_vector(const Expr& e, std::int64_t t);
  [[nodiscard]] double eval_scalar(const Expr& e, std::int64_t t);
  [[nodiscard]] Matrix eval_matrix(const Expr& e, std::int64_t t);

  // The time a node with this @ modifier is evaluated at instead of t.
  [[nodiscard]] std::int64_t at_time(const AtModifier& at, std::int64_t t) const noexcept;

  // Deadline and cancellation.
  void check();
  // Counts samples read in the current step; with the result points held
  // so far past the limit: execution error (an approximation of
  // Prometheus's peak count).
  void touch(std::size_t n);
  void begin_step() noexcept { step_touched_ = 0; }
  void hold_result(std::size_t n);

  [[nodiscard]] const EngineOptions& options() const noexcept { return options_; }
  // What prepare() selected for vs, in label order.
  [[nodiscard]] const std::vector<SeriesData>& selected(const VectorSelector& vs) const {
    return selected_.at(&vs).series;
  }

 private:
  void plan(const Expr& e, std::int64_t start, std::int64_t end);
  [[nodiscard]] Vector select_instant(const VectorSelector& vs, std::int64_t t);
  [[nodiscard]] Matrix select_range(const MatrixSelector& ms, std::int64_t t);
  [[nodiscard]] Matrix eval_subquery(const Subquery& sq, std::int64_t t);
  [[nodiscard]] Value eval_binary(const Binary& b, std::int64_t t);

  struct Selected {
    std::int64_t mint = 0;
    std::int64_t maxt = 0;
    // An instant vector selector read at one time only (maxt): its newest
    // sample per series is enough (Queryable::select_newest).
    bool newest_only = false;
    std::vector<SeriesData> series;
  };

  const Queryable& queryable_;
  const EngineOptions& options_;
  const QueryControl& control_;
  std::int64_t query_start_;
  std::int64_t query_end_;
  std::size_t step_touched_ = 0;
  std::size_t result_points_ = 0;
  std::unordered_map<const VectorSelector*, Selected> selected_;
};

// range_eval.cpp: a range query at start, start+step, ... <= end evaluated
// series by series, with the step-by-step evaluator's results; nullopt
// when expr is outside the shapes it knows (the caller then steps).
[[nodiscard]] std::optional<Matrix> range_by_series(Evaluator& ev, const Expr& expr,
                                                    std::int64_t start, std::int64_t end,
                                                    std::int64_t step);
// functions.cpp
[[nodiscard]] Value call_function(Evaluator& ev, const Call& call, std::int64_t t);
// aggregations.cpp
[[nodiscard]] Vector aggregate(Evaluator& ev, const Aggregate& agg, std::int64_t t);

}  // namespace metrics::query::detail
