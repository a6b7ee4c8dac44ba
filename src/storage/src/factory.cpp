#include "metrics/storage/factory.hpp"

#include "metrics/storage/file_repository.hpp"
#include "metrics/storage/memory_repository.hpp"
#include "metrics/storage/postgres_repository.hpp"

namespace metrics::storage {

std::string describe(const StorageConfig& config) {
  if (!config.database_dsn.empty()) {
    return "PostgreSQL at " + PostgresRepository::redact_dsn(config.database_dsn);
  }
  if (config.file_path.empty()) return "memory only";
  std::string out = "memory, persisted to " + config.file_path;
  if (config.store_interval.count() == 0) {
    out += " (synchronous: every update durable before its answer)";
  } else {
    const auto ms = config.store_interval.count();
    out += " (snapshot every " +
           (ms % 1000 == 0 ? std::to_string(ms / 1000) + " s" : std::to_string(ms) + " ms") + ")";
  }
  out += config.restore ? ", restored at start" : ", not restored at start";
  return out;
}

namespace {
std::unique_ptr<Repository> make(const StorageConfig& config) {
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
}  // namespace

std::unique_ptr<Repository> make_repository(const StorageConfig& config) {
  auto repo = make(config);
  repo->keys().configure(config.idempotency);
  return repo;
}

}  // namespace metrics::storage
