// In-memory storage persisted to a file (the -f / -i / -r options).
//
// It keeps what MemoryRepository keeps (the series, with labels and last
// write time, and the classic values) and restores both.
//
// With store_interval > 0 a JSON snapshot of the whole content is written
// every interval by a background thread and once more at close(); updates
// complete inline, like MemoryRepository.
//
// With store_interval == 0 every acknowledged update is on disk before its
// callback runs: updates go through a bounded queue to one writer thread that
// group-commits them (all queued batches applied in order, one append to a
// write-ahead log beside the snapshot, one fdatasync, then all callbacks).
// The log is compacted into the snapshot (atomically replaced) when it grows
// past compact_log_bytes and at close(). Recovery is snapshot + log replay;
// a torn last record is ignored. The formats are in docs/STORAGE.md.
//
//   storage::FileRepository repo({.path = "/var/lib/metrics/db.json",
//                                 .store_interval = std::chrono::milliseconds{0}});
//   repo.apply(batch, now_ms, done);  // done runs on the writer thread after fdatasync
//
// The constructor throws core::Error naming the file when restore is on and
// the snapshot or log exists but cannot be read or parsed (the files are
// then left untouched). A missing file or folder is an empty start. Write
// failures fail the affected batches with core::StorageUnavailable; a full
// queue fails a batch with core::Overloaded.
//
// Thread-safe. Reads (get, get_classic, list, list_series, ping) complete
// inline on the calling thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <memory>

#include "metrics/core/clock.hpp"
#include "metrics/storage/repository.hpp"

namespace metrics::storage {

struct FileOptions {
  std::filesystem::path path;
  // 0: synchronous mode (write-ahead log, every ack durable).
  std::chrono::milliseconds store_interval{std::chrono::seconds{300}};
  bool restore = true;
  // Synchronous mode: most batches waiting for the writer; more is Overloaded.
  std::size_t max_queue = 16384;
  // Synchronous mode: the log is folded into the snapshot past this size.
  std::uint64_t compact_log_bytes = std::uint64_t{64} << 20;
  // Times the snapshot interval and the group-commit wait (tests set time).
  std::shared_ptr<core::Clock> clock = core::real_clock();
};

class FileRepository final : public Repository {
 public:
  explicit FileRepository(FileOptions options);
  ~FileRepository() override;  // calls close()

  void apply(std::vector<core::Update> batch, std::int64_t received_ms,
             Callback<Applied> done) override;
  // The key goes in the same log record as the batch (store_interval 0), or
  // in the snapshots; restored keys are recognised after a restart.
  void apply_once(std::vector<core::Update> batch, std::int64_t received_ms, Guard guard,
                  Callback<OnceApplied> done) override;
  void get(core::SeriesKey key, Callback<std::optional<core::Point>> done) override;
  void get_classic(core::MetricKey key, Callback<std::optional<core::Point>> done) override;
  void list(Callback<std::vector<core::Point>> done) override;
  void list_series(Callback<std::vector<core::Point>> done) override;
  // In synchronous mode the removal is logged (durable) before it completes.
  void expire(std::int64_t cutoff_ms, Callback<std::vector<core::SeriesKey>> done) override;
  // Fails with core::StorageUnavailable while the last write to disk failed.
  void ping(Callback<bool> done) override;
  void health(Callback<Health> done) override;
  [[nodiscard]] StorageStats stats() const override;
  void close() override;

  // The write-ahead log used in synchronous mode: path + ".wal".
  [[nodiscard]] static std::filesystem::path log_path(const std::filesystem::path& path);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace metrics::storage
