// PromQL engine benchmarks over a MemoryQueryable (the shapes of issue 14's
// query benchmarks, at a size that runs in seconds): an instant
// sum-by-rate over many series, a 24 h range query of one series at 60 s
// steps, and a range topk. items_per_second is queries per second.
#include <benchmark/benchmark.h>

#include <map>

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

}  // namespace

BENCHMARK_MAIN();
