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

// A batch as a QueuedSink holds it (owned copies).
struct OwnedBatch {
  std::int64_t received_ms = 0;
  std::vector<core::Point> points;
  std::vector<std::uint64_t> refs;
  std::vector<std::int64_t> times;  // as IngestBatch::times
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

 private:
  void run();

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
  std::thread thread_;
};

// Appends each point to `store` under its ref: a counter its total (exact
// int64), a gauge its value, at the batch's receive time (or its own time
// when the batch has times). The identity is
// the point's (type, name, labels), moved out of the batch (no copy).
void append_history(history::HistoryStore& store, OwnedBatch& batch);

// The history sink: a QueuedSink named "history" draining into `store`
// (which must outlive it).
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
