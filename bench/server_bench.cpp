// The server's own cost of a POST /updates/, without sockets: the agent's
// 29-metric batch as Part 1's unlabelled array and as Part 2's envelope
// (instance and job labels, 64 instances in turn), through each stage:
// decoding and merging (BM_Decode), the series index (BM_Index: reserve +
// commit), and Service::handle end to end over the memory storage
// (BM_Handle: decode, index, apply, encode). The labelled cases must keep
// at least 90% of the unlabelled ones' throughput (docs/BENCHMARKS.md).
//
//   server_bench --benchmark_filter=Handle
//
// items_per_second is batches per second, on one thread.
#include <benchmark/benchmark.h>
#include <malloc.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/io_context.hpp>
#include <string>
#include <vector>

#include "metrics/core/batch.hpp"
#include "metrics/core/json_codec.hpp"
#include "metrics/series/index.hpp"
#include "metrics/server/service.hpp"
#include "metrics/storage/idempotency.hpp"
#include "metrics/storage/memory_repository.hpp"

namespace {

namespace core = metrics::core;
namespace server = metrics::server;
namespace http = boost::beast::http;

constexpr int kInstances = 64;

std::string metrics_json() {
  static const char* const kGauges[] = {
      "Alloc",    "BuckHashSys", "Frees",       "GCCPUFraction", "GCSys",        "HeapAlloc",
      "HeapIdle", "HeapInuse",   "HeapObjects", "HeapReleased",  "HeapSys",      "LastGC",
      "Lookups",  "MCacheInuse", "MCacheSys",   "MSpanInuse",    "MSpanSys",     "Mallocs",
      "NextGC",   "NumForcedGC", "NumGC",       "OtherSys",      "PauseTotalNs", "StackInuse",
      "StackSys", "Sys",         "TotalAlloc"};
  std::string out;
  int i = 0;
  for (const char* name : kGauges) {
    ++i;
    out += R"({"id":")" + std::string(name) + R"(","type":"gauge","value":)" +
           std::to_string(i * 1000) + "." + std::to_string(i) + "},";
  }
  out += R"({"id":"PollCount","type":"counter","delta":1},)";
  out += R"({"id":"RandomValue","type":"gauge","value":0.123456789})";
  return out;
}

// One body per sender: the same array for every unlabelled sender, an
// envelope with that sender's identity otherwise.
std::vector<std::string> bodies(bool labelled) {
  std::vector<std::string> out;
  const auto metrics = metrics_json();
  for (int i = 0; i < kInstances; ++i) {
    if (!labelled) {
      out.push_back("[" + metrics + "]");
    } else {
      out.push_back(R"({"labels":{"instance":"host-)" + std::to_string(i) +
                    ".example:" + std::to_string(40000 + i) +
                    R"(","job":"metrics-agent"},"metrics":[)" + metrics + "]}");
    }
  }
  return out;
}

void BM_Decode(benchmark::State& state) {
  const auto all = bodies(state.range(0) != 0);
  std::size_t n = 0;
  for (auto _ : state) {
    auto merged = core::merge_batch_moved(core::decode_updates(all[n++ % all.size()]).updates);
    benchmark::DoNotOptimize(merged);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Index(benchmark::State& state) {
  std::vector<std::vector<core::Update>> batches;
  for (const auto& body : bodies(state.range(0) != 0))
    batches.push_back(core::merge_batch(core::decode_updates(body).updates));
  metrics::series::SeriesIndex index;
  std::size_t n = 0;
  std::int64_t t = 1;
  for (auto _ : state) {
    auto r = index.reserve(batches[n++ % batches.size()]);
    r.commit(++t);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Handle(benchmark::State& state) {
  const auto all = bodies(state.range(0) != 0);
  metrics::storage::MemoryRepository repo;
  server::Service service(repo, {});
  boost::asio::io_context ioc;
  std::size_t n = 0;
  std::size_t failed = 0;
  for (auto _ : state) {
    server::Request req{http::verb::post, "/updates/", 11};
    req.set(http::field::content_type, "application/json");
    req.body() = all[n++ % all.size()];
    req.prepare_payload();
    boost::asio::co_spawn(ioc, service.handle(std::move(req)),
                          [&](std::exception_ptr err, server::Response res) {
                            if (err || res.result_int() != 200) ++failed;
                            benchmark::DoNotOptimize(res);
                          });
    ioc.run();
    ioc.restart();
  }
  if (failed != 0) state.SkipWithError("an answer was not 200");
  state.SetItemsProcessed(state.iterations());
}

// Issue 18: Service::handle of the labelled envelope without (0) and with
// (1) an Idempotency-Key, a new one per request (the agent's case: every
// batch is applied once, its key stored with it, bounded by max_keys).
void BM_HandleKeys(benchmark::State& state) {
  const auto all = bodies(true);
  const bool keyed = state.range(0) != 0;
  metrics::storage::MemoryRepository repo;
  server::Service service(repo, {});
  boost::asio::io_context ioc;
  std::size_t n = 0;
  std::size_t failed = 0;
  for (auto _ : state) {
    server::Request req{http::verb::post, "/updates/", 11};
    req.set(http::field::content_type, "application/json");
    if (keyed) req.set("Idempotency-Key", "9b2f6c1e-agent-" + std::to_string(n));
    req.body() = all[n++ % all.size()];
    req.prepare_payload();
    boost::asio::co_spawn(ioc, service.handle(std::move(req)),
                          [&](std::exception_ptr err, server::Response res) {
                            if (err || res.result_int() != 200) ++failed;
                            benchmark::DoNotOptimize(res);
                          });
    ioc.run();
    ioc.restart();
  }
  if (failed != 0) state.SkipWithError("an answer was not 200");
  state.SetItemsProcessed(state.iterations());
}

// The key store's memory per key: heap bytes in use (mallinfo2: small
// blocks and mmapped ones, where a large table lives) after committing
// range(0) keys, divided by the keys; and the bound: past max_keys the store
// stays at max_keys.
void BM_KeyStoreMemory(benchmark::State& state) {
  const auto keys = static_cast<std::size_t>(state.range(0));
  double per_key = 0;
  std::size_t held = 0;
  for (auto _ : state) {
    const auto in_use = [] {
      const auto mi = ::mallinfo2();
      return mi.uordblks + mi.hblkhd;
    };
    const auto before = in_use();
    {
      metrics::storage::KeyStore store({.window = std::chrono::minutes{10}, .max_keys = keys});
      // Twice as many as the bound: the oldest half is evicted.
      for (std::size_t i = 0; i < 2 * keys; ++i) {
        const auto g = metrics::storage::Guard::of("key-" + std::to_string(i), "body");
        // 1000 keys a millisecond: all within the window.
        store.commit(g, static_cast<std::int64_t>(i / 1000));
      }
      const auto after = in_use();
      held = store.stats().keys;
      per_key = static_cast<double>(after - before) / static_cast<double>(held);
    }
  }
  state.counters["bytes_per_key"] = per_key;
  state.counters["keys_held"] = static_cast<double>(held);
}

// Issue 13: Service::handle of labelled envelopes without the ingest
// fan-out (0) and with it feeding the history (1): the sink copies each
// batch into its queue on the request's thread and its own thread appends
// to the store. Real time; `dropped` counts batches the full queue refused
// (the drain thread not keeping up).
void BM_HandleHistory(benchmark::State& state) {
  const auto all = bodies(true);
  metrics::storage::MemoryRepository repo;
  metrics::history::HistoryStore store;
  auto sink = server::make_history_sink(store);
  auto fanout = std::make_shared<server::IngestFanout>();
  fanout->add(sink);
  server::ServiceOptions options;
  if (state.range(0) != 0) {
    options.fanout = fanout;
    options.history = nullptr;
  }
  server::Service service(repo, std::move(options));
  boost::asio::io_context ioc;
  std::size_t n = 0;
  std::size_t failed = 0;
  for (auto _ : state) {
    server::Request req{http::verb::post, "/updates/", 11};
    req.set(http::field::content_type, "application/json");
    req.body() = all[n++ % all.size()];
    req.prepare_payload();
    boost::asio::co_spawn(ioc, service.handle(std::move(req)),
                          [&](std::exception_ptr err, server::Response res) {
                            if (err || res.result_int() != 200) ++failed;
                            benchmark::DoNotOptimize(res);
                          });
    ioc.run();
    ioc.restart();
  }
  sink->wait_idle();
  if (failed != 0) state.SkipWithError("an answer was not 200");
  state.SetItemsProcessed(state.iterations());
  state.counters["dropped"] = static_cast<double>(sink->stats().dropped_batches);
  state.counters["samples"] = static_cast<double>(store.stats().samples);
}

// 0: unlabelled array, 1: labelled envelope.
BENCHMARK(BM_Decode)->ArgName("labelled")->Arg(0)->Arg(1)->MinTime(1.0);
BENCHMARK(BM_Index)->ArgName("labelled")->Arg(0)->Arg(1)->MinTime(1.0);
BENCHMARK(BM_Handle)->ArgName("labelled")->Arg(0)->Arg(1)->MinTime(1.0);
BENCHMARK(BM_HandleKeys)->ArgName("keys")->Arg(0)->Arg(1)->MinTime(1.0);
BENCHMARK(BM_KeyStoreMemory)
    ->Arg(100'000)
    ->Arg(1'000'000)
    ->Iterations(1)
    ->Unit(benchmark::kMillisecond);
BENCHMARK(BM_HandleHistory)->ArgName("history")->Arg(0)->Arg(1)->MinTime(1.0)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
