// In-memory storage persisted to a file (the -f / -i / -r options).
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
//   repo.apply(batch, done);  // done runs on the writer thread after fdatasync
//
// The constructor throws core::Error naming the file when restore is on and
// the snapshot or log exists but cannot be read or parsed (the files are
// then left untouched). A missing file or folder is an empty start. Write
// failures fail the affected batches with core::StorageUnavailable; a full
// queue fails a batch with core::Overloaded.
//
// Thread-safe. Reads (get, list, ping) complete inline on the calling thread.
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

  void apply(std::vector<core::Metric> batch, Callback<std::vector<core::Metric>> done) override;
  void get(core::MetricKey key, Callback<std::optional<core::Metric>> done) override;
  void list(Callback<std::vector<core::Metric>> done) override;
  // Fails with core::StorageUnavailable while the last write to disk failed.
  void ping(Callback<bool> done) override;
  void health(Callback<Health> done) override;
  void close() override;

  // The write-ahead log used in synchronous mode: path + ".wal".
  [[nodiscard]] static std::filesystem::path log_path(const std::filesystem::path& path);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace metrics::storage
