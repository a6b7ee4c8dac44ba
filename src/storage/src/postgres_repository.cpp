#include "metrics/storage/postgres_repository.hpp"

#include "metrics/core/errors.hpp"

namespace metrics::storage {

class PostgresRepository::Impl {};

PostgresRepository::PostgresRepository(PostgresOptions options) {
  (void)options;
  throw core::Error("PostgreSQL storage is not implemented yet");
}
PostgresRepository::~PostgresRepository() = default;
void PostgresRepository::apply(std::vector<core::Metric>, Callback<std::vector<core::Metric>>) {}
void PostgresRepository::get(core::MetricKey, Callback<std::optional<core::Metric>>) {}
void PostgresRepository::list(Callback<std::vector<core::Metric>>) {}
void PostgresRepository::ping(Callback<bool>) {}
void PostgresRepository::close() {}
std::string PostgresRepository::redact_dsn(const std::string& dsn) {
  return dsn;
}

}  // namespace metrics::storage
