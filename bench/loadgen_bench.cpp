// Cost of building one metrics-loadgen request, labelled envelope against
// the unlabelled array (issue 12): the generator shares the machine's cores
// with the server it measures, so what it spends per request is what the
// server does not get. Plain and gzip, 29 metrics.
//
//   build/release/src/loadgen/loadgen_bench --benchmark_min_time=0.5
#include <benchmark/benchmark.h>

#include "metrics/loadgen/request_builder.hpp"

namespace {

using metrics::loadgen::Mode;
using metrics::loadgen::RequestBuilder;
using metrics::loadgen::RequestBytes;
using metrics::loadgen::Workload;

void build(benchmark::State& state, bool labels, bool gzip) {
  RequestBuilder builder(Workload{"lgbench_", 29, Mode::batch, labels}, "127.0.0.1:8080", "", gzip);
  RequestBytes bytes;
  std::uint64_t seq = 0;
  std::uint32_t agent = 0;
  for (auto _ : state) {
    builder.build(agent, ++seq, bytes);
    agent = (agent + 1) % 10'000;  // names and instances of many agents, as a run has
    benchmark::DoNotOptimize(bytes.body.data());
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["body_bytes"] = static_cast<double>(bytes.body.size());
}

void BM_Unlabelled(benchmark::State& s) {
  build(s, false, false);
}
void BM_Labelled(benchmark::State& s) {
  build(s, true, false);
}
void BM_UnlabelledGzip(benchmark::State& s) {
  build(s, false, true);
}
void BM_LabelledGzip(benchmark::State& s) {
  build(s, true, true);
}
BENCHMARK(BM_Unlabelled)->MinTime(0.2);
BENCHMARK(BM_Labelled)->MinTime(0.2);
BENCHMARK(BM_UnlabelledGzip)->MinTime(0.2);
BENCHMARK(BM_LabelledGzip)->MinTime(0.2);

}  // namespace

BENCHMARK_MAIN();
