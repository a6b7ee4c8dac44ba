// Range queries series by series (range_eval.cpp) against the step-by-step
// evaluator: the same JSON to the last bit (values as Go prints them, which
// is exact for doubles), the same errors, over data with stale markers,
// gaps, counter resets, NaN and infinities, equal labels after __name__ is
// dropped, offset and @.
#include <gtest/gtest.h>

#include <atomic>
#include <bit>
#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "metrics/query/engine.hpp"
#include "metrics/query/json.hpp"

namespace metrics::query {
namespace {

constexpr std::int64_t kSec = 1000;
const double kStale = std::bit_cast<double>(0x7ff0000000000002ULL);
const double kInf = std::numeric_limits<double>::infinity();
const double kNaN = std::numeric_limits<double>::quiet_NaN();

LabelSet series(std::string name, std::vector<core::Label> labels = {}) {
  labels.push_back({"__name__", std::move(name)});
  return make_labels(std::move(labels));
}

const MemoryQueryable& store() {
  static const MemoryQueryable s = [] {
    MemoryQueryable m;
    for (int i = 0; i < 6; ++i) {
      const std::string inst = "h" + std::to_string(i);
      const std::string job = i % 2 == 0 ? "a" : "b";
      double c = 0;
      for (std::int64_t t = 0; t <= 1800 * kSec; t += 15 * kSec) {
        if (i == 1 && t > 600 * kSec && t < 1000 * kSec) continue;  // a gap past the lookback
        c += static_cast<double>((t / 15 / kSec + i) % 5) * 0.1 + 0.3;
        if (i == 2 && t == 900 * kSec) c = 1;  // a reset
        double v = c;
        if (i == 3 && t == 450 * kSec) v = kStale;
        if (i == 4 && t == 300 * kSec) v = kNaN;
        if (i == 4 && t == 600 * kSec) v = kInf;
        m.add(series("x_total", {{"instance", inst}, {"job", job}}), t, v);
        m.add(series("g", {{"instance", inst}, {"job", job}}),
              t + static_cast<std::int64_t>(i) * 1000, std::sin(static_cast<double>(t + i)));
      }
    }
    // Same labels as x_total{instance="h0",job="a"} once __name__ goes, but
    // only in the second half: merged into one output series; and one that
    // overlaps it in time: the duplicate-labelset error.
    for (std::int64_t t = 1200 * kSec; t <= 1800 * kSec; t += 15 * kSec) {
      m.add(series("y_total", {{"instance", "h0"}, {"job", "a"}}), t, static_cast<double>(t));
    }
    for (std::int64_t t = 0; t <= 300 * kSec; t += 10 * kSec) {
      m.add(series("z_late", {{"instance", "h9"}}), t, 1);
      m.add(series("z_early", {{"instance", "h9"}}), t + 1500 * kSec, 2);
    }
    return m;
  }();
  return s;
}

std::string run(const Engine& engine, const std::string& query, std::int64_t start,
                std::int64_t end, std::int64_t step) {
  try {
    return encode_data(engine.range(store(), query, start, end, step));
  } catch (const QueryError& e) {
    return std::string("error ") + std::string(error_type_name(e.type())) + ": " + e.what();
  }
}

TEST(RangeBySeries, EqualsStepByStepToTheBit) {
  const std::vector<std::string> queries = {
      "x_total",
      "g",
      "x_total offset 2m",
      "x_total @ 900",
      "g offset -1m",
      "{job=\"a\"}",
      "{instance=\"h9\"}",
      "rate(x_total[1m])",
      "rate(x_total[5m])",
      "irate(x_total[2m])",
      "increase(x_total[5m] offset 1m)",
      "delta(g[3m])",
      "idelta(g[3m])",
      "deriv(g[5m])",
      "predict_linear(g[5m], 600)",
      "resets(x_total[10m])",
      "changes(g[5m])",
      "avg_over_time(g[5m])",
      "sum_over_time(x_total[2m])",
      "count_over_time(x_total[5m])",
      "last_over_time(x_total[5m])",
      "max_over_time(g[5m])",
      "min_over_time(g[5m])",
      "stddev_over_time(g[5m])",
      "quantile_over_time(0.9, g[5m])",
      "rate(x_total[5m] @ 1200)",
      "rate({__name__=~\"x_total|y_total\"}[5m])",
      "rate({instance=\"h9\"}[1m])",
      "rate({instance=\"h0\"}[1m])",
      "sum(rate(x_total[5m]))",
      "sum by (job) (rate(x_total[5m]))",
      "sum without (instance) (x_total)",
      "avg by (job) (g)",
      "avg(x_total)",
      "min by (job) (g)",
      "max(x_total)",
      "count by (job) (g)",
      "group by (job) (x_total)",
      "stddev by (job) (g)",
      "sum by (job) (avg by (job, instance) (rate(x_total[5m])))",
      "sum by (__name__) (x_total)",
      "x_total * 2",
      "2 - x_total",
      "x_total > 50",
      "50 < x_total",
      "x_total > bool 50",
      "sum by (job) (rate(x_total[5m])) * 60",
      "(rate(x_total[5m])) / 8",
      "{instance=\"h9\"} + 1",
      "x_total ^ 0.5",
      "g % 0.3",
      // Outside the shapes: the step-by-step evaluator either way.
      "topk(2, x_total)",
      "x_total + g",
      "abs(g)",
      "rate(x_total[5m:1m])",
  };
  EngineOptions by_series;
  EngineOptions by_step;
  by_step.range_by_series = false;
  const Engine fast(by_series);
  const Engine slow(by_step);
  struct Range {
    std::int64_t start, end, step;
  };
  const std::vector<Range> ranges = {
      {0, 1800 * kSec, 15 * kSec},
      {100 * kSec, 1700 * kSec, 7 * kSec},
      {-300 * kSec, 2400 * kSec, 60 * kSec},
      {901 * kSec, 901 * kSec, 1 * kSec},
  };
  int errors = 0;
  for (const auto& q : queries) {
    for (const auto& r : ranges) {
      const std::string want = run(slow, q, r.start, r.end, r.step);
      const std::string got = run(fast, q, r.start, r.end, r.step);
      EXPECT_EQ(got, want) << q << " over [" << r.start << ", " << r.end << "] step " << r.step;
      if (want.rfind("error", 0) == 0) ++errors;
    }
  }
  // The corpus reaches the error paths too (duplicate label sets).
  EXPECT_GT(errors, 0);
}

TEST(RangeBySeries, SampleLimitAndDeadlineStillApply) {
  EngineOptions small;
  small.max_samples = 100;
  const Engine engine(small);
  try {
    (void)engine.range(store(), "sum(rate(x_total[5m]))", 0, 1800 * kSec, 15 * kSec);
    ADD_FAILURE() << "no limit";
  } catch (const QueryError& e) {
    EXPECT_EQ(e.type(), ErrorType::execution);
  }
  const Engine plain;
  std::atomic<bool> cancel{true};
  try {
    (void)plain.range(store(), "x_total", 0, 1800 * kSec, 15 * kSec,
                      {.deadline = std::nullopt, .cancel = &cancel});
    ADD_FAILURE() << "not canceled";
  } catch (const QueryError& e) {
    EXPECT_EQ(e.type(), ErrorType::canceled);
  }
}

}  // namespace
}  // namespace metrics::query
