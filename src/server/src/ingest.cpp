#include "metrics/server/ingest.hpp"

#include <spdlog/spdlog.h>

#include <exception>
#include <utility>

namespace metrics::server {

QueuedSink::QueuedSink(QueuedSinkOptions options, Drain drain)
    : options_(std::move(options)), drain_(std::move(drain)), thread_([this] { run(); }) {}

QueuedSink::~QueuedSink() {
  stop();
}

void QueuedSink::accept(const IngestBatch& batch) noexcept {
  if (batch.points.empty()) return;
  std::unique_lock lock(mu_);
  if (stopping_ || queue_.size() >= options_.max_batches) {
    ++stats_.dropped_batches;
    stats_.dropped_points += batch.points.size();
    ++unlogged_drops_;
    const auto now = std::chrono::steady_clock::now();
    if (stats_.dropped_batches == 1 || now - last_log_ >= options_.log_interval) {
      const auto drops = std::exchange(unlogged_drops_, 0);
      last_log_ = now;
      const auto total = stats_.dropped_batches;
      const auto points = stats_.dropped_points;
      lock.unlock();
      try {
        spdlog::warn(
            "{}: queue full ({} batches) or stopped: {} batch(es) dropped since the last "
            "report ({} batches, {} points in all)",
            options_.name, options_.max_batches, drops, total, points);
      } catch (...) {  // NOLINT(bugprone-empty-catch): a log failure must not fail the write
      }
    }
    return;
  }
  try {
    OwnedBatch owned;
    owned.received_ms = batch.received_ms;
    owned.points.assign(batch.points.begin(), batch.points.end());
    owned.refs.assign(batch.refs.begin(), batch.refs.end());
    owned.times.assign(batch.times.begin(), batch.times.end());
    queue_.push_back(std::move(owned));
    ++stats_.accepted_batches;
  } catch (...) {
    // Out of memory for the copy: dropped like a full queue.
    ++stats_.dropped_batches;
    stats_.dropped_points += batch.points.size();
    return;
  }
  const bool wake = waiting_;
  lock.unlock();
  if (wake) wake_.notify_one();
}

namespace {
// A turn that took this many batches or more does not linger.
constexpr std::size_t kBacklog = 64;
}  // namespace

void QueuedSink::run() {
  std::unique_lock lock(mu_);
  std::deque<OwnedBatch> taken;
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) return;
      waiting_ = true;
      wake_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      waiting_ = false;
      continue;
    }
    taken.swap(queue_);
    busy_ = true;
    lock.unlock();
    for (auto& batch : taken) {
      try {
        drain_(batch);
      } catch (...) {
        try {
          spdlog::warn("{}: a batch failed: {}", options_.name, [] {
            try {
              throw;
            } catch (const std::exception& e) {
              return std::string(e.what());
            } catch (...) {
              return std::string("unknown error");
            }
          }());
        } catch (...) {  // NOLINT(bugprone-empty-catch): logging must not end the thread
        }
      }
    }
    const auto drained = taken.size();
    taken.clear();
    lock.lock();
    busy_ = false;
    stats_.drained_batches += drained;
    if (queue_.empty()) idle_.notify_all();
    // Let the next batches gather, unless this turn found a backlog (then
    // the thread is behind and goes straight on). stop() and wait_idle()
    // are not held up by more than the linger.
    if (options_.linger.count() > 0 && drained < kBacklog && !stopping_) {
      lock.unlock();
      std::this_thread::sleep_for(options_.linger);
      lock.lock();
    }
  }
}

void QueuedSink::wait_idle() {
  std::unique_lock lock(mu_);
  idle_.wait(lock, [this] { return (queue_.empty() && !busy_) || stopped_; });
}

void QueuedSink::stop() noexcept {
  // One caller joins; stop_mu_ keeps the std::thread object itself from
  // being touched by two threads at once.
  std::lock_guard stop_lock(stop_mu_);
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  {
    std::lock_guard lock(mu_);
    stopped_ = true;
  }
  idle_.notify_all();
}

QueuedSinkStats QueuedSink::stats() const {
  std::lock_guard lock(mu_);
  auto s = stats_;
  s.queued = queue_.size();
  return s;
}

void append_history(history::HistoryStore& store, OwnedBatch& batch) {
  const std::size_t n = std::min(batch.points.size(), batch.refs.size());
  const bool own_times = batch.times.size() >= n && !batch.times.empty();
  // The identities stay in the batch (read only for a series the store does
  // not hold yet); one append_batch() for the whole request.
  std::vector<core::SeriesKey> identities;
  identities.reserve(n);
  std::vector<history::AppendItem> items;
  items.reserve(n);
  for (std::size_t i = 0; i < n; ++i) {
    core::Point& p = batch.points[i];
    identities.push_back({p.type, std::move(p.id), std::move(p.labels)});
    items.push_back({.ref = batch.refs[i],
                     .t_ms = own_times ? batch.times[i] : batch.received_ms,
                     .bits = p.type == core::MetricType::counter ? history::counter_bits(p.total)
                                                                 : history::gauge_bits(p.value),
                     .kind = p.type,
                     .identity = nullptr});
  }
  for (std::size_t i = 0; i < n; ++i)
    items[i].identity = &identities[i];
  (void)store.append_batch(items);
}

std::shared_ptr<QueuedSink> make_history_sink(history::HistoryStore& store,
                                              QueuedSinkOptions options) {
  return std::make_shared<QueuedSink>(std::move(options),
                                      [&store](OwnedBatch& b) { append_history(store, b); });
}

std::vector<history::SeriesSamples> read_history(const series::SeriesIndex& index,
                                                 const history::HistoryStore& store,
                                                 std::span<const core::SeriesKey> keys,
                                                 std::int64_t start_ms, std::int64_t end_ms) {
  std::vector<history::SeriesRef> refs;
  refs.reserve(keys.size());
  for (const auto& k : keys) {
    if (auto found = index.find(core::SeriesView(k))) refs.push_back(found->id);
  }
  return store.read_range(refs, start_ms, end_ms);
}

}  // namespace metrics::server
