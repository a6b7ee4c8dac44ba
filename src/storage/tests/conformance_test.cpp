// The Repository conformance suite against the storages that need no server:
// memory, file with a snapshot interval, file in synchronous mode.
#include "metrics/storage/file_repository.hpp"
#include "metrics/storage/memory_repository.hpp"
#include "repository_conformance.hpp"
#include "test_util.hpp"

namespace metrics::storage::testing {
namespace {

struct MemoryFactory {
  void SetUp() {}
  std::unique_ptr<Repository> make() { return std::make_unique<MemoryRepository>(); }
};

template <int IntervalMs>
struct FileFactory {
  void SetUp() {}
  std::unique_ptr<Repository> make() {
    return std::make_unique<FileRepository>(FileOptions{
        .path = dir.path() / "db.json", .store_interval = std::chrono::milliseconds{IntervalMs}});
  }
  TempDir dir;
};

using Storages = ::testing::Types<MemoryFactory, FileFactory<50>, FileFactory<0>>;

class StorageNames {
 public:
  template <class T>
  static std::string GetName(int) {
    if constexpr (std::is_same_v<T, MemoryFactory>) return "Memory";
    if constexpr (std::is_same_v<T, FileFactory<50>>) return "FileInterval";
    if constexpr (std::is_same_v<T, FileFactory<0>>) return "FileSync";
    return "Unknown";
  }
};

INSTANTIATE_TYPED_TEST_SUITE_P(Storage, RepositoryConformance, Storages, StorageNames);

}  // namespace
}  // namespace metrics::storage::testing
