// Which storage to use and how, as the server's options give it. Part of the
// storage interface (metrics::storage_api): the server reads its options into
// it without linking any storage implementation; the program hands it to
// storage::make_repository (factory.hpp, metrics::storage).
#pragma once

#include <chrono>
#include <string>

#include "metrics/storage/idempotency.hpp"

namespace metrics::storage {

struct StorageConfig {
  std::string database_dsn;  // non-empty: PostgreSQL
  std::string file_path;     // non-empty (and no DSN): memory + file
  // 0: every acknowledged update is durable before the answer.
  std::chrono::milliseconds store_interval{std::chrono::seconds{300}};
  bool restore = true;
  // Idempotency keys (--idempotency-window, --idempotency-max-keys).
  KeyStoreOptions idempotency;
};

// The DSN with its password replaced by "***" (URI and keyword forms), for
// logs and error messages.
[[nodiscard]] std::string redact_dsn(const std::string& dsn);

}  // namespace metrics::storage
