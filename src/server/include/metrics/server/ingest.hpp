// The ingest fan-out (issue 13): after the storage's apply() succeeded, the
// written SERIES points of the batch (never the classic values), with the
// receive time and each series' interned id (the series index's), go to
// every sink through one interface. History is the first sink; liveness,
// remote write and rule evaluation plug in the same way.
//
//   server::IngestFanout fanout;
//   fanout.add(server::make_history_sink(store, {.max_batches = 16384}));
//   fanout.publish({.received_ms = now, .points = applied.series, .refs = ids});
//
// A sink's accept() must never block an acknowledgement or an I/O thread:
// QueuedSink copies the batch into a bounded queue drained by its own
// thread; when the queue is full the batch is dropped, counted (stats())
// and logged (at most one line per log_interval, with the count since the
// previous line), never silently.
//
// Thread-safety: publish() and accept() may be called from any number of
// threads at once; add() before the first publish().
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "metrics/core/metric.hpp"
#include "metrics/history/store.hpp"
#include "metrics/series/index.hpp"

namespace metrics::server {

// What one successful write stored: points[i] is the series of update i
// (counter: its total; gauge: its value), refs[i] its interned id.
// times: empty for a push (every sample is at received_ms); otherwise
// times[i] is the sample time of points[i] (remote write in: the samples'
// own timestamps). Then one ref may come several times, its samples in
// increasing time order, and each point is one sample (its value as sent).
struct IngestBatch {
  std::int64_t received_ms = 0;
  std::span<const core::Point> points;
  std::span<const std::uint64_t> refs;
  std::span<const std::int64_t> times{};
};

class IngestSink {
 public:
  virtual ~IngestSink() = default;
  // Takes the batch or drops it (counted); never blocks, never throws.
  virtual void accept(const IngestBatch& batch) noexcept = 0;
};

class IngestFanout {
 public:
  void add(std::shared_ptr<IngestSink> sink) { sinks_.push_back(std::move(sink)); }
  [[nodiscard]] bool empty() const noexcept { return sinks_.empty(); }
  void publish(const IngestBatch& batch) const noexcept {
    for (const auto& s : sinks_)
      s->accept(batch);
  }

 private:
  std::vector<std::shared_ptr<IngestSink>> sinks_;
};

// One point as a QueuedSink with `points_once` queues it: the series' ref,
// the sample's time, its value's bits (history::counter_bits of a counter's
// total, history::gauge_bits of a gauge's value) and, the first time the
// ref is queued, the index of its whole point (name, labels) in
// OwnedBatch::points.
struct QueuedSample {
  static constexpr std::uint32_t kNoPoint = 0xffffffffu;
  std::uint64_t ref = 0;
  std::int64_t t_ms = 0;
  std::uint64_t bits = 0;
  core::MetricType type = core::MetricType::gauge;
  std::uint32_t point = kNoPoint;
};

// A batch as a QueuedSink holds it (owned copies). With `points_once`,
// `samples` holds every point of the batch and `points` only those whose
// ref was new to the sink (refs and times stay empty).
struct OwnedBatch {
  std::int64_t received_ms = 0;
  std::vector<core::Point> points;
  std::vector<std::uint64_t> refs;
  std::vector<std::int64_t> times;  // as IngestBatch::times
  std::vector<QueuedSample> samples;
};

struct QueuedSinkOptions {
  std::string name = "sink";  // in its log lines
  // Batches waiting at most; one more is dropped. 16,384 batches is about a
  // second of full-speed ingest on a small machine (a stalled drain thread
  // on a busy host catches up instead of dropping).
  std::size_t max_batches = 16384;
  // At most one "dropped" log line this often.
  std::chrono::milliseconds log_interval{std::chrono::seconds{10}};
  // After a small turn (under 64 batches) the thread waits this long before
  // it looks again, so that under load it takes many batches a turn instead
  // of being woken for each (a wake-up per batch costs more than appending
  // it); after a larger one it goes straight on. A sink's data is at most
  // this much later; zero: woken for every batch.
  std::chrono::microseconds linger{1000};
  // Queue (ref, time, value bits) for each point and copy the point itself
  // (its name and labels: the series' identity) only the first time its ref
  // is queued, or again after forget(ref): an accept() then costs no
  // allocation per point. For a drain that remembers identities by ref
  // (the history store); refs at or above 2^26 always carry their point.
  bool points_once = false;
};

struct QueuedSinkStats {
  std::uint64_t accepted_batches = 0;
  std::uint64_t dropped_batches = 0;
  std::uint64_t dropped_points = 0;
  std::uint64_t drained_batches = 0;
  std::size_t queued = 0;
};

// A bounded queue of batches and one thread that hands them to `drain`
// (an exception from drain is logged and the thread goes on). The thread
// takes every queued batch at once; accept() wakes it only when it sleeps.
class QueuedSink : public IngestSink {
 public:
  using Drain = std::function<void(OwnedBatch&)>;
  QueuedSink(QueuedSinkOptions options, Drain drain);
  ~QueuedSink() override;  // stop()
  QueuedSink(const QueuedSink&) = delete;
  QueuedSink& operator=(const QueuedSink&) = delete;

  void accept(const IngestBatch& batch) noexcept override;
  // Blocks until every batch accepted before the call is drained.
  void wait_idle();
  // Drains what is queued, then ends the thread; later batches are dropped
  // (counted). Idempotent.
  void stop() noexcept;
  [[nodiscard]] QueuedSinkStats stats() const;
  // points_once: the next batch that holds `ref` carries its point again
  // (the drain found it did not know the ref any more).
  void forget(std::uint64_t ref);
  // Counts (and logs, as a full queue's drops) points the drain could not
  // store after all.
  void count_dropped(std::uint64_t points, std::string_view why) noexcept;

 private:
  void run();
  // points_once: the batch as queued; false (nothing queued) on failure.
  bool queue_samples(const IngestBatch& batch);
  void log_drops(std::unique_lock<std::mutex>& lock, std::string_view why) noexcept;

  QueuedSinkOptions options_;
  Drain drain_;
  mutable std::mutex mu_;
  std::condition_variable wake_;  // the drain thread
  std::condition_variable idle_;  // wait_idle()
  std::deque<OwnedBatch> queue_;
  bool busy_ = false;     // the drain thread holds batches
  bool waiting_ = false;  // the drain thread waits on wake_ (accept() notifies only then)
  bool stopping_ = false;
  bool stopped_ = false;  // the thread has ended
  std::mutex stop_mu_;    // stop() against stop()
  QueuedSinkStats stats_;
  std::uint64_t unlogged_drops_ = 0;
  std::chrono::steady_clock::time_point last_log_{};
  // points_once: bit r set when ref r's point was queued (and not forgotten).
  std::vector<std::uint64_t> queued_refs_;
  std::thread thread_;
};

// Appends each point to `store` under its ref: a counter its total (exact
// int64), a gauge its value, at the batch's receive time (or its own time
// when the batch has times). The identity is
// the point's (type, name, labels), moved out of the batch (no copy).
void append_history(history::HistoryStore& store, OwnedBatch& batch);

// The history sink: a QueuedSink named "history" with points_once, draining
// into `store` (which must outlive it). A sample that comes without its
// point for a series the store no longer holds (maintain() dropped it) is
// kept aside, the ref forgotten, and appended with the next batch that
// carries the point again; one that waits longer than 10 minutes, or past
// 1,000,000 such samples, is dropped and counted in the sink's stats.
[[nodiscard]] std::shared_ptr<QueuedSink> make_history_sink(history::HistoryStore& store,
                                                            QueuedSinkOptions options = {
                                                                .name = "history"});

// The range read seam for the query engine: the samples with
// start_ms <= t <= end_ms of the given live series (those the index does not
// know, or without samples in the range, are left out), in `keys` order.
[[nodiscard]] std::vector<history::SeriesSamples> read_history(
    const series::SeriesIndex& index, const history::HistoryStore& store,
    std::span<const core::SeriesKey> keys, std::int64_t start_ms, std::int64_t end_ms);

}  // namespace metrics::server
