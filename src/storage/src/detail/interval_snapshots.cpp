#include "detail/interval_snapshots.hpp"

#include <spdlog/spdlog.h>

#include <optional>

#include "detail/complete.hpp"
#include "detail/file_format.hpp"
#include "detail/unique_fd.hpp"
#include "metrics/core/errors.hpp"

namespace metrics::storage::detail {

IntervalSnapshots::IntervalSnapshots(const FileOptions& options, MemoryRepository& mem,
                                     KeyStore& keys)
    : opt_(options),
      mem_(mem),
      keys_(keys),
      clock_(options.clock ? options.clock : core::real_clock()) {
  thread_ = std::thread([this] { run(); });
}

IntervalSnapshots::~IntervalSnapshots() {
  close();
}

void IntervalSnapshots::apply(std::vector<core::Update> batch, std::int64_t received_ms,
                              Callback<Applied> done) {
  apply_with(std::move(batch), received_ms, nullptr, std::move(done));
}

void IntervalSnapshots::apply_once(std::vector<core::Update> batch, std::int64_t received_ms,
                                   Guard guard, Callback<Applied> done) {
  apply_with(std::move(batch), received_ms, &guard, std::move(done));
}

// With a guard, the key is committed while the batch's shards of the memory
// are still locked, and a snapshot reads the keys while it holds every
// shard: a snapshot holds a key if and only if it holds the key's write (a
// retry after a crash is then neither counted twice nor answered for a
// write that was lost).
void IntervalSnapshots::apply_with(std::vector<core::Update> batch, std::int64_t received_ms,
                                   const Guard* guard, Callback<Applied> done) {
  std::exception_ptr err;
  Applied stored;
  if (closed_flag_.load(std::memory_order_acquire)) {
    // The last snapshot is written: an update now would be lost.
    complete(done, std::make_exception_ptr(core::StorageUnavailable("file storage is closed")),
             std::move(stored));
    return;
  }
  try {
    if (guard == nullptr) {
      stored = mem_.apply_now(std::move(batch), received_ms);
    } else {
      stored = mem_.apply_now(std::move(batch), received_ms,
                              [this, guard, received_ms] { keys_.commit(*guard, received_ms); });
    }
    changes_.fetch_add(1, std::memory_order_relaxed);
  } catch (const core::InvalidInput&) {
    err = std::current_exception();
  }
  complete(done, std::move(err), std::move(stored));
}

void IntervalSnapshots::expire(std::int64_t cutoff_ms,
                               Callback<std::vector<core::SeriesKey>> done) {
  if (closed_flag_.load(std::memory_order_acquire)) {
    complete(done, std::make_exception_ptr(core::StorageUnavailable("file storage is closed")),
             std::vector<core::SeriesKey>{});
    return;
  }
  auto gone = mem_.expire_now(cutoff_ms);
  if (!gone.empty()) changes_.fetch_add(1, std::memory_order_relaxed);
  complete(done, nullptr, std::move(gone));
}

void IntervalSnapshots::close() {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    closed_ = true;
    closed_flag_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  write_snapshot(true);
}

void IntervalSnapshots::run() {
  std::unique_lock lock(mu_);
  while (!closed_) {
    if (clock_->wait_for(cv_, lock, opt_.store_interval, [this] { return closed_; })) break;
    lock.unlock();
    write_snapshot(false);
    lock.lock();
  }
}

void IntervalSnapshots::write_snapshot(bool always) {
  const auto changes = changes_.load(std::memory_order_relaxed);
  if (!always && changes == written_changes_) return;
  try {
    // No log id: a log left by an earlier synchronous run is stale now.
    std::vector<KeyRecord> keys;
    const auto contents =
        mem_.contents_now([this, &keys] { keys = keys_.list(); });  // see apply_with
    replace_file_atomically(
        opt_.path, encode_snapshot(contents.classic, contents.series, std::nullopt, 0, keys));
    written_changes_ = changes;
    healthy_.store(true, std::memory_order_relaxed);
  } catch (const std::exception& e) {
    healthy_.store(false, std::memory_order_relaxed);
    spdlog::error("file storage: cannot write snapshot: {}", e.what());
  }
}

}  // namespace metrics::storage::detail
