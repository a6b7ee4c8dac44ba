// History (src/history): append cost and bytes per sample on realistic data.
//
//   history_bench --benchmark_filter=Append      # ns per sample
//   history_bench --benchmark_filter=Bytes       # bytes per sample, per series
//   history_bench --benchmark_filter=ReadRange   # decoded samples per second
//
// The data (docs/BENCHMARKS.md, "History", says why these shapes):
// - agent: the project agent's own 29 series per process, every 10 s as the
//   server receives them (0-3 ms of jitter): the 27 MemStats gauges (most
//   constant in a process without a garbage collector, the heap ones moving
//   by a few allocations, Mallocs/Frees/TotalAlloc growing), RandomValue
//   (uniform in [0, 1), incompressible) and the PollCount counter (+5 a
//   report: 5 polls of 2 s).
// - loadgen: the load generator's batch (src/loadgen request_builder.hpp):
//   slot 0 a counter growing by 1 + seq % 7, slot 1 by 1 + seq % 3, slots
//   2-28 gauges seq * 0.25 + slot + 1000 * agent.
// - random: uniform random doubles and counters with random deltas in
//   [0, 10^6): the worst case, for scale.
//
// Bytes benchmarks run once (each is a day of samples) and report counters:
// payload_B_per_sample (the encoded chunks), total_B_per_sample (everything
// the store accounts: chunks, their headers, series, identities) and
// overhead_B_per_series ((total - payload) / series).
#include <benchmark/benchmark.h>

#include <array>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "metrics/history/store.hpp"

namespace {

namespace history = metrics::history;
using metrics::core::MetricType;

constexpr std::int64_t kStart = 1'764'000'000'000;  // 2025-11-24, in ms
constexpr std::int64_t kInterval = 10'000;

constexpr std::array<const char*, 27> kMemStats{
    "Alloc",    "BuckHashSys", "Frees",       "GCCPUFraction", "GCSys",        "HeapAlloc",
    "HeapIdle", "HeapInuse",   "HeapObjects", "HeapReleased",  "HeapSys",      "LastGC",
    "Lookups",  "MCacheInuse", "MCacheSys",   "MSpanInuse",    "MSpanSys",     "Mallocs",
    "NextGC",   "NumForcedGC", "NumGC",       "OtherSys",      "PauseTotalNs", "StackInuse",
    "StackSys", "Sys",         "TotalAlloc"};

// One series' next value; all values are kept as the store's bits.
struct SeriesGen {
  MetricType type = MetricType::gauge;
  history::SeriesIdentity identity;
  int kind = 0;      // see next()
  double value = 0;  // gauges
  std::int64_t total = 0;
};

// The agent's generator for one process.
class AgentShape {
 public:
  AgentShape(std::uint32_t agent, std::uint64_t seed) : rng_(seed) {
    const auto labels = metrics::core::Labels::make(
        {{"instance", "host" + std::to_string(agent) + ":4242"}, {"job", "agent"}});
    for (const char* name : kMemStats) {
      SeriesGen g;
      g.identity = {MetricType::gauge, name, labels};
      const std::string n = name;
      if (n == "Alloc" || n == "HeapAlloc" || n == "HeapInuse") {
        g.kind = 1;  // a few allocations come and go each report
        g.value = 1'200'000 + 16.0 * static_cast<double>(rng_() % 10'000);
      } else if (n == "HeapObjects") {
        g.kind = 2;
        g.value = 4'000 + static_cast<double>(rng_() % 100);
      } else if (n == "Mallocs" || n == "Frees" || n == "TotalAlloc") {
        g.kind = 3;  // growing at a roughly steady rate
        g.value = static_cast<double>(rng_() % 1'000'000);
      } else if (n == "HeapIdle" || n == "HeapReleased" || n == "HeapSys" || n == "Sys" ||
                 n == "StackInuse" || n == "MSpanInuse") {
        g.kind = 4;  // a page now and then
        g.value = 4096.0 * static_cast<double>(100 + rng_() % 1000);
      } else {
        g.kind = 0;  // constant (no collector: NumGC, PauseTotalNs, ... are 0)
        g.value = n == "BuckHashSys" || n == "GCSys" || n == "MCacheSys" || n == "MSpanSys" ||
                          n == "OtherSys" || n == "StackSys" || n == "MCacheInuse"
                      ? static_cast<double>(16'384 + 16 * (rng_() % 4096))
                      : 0.0;
      }
      series.push_back(g);
    }
    SeriesGen random;
    random.identity = {MetricType::gauge, "RandomValue", labels};
    random.kind = 5;
    series.push_back(random);
    SeriesGen poll;
    poll.type = MetricType::counter;
    poll.identity = {MetricType::counter, "PollCount", labels};
    series.push_back(poll);
  }

  // Advances every series by one report.
  void step() {
    for (auto& g : series) {
      if (g.type == MetricType::counter) {
        g.total += 5;
        continue;
      }
      switch (g.kind) {
        case 1:
          if (rng_() % 10 < 7) g.value += 16.0 * (static_cast<double>(rng_() % 129) - 64.0);
          break;
        case 2:
          if (rng_() % 10 < 7) g.value += static_cast<double>(rng_() % 9) - 4.0;
          break;
        case 3:
          g.value +=
              static_cast<double>(100 + rng_() % 20) * (g.identity.id == "TotalAlloc" ? 48 : 1);
          break;
        case 4:
          if (rng_() % 10 == 0) g.value += 4096.0 * (static_cast<double>(rng_() % 5) - 2.0);
          break;
        case 5:
          g.value = std::uniform_real_distribution<double>(0.0, 1.0)(rng_);
          break;
        default:
          break;
      }
    }
  }
  std::int64_t jitter() { return static_cast<std::int64_t>(rng_() % 4); }

  std::vector<SeriesGen> series;

 private:
  std::mt19937_64 rng_;
};

// The load generator's batch for one simulated agent.
class LoadgenShape {
 public:
  LoadgenShape(std::uint32_t agent, std::uint64_t seed) : agent_(agent), rng_(seed) {
    const auto labels = metrics::core::Labels::make(
        {{"instance", "lg" + std::to_string(agent)}, {"job", "loadgen"}});
    for (std::size_t slot = 0; slot < 29; ++slot) {
      SeriesGen g;
      g.type = slot < 2 ? MetricType::counter : MetricType::gauge;
      g.identity = {g.type, "slot" + std::to_string(slot), labels};
      series.push_back(g);
    }
  }
  void step() {
    for (std::size_t slot = 0; slot < series.size(); ++slot) {
      auto& g = series[slot];
      if (slot == 0)
        g.total += 1 + static_cast<std::int64_t>(seq_ % 7);
      else if (slot == 1)
        g.total += 1 + static_cast<std::int64_t>(seq_ % 3);
      else
        g.value = static_cast<double>(seq_) * 0.25 + static_cast<double>(slot) +
                  static_cast<double>(agent_ % 1000) * 1000.0;
    }
    ++seq_;
  }
  std::int64_t jitter() { return static_cast<std::int64_t>(rng_() % 4); }
  std::vector<SeriesGen> series;

 private:
  std::uint32_t agent_;
  std::uint64_t seq_ = 0;
  std::mt19937_64 rng_;
};

// Worst case: nothing to compress in the values.
class RandomShape {
 public:
  RandomShape(std::uint32_t agent, std::uint64_t seed) : rng_(seed) {
    const auto labels = metrics::core::Labels::make({{"instance", "r" + std::to_string(agent)}});
    for (std::size_t k = 0; k < 29; ++k) {
      SeriesGen g;
      g.type = k % 2 ? MetricType::counter : MetricType::gauge;
      g.identity = {g.type, "r" + std::to_string(k), labels};
      series.push_back(g);
    }
  }
  void step() {
    for (auto& g : series) {
      if (g.type == MetricType::counter)
        g.total += static_cast<std::int64_t>(rng_() % 1'000'000);
      else
        g.value = std::uniform_real_distribution<double>(-1e6, 1e6)(rng_);
    }
  }
  std::int64_t jitter() { return static_cast<std::int64_t>(rng_() % 4); }
  std::vector<SeriesGen> series;

 private:
  std::mt19937_64 rng_;
};

void append(history::HistoryStore& store, history::SeriesRef ref, const SeriesGen& g,
            std::int64_t t) {
  if (g.type == MetricType::counter)
    store.append(ref, g.identity, t, g.total);
  else
    store.append(ref, g.identity, t, g.value);
}

history::HistoryOptions bench_options(std::uint32_t chunk_samples) {
  history::HistoryOptions options;
  options.retention = std::chrono::milliseconds{0};
  options.max_bytes = 0;
  options.chunk_samples = chunk_samples;
  return options;
}

// A day at 10 s for `agents` processes of a shape; reports the bytes.
template <typename Shape>
void bytes_per_sample(benchmark::State& state) {
  const auto agents = static_cast<std::uint32_t>(state.range(0));
  const auto chunk = static_cast<std::uint32_t>(state.range(1));
  constexpr std::int64_t kSamples = 24 * 360;  // a day at 10 s
  for (auto _ : state) {
    history::HistoryStore store(bench_options(chunk));
    std::vector<Shape> shapes;
    for (std::uint32_t a = 0; a < agents; ++a)
      shapes.emplace_back(a, 1000 + a);
    for (std::int64_t i = 0; i < kSamples; ++i)
      for (std::uint32_t a = 0; a < agents; ++a) {
        auto& shape = shapes[a];
        shape.step();
        const std::int64_t t = kStart + i * kInterval + shape.jitter();
        for (std::size_t k = 0; k < shape.series.size(); ++k)
          append(store, a * 64 + k, shape.series[k], t);
      }
    const auto st = store.stats();
    const auto samples = static_cast<double>(st.samples);
    state.counters["samples"] = samples;
    state.counters["series"] = static_cast<double>(st.series);
    state.counters["payload_B_per_sample"] = static_cast<double>(st.payload_bytes) / samples;
    state.counters["total_B_per_sample"] = static_cast<double>(st.bytes) / samples;
    state.counters["overhead_B_per_series"] =
        static_cast<double>(st.bytes - st.payload_bytes) / static_cast<double>(st.series);
    state.counters["MiB"] = static_cast<double>(st.bytes) / (1 << 20);
  }
}

void BM_BytesAgent(benchmark::State& state) {
  bytes_per_sample<AgentShape>(state);
}
void BM_BytesLoadgen(benchmark::State& state) {
  bytes_per_sample<LoadgenShape>(state);
}
void BM_BytesRandom(benchmark::State& state) {
  bytes_per_sample<RandomShape>(state);
}

// Appends with the values precomputed (a ring of reports), so that the time
// is the store's: lookup, shard mutex, encoding, chunk rollover.
template <typename Shape, bool kBatch = false>
void append_cost(benchmark::State& state) {
  const auto agents = static_cast<std::uint32_t>(state.range(0));
  constexpr std::size_t kRing = 64;
  std::vector<Shape> shapes;
  for (std::uint32_t a = 0; a < agents; ++a)
    shapes.emplace_back(a, 7 + a);
  const std::size_t per_agent = shapes[0].series.size();
  // bits[(report * agents + agent) * per_agent + k]
  std::vector<std::uint64_t> bits;
  bits.reserve(kRing * agents * per_agent);
  for (std::size_t r = 0; r < kRing; ++r)
    for (auto& shape : shapes) {
      shape.step();
      for (const auto& g : shape.series)
        bits.push_back(g.type == MetricType::counter ? history::counter_bits(g.total)
                                                     : history::gauge_bits(g.value));
    }
  history::HistoryStore store(bench_options(240));
  // Steady state: every series exists before the timing starts (creating
  // one, with its identity, is a different cost, paid once).
  for (std::uint32_t a = 0; a < agents; ++a) {
    const auto& series = shapes[a].series;
    for (std::size_t k = 0; k < per_agent; ++k)
      append(store, a * 64 + k, series[k], kStart - kInterval);
  }
  std::int64_t i = 0;
  std::size_t appended = 0;
  std::vector<history::AppendItem> items;
  items.reserve(per_agent);
  for (auto _ : state) {
    // One report of one agent: its 29 series at one time.
    const auto a = static_cast<std::uint32_t>(i % agents);
    const std::int64_t round = i / agents;
    const auto report = static_cast<std::size_t>(round) % kRing;
    const std::uint64_t* values = &bits[(report * agents + a) * per_agent];
    const std::int64_t t = kStart + round * kInterval + (i & 3);
    const auto& series = shapes[a].series;
    if constexpr (kBatch) {
      items.clear();
      for (std::size_t k = 0; k < per_agent; ++k)
        items.push_back({.ref = a * 64 + k,
                         .t_ms = t,
                         .bits = values[k],
                         .kind = series[k].type,
                         .identity = &series[k].identity});
      store.append_batch(items);
    } else {
      for (std::size_t k = 0; k < per_agent; ++k) {
        const auto ref = a * 64 + k;
        if (series[k].type == MetricType::counter)
          store.append(ref, series[k].identity, t, history::counter_value(values[k]));
        else
          store.append(ref, series[k].identity, t, history::gauge_value(values[k]));
      }
    }
    appended += per_agent;
    ++i;
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(appended));
  state.counters["ns_per_sample"] = benchmark::Counter(
      static_cast<double>(appended), benchmark::Counter::kIsRate | benchmark::Counter::kInvert);
  state.counters["series"] = static_cast<double>(store.stats().series);
}

void BM_AppendAgent(benchmark::State& state) {
  append_cost<AgentShape>(state);
}
void BM_AppendLoadgen(benchmark::State& state) {
  append_cost<LoadgenShape>(state);
}
// The same reports through append_batch(), one call per report (as the
// history sink appends a request's points).
void BM_AppendBatchAgent(benchmark::State& state) {
  append_cost<AgentShape, true>(state);
}
void BM_AppendBatchLoadgen(benchmark::State& state) {
  append_cost<LoadgenShape, true>(state);
}

// Range reads over a day of the agent mix (100 processes, 2,900 series,
// chunks of range(1) samples): the last range(0) minutes of every series,
// as a dashboard asks. Reports decoded samples per second.
void BM_ReadRange(benchmark::State& state) {
  const std::int64_t minutes = state.range(0);
  const auto chunk = static_cast<std::uint32_t>(state.range(1));
  constexpr std::uint32_t kAgents = 100;
  constexpr std::int64_t kSamples = 24 * 360;
  history::HistoryStore store(bench_options(chunk));
  std::vector<history::SeriesRef> refs;
  {
    std::vector<AgentShape> shapes;
    for (std::uint32_t a = 0; a < kAgents; ++a)
      shapes.emplace_back(a, 1000 + a);
    for (std::uint32_t a = 0; a < kAgents; ++a)
      for (std::size_t k = 0; k < shapes[a].series.size(); ++k)
        refs.push_back(a * 64 + k);
    for (std::int64_t i = 0; i < kSamples; ++i)
      for (std::uint32_t a = 0; a < kAgents; ++a) {
        auto& shape = shapes[a];
        shape.step();
        const std::int64_t t = kStart + i * kInterval + shape.jitter();
        for (std::size_t k = 0; k < shape.series.size(); ++k)
          append(store, a * 64 + k, shape.series[k], t);
      }
  }
  const std::int64_t end = kStart + kSamples * kInterval;
  const std::int64_t start = end - minutes * 60'000;
  std::size_t samples = 0;
  for (auto _ : state) {
    const auto out = store.read_range(refs, start, end);
    for (const auto& s : out)
      samples += s.samples.size();
    benchmark::DoNotOptimize(out.data());
  }
  state.counters["samples_per_second"] =
      benchmark::Counter(static_cast<double>(samples), benchmark::Counter::kIsRate);
  state.counters["samples_per_read"] =
      static_cast<double>(samples) / static_cast<double>(state.iterations());
}

}  // namespace

BENCHMARK(BM_AppendAgent)->Arg(1)->Arg(1000)->Arg(10000)->MinTime(1.0);
BENCHMARK(BM_AppendLoadgen)->Arg(1000)->MinTime(1.0);
BENCHMARK(BM_AppendBatchAgent)->Arg(1)->Arg(1000)->Arg(10000)->MinTime(1.0);
BENCHMARK(BM_AppendBatchLoadgen)->Arg(1000)->MinTime(1.0);
BENCHMARK(BM_ReadRange)
    ->Args({60, 240})
    ->Args({60, 480})
    ->Args({1440, 240})
    ->MinTime(1.0)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BytesAgent)
    ->Args({100, 120})
    ->Args({100, 240})
    ->Args({100, 480})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BytesLoadgen)
    ->Args({100, 120})
    ->Args({100, 240})
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_BytesRandom)->Args({100, 120})->Iterations(1)->Unit(benchmark::kMillisecond);

BENCHMARK_MAIN();
