// Rule evaluation cost (issue 15's target: 1,000 rules over 300,000 series
// within 1 s per cycle): Manager::evaluate_all over a Queryable indexed by
// metric name, 1,000 metrics of 300 series each (20 minutes of samples at
// 15 s), 1,000 alerting rules (`m_i > threshold`, a third of the series
// firing, with templated annotations) and ALERTS written back to a sink that
// drops them. The history's own select() cost is not in this figure.
#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

#include "metrics/rules/manager.hpp"
#include "metrics/rules/rule_file.hpp"

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

}  // namespace

BENCHMARK_MAIN();
