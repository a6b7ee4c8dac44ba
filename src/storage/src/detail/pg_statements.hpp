// The statements of the PostgreSQL storage ("writing"): group commits in one
// transaction over both tables, series and classic values (one statement for
// the whole group when it can, else one savepoint per batch so that an
// overflowing batch fails alone), the answers each batch gets, the reads and
// the expiry of series. Each call runs on one connection and throws Error;
// the retry policy is the caller's (postgres_repository.cpp).
//
//   pg::Group group{{&batch, received_ms}};
//   std::vector<storage::Applied> answers(1);
//   std::vector<std::exception_ptr> errors(1);
//   bool commit_sent = false;
//   pg::write_group(conn, group, pg::group_id_param(id), answers, errors, commit_sent);
//
// Not thread-safe: a connection belongs to one thread.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <exception>
#include <optional>
#include <string>
#include <vector>

#include "metrics/core/metric.hpp"
#include "metrics/storage/repository.hpp"

namespace metrics::storage::detail::pg {

// One batch of a group commit and the server's receive time of it.
struct Batch {
  const std::vector<core::Update>* updates = nullptr;
  std::int64_t received_ms = 0;
  // Guarded by an idempotency key: applied only when the key is new, or
  // last applied before key_cutoff_ms (outside the window).
  const Guard* guard = nullptr;
  std::int64_t key_cutoff_ms = 0;
};

// The batches of one group commit, in queue order.
using Group = std::vector<Batch>;

// Prepares every statement below on a new session.
void prepare_statements(PGconn* conn);

// The group id parameter (binary int8) of a group commit.
[[nodiscard]] std::string group_id_param(std::int64_t id);

// Stores the group in one transaction together with the marker row of
// `id_param`, and fills each batch's answer (answers[i]) or error (errors[i]:
// core::InvalidInput when a counter total, of a series or of a classic
// value, would overflow; the others are still stored). Sets commit_sent just
// before it sends the statement that can commit: after that a lost
// connection leaves the outcome in doubt.
// outcomes[i]: what the key of batch i decided (Once::applied when it has none).
void write_group(PGconn* conn, const Group& group, const std::string& id_param,
                 std::vector<Applied>& answers, std::vector<std::exception_ptr>& errors,
                 std::vector<Once>& outcomes, bool& commit_sent);

// Whether the group of `id_param` was committed.
[[nodiscard]] bool seen(PGconn* conn, const std::string& id_param);

// The group committed but its answer was lost with the connection: answer
// with the totals stored now (exact unless another writer came in between).
void answer_from_current(PGconn* conn, const Group& group, std::vector<Applied>& answers);

// Forgets group ids older than an hour.
void prune_groups(PGconn* conn);
// Forgets the idempotency keys applied before cutoff_ms (outside the window).
void prune_keys(PGconn* conn, std::int64_t cutoff_ms);

[[nodiscard]] std::optional<core::Point> get(PGconn* conn, const core::SeriesKey& key);
[[nodiscard]] std::optional<core::Point> get_classic(PGconn* conn, const core::MetricKey& key);
// Classic values by name, then type.
[[nodiscard]] std::vector<core::Point> list(PGconn* conn);
// Series by name, type, then labels.
[[nodiscard]] std::vector<core::Point> list_series(PGconn* conn);
// Deletes the series last written before cutoff_ms; their keys, sorted.
[[nodiscard]] std::vector<core::SeriesKey> expire(PGconn* conn, std::int64_t cutoff_ms);

// The readable form of labels kept next to their encoding (column
// labels_json): a JSON object, with any NUL of a value shown as U+FFFD
// (jsonb cannot hold one; the encoding keeps the exact bytes).
[[nodiscard]] std::string labels_json(const core::Labels& labels);

}  // namespace metrics::storage::detail::pg
