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
  WriteAheadLog(const FileOptions& options, MemoryRepository& mem, std::uint64_t last_seq);
  ~WriteAheadLog() override;  // calls close()

  void apply(std::vector<core::Metric> batch, Callback<std::vector<core::Metric>> done) override;
  [[nodiscard]] bool healthy() const override { return healthy_.load(std::memory_order_relaxed); }
  void close() override;

 private:
  struct Pending {
    std::vector<core::Metric> batch;
    Callback<std::vector<core::Metric>> done;
  };
  // What the group being committed stores, by metric: the value after the
  // group, and for counters the total in memory before it.
  struct Staged {
    core::Metric now;
    std::int64_t base = 0;
  };
  using OverlayNode = std::pair<const core::MetricKey, Staged>;
  // What stage() changed in the batch being staged, to undo it.
  struct Undo {
    OverlayNode* node;
    bool inserted;
    std::int64_t delta;
    double value;
  };

  void run();
  void commit_group(std::vector<Pending>& group);
  void append_overlay();
  void preallocate(std::uint64_t needed);
  void truncate_log(std::uint64_t size) noexcept;
  void publish_overlay();
  bool stage(std::vector<core::Metric>& batch);
  void rollback_stage();
  bool compact();
  bool fail_compaction(const std::string& what, bool log_invalid);

  const FileOptions& opt_;
  const std::filesystem::path log_path_;
  MemoryRepository& mem_;
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
  std::unordered_map<core::MetricKey, Staged, core::MetricKeyHash> overlay_;
  std::vector<OverlayNode*> position_cache_;  // by index in a batch
  std::vector<Undo> undo_;
  std::vector<core::Metric> values_;

  std::atomic<bool> healthy_{true};
  std::mutex mu_;
  std::condition_variable cv_;
  GroupCommitQueue<Pending> queue_;  // guarded by mu_
  bool stopping_ = false;
  bool closed_ = false;
  std::thread thread_;
};

}  // namespace metrics::storage::detail
