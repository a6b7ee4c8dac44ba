// Picks the storage from the configuration, as the wire contract says:
// a DSN selects PostgreSQL; else a file path selects memory persisted to that
// file; else memory only.
//
//   auto repo = storage::make_repository(config);   // throws on a bad file/DSN
//
// Thread-safe (no shared state).
#pragma once

#include <memory>
#include <string>

#include "metrics/storage/config.hpp"
#include "metrics/storage/repository.hpp"

namespace metrics::storage {

// Human-readable description of the choice, for the start-up log line.
[[nodiscard]] std::string describe(const StorageConfig& config);

// Throws core::Error with a message naming the file or DSN when the storage
// cannot be opened (a storage file that exists but cannot be parsed, a
// migration that fails).
[[nodiscard]] std::unique_ptr<Repository> make_repository(const StorageConfig& config);

}  // namespace metrics::storage
