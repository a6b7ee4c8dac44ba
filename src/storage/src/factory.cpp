#include "metrics/storage/factory.hpp"

#include "metrics/storage/file_repository.hpp"
#include "metrics/storage/memory_repository.hpp"
#include "metrics/storage/postgres_repository.hpp"

namespace metrics::storage {

std::string describe(const StorageConfig& config) {
  if (!config.database_dsn.empty()) {
    return "PostgreSQL (" + PostgresRepository::redact_dsn(config.database_dsn) + ")";
  }
  if (!config.file_path.empty()) {
    std::string out = "memory + file " + config.file_path;
    if (config.store_interval.count() == 0) {
      out += " (synchronous: write-ahead log, every update durable before the answer)";
    } else {
      out += " (snapshot every " + std::to_string(config.store_interval.count()) + " ms";
      out += config.restore ? ", restored at start)" : ", not restored)";
    }
    if (config.store_interval.count() == 0 && !config.restore) out += ", not restored";
    return out;
  }
  return "memory only";
}

std::unique_ptr<Repository> make_repository(const StorageConfig& config) {
  if (!config.database_dsn.empty()) {
    PostgresOptions options;
    options.dsn = config.database_dsn;
    return std::make_unique<PostgresRepository>(std::move(options));
  }
  if (!config.file_path.empty()) {
    FileOptions options;
    options.path = config.file_path;
    options.store_interval = config.store_interval;
    options.restore = config.restore;
    return std::make_unique<FileRepository>(std::move(options));
  }
  return std::make_unique<MemoryRepository>();
}

}  // namespace metrics::storage
