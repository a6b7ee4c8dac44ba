#include "metrics/server/ingest.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <exception>
#include <unordered_map>
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
  bool queued = false;
  if (options_.points_once) {
    queued = queue_samples(batch);
  } else {
    try {
      OwnedBatch owned;
      owned.received_ms = batch.received_ms;
      owned.points.assign(batch.points.begin(), batch.points.end());
      owned.refs.assign(batch.refs.begin(), batch.refs.end());
      owned.times.assign(batch.times.begin(), batch.times.end());
      queue_.push_back(std::move(owned));
      queued = true;
    } catch (...) {  // NOLINT(bugprone-empty-catch): counted below
    }
  }
  if (!queued) {
    // Out of memory for the copy: dropped like a full queue.
    ++stats_.dropped_batches;
    stats_.dropped_points += batch.points.size();
    return;
  }
  ++stats_.accepted_batches;
  const bool wake = waiting_;
  lock.unlock();
  if (wake) wake_.notify_one();
}

namespace {
// points_once tracks refs below this in a bitset (8 MiB at most); larger
// ones always carry their point.
constexpr std::uint64_t kTrackedRefs = std::uint64_t{1} << 26;
}  // namespace

bool QueuedSink::queue_samples(const IngestBatch& batch) {
  const std::size_t n = std::min(batch.points.size(), batch.refs.size());
  const bool own_times = !batch.times.empty() && batch.times.size() >= n;
  std::vector<std::uint64_t> marked;  // bits set for this batch (undone on failure)
  try {
    OwnedBatch owned;
    owned.received_ms = batch.received_ms;
    owned.samples.resize(n);
    for (std::size_t i = 0; i < n; ++i) {
      const core::Point& p = batch.points[i];
      const std::uint64_t ref = batch.refs[i];
      QueuedSample& q = owned.samples[i];
      q.ref = ref;
      q.t_ms = own_times ? batch.times[i] : batch.received_ms;
      q.type = p.type;
      q.bits = p.type == core::MetricType::counter ? history::counter_bits(p.total)
                                                   : history::gauge_bits(p.value);
      const bool tracked = ref < kTrackedRefs;
      const std::size_t word = static_cast<std::size_t>(ref >> 6);
      const std::uint64_t bit = std::uint64_t{1} << (ref & 63);
      if (tracked) {
        if (word >= queued_refs_.size())
          queued_refs_.resize(std::max(word + 1, queued_refs_.size() * 2), 0);
        if ((queued_refs_[word] & bit) != 0) continue;
      }
      q.point = static_cast<std::uint32_t>(owned.points.size());
      owned.points.push_back(p);
      if (tracked) {
        marked.push_back(ref);
        queued_refs_[word] |= bit;
      }
    }
    queue_.push_back(std::move(owned));
  } catch (...) {
    for (const std::uint64_t ref : marked)
      queued_refs_[static_cast<std::size_t>(ref >> 6)] &= ~(std::uint64_t{1} << (ref & 63));
    return false;
  }
  return true;
}

void QueuedSink::forget(std::uint64_t ref) {
  if (ref >= kTrackedRefs) return;
  std::lock_guard lock(mu_);
  const auto word = static_cast<std::size_t>(ref >> 6);
  if (word < queued_refs_.size()) queued_refs_[word] &= ~(std::uint64_t{1} << (ref & 63));
}

void QueuedSink::count_dropped(std::uint64_t points, std::string_view why) noexcept {
  if (points == 0) return;
  std::uint64_t total = 0;
  {
    std::lock_guard lock(mu_);
    stats_.dropped_points += points;
    total = stats_.dropped_points;
  }
  try {
    spdlog::warn("{}: {} point(s) dropped: {} ({} points in all)", options_.name, points, why,
                 total);
  } catch (...) {  // NOLINT(bugprone-empty-catch): a log failure must not end the drain
  }
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

namespace {

// The history sink's drain: a points_once batch into the store, with the
// samples whose series the store no longer knows kept until their point
// comes again (module comment in ingest.hpp).
class HistoryDrain {
 public:
  explicit HistoryDrain(history::HistoryStore& store) : store_(store) {}
  void set_sink(QueuedSink* sink) noexcept { sink_ = sink; }

  void operator()(OwnedBatch& b) {
    if (b.samples.empty()) {  // a batch with whole points
      append_history(store_, b);
      return;
    }
    identities_.clear();
    items_.clear();
    unknown_.clear();
    identities_.reserve(b.points.size());
    for (auto& p : b.points)
      identities_.push_back({p.type, std::move(p.id), std::move(p.labels)});
    items_.reserve(b.samples.size());
    for (const QueuedSample& q : b.samples) {
      const history::SeriesIdentity* id =
          q.point != QueuedSample::kNoPoint ? &identities_[q.point] : nullptr;
      if (id != nullptr && !orphans_.empty()) {
        // The samples that waited for this point go first (they are older).
        const auto it = orphans_.find(q.ref);
        if (it != orphans_.end()) {
          for (auto item : it->second.items) {
            item.identity = id;
            items_.push_back(item);
          }
          orphan_samples_ -= it->second.items.size();
          orphans_.erase(it);
        }
      }
      items_.push_back({.ref = q.ref, .t_ms = q.t_ms, .bits = q.bits, .kind = q.type});
      items_.back().identity = id;
    }
    (void)store_.append_batch(items_, unknown_);
    if (!unknown_.empty() || !orphans_.empty()) keep_orphans();
  }

 private:
  static constexpr std::size_t kMaxOrphans = 1'000'000;
  static constexpr std::chrono::minutes kOrphanWait{10};

  void keep_orphans() {
    const auto now = std::chrono::steady_clock::now();
    std::uint64_t dropped = 0;
    for (const std::uint32_t i : unknown_) {
      history::AppendItem item = items_[i];
      item.identity = nullptr;
      if (orphan_samples_ >= kMaxOrphans) {
        ++dropped;
        continue;
      }
      auto [it, made] = orphans_.try_emplace(item.ref);
      if (made) {
        it->second.since = now;
        // The next batch with this ref carries its point again.
        if (sink_ != nullptr) sink_->forget(item.ref);
      }
      it->second.items.push_back(item);
      ++orphan_samples_;
    }
    if (dropped > 0 && sink_ != nullptr)
      sink_->count_dropped(dropped, "too many samples wait for their series' identity");
    // Samples of a series that did not write again: given up after a while.
    if (now - last_sweep_ < std::chrono::seconds{1}) return;
    last_sweep_ = now;
    std::uint64_t expired = 0;
    for (auto it = orphans_.begin(); it != orphans_.end();) {
      if (now - it->second.since < kOrphanWait) {
        ++it;
        continue;
      }
      expired += it->second.items.size();
      orphan_samples_ -= it->second.items.size();
      it = orphans_.erase(it);
    }
    if (expired > 0 && sink_ != nullptr)
      sink_->count_dropped(expired,
                           "their series left the history and its identity did not come again "
                           "within 10 minutes");
  }

  struct Orphans {
    std::chrono::steady_clock::time_point since;
    std::vector<history::AppendItem> items;  // identity null
  };

  history::HistoryStore& store_;
  QueuedSink* sink_ = nullptr;
  std::vector<history::SeriesIdentity> identities_;
  std::vector<history::AppendItem> items_;
  std::vector<std::uint32_t> unknown_;
  std::unordered_map<std::uint64_t, Orphans> orphans_;
  std::size_t orphan_samples_ = 0;
  std::chrono::steady_clock::time_point last_sweep_{};
};

}  // namespace

std::shared_ptr<QueuedSink> make_history_sink(history::HistoryStore& store,
                                              QueuedSinkOptions options) {
  options.points_once = true;
  auto drain = std::make_shared<HistoryDrain>(store);
  auto sink =
      std::make_shared<QueuedSink>(std::move(options), [drain](OwnedBatch& b) { (*drain)(b); });
  // Read by the drain thread only for a batch, which comes after this (the
  // queue's mutex orders the two).
  drain->set_sink(sink.get());
  return sink;
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
