// PromQL engine benchmarks over a MemoryQueryable (the shapes of issue 14's
// query benchmarks, at a size that runs in seconds): an instant
// sum-by-rate over many series, a 24 h range query of one series at 60 s
// steps, and a range topk. items_per_second is queries per second.
#include <benchmark/benchmark.h>

#include <map>
#include <span>
#include <string>
#include <vector>

#include "metrics/query/engine.hpp"

namespace {

namespace q = metrics::query;

constexpr std::int64_t kBase = 1'700'000'000'000;
constexpr std::int64_t kDay = 24 * 3600 * 1000;

// `series` counters over `span_ms` at 15 s, spread over 10 jobs.
const q::MemoryQueryable& store(int series, std::int64_t span_ms) {
  static std::map<std::pair<int, std::int64_t>, q::MemoryQueryable> cache;
  auto [it, fresh] = cache.try_emplace({series, span_ms});
  if (fresh) {
    for (int s = 0; s < series; ++s) {
      q::LabelSet labels = q::make_labels({{"__name__", "x_total"},
                                           {"job", "job" + std::to_string(s % 10)},
                                           {"instance", "host" + std::to_string(s)}});
      double v = 0;
      for (std::int64_t t = kBase - span_ms; t <= kBase; t += 15'000) {
        v += static_cast<double>((t / 15'000 + s) % 7);
        it->second.add(labels, t, v);
      }
    }
  }
  return it->second;
}

void BM_InstantSumByRate(benchmark::State& state) {
  const auto& st = store(static_cast<int>(state.range(0)), 10 * 60'000);
  q::Engine engine;
  q::ExprPtr e = q::parse("sum by (job) (rate(x_total[5m]))");
  for (auto _ : state)
    benchmark::DoNotOptimize(engine.instant(st, *e, kBase));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_InstantSumByRate)->Arg(1'000)->Arg(10'000)->MinTime(1.0);

void BM_RangeOneSeries24h(benchmark::State& state) {
  const auto& st = store(1, kDay + 10 * 60'000);
  q::Engine engine;
  q::ExprPtr e = q::parse("rate(x_total[5m])");
  for (auto _ : state)
    benchmark::DoNotOptimize(engine.range(st, *e, kBase - kDay, kBase, 60'000));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RangeOneSeries24h)->MinTime(1.0);

void BM_RangeTopk(benchmark::State& state) {
  const auto& st = store(static_cast<int>(state.range(0)), 70 * 60'000);
  q::Engine engine;
  q::ExprPtr e = q::parse("topk(10, rate(x_total[5m]))");
  for (auto _ : state) {
    benchmark::DoNotOptimize(engine.range(st, *e, kBase - 3'600'000, kBase, 60'000));
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RangeTopk)->Arg(1'000)->MinTime(1.0);

// `series` counters, one sample every `interval_ms` over [from, to], spread
// over 10 jobs, generated on select() so that only the engine's copy is held
// (10,000 series over a day would otherwise be held twice).
class GeneratedQueryable final : public q::Queryable {
 public:
  GeneratedQueryable(int series, std::int64_t from, std::int64_t to, std::int64_t interval_ms)
      : from_(from), to_(to), interval_(interval_ms) {
    for (int s = 0; s < series; ++s) {
      labels_.push_back(q::make_labels({{"__name__", "x_total"},
                                        {"job", "job" + std::to_string(s % 10)},
                                        {"instance", "host" + std::to_string(s)}}));
    }
  }
  std::vector<q::SeriesData> select(std::span<const q::Matcher> matchers, std::int64_t mint,
                                    std::int64_t maxt) const override {
    std::vector<q::SeriesData> out;
    for (std::size_t s = 0; s < labels_.size(); ++s) {
      if (!q::matches_all(matchers, labels_[s])) continue;
      q::SeriesData d{labels_[s], {}};
      double v = 0;
      for (std::int64_t t = from_; t <= to_; t += interval_) {
        v += static_cast<double>((t / interval_ + static_cast<std::int64_t>(s)) % 7);
        if (t >= mint && t <= maxt) d.samples.push_back({t, v});
      }
      out.push_back(std::move(d));
    }
    return out;
  }

 private:
  std::vector<q::LabelSet> labels_;
  std::int64_t from_;
  std::int64_t to_;
  std::int64_t interval_;
};

// What a dashboard of 24 h charts asks: query_range over a day at a 10 s
// step (8,640 steps). Arg 0: series (scraped every 15 s for 30 series,
// every 60 s for 10,000 to bound memory); arg 1: the query below.
const char* const kRangeQueries[] = {
    "x_total",
    "rate(x_total[5m])",
    "sum by (job) (rate(x_total[5m]))",
    "avg_over_time(x_total[5m])",
};

void BM_Range24hStep10s(benchmark::State& state) {
  const int series = static_cast<int>(state.range(0));
  const std::int64_t interval = series <= 100 ? 15'000 : 60'000;
  static std::map<int, GeneratedQueryable> cache;
  auto it = cache.find(series);
  if (it == cache.end()) {
    it = cache.try_emplace(series, series, kBase - kDay - 10 * 60'000, kBase, interval).first;
  }
  const char* query = kRangeQueries[state.range(1)];
  state.SetLabel(query);
  q::Engine engine;
  q::ExprPtr e = q::parse(query);
  for (auto _ : state)
    benchmark::DoNotOptimize(engine.range(it->second, *e, kBase - kDay, kBase, 10'000));
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Range24hStep10s)
    ->ArgsProduct({{30}, {0, 1, 2, 3}})
    ->Unit(benchmark::kMillisecond)
    ->MinTime(1.0);
BENCHMARK(BM_Range24hStep10s)
    ->ArgsProduct({{10'000}, {2}})
    ->Unit(benchmark::kMillisecond)
    ->Iterations(1);

}  // namespace

BENCHMARK_MAIN();
