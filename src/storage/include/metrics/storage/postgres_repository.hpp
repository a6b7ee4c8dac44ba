// PostgreSQL storage (the -d / DATABASE_DSN option), over libpq.
//
// A bounded pool of connections, each owned by one worker thread; no libpq
// call ever runs on the caller's thread: every call is queued (a full queue
// completes at once with core::Overloaded) and completed on a worker.
// Two tables: `series` (type, name, labels as core::Labels::encoded() bytes
// with a jsonb copy for people, total or value, updated_at in ms) and the
// classic table `metrics` of Part 1 (type, name, total or value).
// Concurrent apply() calls are group-committed: a worker takes every queued
// batch (up to max_group) and stores them, in both tables, in one
// transaction, acknowledging each only after the COMMIT; counters are summed
// by PostgreSQL itself, in both tables, so several servers can share one
// database and still sum exactly. A batch whose counter total (of a series
// or of a classic value) would overflow fails alone with core::InvalidInput.
// Transient failures (lost connection, SQLSTATE class 08, 40001, 40P01,
// 57P01-57P03) are retried after 1 s, 3 s and 5 s, then the requests fail
// with core::StorageUnavailable and nothing of them is stored. Once a
// connection attempt fails, the database counts as unreachable: requests
// (but pings) fail at once with core::StorageUnavailable until an idle worker
// (every reconnect_interval) or a ping reconnects. A write whose connection
// was lost after its commit was sent, and whose outcome could not be checked
// before the retries ran out, fails with core::OutcomeUnknown instead: it may
// have been stored.
//
// A refused login (a wrong password, no pg_hba.conf entry, an unknown role)
// counts as unreachable too, so the server keeps serving, but it is logged
// as "authentication failed" at once and then at most once a minute while
// it lasts, and health() gives it as the reason.
//
// The schema is created and migrated at start (table schema_migrations).
// An unreachable database at start is not fatal: the error is logged, ping
// fails, and workers keep reconnecting; a malformed DSN or a failing
// migration throws core::Error.
//
//   storage::PostgresRepository repo({.dsn = "postgres://u:p@127.0.0.1/metrics"});
//   repo.apply(batch, now_ms, done);  // done runs on a worker thread after COMMIT
//
// Thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "metrics/core/clock.hpp"
#include "metrics/storage/repository.hpp"

namespace metrics::storage {

struct PostgresOptions {
  std::string dsn;
  // Schema holding the tables; empty: the connection's default search_path.
  // Created when missing (tests use one fresh schema each).
  std::string schema;
  std::size_t connections = 4;
  std::size_t max_queue = 16384;
  // Most batches in one transaction.
  std::size_t max_group = 1024;
  // Group commits running at once (the other connections serve reads).
  // Agents write the same names, so concurrent groups would only queue on
  // the same row locks: one group at a time collects the most batches per
  // commit (measured in docs/STORAGE.md).
  std::size_t concurrent_groups = 1;
  std::vector<std::chrono::milliseconds> retry_delays{
      std::chrono::seconds{1}, std::chrono::seconds{3}, std::chrono::seconds{5}};
  // While the database is unreachable, how often an idle worker tries to
  // reconnect (requests fail at once meanwhile; pings try too).
  std::chrono::milliseconds reconnect_interval{500};
  // Seconds libpq waits for a connection (unless the DSN says otherwise).
  int connect_timeout_seconds = 5;
  // Times the retry delays, the reconnection probes, the group-commit wait
  // and the rate limit of the log (tests set time).
  std::shared_ptr<core::Clock> clock = core::real_clock();
};

class PostgresRepository final : public Repository {
 public:
  explicit PostgresRepository(PostgresOptions options);
  ~PostgresRepository() override;  // calls close()

  void apply(std::vector<core::Update> batch, std::int64_t received_ms,
             Callback<Applied> done) override;
  // The key goes in the batch's transaction (in its savepoint), in the
  // idempotency_keys table that every server on the database reads: a retry
  // that reaches another server is recognised too.
  void apply_once(std::vector<core::Update> batch, std::int64_t received_ms, Guard guard,
                  Callback<OnceApplied> done) override;
  void get(core::SeriesKey key, Callback<std::optional<core::Point>> done) override;
  void get_classic(core::MetricKey key, Callback<std::optional<core::Point>> done) override;
  void list(Callback<std::vector<core::Point>> done) override;
  void list_series(Callback<std::vector<core::Point>> done) override;
  // One DELETE ... RETURNING: a series another server writes meanwhile
  // keeps its newer time and stays.
  void expire(std::int64_t cutoff_ms, Callback<std::vector<core::SeriesKey>> done) override;
  // One real round trip (SELECT 1), never retried.
  void ping(Callback<bool> done) override;
  // The same round trip; when it fails, why: `PostgreSQL authentication
  // failed for user "x"` when the server refuses the login, else
  // "PostgreSQL: " and libpq's message.
  void health(Callback<Health> done) override;
  [[nodiscard]] StorageStats stats() const override;
  // Finishes the queued work, then closes the connections.
  void close() override;

  // The DSN with its password replaced by "***", for logs.
  [[nodiscard]] static std::string redact_dsn(const std::string& dsn);

 private:
  class Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace metrics::storage
