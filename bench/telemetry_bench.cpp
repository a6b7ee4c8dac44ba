// The server's own metrics on the request path and at scrape time: a
// sharded counter increment (one thread and all threads on one counter),
// a histogram observation, the whole per-request record (the counter of
// an endpoint and code plus its latency histogram, as Service::handle does
// it), and rendering a registry shaped like the server's (15 endpoints x 4
// codes, 15 latency histograms, the process collector).
//
//   telemetry_bench --benchmark_filter=Counter
#include <benchmark/benchmark.h>

#include <atomic>
#include <string>

#include "metrics/telemetry/process.hpp"
#include "metrics/telemetry/registry.hpp"

namespace {

namespace tm = metrics::telemetry;

void BM_CounterInc(benchmark::State& state) {
  static tm::Counter counter;
  for (auto _ : state)
    counter.inc();
  benchmark::DoNotOptimize(counter.value());
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_CounterInc)->Threads(1)->Threads(2)->Threads(4)->MinTime(0.2);

// The baseline sharding avoids: every thread on one atomic.
void BM_SharedAtomicInc(benchmark::State& state) {
  static std::atomic<std::uint64_t> counter{0};
  for (auto _ : state)
    counter.fetch_add(1, std::memory_order_relaxed);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_SharedAtomicInc)->Threads(1)->Threads(2)->Threads(4)->MinTime(0.2);

void BM_HistogramObserve(benchmark::State& state) {
  static tm::Histogram h(tm::latency_buckets());
  double v = 0.0003;
  for (auto _ : state) {
    h.observe(v);
    v = v < 1 ? v * 1.5 : 0.0003;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_HistogramObserve)->Threads(1)->Threads(2)->MinTime(0.2);

void BM_RequestRecord(benchmark::State& state) {
  static tm::Registry reg;
  static tm::Counter& c = reg.counter("metrics_server_requests_total", "", {"endpoint", "code"})
                              .with({"/updates/", "200"});
  static tm::Histogram& h = reg.histogram("metrics_server_request_duration_seconds", "",
                                          {"endpoint"}, tm::latency_buckets())
                                .with({"/updates/"});
  for (auto _ : state) {
    const auto t0 = std::chrono::steady_clock::now();
    c.inc();
    h.observe(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_RequestRecord)->Threads(1)->Threads(2)->MinTime(0.2);

void BM_Render(benchmark::State& state) {
  tm::Registry reg;
  auto& req = reg.counter("metrics_server_requests_total", "Requests.", {"endpoint", "code"});
  auto& lat = reg.histogram("metrics_server_request_duration_seconds", "Latency.", {"endpoint"},
                            tm::latency_buckets());
  for (int e = 0; e < 15; ++e) {
    const std::string endpoint = "/endpoint/" + std::to_string(e) + "/{name}";
    for (const char* code : {"200", "400", "404", "503"})
      req.with({endpoint, code}).inc(static_cast<std::uint64_t>(e) + 1);
    lat.with({endpoint}).observe(0.001);
  }
  auto process = tm::add_process_collector(reg);
  std::size_t bytes = 0;
  for (auto _ : state) {
    const auto out = reg.render();
    bytes = out.text.size();
    benchmark::DoNotOptimize(out.text.data());
  }
  state.counters["bytes"] = static_cast<double>(bytes);
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_Render)->MinTime(0.2);

}  // namespace

BENCHMARK_MAIN();
