// The PostgreSQL schema: the tables, their migrations (table
// schema_migrations, run once per process, one server at a time), and what
// every new session needs (search_path, prepared statements).
//
// Thread-safe: setup_session() may run on many connections at once; the
// migrations run on the first.
#pragma once

#include <libpq-fe.h>

#include <atomic>
#include <mutex>
#include <string>

namespace metrics::storage::detail::pg {

class Schema {
 public:
  // `schema`: holds the tables; empty: the connection's default search_path.
  explicit Schema(std::string schema) : schema_(std::move(schema)) {}

  // Search path, schema migrations (once per process) and the prepared
  // statements of pg_statements.hpp. Throws Error.
  void setup_session(PGconn* conn);

 private:
  void migrate(PGconn* conn);

  const std::string schema_;
  std::mutex migrate_mu_;
  std::atomic<bool> migrated_{false};
};

// Rolls back the open transaction, if the connection still works.
void rollback(PGconn* conn) noexcept;

}  // namespace metrics::storage::detail::pg
