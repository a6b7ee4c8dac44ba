// Rule evaluation cost (issue 15's target: 1,000 rules over 300,000 series
// within 1 s per cycle): Manager::evaluate_all over a Queryable indexed by
// metric name, 1,000 metrics of 300 series each (20 minutes of samples at
// 15 s), 1,000 alerting rules (`m_i > threshold`, a third of the series
// firing, with templated annotations) and ALERTS written back to a sink that
// drops them. The history's own select() cost is not in this figure.
//
// BM_EvaluateOverHistory is the server's read path: the 1,000 rules of
// rules_scale.hpp (thresholds, rate, predict_linear, aggregations, absent,
// recording rules, liveness) over its 300,000 series, 30 minutes at 15 s, in
// a HistoryStore read through server::HistoryQueryable (chunk decoding and
// label sets included); output to a sink that drops it.
#include <benchmark/benchmark.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "metrics/history/store.hpp"
#include "metrics/rules/manager.hpp"
#include "metrics/rules/rule_file.hpp"
#include "metrics/series/index.hpp"
#include "metrics/server/history_queryable.hpp"
#include "rules_scale.hpp"

namespace {

namespace q = metrics::query;
namespace r = metrics::rules;

constexpr int kMetrics = 1000;
constexpr int kSeriesPerMetric = 300;
constexpr int kSamples = 80;
constexpr std::int64_t kStep = 15'000;
constexpr std::int64_t kEnd = kSamples * kStep;

class ByNameQueryable final : public q::Queryable {
 public:
  ByNameQueryable() {
    for (int m = 0; m < kMetrics; ++m) {
      auto& list = by_name_["m_" + std::to_string(m)];
      for (int s = 0; s < kSeriesPerMetric; ++s) {
        q::SeriesData d;
        d.labels = q::make_labels({{"__name__", "m_" + std::to_string(m)},
                                   {"instance", "host-" + std::to_string(s)},
                                   {"job", "bench"}});
        for (int i = 0; i < kSamples; ++i)
          d.samples.push_back({i * kStep, static_cast<double>(s % 3)});
        list.push_back(std::move(d));
      }
    }
  }
  std::vector<q::SeriesData> select(std::span<const q::Matcher> matchers, std::int64_t mint,
                                    std::int64_t maxt) const override {
    std::vector<q::SeriesData> out;
    for (const auto& m : matchers) {
      if (m.name() != "__name__" || m.type() != q::MatchType::equal) continue;
      const auto it = by_name_.find(m.value());
      if (it == by_name_.end()) return out;
      for (const auto& s : it->second) {
        if (!q::matches_all(matchers, s.labels)) continue;
        q::SeriesData d{s.labels, {}};
        for (const auto& p : s.samples)
          if (p.t >= mint && p.t <= maxt) d.samples.push_back(p);
        if (!d.samples.empty()) out.push_back(std::move(d));
      }
      return out;
    }
    return out;
  }

 private:
  std::map<std::string, std::vector<q::SeriesData>> by_name_;
};

struct NullSink final : r::SampleSink {
  void append(std::span<const r::OutputSample> samples) override { n += samples.size(); }
  std::size_t n = 0;
};

void BM_EvaluateThousandRules(benchmark::State& state) {
  static const ByNameQueryable store;
  std::string file = "groups:\n  - name: bench\n    rules:\n";
  for (int m = 0; m < kMetrics; ++m) {
    file += "      - alert: A" + std::to_string(m) + "\n        expr: m_" + std::to_string(m) +
            " > 1.5\n        for: 1m\n        annotations:\n          summary: '{{ "
            "$labels.instance }} at {{ $value | humanize }}'\n";
  }
  NullSink sink;
  r::Manager manager(store, &sink, {});
  manager.load(r::parse_rule_file(file, "bench.yml"));
  std::int64_t t = kEnd - 10 * kStep;
  for (auto _ : state) {
    manager.evaluate_all(t);
    t += kStep;
    if (t > kEnd) t = kEnd - 10 * kStep;
  }
  state.counters["rules"] = kMetrics;
  state.counters["series"] = kMetrics * kSeriesPerMetric;
}
BENCHMARK(BM_EvaluateThousandRules)->Unit(benchmark::kMillisecond)->MinTime(3);

namespace rs = rules_scale;
constexpr std::int64_t kHistorySteps = 121;            // 30 minutes at 15 s
constexpr std::int64_t kHistoryEndStep = 119'000'000;  // late 2026

// The 300,000 series of rules_scale.hpp in a HistoryStore, as the server
// holds remote-written samples (gauges).
const metrics::history::HistoryStore& scale_store() {
  static const auto store = [] {
    metrics::history::HistoryOptions options;
    options.retention = std::chrono::milliseconds{0};
    options.max_bytes = 0;
    auto s = std::make_unique<metrics::history::HistoryStore>(options);
    std::vector<metrics::history::SeriesIdentity> ids;
    for (int i = 0; i < rs::kInstances; ++i) {
      for (int m = 0; m < rs::kGauges + rs::kCounters; ++m) {
        const bool gauge = m < rs::kGauges;
        ids.push_back({metrics::core::MetricType::gauge,
                       gauge ? rs::gauge_name(m) : rs::counter_name(m - rs::kGauges),
                       metrics::core::Labels::make(
                           {{"instance", rs::instance_name(i)}, {"job", rs::job_of(i)}})});
      }
    }
    std::vector<metrics::history::AppendItem> items(ids.size());
    for (std::int64_t k = kHistoryEndStep - kHistorySteps + 1; k <= kHistoryEndStep; ++k) {
      for (std::size_t n = 0; n < ids.size(); ++n) {
        const int i = static_cast<int>(n) / (rs::kGauges + rs::kCounters);
        const int m = static_cast<int>(n) % (rs::kGauges + rs::kCounters);
        const double v =
            m < rs::kGauges ? rs::gauge_value(i, m, k) : rs::counter_value(i, m - rs::kGauges, k);
        items[n] = {.ref = n + 1,
                    .t_ms = k * rs::kStepMs,
                    .bits = metrics::history::gauge_bits(v),
                    .kind = metrics::core::MetricType::gauge,
                    .identity = &ids[n]};
      }
      s->append_batch(items);
    }
    return s;
  }();
  return *store;
}

void BM_EvaluateOverHistory(benchmark::State& state) {
  const auto& store = scale_store();
  static const metrics::series::SeriesIndex index;
  const std::int64_t t = kHistoryEndStep * rs::kStepMs + 5'000;
  const metrics::server::HistoryQueryable queryable(index, &store, {.now_ms = t});
  NullSink sink;
  r::Manager manager(queryable, &sink, {});
  manager.load(r::parse_rule_file(rs::rule_file(), "scale.yml"));
  for (auto _ : state)
    manager.evaluate_all(t);
  std::size_t alerts = 0;
  for (const auto& a : manager.alerts())
    alerts += a.state != r::AlertState::inactive ? 1 : 0;
  state.counters["rules"] = static_cast<double>(manager.rule_count());
  state.counters["series"] = static_cast<double>(store.stats().series);
  state.counters["alerts"] = static_cast<double>(alerts);
  state.counters["output_per_cycle"] =
      static_cast<double>(sink.n) / static_cast<double>(state.iterations());
}
BENCHMARK(BM_EvaluateOverHistory)->Unit(benchmark::kMillisecond)->MinTime(5);

}  // namespace

BENCHMARK_MAIN();
