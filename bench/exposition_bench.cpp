// Remote write 1.0 and text exposition throughput: encode and decode of a
// 500-series x 1-sample WriteRequest (Prometheus 2.42's default
// max_samples_per_send is 500), validation, snappy both ways, and the text
// format for the same 500 series.
//
//   exposition_bench --benchmark_filter=RemoteWrite
//
// items_per_second is series (= samples) per second; bytes_per_second is
// over the uncompressed protobuf (snappy: over its input).
#include <benchmark/benchmark.h>

#include <array>
#include <string>
#include <vector>

#include "metrics/core/metric.hpp"
#include "metrics/exposition/remote_write.hpp"
#include "metrics/exposition/snappy_block.hpp"
#include "metrics/exposition/text_format.hpp"

namespace {

namespace core = metrics::core;
namespace ex = metrics::exposition;

constexpr int kSeries = 500;

// Series shaped like node_exporter's: a name, instance, job and two more.
struct Input {
  std::vector<std::string> names;
  std::vector<core::Labels> labels;
  std::vector<core::Point> points;
};

const Input& input() {
  static const Input in = [] {
    Input i;
    for (int s = 0; s < kSeries; ++s) {
      i.names.push_back("node_cpu_seconds_total_" + std::to_string(s % 50));
      i.labels.push_back(
          core::Labels::make({{"cpu", std::to_string(s / 50)},
                              {"instance", "host-" + std::to_string(s % 7) + ":9100"},
                              {"job", "node"},
                              {"mode", s % 2 ? "user" : "system"}}));
      core::Point p = core::Point::gauge(i.names.back(), 12345.678 + s, i.labels.back());
      p.timestamp_ms = 1700000000000 + s;
      i.points.push_back(std::move(p));
    }
    return i;
  }();
  return in;
}

std::string encoded_request() {
  const Input& in = input();
  std::string out;
  for (int s = 0; s < kSeries; ++s) {
    const std::array sample{ex::Sample{12345.678 + s, 1700000000000 + s}};
    ex::append_series(out, in.names[static_cast<std::size_t>(s)],
                      in.labels[static_cast<std::size_t>(s)], sample);
  }
  return out;
}

void BM_RemoteWriteEncode(benchmark::State& state) {
  const Input& in = input();
  std::string out;
  for (auto _ : state) {
    out.clear();  // the buffer is reused, as a sender's shard would
    for (int s = 0; s < kSeries; ++s) {
      const std::array sample{ex::Sample{12345.678 + s, 1700000000000 + s}};
      ex::append_series(out, in.names[static_cast<std::size_t>(s)],
                        in.labels[static_cast<std::size_t>(s)], sample);
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_RemoteWriteEncode)->MinTime(0.5);

void BM_RemoteWriteDecode(benchmark::State& state) {
  const std::string body = encoded_request();
  for (auto _ : state) {
    auto req = ex::decode_write_request(body);
    benchmark::DoNotOptimize(req.samples.data());
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_RemoteWriteDecode)->MinTime(0.5);

void BM_RemoteWriteDecodeValidate(benchmark::State& state) {
  const std::string body = encoded_request();
  for (auto _ : state) {
    const auto req = ex::decode_write_request(body);
    auto series = ex::validate(req);
    benchmark::DoNotOptimize(series.data());
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_RemoteWriteDecodeValidate)->MinTime(0.5);

void BM_SnappyCompress(benchmark::State& state) {
  const std::string body = encoded_request();
  std::string out;
  for (auto _ : state) {
    ex::snappy_compress(body, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
  state.counters["ratio"] = static_cast<double>(body.size()) / static_cast<double>(out.size());
}
BENCHMARK(BM_SnappyCompress)->MinTime(0.5);

void BM_SnappyDecompress(benchmark::State& state) {
  const std::string body = encoded_request();
  const std::string packed = ex::snappy_compress(body);
  std::string out;
  for (auto _ : state) {
    ex::snappy_decompress(packed, body.size(), out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(body.size()));
}
BENCHMARK(BM_SnappyDecompress)->MinTime(0.5);

// What POST /api/v1/write does before storing: inflate, decode, validate.
void BM_RemoteWriteReceive(benchmark::State& state) {
  const std::string packed = ex::snappy_compress(encoded_request());
  std::string plain;
  for (auto _ : state) {
    ex::snappy_decompress(packed, 32U << 20, plain);
    const auto req = ex::decode_write_request(plain);
    auto series = ex::validate(req);
    benchmark::DoNotOptimize(series.data());
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
}
BENCHMARK(BM_RemoteWriteReceive)->MinTime(0.5);

void BM_TextWritePoints(benchmark::State& state) {
  const Input& in = input();
  std::string out;
  for (auto _ : state) {
    out.clear();
    (void)ex::write_points(in.points, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_TextWritePoints)->MinTime(0.5);

// The streaming writer alone, the caller's series already in order.
void BM_TextWriterStream(benchmark::State& state) {
  const Input& in = input();
  std::string out;
  for (auto _ : state) {
    out.clear();
    ex::TextWriter w(out);
    (void)w.begin_family("node_cpu_seconds_total", core::MetricType::counter);
    for (const core::Point& p : in.points)
      w.write(p.labels, p.value);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * kSeries);
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(out.size()));
}
BENCHMARK(BM_TextWriterStream)->MinTime(0.5);

}  // namespace

BENCHMARK_MAIN();
