// The statements of the PostgreSQL storage ("writing"): group commits in one
// transaction (one statement for the whole group when it can, else one
// savepoint per batch so that an overflowing batch fails alone), the
// answers each batch gets, and the reads. Each call runs on one connection
// and throws Error; the retry policy is the caller's (postgres_repository.cpp).
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

namespace metrics::storage::detail::pg {

// The batches of one group commit, in queue order.
using Group = std::vector<const std::vector<core::Metric>*>;

// Prepares every statement below on a new session.
void prepare_statements(PGconn* conn);

// The group id parameter (binary int8) of a group commit.
[[nodiscard]] std::string group_id_param(std::int64_t id);

// Stores the group in one transaction together with the marker row of
// `id_param`, and fills each batch's answer (answers[i]) or error (errors[i]:
// core::InvalidInput when its counter would overflow; the others are still
// stored). Sets commit_sent just before it sends the statement that can
// commit: after that a lost connection leaves the outcome in doubt.
void write_group(PGconn* conn, const Group& group, const std::string& id_param,
                 std::vector<std::vector<core::Metric>>& answers,
                 std::vector<std::exception_ptr>& errors, bool& commit_sent);

// Whether the group of `id_param` was committed.
[[nodiscard]] bool seen(PGconn* conn, const std::string& id_param);

// The group committed but its answer was lost with the connection: answer
// with the totals stored now (exact unless another writer came in between).
void answer_from_current(PGconn* conn, const Group& group,
                         std::vector<std::vector<core::Metric>>& answers);

// Forgets group ids older than an hour.
void prune_groups(PGconn* conn);

[[nodiscard]] std::optional<core::Metric> get(PGconn* conn, const core::MetricKey& key);
[[nodiscard]] std::vector<core::Metric> list(PGconn* conn);

}  // namespace metrics::storage::detail::pg
