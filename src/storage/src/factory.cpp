#include "metrics/storage/factory.hpp"

#include "metrics/storage/memory_repository.hpp"

namespace metrics::storage {

std::string describe(const StorageConfig& config) {
  (void)config;
  return "memory";
}

std::unique_ptr<Repository> make_repository(const StorageConfig& config) {
  (void)config;
  return std::make_unique<MemoryRepository>();
}

}  // namespace metrics::storage
