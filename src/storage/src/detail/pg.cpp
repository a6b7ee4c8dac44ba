#include "detail/pg.hpp"

#include <spdlog/spdlog.h>

#include <bit>
#include <cstring>
#include <string>

#include "detail/pg_failure.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/storage/config.hpp"

namespace metrics::storage::detail::pg {
namespace {

struct ConninfoDeleter {
  void operator()(PQconninfoOption* opts) const noexcept { PQconninfoFree(opts); }
};
struct FreememDeleter {
  void operator()(char* p) const noexcept { PQfreemem(p); }
};

void put_be32(std::string& out, std::uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}
void put_be64(std::string& out, std::uint64_t v) {
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((v >> shift) & 0xff));
}
std::uint64_t get_be(const PGresult* res, int row, int col, int bytes) {
  if (PQgetlength(res, row, col) != bytes) {
    throw Error("unexpected binary field size from PostgreSQL", "", false);
  }
  const auto* p = reinterpret_cast<const unsigned char*>(PQgetvalue(res, row, col));
  std::uint64_t v = 0;
  for (int i = 0; i < bytes; ++i)
    v = (v << 8) | p[i];
  return v;
}

// libpq prints server notices (NOTICE, and the FATAL of a terminated
// session) to stderr by default; route them to the log instead.
void log_notice(void*, const char* message) {
  std::string text(message);
  while (!text.empty() && text.back() == '\n')
    text.pop_back();
  spdlog::debug("PostgreSQL notice: {}", text);
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

// Turns a result into an Error unless its status is one of the good ones.
Result check(PGconn* conn, Result res, const char* what) {
  const auto status = res ? PQresultStatus(res.get()) : PGRES_FATAL_ERROR;
  if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) return res;
  std::string sqlstate;
  std::string message;
  if (res) {
    if (const char* s = PQresultErrorField(res.get(), PG_DIAG_SQLSTATE)) sqlstate = s;
    message = PQresultErrorMessage(res.get());
  }
  if (message.empty()) message = PQerrorMessage(conn);
  const bool lost = PQstatus(conn) != CONNECTION_OK;
  throw Error(std::string(what) + ": " + trim(message), sqlstate, lost);
}

}  // namespace

Error::Error(const std::string& what, std::string sqlstate, bool connection_lost, std::string user)
    : std::runtime_error(what),
      sqlstate_(std::move(sqlstate)),
      connection_lost_(connection_lost),
      authentication_(classify(sqlstate_, what, connection_lost) == Failure::authentication),
      user_(std::move(user)) {}

bool Error::transient() const noexcept {
  if (connection_lost_ || sqlstate_.empty()) return true;
  return sqlstate_.starts_with("08") || sqlstate_ == "40001" || sqlstate_ == "40P01" ||
         sqlstate_ == "57P01" || sqlstate_ == "57P02" || sqlstate_ == "57P03";
}

void validate_dsn(const std::string& dsn) {
  char* err = nullptr;
  std::unique_ptr<PQconninfoOption, ConninfoDeleter> opts(PQconninfoParse(dsn.c_str(), &err));
  std::unique_ptr<char, FreememDeleter> err_owner(err);
  if (!opts) {
    throw core::Error("invalid DATABASE_DSN " + redact_dsn(dsn) + ": " +
                      (err ? trim(err) : std::string("out of memory")));
  }
}

std::string redact_dsn(const std::string& dsn) {
  return storage::redact_dsn(dsn);
}

Conn connect(const std::string& dsn, int connect_timeout_seconds) {
  const std::string timeout = std::to_string(connect_timeout_seconds);
  // Defaults first: the DSN, expanded last, overrides any of them. Keepalives
  // and a TCP user timeout make a vanished server an error, not a hang.
  const char* keys[] = {"connect_timeout",     "keepalives",       "keepalives_idle",
                        "keepalives_interval", "keepalives_count", "tcp_user_timeout",
                        "application_name",    "dbname",           nullptr};
  const char* values[] = {timeout.c_str(),  "1",         "10",   "5", "3", "30000",
                          "metrics-server", dsn.c_str(), nullptr};
  Conn conn(PQconnectdbParams(keys, values, /*expand_dbname=*/1));
  if (!conn) throw Error("cannot connect to PostgreSQL: out of memory", "", true);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    const char* user = PQuser(conn.get());
    throw Error("cannot connect to PostgreSQL: " + trim(PQerrorMessage(conn.get())), "", true,
                user != nullptr ? user : "");
  }
  PQsetNoticeProcessor(conn.get(), log_notice, nullptr);
  return conn;
}

Result exec(PGconn* conn, const char* sql) {
  return check(conn, Result(PQexec(conn, sql)), sql);
}

Result exec_params(PGconn* conn, const char* sql, std::span<const char* const> values,
                   std::span<const int> lengths, std::span<const int> formats, bool binary_result) {
  return check(
      conn,
      Result(PQexecParams(conn, sql, static_cast<int>(values.size()), nullptr, values.data(),
                          lengths.data(), formats.data(), binary_result ? 1 : 0)),
      "query failed");
}

Result exec_prepared(PGconn* conn, const char* name, std::span<const char* const> values,
                     std::span<const int> lengths, std::span<const int> formats,
                     bool binary_result) {
  return check(conn,
               Result(PQexecPrepared(conn, name, static_cast<int>(values.size()), values.data(),
                                     lengths.data(), formats.data(), binary_result ? 1 : 0)),
               name);
}

void prepare(PGconn* conn, const char* name, const char* sql) {
  check(conn, Result(PQprepare(conn, name, sql, 0, nullptr)), name);
}

ArrayBuilder::ArrayBuilder(std::uint32_t element_oid, std::size_t count) {
  data_.reserve(20 + count * 16);
  put_be32(data_, 1);  // dimensions
  put_be32(data_, 0);  // no nulls
  put_be32(data_, element_oid);
  put_be32(data_, static_cast<std::uint32_t>(count));
  put_be32(data_, 1);  // lower bound
}

void ArrayBuilder::add_int2(std::int16_t v) {
  put_be32(data_, 2);
  const auto u = static_cast<std::uint16_t>(v);
  data_.push_back(static_cast<char>(u >> 8));
  data_.push_back(static_cast<char>(u & 0xff));
}

void ArrayBuilder::add_int8(std::int64_t v) {
  put_be32(data_, 8);
  put_be64(data_, static_cast<std::uint64_t>(v));
}

void ArrayBuilder::add_float8(double v) {
  put_be32(data_, 8);
  put_be64(data_, std::bit_cast<std::uint64_t>(v));
}

void ArrayBuilder::add_text(std::string_view v) {
  put_be32(data_, static_cast<std::uint32_t>(v.size()));
  data_.append(v);
}

std::int16_t get_int2(const PGresult* res, int row, int col) {
  return static_cast<std::int16_t>(static_cast<std::uint16_t>(get_be(res, row, col, 2)));
}

std::int64_t get_int8(const PGresult* res, int row, int col) {
  return static_cast<std::int64_t>(get_be(res, row, col, 8));
}

double get_float8(const PGresult* res, int row, int col) {
  return std::bit_cast<double>(get_be(res, row, col, 8));
}

std::string_view get_text(const PGresult* res, int row, int col) {
  return {PQgetvalue(res, row, col), static_cast<std::size_t>(PQgetlength(res, row, col))};
}

std::string quote_identifier(PGconn* conn, const std::string& name) {
  std::unique_ptr<char, FreememDeleter> quoted(PQescapeIdentifier(conn, name.c_str(), name.size()));
  if (!quoted) throw Error("cannot quote identifier: " + trim(PQerrorMessage(conn)), "", false);
  return quoted.get();
}

}  // namespace metrics::storage::detail::pg
