// The Repository conformance suite against PostgreSQL (needs
// METRICS_TEST_PG_DSN; each test gets a fresh schema, dropped afterwards).
#include "metrics/storage/postgres_repository.hpp"
#include "pg_test_util.hpp"
#include "repository_conformance.hpp"

namespace metrics::storage::testing {
namespace {

struct PostgresFactory {
  void SetUp() {
    METRICS_REQUIRE_PG_DSN(dsn);
    schema = std::make_unique<TestSchema>(dsn);
  }
  std::unique_ptr<Repository> make() { return schema->open(); }
  std::unique_ptr<TestSchema> schema;
};

class StorageNames {
 public:
  template <class T>
  static std::string GetName(int) {
    return "Postgres";
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Storage, RepositoryConformance, ::testing::Types<PostgresFactory>,
                               StorageNames);

}  // namespace
}  // namespace metrics::storage::testing
