// Storage throughput with durable acknowledgements, through the Repository
// interface the server uses: one thread issues 29-metric batches
// asynchronously, keeping `inflight` of them outstanding (as many concurrent
// agents would), and counts a batch once its callback ran.
//
//   storage_bench --benchmark_filter=FileSync
//   METRICS_TEST_PG_DSN=postgres://... storage_bench --benchmark_filter=Postgres
//
// items_per_second is acknowledged batches per second.
#include <benchmark/benchmark.h>
#include <libpq-fe.h>

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <random>
#include <semaphore>
#include <string>

#include "metrics/storage/file_repository.hpp"
#include "metrics/storage/memory_repository.hpp"
#include "metrics/storage/postgres_repository.hpp"

namespace {

namespace storage = metrics::storage;
using metrics::core::Metric;

// What the agent sends: Go runtime gauges, RandomValue and PollCount.
std::vector<Metric> agent_batch(std::int64_t i) {
  static const char* const kGauges[] = {
      "Alloc",    "BuckHashSys", "Frees",       "GCCPUFraction", "GCSys",        "HeapAlloc",
      "HeapIdle", "HeapInuse",   "HeapObjects", "HeapReleased",  "HeapSys",      "LastGC",
      "Lookups",  "MCacheInuse", "MCacheSys",   "MSpanInuse",    "MSpanSys",     "Mallocs",
      "NextGC",   "NumForcedGC", "NumGC",       "OtherSys",      "PauseTotalNs", "StackInuse",
      "StackSys", "Sys",         "TotalAlloc",  "RandomValue"};
  std::vector<Metric> batch;
  batch.reserve(29);
  for (const char* name : kGauges)
    batch.push_back(Metric::gauge(name, static_cast<double>(i) * 1.5));
  batch.push_back(Metric::counter("PollCount", 1));
  return batch;
}

// Issues batches keeping `inflight` outstanding; returns after all completed.
void drive(benchmark::State& state, storage::Repository& repo, std::ptrdiff_t inflight) {
  std::counting_semaphore<1 << 20> slots(inflight);
  std::atomic<std::int64_t> failed{0};
  const auto batch = agent_batch(1);
  for (auto _ : state) {
    slots.acquire();
    repo.apply(batch, [&slots, &failed](std::exception_ptr err, std::vector<Metric>) {
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

void BM_FileSync(benchmark::State& state) {
  const auto path = temp_path();
  {
    storage::FileOptions options;
    options.path = path;
    options.store_interval = std::chrono::milliseconds{0};
    storage::FileRepository repo(options);
    drive(state, repo, state.range(0));
    repo.close();
  }
  std::filesystem::remove_all(path.parent_path());
}

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
  drive(state, repo, state.range(0));
  repo.close();
}

// Args: {in-flight batches}. Every benchmark stops after about 3 s.
BENCHMARK(BM_Memory)->Arg(256)->MinTime(1.0)->UseRealTime()->Unit(benchmark::kMicrosecond);
BENCHMARK(BM_FileSync)
    ->ArgName("inflight")
    ->Arg(1)
    ->Arg(64)
    ->Arg(256)
    ->Arg(1024)
    ->MinTime(3.0)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);
// Args: {in-flight batches, most batches per transaction}; max_group 1 is the
// transaction-per-request baseline.
BENCHMARK(BM_Postgres)
    ->ArgNames({"inflight", "max_group"})
    ->Args({256, 1})
    ->Args({64, 1024})
    ->Args({256, 1024})
    ->Args({1024, 1024})
    ->MinTime(3.0)
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
