// Costs of the agent inside a host: one sample (each collector and all of
// them), encoding a report, and a malloc/free pair through the counting
// shim compared with glibc's own entry points.
//
//   build/src/agent/agent_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include <cstdlib>

#include "allocator_stats.hpp"
#include "http_sender.hpp"
#include "sampler.hpp"

extern "C" void* __libc_malloc(std::size_t);
extern "C" void __libc_free(void*);

namespace {

using metrics::agent::AgentConfig;
using metrics::agent::detail::Metrics;
using metrics::agent::detail::Sampler;

AgentConfig only(bool allocator, bool process, bool system) {
  AgentConfig c;
  c.collect_allocator = allocator;
  c.collect_process = process;
  c.collect_system = system;
  return c;
}

void sample(benchmark::State& state, const AgentConfig& config) {
  Sampler sampler(config);
  Metrics out;
  for (auto _ : state) {
    out.clear();
    sampler.sample(out);
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["metrics"] = static_cast<double>(out.size());
}

void BM_SampleAll(benchmark::State& s) {
  sample(s, only(true, true, true));
}
void BM_SampleAllocator(benchmark::State& s) {
  sample(s, only(true, false, false));
}
void BM_SampleProcess(benchmark::State& s) {
  sample(s, only(false, true, false));
}
void BM_SampleSystem(benchmark::State& s) {
  sample(s, only(false, false, true));
}
BENCHMARK(BM_SampleAll);
BENCHMARK(BM_SampleAllocator);
BENCHMARK(BM_SampleProcess);
BENCHMARK(BM_SampleSystem);

void BM_EncodeReport(benchmark::State& state) {
  Sampler sampler(only(true, true, true));
  Metrics out;
  sampler.sample(out);
  sampler.sample(out);
  std::size_t bytes = 0;
  for (auto _ : state) {
    const std::string body = metrics::agent::detail::encode_body(
        metrics::core::Labels::make({{"instance", "bench:1"}, {"job", "agent_bench"}}), out);
    bytes = body.size();
    benchmark::DoNotOptimize(body.data());
  }
  state.counters["metrics"] = static_cast<double>(out.size());
  state.counters["gzip_bytes"] = static_cast<double>(bytes);
}
BENCHMARK(BM_EncodeReport);

void BM_MallocFreeThroughShim(benchmark::State& state) {
  for (auto _ : state) {
    void* p = std::malloc(64);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
}
BENCHMARK(BM_MallocFreeThroughShim)->Threads(1)->Threads(2);

void BM_MallocFreeGlibcDirect(benchmark::State& state) {
  for (auto _ : state) {
    void* p = __libc_malloc(64);
    benchmark::DoNotOptimize(p);
    __libc_free(p);
  }
}
BENCHMARK(BM_MallocFreeGlibcDirect)->Threads(1)->Threads(2);

}  // namespace

BENCHMARK_MAIN();
