// Storage throughput with durable acknowledgements, through the Repository
// interface the server uses: one thread issues 29-metric batches
// asynchronously, keeping `inflight` of them outstanding (as many concurrent
// agents would), and counts a batch once its callback ran. The "Labelled"
// cases send the same batches as agents of Part 2 do (every metric with
// instance and job labels), cycling through `instances` senders; the
// others are Part 1's unlabelled batches. BM_MemoryBytesPerSeries reports
// the heap the memory storage takes per series (beyond the bytes of names
// and labels themselves) at 10,000 instances x 30 metrics.
//
//   storage_bench --benchmark_filter=Memory
//   storage_bench --benchmark_filter=FileSync
//   METRICS_TEST_PG_DSN=postgres://... storage_bench --benchmark_filter=Postgres
//
// items_per_second is acknowledged batches per second.
#include <benchmark/benchmark.h>
#include <malloc.h>
// BEGIN PostgreSQL
#include <libpq-fe.h>
// END PostgreSQL

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <semaphore>
#include <string>

#include "metrics/storage/file_repository.hpp"
#include "metrics/storage/memory_repository.hpp"
// BEGIN PostgreSQL
#include "metrics/storage/postgres_repository.hpp"
// END PostgreSQL

namespace {

namespace storage = metrics::storage;
namespace core = metrics::core;
using core::Update;

// What the agent sends: Go runtime gauges, RandomValue and PollCount.
std::vector<Update> agent_batch(std::int64_t i, const core::Labels& labels = {}) {
  static const char* const kGauges[] = {
      "Alloc",    "BuckHashSys", "Frees",       "GCCPUFraction", "GCSys",        "HeapAlloc",
      "HeapIdle", "HeapInuse",   "HeapObjects", "HeapReleased",  "HeapSys",      "LastGC",
      "Lookups",  "MCacheInuse", "MCacheSys",   "MSpanInuse",    "MSpanSys",     "Mallocs",
      "NextGC",   "NumForcedGC", "NumGC",       "OtherSys",      "PauseTotalNs", "StackInuse",
      "StackSys", "Sys",         "TotalAlloc",  "RandomValue"};
  std::vector<Update> batch;
  batch.reserve(29);
  for (const char* name : kGauges)
    batch.push_back(Update::gauge(name, static_cast<double>(i) * 1.5, labels));
  batch.push_back(Update::counter("PollCount", 1, labels));
  return batch;
}

// The labels the project's agent sends: instance host:pid and job.
core::Labels agent_labels(std::int64_t instance) {
  return core::Labels::make(
      {{"instance", "host-" + std::to_string(instance) + ".example.net:4242"}, {"job", "agent"}});
}

// One batch per sender: unlabelled (Part 1) when instances is 0.
std::vector<std::vector<Update>> sender_batches(std::int64_t instances) {
  std::vector<std::vector<Update>> out;
  if (instances == 0) {
    out.push_back(agent_batch(1));
    return out;
  }
  for (std::int64_t i = 0; i < instances; ++i)
    out.push_back(agent_batch(1, agent_labels(i)));
  return out;
}

// Issues batches keeping `inflight` outstanding, cycling through the
// senders' batches; returns after all completed.
void drive(benchmark::State& state, storage::Repository& repo, std::ptrdiff_t inflight,
           std::int64_t instances = 0) {
  std::counting_semaphore<1 << 20> slots(inflight);
  std::atomic<std::int64_t> failed{0};
  const auto batches = sender_batches(instances);
  std::size_t next = 0;
  std::int64_t now_ms = 1'700'000'000'000;
  for (auto _ : state) {
    slots.acquire();
    const auto& batch = batches[next];
    next = next + 1 == batches.size() ? 0 : next + 1;
    repo.apply(batch, ++now_ms, [&slots, &failed](std::exception_ptr err, storage::Applied) {
      if (err) ++failed;
      slots.release();
    });
  }
  for (std::ptrdiff_t i = 0; i < inflight; ++i)
    slots.acquire();
  state.SetItemsProcessed(state.iterations());
  state.counters["failed"] = static_cast<double>(failed.load());
  if (failed.load() > 0) state.SkipWithError("some batches failed");
}

std::filesystem::path temp_path() {
  const char* base = std::getenv("TMPDIR");
  std::string dir = std::string(base && *base ? base : "/tmp") + "/metrics-bench-XXXXXX";
  if (::mkdtemp(dir.data()) == nullptr) throw std::runtime_error("mkdtemp");
  return std::filesystem::path(dir) / "db.json";
}

void BM_Memory(benchmark::State& state) {
  storage::MemoryRepository repo;
  drive(state, repo, state.range(0));
}

void BM_MemoryLabelled(benchmark::State& state) {
  storage::MemoryRepository repo;
  drive(state, repo, state.range(0), state.range(1));
}

// Heap in use, from the allocator's own count (glibc).
std::size_t heap_in_use() {
  const auto info = ::mallinfo2();
  return info.uordblks + info.hblkhd;
}

// 10,000 instances x 30 metrics = 300,000 series; counts what the storage
// allocates beyond the bytes of the names and labels it must keep (counted
// once per series: a storage may well keep them once per series).
void BM_MemoryBytesPerSeries(benchmark::State& state) {
  constexpr std::int64_t kInstances = 10'000;
  std::vector<std::vector<Update>> batches;
  batches.reserve(kInstances);
  std::size_t key_bytes = 0;
  for (std::int64_t i = 0; i < kInstances; ++i) {
    auto batch = agent_batch(1, agent_labels(i));
    batch.push_back(Update::gauge("HeapObjectsLive", 1, agent_labels(i)));
    for (const auto& u : batch)
      key_bytes += u.id.size() + u.labels.encoded().size();
    batches.push_back(std::move(batch));
  }
  const std::size_t series = static_cast<std::size_t>(kInstances) * batches.front().size();
  double per_series = 0;
  for (auto _ : state) {
    ::malloc_trim(0);
    const auto before = heap_in_use();
    auto repo = std::make_unique<storage::MemoryRepository>();
    for (const auto& b : batches)
      (void)repo->apply_now(b, 1);
    const auto after = heap_in_use();
    benchmark::DoNotOptimize(repo.get());
    per_series = (static_cast<double>(after) - static_cast<double>(before) -
                  static_cast<double>(key_bytes)) /
                 static_cast<double>(series);
    state.PauseTiming();
    repo.reset();
    state.ResumeTiming();
  }
  state.counters["series"] = static_cast<double>(series);
  state.counters["bytes_per_series"] = per_series;
  state.counters["key_bytes_per_series"] =
      static_cast<double>(key_bytes) / static_cast<double>(series);
}

void BM_FileSync(benchmark::State& state) {
  const auto path = temp_path();
  {
    storage::FileOptions options;
    options.path = path;
    options.store_interval = std::chrono::milliseconds{0};
    storage::FileRepository repo(options);
    drive(state, repo, state.range(0), state.range(1));
    repo.close();
  }
  std::filesystem::remove_all(path.parent_path());
}

// BEGIN PostgreSQL
// A fresh schema per run, dropped at the end.
class PgSchema {
 public:
  explicit PgSchema(std::string dsn) : dsn_(std::move(dsn)) {
    std::random_device rd;
    name_ = "metrics_bench_" + std::to_string(rd());
  }
  ~PgSchema() {
    PGconn* conn = PQconnectdb(dsn_.c_str());
    PQclear(PQexec(conn, ("DROP SCHEMA IF EXISTS " + name_ + " CASCADE").c_str()));
    PQfinish(conn);
  }
  PgSchema(const PgSchema&) = delete;
  PgSchema& operator=(const PgSchema&) = delete;
  const std::string& name() const { return name_; }

 private:
  std::string dsn_;
  std::string name_;
};

void BM_Postgres(benchmark::State& state) {
  const char* dsn = std::getenv("METRICS_TEST_PG_DSN");
  if (dsn == nullptr || *dsn == '\0') {
    state.SkipWithError("METRICS_TEST_PG_DSN is not set");
    for (auto _ : state) {
    }
    return;
  }
  PgSchema schema(dsn);
  storage::PostgresOptions options;
  options.dsn = dsn;
  options.schema = schema.name();
  options.max_group = static_cast<std::size_t>(state.range(1));
  // The baseline is a transaction per request on every connection at once.
  if (options.max_group == 1) options.concurrent_groups = options.connections;
  storage::PostgresRepository repo(options);
  drive(state, repo, state.range(0), state.range(2));
  repo.close();
}
// END PostgreSQL

// Args: {in-flight batches, instances (0: unlabelled)}. Every benchmark
// stops after about 3 s.
BENCHMARK(BM_Memory)->Arg(256)->MinTime(1.0)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MemoryLabelled)
    ->ArgNames({"inflight", "instances"})
    ->Args({256, 1})
    ->Args({256, 1000})
    ->MinTime(1.0)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_MemoryBytesPerSeries)->Iterations(1)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_FileSync)
    ->ArgNames({"inflight", "instances"})
    ->Args({1, 0})
    ->Args({64, 0})
    ->Args({256, 0})
    ->Args({1024, 0})
    ->Args({256, 1000})
    ->Args({1024, 1000})
    ->MinTime(3.0)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
// BEGIN PostgreSQL
// Args: {in-flight batches, most batches per transaction, instances}; max_group
// 1 is the transaction-per-request baseline.
BENCHMARK(BM_Postgres)
    ->ArgNames({"inflight", "max_group", "instances"})
    ->Args({256, 1, 0})
    ->Args({64, 1024, 0})
    ->Args({256, 1024, 0})
    ->Args({1024, 1024, 0})
    ->Args({1024, 1024, 1000})
    ->MinTime(3.0)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
// END PostgreSQL

}  // namespace

BENCHMARK_MAIN();
