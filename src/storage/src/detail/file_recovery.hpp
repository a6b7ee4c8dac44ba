// Restoring the file storage at start: the snapshot, then the write-ahead
// log records that continue it (formats in docs/STORAGE.md).
#pragma once

#include <cstdint>
#include <filesystem>

#include "metrics/storage/idempotency.hpp"
#include "metrics/storage/memory_repository.hpp"

namespace metrics::storage::detail {

// Loads `path` and its log `log_path` into `mem` and returns the sequence
// number of the last record applied. A missing file is an empty start; a
// torn last log record is ignored. Throws core::Error naming the file when
// one cannot be read or parsed; never writes. The idempotency keys of the
// snapshot and of the log go into `keys`.
std::uint64_t recover(const std::filesystem::path& path, const std::filesystem::path& log_path,
                      MemoryRepository& mem, KeyStore& keys);

}  // namespace metrics::storage::detail
