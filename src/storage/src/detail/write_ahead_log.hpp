// File storage with store_interval == 0: every acknowledged update is on
// disk before its callback runs. Updates wait in a bounded GroupCommitQueue
// for one writer thread that group-commits them: all queued batches staged
// in order, one record appended to the write-ahead log beside the snapshot,
// one fdatasync, then memory updated and every callback run. The log is
// compacted into the snapshot (atomically replaced) when it grows past
// compact_log_bytes and at close(). Formats in docs/STORAGE.md.
//
// Thread-safe: apply() from any thread; everything else on the writer thread
// (or before it starts / after it stopped).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "detail/file_mode.hpp"
#include "detail/group_commit_queue.hpp"
#include "detail/unique_fd.hpp"
#include "metrics/core/clock.hpp"
#include "metrics/storage/file_repository.hpp"
#include "metrics/storage/memory_repository.hpp"

namespace metrics::storage::detail {

class WriteAheadLog final : public FileMode {
 public:
  // `last_seq`: the last record sequence number restored (0 for none).
  // Starts with a fresh snapshot and log (this drops a torn tail and, with
  // restore off, the previous run's files).
  // `keys`: the idempotency keys, written with the batches they guard and
  // into every compacted snapshot.
  WriteAheadLog(const FileOptions& options, MemoryRepository& mem, KeyStore& keys,
                std::uint64_t last_seq);
  ~WriteAheadLog() override;  // calls close()

  void apply(std::vector<core::Update> batch, std::int64_t received_ms,
             Callback<Applied> done) override;
  // The key goes in the record of its batch, and is committed to the keys
  // once that record is on disk, before done runs.
  void apply_once(std::vector<core::Update> batch, std::int64_t received_ms, Guard guard,
                  Callback<Applied> done) override;
  // Goes through the queue like a batch: the writer thread is the only one
  // that changes memory, and the removal is logged before memory shows it.
  void expire(std::int64_t cutoff_ms, Callback<std::vector<core::SeriesKey>> done) override;
  [[nodiscard]] bool healthy() const override { return healthy_.load(std::memory_order_relaxed); }
  [[nodiscard]] StorageStats stats() override {
    const std::lock_guard lock(mu_);
    return {.queue_depth = queue_.size(),
            .queue_capacity = queue_.capacity(),
            .group_commits = queue_.groups(),
            .grouped_batches = queue_.grouped()};
  }
  void close() override;

 private:
  // A batch, or (expire_cutoff set) an expiry.
  struct Pending {
    std::vector<core::Update> batch;
    std::int64_t received_ms = 0;
    Callback<Applied> done;
    std::optional<std::int64_t> expire_cutoff;
    Callback<std::vector<core::SeriesKey>> expired;
    std::optional<Guard> guard;
  };
  using SeriesOverlay =
      std::unordered_map<core::SeriesKey, core::Point, core::SeriesHash, core::SeriesEqual>;
  using ClassicOverlay = std::unordered_map<core::MetricKey, core::Point, core::MetricKeyHash>;
  // What stage() changed in the batch being staged, to undo it.
  struct Undo {
    SeriesOverlay::value_type* series;
    ClassicOverlay::value_type* classic;
    std::int64_t old_series_total;
    double old_series_value;
    std::int64_t old_series_ms;
    std::int64_t old_total;
    double old_value;
    bool series_inserted;
    bool classic_inserted;
  };

  void run();
  void commit_group(std::vector<Pending>& group);
  void commit_batches(std::vector<Pending>& group);
  void commit_expiry(Pending& expiry);
  void append_record(std::span<const core::Point> series, std::span<const core::Point> classic,
                     std::span<const core::SeriesKey> removed,
                     std::span<const KeyRecord> keys = {});
  void push(Pending pending);
  void fail_write(const std::exception& e);
  void preallocate(std::uint64_t needed);
  void truncate_log(std::uint64_t size) noexcept;
  void publish_overlay();
  bool stage(Pending& pending, Applied& answer);
  void rollback_stage();
  bool compact();
  bool fail_compaction(const std::string& what, bool log_invalid);

  const FileOptions& opt_;
  const std::filesystem::path log_path_;
  MemoryRepository& mem_;
  KeyStore& keys_;
  std::shared_ptr<core::Clock> clock_;

  // Writer-thread state.
  UniqueFd log_fd_;
  std::uint64_t log_id_ = 0;
  std::uint64_t log_size_ = 0;   // where the next record goes
  std::uint64_t allocated_ = 0;  // bytes of the file already written (zeros past log_size_)
  std::uint64_t last_seq_ = 0;
  bool log_ok_ = false;
  bool growth_failed_ = false;  // the last preallocation found no room
  std::string last_error_ = "not opened";
  std::string buf_;
  SeriesOverlay series_overlay_;
  ClassicOverlay classic_overlay_;
  std::vector<Undo> undo_;
  using CachedNodes = std::pair<SeriesOverlay::value_type*, ClassicOverlay::value_type*>;
  std::vector<CachedNodes> position_cache_;  // by index in a batch
  std::vector<core::Point> series_values_;
  std::vector<core::Point> classic_values_;
  std::vector<KeyRecord> key_records_;

  std::atomic<bool> healthy_{true};
  std::mutex mu_;
  std::condition_variable cv_;
  GroupCommitQueue<Pending> queue_;  // guarded by mu_
  bool stopping_ = false;
  bool closed_ = false;
  std::thread thread_;
};

}  // namespace metrics::storage::detail
