#include "metrics/storage/factory.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "metrics/core/errors.hpp"
#include "metrics/storage/file_repository.hpp"
#include "metrics/storage/memory_repository.hpp"
#include "test_util.hpp"

namespace metrics::storage::testing {
namespace {

using ::testing::HasSubstr;

TEST(Factory, NothingConfiguredIsMemory) {
  StorageConfig config;
  config.file_path.clear();
  auto repo = make_repository(config);
  EXPECT_NE(dynamic_cast<MemoryRepository*>(repo.get()), nullptr);
  EXPECT_EQ(describe(config), "memory only");
}

TEST(Factory, FilePathIsFileStorage) {
  TempDir dir;
  StorageConfig config;
  config.file_path = (dir.path() / "db.json").string();
  config.store_interval = std::chrono::milliseconds{0};
  auto repo = make_repository(config);
  EXPECT_NE(dynamic_cast<FileRepository*>(repo.get()), nullptr);
  EXPECT_THAT(describe(config), HasSubstr("synchronous"));
  config.store_interval = std::chrono::seconds{300};
  EXPECT_THAT(describe(config), HasSubstr("every 300 s"));
}

TEST(Factory, DsnWinsAndItsPasswordIsNotShown) {
  StorageConfig config;
  config.database_dsn = "postgres://u:secret@127.0.0.1:1/db";
  config.file_path = "/tmp/ignored.json";
  EXPECT_THAT(describe(config), HasSubstr("PostgreSQL"));
  EXPECT_THAT(describe(config), ::testing::Not(HasSubstr("secret")));
}

TEST(Factory, MalformedDsnThrows) {
  StorageConfig config;
  config.database_dsn = "host=127.0.0.1 not a dsn";
  EXPECT_THROW(make_repository(config), core::Error);
}

TEST(Factory, CorruptFileThrows) {
  TempDir dir;
  write_all(dir.path() / "db.json", "not json");
  StorageConfig config;
  config.file_path = (dir.path() / "db.json").string();
  EXPECT_THROW(make_repository(config), core::Error);
}

}  // namespace
}  // namespace metrics::storage::testing
