// Issue 12: the memory the server takes per live series at 300,000 series
// (10,000 instances x 30 metrics, the agent's batch plus one gauge), beyond
// the bytes of the names and labels themselves, from glibc's own count of
// the heap in use:
//
//   BM_SeriesBytesPerSeries/store:0  the series index alone (ids, last
//                                    write, limits, liveness per instance)
//   BM_SeriesBytesPerSeries/store:1  the index and the memory storage, as
//                                    the server holds them (no history)
//
// The label sets are built before the first count, one per instance as a
// decoded envelope shares it among its metrics, so what is counted is what
// the index and the storage add. Names the agent sends fit in the string's
// own buffer (no heap); key_bytes_per_series says how many name and label
// bytes a series has, for comparison.
//
// BM_ReserveScrapeOrder is the index's CPU cost of one remote-write request
// as a scraper sends it: every instance's series, ordered by metric name (so
// consecutive updates belong to different instances), reserve + commit of
// series that already exist; items_per_second is updates per second.
//
//   series_bench
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metrics/core/metric.hpp"
#include "metrics/series/index.hpp"
#include "metrics/storage/memory_repository.hpp"

namespace {

namespace core = metrics::core;

constexpr std::int64_t kInstances = 10'000;

std::vector<core::Update> agent_batch(const core::Labels& labels) {
  static const char* const kGauges[] = {
      "Alloc",    "BuckHashSys", "Frees",       "GCCPUFraction", "GCSys",          "HeapAlloc",
      "HeapIdle", "HeapInuse",   "HeapObjects", "HeapReleased",  "HeapSys",        "LastGC",
      "Lookups",  "MCacheInuse", "MCacheSys",   "MSpanInuse",    "MSpanSys",       "Mallocs",
      "NextGC",   "NumForcedGC", "NumGC",       "OtherSys",      "PauseTotalNs",   "StackInuse",
      "StackSys", "Sys",         "TotalAlloc",  "RandomValue",   "HeapObjectsLive"};
  std::vector<core::Update> batch;
  batch.reserve(30);
  for (const char* name : kGauges)
    batch.push_back(core::Update::gauge(name, 1.5, labels));
  batch.push_back(core::Update::counter("PollCount", 1, labels));
  return batch;
}

std::size_t heap_in_use() {
  const auto info = ::mallinfo2();
  return info.uordblks + info.hblkhd;
}

void BM_SeriesBytesPerSeries(benchmark::State& state) {
  const bool with_store = state.range(0) != 0;
  std::vector<std::vector<core::Update>> batches;
  batches.reserve(kInstances);
  std::size_t key_bytes = 0;
  for (std::int64_t i = 0; i < kInstances; ++i) {
    const auto labels = core::Labels::make(
        {{"instance", "host-" + std::to_string(i) + ".example.net:4242"}, {"job", "agent"}});
    auto batch = agent_batch(labels);
    for (const auto& u : batch)
      key_bytes += u.id.size() + u.labels.encoded().size();
    batches.push_back(std::move(batch));
  }
  const std::size_t series = static_cast<std::size_t>(kInstances) * batches.front().size();
  double per_series = 0;
  for (auto _ : state) {
    ::malloc_trim(0);
    const auto before = heap_in_use();
    auto index = std::make_unique<metrics::series::SeriesIndex>(
        metrics::series::Limits{.max_series = 0, .max_series_per_instance = 0});
    auto repo = with_store ? std::make_unique<metrics::storage::MemoryRepository>() : nullptr;
    std::int64_t now_ms = 1'700'000'000'000;
    for (const auto& b : batches) {
      auto reservation = index->reserve(b);
      if (repo) (void)repo->apply_now(b, now_ms);
      reservation.commit(now_ms++);
    }
    const auto after = heap_in_use();
    benchmark::DoNotOptimize(index.get());
    if (index->size() != series) state.SkipWithError("the index lost series");
    per_series =
        (static_cast<double>(after) - static_cast<double>(before)) / static_cast<double>(series);
    state.PauseTiming();
    repo.reset();
    index.reset();
    state.ResumeTiming();
  }
  state.counters["series"] = static_cast<double>(series);
  state.counters["bytes_per_series"] = per_series;
  state.counters["key_bytes_per_series"] =
      static_cast<double>(key_bytes) / static_cast<double>(series);
}

void BM_ReserveScrapeOrder(benchmark::State& state) {
  const auto instances = state.range(0);
  std::vector<std::vector<core::Update>> per_instance;
  for (std::int64_t i = 0; i < instances; ++i) {
    per_instance.push_back(agent_batch(core::Labels::make(
        {{"instance", "host-" + std::to_string(i) + ".example.net:4242"}, {"job", "agent"}})));
  }
  std::vector<core::Update> request;
  for (std::size_t m = 0; m < per_instance.front().size(); ++m) {
    for (const auto& b : per_instance)
      request.push_back(b[m]);
  }
  metrics::series::SeriesIndex index(
      metrics::series::Limits{.max_series = 0, .max_series_per_instance = 0});
  std::int64_t now_ms = 1'700'000'000'000;
  index.reserve(request).commit(now_ms);
  for (auto _ : state) {
    auto r = index.reserve(request);
    r.commit(++now_ms);
  }
  state.SetItemsProcessed(state.iterations() * static_cast<std::int64_t>(request.size()));
}

BENCHMARK(BM_SeriesBytesPerSeries)
    ->ArgName("store")
    ->Arg(0)
    ->Arg(1)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ReserveScrapeOrder)
    ->ArgName("instances")
    ->Arg(1)
    ->Arg(2000)
    ->MinTime(1.0)
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
