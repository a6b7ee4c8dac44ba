// The server's own metrics (API.md Part 2, "Prometheus exposition"): a
// small registry of counters, gauges and histograms with fixed buckets,
// rendered in the text format 0.0.4 by GET /metrics next to the stored
// series. Any component registers into it: families it updates itself, or
// a collector that reads its state at every scrape.
//
//   telemetry::Registry reg;
//   auto& requests = reg.counter("metrics_server_requests_total", "Requests.",
//                                {"endpoint", "code"});
//   telemetry::Counter& ok = requests.with({"/ping", "200"});  // once; keep the reference
//   ok.inc();                                                  // hot path: no lock
//
//   auto hook = reg.add_collector([&](telemetry::Writer& w) {  // read at every scrape
//     w.family("metrics_server_queue_length", telemetry::Type::gauge, "Queued.");
//     w.sample({}, static_cast<double>(queue.size()));
//   });                                                        // removed when `hook` dies
//
// Increments are sharded: each thread adds to one of kShards cache lines of
// the counter (relaxed atomics, no lock, no false sharing between threads),
// and a scrape sums the shards. A histogram observation is one bucket
// increment and one add to the sum, on the thread's shard.
//
// Thread-safety: everything may be called from any number of threads at
// once. References returned by with() stay valid as long as the registry.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <map>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace metrics::telemetry {

inline constexpr std::size_t kShards = 16;

// This thread's shard (assigned round robin at the thread's first use).
[[nodiscard]] std::size_t this_shard() noexcept;

enum class Type { counter, gauge, histogram };
[[nodiscard]] std::string_view to_string(Type type) noexcept;

// A monotone integer count, sharded.
class Counter {
 public:
  void inc(std::uint64_t n = 1) noexcept {
    cells_[this_shard()].v.fetch_add(n, std::memory_order_relaxed);
  }
  [[nodiscard]] std::uint64_t value() const noexcept;

 private:
  struct alignas(64) Cell {
    std::atomic<std::uint64_t> v{0};
  };
  std::array<Cell, kShards> cells_{};
};

// A value that goes up and down (not on hot paths: one atomic).
class Gauge {
 public:
  void set(double v) noexcept { v_.store(v, std::memory_order_relaxed); }
  void add(double d) noexcept { v_.fetch_add(d, std::memory_order_relaxed); }
  [[nodiscard]] double value() const noexcept { return v_.load(std::memory_order_relaxed); }

 private:
  std::atomic<double> v_{0.0};
};

// Cumulative buckets as the text format writes them.
struct HistogramSnapshot {
  std::vector<double> bounds;          // upper bounds, increasing, without +Inf
  std::vector<std::uint64_t> buckets;  // cumulative, bounds.size() + 1 (the last: +Inf)
  double sum = 0;
  std::uint64_t count = 0;  // == buckets.back()
};

// Fixed upper bounds (strictly increasing, finite); a value v falls in the
// first bucket whose bound is >= v (Prometheus's `le`), else in +Inf.
class Histogram {
 public:
  explicit Histogram(std::span<const double> bounds);
  void observe(double v) noexcept;
  [[nodiscard]] HistogramSnapshot snapshot() const;
  [[nodiscard]] std::span<const double> bounds() const noexcept { return bounds_; }

 private:
  struct alignas(64) Line {
    std::array<std::atomic<std::uint64_t>, 8> w{};
  };
  [[nodiscard]] std::atomic<std::uint64_t>& word(std::size_t shard, std::size_t i) const noexcept;

  std::vector<double> bounds_;
  std::size_t lines_per_shard_ = 1;
  // Per shard: word 0 holds the sum's bits, words 1..n+1 the bucket counts.
  std::unique_ptr<Line[]> lines_;
};

// Buckets for request latencies in seconds, from 100 µs to 10 s.
[[nodiscard]] std::span<const double> latency_buckets() noexcept;

// A label's name and value, as collectors pass them.
using Label = std::pair<std::string_view, std::string_view>;

// What a collector writes its families into (during render()).
class Writer {
 public:
  // Starts a family (name: [a-zA-Z_:][a-zA-Z0-9_:]*, not checked here).
  void family(std::string_view name, Type type, std::string_view help);
  // A sample of the current family (a counter's value prints as an
  // integer when it is one).
  void sample(std::span<const Label> labels, double value);
  void sample(std::initializer_list<Label> labels, double value) {
    sample(std::span<const Label>(labels.begin(), labels.size()), value);
  }
  // A sample whose value is an exact integer (a count past 2^53 stays exact).
  void sample_integer(std::span<const Label> labels, std::uint64_t value);
  // The _bucket, _sum and _count lines of one histogram of the family.
  void histogram(std::span<const Label> labels, const HistogramSnapshot& h);

 private:
  friend class Registry;
  struct Chunk {
    std::string name;
    Type type = Type::gauge;
    std::string text;
    std::size_t header = 0;  // bytes of the # HELP and # TYPE lines
  };
  std::vector<Chunk> chunks_;
};

template <class M>
class Family {
 public:
  // The child with these label values (in the family's label order;
  // missing ones are ""), created on first use.
  M& with(std::initializer_list<std::string_view> values) {
    return with(std::span<const std::string_view>(values.begin(), values.size()));
  }
  M& with(std::span<const std::string_view> values);

  [[nodiscard]] const std::string& name() const noexcept { return name_; }

 private:
  friend class Registry;
  Family(std::string name, std::string help, std::vector<std::string> labels,
         std::vector<double> bounds)
      : name_(std::move(name)),
        help_(std::move(help)),
        labels_(std::move(labels)),
        bounds_(std::move(bounds)) {}
  void render(Writer& w) const;

  std::string name_;
  std::string help_;
  std::vector<std::string> labels_;
  std::vector<double> bounds_;  // a histogram's (empty otherwise)
  mutable std::mutex mu_;
  // Label values -> child; a std::map: rendered in a stable order.
  std::map<std::vector<std::string>, std::unique_ptr<M>> children_;
};

using CounterFamily = Family<Counter>;
using GaugeFamily = Family<Gauge>;
using HistogramFamily = Family<Histogram>;

// A collector stays registered while its Registration lives.
class Registration {
 public:
  Registration() = default;
  Registration(Registration&& other) noexcept;
  Registration& operator=(Registration&& other) noexcept;
  Registration(const Registration&) = delete;
  Registration& operator=(const Registration&) = delete;
  ~Registration();
  void reset() noexcept;

 private:
  friend class Registry;
  struct State;
  std::shared_ptr<State> state_;
  std::uint64_t id_ = 0;
};

class Registry {
 public:
  using Collect = std::function<void(Writer&)>;

  Registry();
  ~Registry();
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  // The family of that name (created on first call; a second call with the
  // same name returns the same family, whatever its arguments).
  CounterFamily& counter(std::string_view name, std::string_view help,
                         std::vector<std::string> label_names = {});
  GaugeFamily& gauge(std::string_view name, std::string_view help,
                     std::vector<std::string> label_names = {});
  HistogramFamily& histogram(std::string_view name, std::string_view help,
                             std::vector<std::string> label_names, std::span<const double> bounds);

  // `collect` runs at every render(), on the scraping thread; it must not
  // block for long and must not call back into this registry.
  [[nodiscard]] Registration add_collector(Collect collect);

  struct Rendered {
    std::string text;
    // Every metric name the text holds (a histogram's _bucket, _sum and
    // _count too), sorted: stored series of these names are not exposed.
    std::vector<std::string> names;
    // Families left out because an earlier one had the same name and
    // another type.
    std::size_t duplicates = 0;
  };
  // Every family, sorted by name, one # HELP and # TYPE each. Families of
  // one name and type (one per collector, say, each with its own labels)
  // become one, the first one's help kept; of two with one name and
  // different types the first wins. A collector that throws is skipped.
  [[nodiscard]] Rendered render() const;

 private:
  template <class M>
  Family<M>& family(std::vector<std::unique_ptr<Family<M>>>& list, std::string_view name,
                    std::string_view help, std::vector<std::string> labels,
                    std::span<const double> bounds);

  mutable std::mutex mu_;
  std::vector<std::unique_ptr<CounterFamily>> counters_;
  std::vector<std::unique_ptr<GaugeFamily>> gauges_;
  std::vector<std::unique_ptr<HistogramFamily>> histograms_;
  std::shared_ptr<Registration::State> collectors_;
};

}  // namespace metrics::telemetry
