// The two ways the file storage keeps memory on disk (file_repository.hpp):
// IntervalSnapshots (store_interval > 0) and WriteAheadLog (store_interval
// == 0). FileRepository restores the files, owns the memory and serves the
// reads; a FileMode takes the writes and keeps the files.
#pragma once

#include <cstdint>
#include <vector>

#include "metrics/core/metric.hpp"
#include "metrics/storage/repository.hpp"

namespace metrics::storage::detail {

class FileMode {
 public:
  FileMode() = default;
  FileMode(const FileMode&) = delete;
  FileMode& operator=(const FileMode&) = delete;
  virtual ~FileMode() = default;

  virtual void apply(std::vector<core::Update> batch, std::int64_t received_ms,
                     Callback<Applied> done) = 0;
  // apply(), with the idempotency key kept with the write (in the same log
  // record, or in the snapshots) and committed to `keys` before done runs.
  virtual void apply_once(std::vector<core::Update> batch, std::int64_t received_ms, Guard guard,
                          Callback<Applied> done) = 0;
  // Removes the series last written before cutoff_ms (Repository::expire).
  virtual void expire(std::int64_t cutoff_ms, Callback<std::vector<core::SeriesKey>> done) = 0;
  // False while the last write to disk failed.
  [[nodiscard]] virtual bool healthy() const = 0;
  // The write queue (none: zeros).
  [[nodiscard]] virtual StorageStats stats() { return {}; }
  // Stops the background thread and writes what memory holds. Idempotent.
  virtual void close() = 0;
};

}  // namespace metrics::storage::detail
