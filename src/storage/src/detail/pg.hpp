// A thin RAII layer over libpq: owned connections and results, errors with
// their SQLSTATE and a transient/permanent verdict, and binary encoding of
// the array parameters and result columns the PostgreSQL storage uses.
//
// Not thread-safe: a connection and its results belong to one thread.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace metrics::storage::detail::pg {

struct ConnDeleter {
  void operator()(PGconn* conn) const noexcept { PQfinish(conn); }
};
struct ResultDeleter {
  void operator()(PGresult* res) const noexcept { PQclear(res); }
};
using Conn = std::unique_ptr<PGconn, ConnDeleter>;
using Result = std::unique_ptr<PGresult, ResultDeleter>;

// A failed libpq call. sqlstate() is empty when the server sent none (for
// example when the connection was lost).
class Error : public std::runtime_error {
 public:
  Error(const std::string& what, std::string sqlstate, bool connection_lost, std::string user = {});
  [[nodiscard]] const std::string& sqlstate() const noexcept { return sqlstate_; }
  [[nodiscard]] bool connection_lost() const noexcept { return connection_lost_; }
  // The server refused the credentials (pg_failure.hpp); user() names the
  // user the connection attempt used, when known.
  [[nodiscard]] bool authentication_failed() const noexcept { return authentication_; }
  [[nodiscard]] const std::string& user() const noexcept { return user_; }
  // Worth retrying: connection problems (class 08 or no connection),
  // serialization failure, deadlock, server shutting down or starting up.
  [[nodiscard]] bool transient() const noexcept;

 private:
  std::string sqlstate_;
  bool connection_lost_;
  bool authentication_;
  std::string user_;
};

inline constexpr std::string_view kNumericValueOutOfRange = "22003";
inline constexpr std::string_view kUniqueViolation = "23505";

// Throws a core::Error when libpq cannot parse the DSN.
void validate_dsn(const std::string& dsn);
// The DSN with any password replaced by "***".
[[nodiscard]] std::string redact_dsn(const std::string& dsn);

// Connects (blocking); throws Error (transient) when it cannot.
[[nodiscard]] Conn connect(const std::string& dsn, int connect_timeout_seconds);

// Run a statement; throw Error unless it succeeded. Parameters are binary
// when formats say so; results are binary when binary_result is true.
Result exec(PGconn* conn, const char* sql);
Result exec_params(PGconn* conn, const char* sql, std::span<const char* const> values,
                   std::span<const int> lengths, std::span<const int> formats, bool binary_result);
Result exec_prepared(PGconn* conn, const char* name, std::span<const char* const> values,
                     std::span<const int> lengths, std::span<const int> formats,
                     bool binary_result);
void prepare(PGconn* conn, const char* name, const char* sql);

// PostgreSQL type oids used with binary parameters.
inline constexpr std::uint32_t kInt2Oid = 21;
inline constexpr std::uint32_t kInt8Oid = 20;
inline constexpr std::uint32_t kFloat8Oid = 701;
inline constexpr std::uint32_t kTextOid = 25;
inline constexpr std::uint32_t kByteaOid = 17;

// Builds a one-dimensional binary array parameter without nulls.
class ArrayBuilder {
 public:
  ArrayBuilder(std::uint32_t element_oid, std::size_t count);
  void add_int2(std::int16_t v);
  void add_int8(std::int64_t v);
  void add_float8(double v);
  void add_text(std::string_view v);
  // Raw bytes, for a bytea array (the same wire form as text).
  void add_bytes(std::string_view v) { add_text(v); }
  [[nodiscard]] const std::string& bytes() const noexcept { return data_; }

 private:
  std::string data_;
};

// Binary result fields.
[[nodiscard]] std::int16_t get_int2(const PGresult* res, int row, int col);
[[nodiscard]] std::int64_t get_int8(const PGresult* res, int row, int col);
[[nodiscard]] double get_float8(const PGresult* res, int row, int col);
[[nodiscard]] std::string_view get_text(const PGresult* res, int row, int col);
// A binary bytea field is its raw bytes.
[[nodiscard]] inline std::string_view get_bytes(const PGresult* res, int row, int col) {
  return get_text(res, row, col);
}
[[nodiscard]] inline bool is_null(const PGresult* res, int row, int col) {
  return PQgetisnull(res, row, col) != 0;
}

// Quotes an identifier (a schema name) for SQL text.
[[nodiscard]] std::string quote_identifier(PGconn* conn, const std::string& name);

}  // namespace metrics::storage::detail::pg
