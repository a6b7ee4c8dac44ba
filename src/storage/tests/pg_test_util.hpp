// PostgreSQL test helpers: a fresh schema per test, dropped at the end.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <random>
#include <string>

#include "detail/pg.hpp"
#include "metrics/storage/postgres_repository.hpp"
#include "test_util.hpp"

namespace metrics::storage::testing {

class TestSchema {
 public:
  explicit TestSchema(std::string dsn) : dsn_(std::move(dsn)) {
    std::random_device rd;
    name_ = "metrics_test_" + std::to_string(rd()) + std::to_string(rd());
  }
  ~TestSchema() {
    try {
      auto conn = detail::pg::connect(dsn_, 5);
      detail::pg::exec(conn.get(), ("DROP SCHEMA IF EXISTS " + name_ + " CASCADE").c_str());
    } catch (const std::exception& e) {
      ADD_FAILURE() << "cannot drop test schema " << name_ << ": " << e.what();
    }
  }
  TestSchema(const TestSchema&) = delete;
  TestSchema& operator=(const TestSchema&) = delete;

  [[nodiscard]] PostgresOptions options() const {
    PostgresOptions o;
    o.dsn = dsn_;
    o.schema = name_;
    o.retry_delays = {std::chrono::milliseconds{50}, std::chrono::milliseconds{150},
                      std::chrono::milliseconds{250}};
    return o;
  }
  [[nodiscard]] std::unique_ptr<PostgresRepository> open() const {
    return std::make_unique<PostgresRepository>(options());
  }
  [[nodiscard]] const std::string& name() const { return name_; }
  [[nodiscard]] const std::string& dsn() const { return dsn_; }

  // Runs SQL in the schema, returns the first field of the first row (or "").
  [[nodiscard]] std::string query(const std::string& sql) const {
    auto conn = detail::pg::connect(dsn_, 5);
    detail::pg::exec(conn.get(), ("SET search_path TO " + name_).c_str());
    auto res = detail::pg::exec(conn.get(), sql.c_str());
    if (PQntuples(res.get()) == 0 || PQnfields(res.get()) == 0) return "";
    return PQgetvalue(res.get(), 0, 0);
  }

 private:
  std::string dsn_;
  std::string name_;
};

}  // namespace metrics::storage::testing
