#include "detail/pg_schema.hpp"

#include <spdlog/spdlog.h>

#include <cstdlib>

#include "detail/pg.hpp"
#include "detail/pg_statements.hpp"

namespace metrics::storage::detail::pg {
namespace {

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

// Append-only: a released migration is never edited, a change is a new one.
constexpr Migration kMigrations[] = {
    {1, "metrics table",
     R"(CREATE TABLE metrics (
          type  smallint NOT NULL CHECK (type IN (0, 1)),  -- 0 gauge, 1 counter
          name  text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 255),
          delta bigint,            -- counters: the total
          value double precision,  -- gauges: the value
          PRIMARY KEY (type, name),
          CHECK ((type = 1) = (delta IS NOT NULL) AND (type = 0) = (value IS NOT NULL))))"},
    {2, "applied_groups: committed group commits, to tell after a lost connection",
     R"(CREATE TABLE applied_groups (
          id         bigint PRIMARY KEY,
          applied_at timestamptz NOT NULL DEFAULT now()))"},
    // Every write changes updated_at: no index on it, so that updates stay
    // heap-only (HOT: no new index entries), with room for them on each page
    // (fillfactor 50; twice as fast under labelled load, measured). expire()
    // scans the table instead, once per expiry run.
    // The classic table (metrics) keeps its rows. Every one of them was
    // written without labels, so it also is the value of the series with no
    // labels: copied there, as if written now, so that it expires only after
    // a full TTL without writes.
    {3, "series: values by type, name and labels, with the time of their last write",
     R"(CREATE TABLE series (
          type        smallint NOT NULL CHECK (type IN (0, 1)),  -- 0 gauge, 1 counter
          name        text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 255),
          labels      bytea NOT NULL,  -- core::Labels::encoded(): name 0xFF value 0xFF ..., sorted
          labels_json jsonb NOT NULL,  -- the same labels for people: {"job": "api"}
          total       bigint,            -- counters: the total
          value       double precision,  -- gauges: the value
          updated_at  bigint NOT NULL,   -- server receive time of the last write, ms since 1970
          PRIMARY KEY (type, name, labels),
          CHECK ((type = 1) = (total IS NOT NULL) AND (type = 0) = (value IS NOT NULL)))
          WITH (fillfactor = 50);
        INSERT INTO series (type, name, labels, labels_json, total, value, updated_at)
          SELECT type, name, ''::bytea, '{}'::jsonb, delta, value,
                 (extract(epoch FROM clock_timestamp()) * 1000)::bigint
          FROM metrics)"},
    // Exactly-once writes: the idempotency keys applied, each written in the
    // transaction of the batch it guards, so that every server on the
    // database recognises a retry. key and fingerprint are 16-byte digests
    // (storage::Guard).
    {4, "idempotency_keys: the keys of the writes applied, with their body fingerprint",
     R"(CREATE TABLE idempotency_keys (
          key         bytea PRIMARY KEY CHECK (octet_length(key) = 16),
          fingerprint bytea NOT NULL CHECK (octet_length(fingerprint) = 16),
          received_ms bigint NOT NULL))"},
};

// Any constant shared by every server: migrations run one at a time.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(738113001)";

}  // namespace

void Schema::setup_session(PGconn* conn) {
  if (!schema_.empty()) {
    const auto schema = quote_identifier(conn, schema_);
    exec(conn, ("SET search_path TO " + schema).c_str());
  }
  if (!migrated_.load()) {
    std::lock_guard lock(migrate_mu_);
    if (!migrated_.load()) {
      migrate(conn);
      migrated_.store(true);
    }
  }
  prepare_statements(conn);
}

void Schema::migrate(PGconn* conn) {
  exec(conn, "BEGIN");
  try {
    exec(conn, kMigrationLock);
    if (!schema_.empty()) {
      exec(conn, ("CREATE SCHEMA IF NOT EXISTS " + quote_identifier(conn, schema_)).c_str());
    }
    exec(conn,
         "CREATE TABLE IF NOT EXISTS schema_migrations ("
         "version integer PRIMARY KEY, description text NOT NULL, "
         "applied_at timestamptz NOT NULL DEFAULT now())");
    auto res = exec(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    const int current = std::atoi(PQgetvalue(res.get(), 0, 0));
    for (const auto& m : kMigrations) {
      if (m.version <= current) continue;
      exec(conn, m.sql);
      const auto version = std::to_string(m.version);
      const char* values[] = {version.c_str(), m.description};
      const int lengths[] = {0, 0};
      const int formats[] = {0, 0};
      exec_params(conn, "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
                  values, lengths, formats, false);
      spdlog::info("PostgreSQL: applied migration {} ({})", m.version, m.description);
    }
    exec(conn, "COMMIT");
  } catch (...) {
    rollback(conn);
    throw;
  }
}

void rollback(PGconn* conn) noexcept {
  if (PQstatus(conn) != CONNECTION_OK) return;
  Result res(PQexec(conn, "ROLLBACK"));
  (void)res;
}

}  // namespace metrics::storage::detail::pg
