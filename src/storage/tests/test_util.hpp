// Helpers shared by the storage tests.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

namespace metrics::storage::testing {

// A fresh folder under $TMPDIR (or /tmp), removed with everything in it.
class TempDir {
 public:
  TempDir() {
    const char* base = std::getenv("TMPDIR");
    std::string pattern = std::string(base && *base ? base : "/tmp") + "/metrics-storage-XXXXXX";
    if (::mkdtemp(pattern.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::permissions(path_, std::filesystem::perms::owner_all,
                                 std::filesystem::perm_options::add, ec);
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  [[nodiscard]] const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

inline std::string read_all(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

inline void write_all(const std::filesystem::path& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

inline std::string pg_dsn_from_env() {
  const char* dsn = std::getenv("METRICS_TEST_PG_DSN");
  return dsn != nullptr ? dsn : "";
}

inline bool running_in_ci() {
  const char* ci = std::getenv("CI");
  if (ci == nullptr) return false;
  const std::string v(ci);
  return !v.empty() && v != "false" && v != "0";
}

}  // namespace metrics::storage::testing

// Declares `std::string var` holding the test database DSN. Without
// METRICS_TEST_PG_DSN the test is skipped locally but FAILS when CI is set:
// a CI run must not pass by silently skipping the PostgreSQL tests.
// Use in void functions only (test bodies, SetUp).
#define METRICS_REQUIRE_PG_DSN(var)                                                          \
  const std::string var = ::metrics::storage::testing::pg_dsn_from_env();                    \
  if (var.empty()) {                                                                         \
    if (::metrics::storage::testing::running_in_ci()) {                                      \
      GTEST_FAIL() << "METRICS_TEST_PG_DSN is not set and CI is: PostgreSQL tests must "     \
                      "run in CI (scripts/postgres-setup.sh prints a DSN)";                  \
    }                                                                                        \
    GTEST_SKIP() << "METRICS_TEST_PG_DSN is not set (scripts/postgres-setup.sh prints one)"; \
  }
