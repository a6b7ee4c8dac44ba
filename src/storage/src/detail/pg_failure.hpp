// What a PostgreSQL failure means for the storage: the database is
// unreachable, it refuses our credentials, or a statement failed. Pure
// functions of libpq's SQLSTATE and message (unit-tested without a server),
// and the one-line reasons shown by /ping and the logs.
//
// Thread-safe (no state).
#pragma once

#include <string>
#include <string_view>

namespace metrics::storage::detail::pg {

class Error;

enum class Failure {
  statement,       // a statement failed on a working connection
  unreachable,     // the connection or the server went away, or never answered
  authentication,  // the server refused the user or password
};

// Classifies a failure by its SQLSTATE (class 28: invalid authorization,
// 28P01 wrong password, 28000 no pg_hba.conf entry, unknown role) or, for a
// connection attempt, where libpq reports no SQLSTATE, by its message.
// `connection_lost`: libpq reported no working connection.
[[nodiscard]] Failure classify(std::string_view sqlstate, std::string_view message,
                               bool connection_lost);

// The connection or the server went away (as opposed to a statement failing
// on a working connection); authentication failures count too.
[[nodiscard]] bool unreachable(const Error& e);

// One line for people, never a password: `PostgreSQL authentication failed
// for user "x"`, or "PostgreSQL: " and libpq's message on one line.
[[nodiscard]] std::string reason(const Error& e);

// libpq's multi-line messages on one line ("; " between lines).
[[nodiscard]] std::string one_line(std::string_view message);

}  // namespace metrics::storage::detail::pg
