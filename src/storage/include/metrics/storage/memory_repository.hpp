// In-memory storage: a sharded hash map so that many concurrent writers of
// different (and the same) names do not serialize on one lock. A batch is
// applied atomically by locking every shard it touches, in shard order.
//
//   storage::MemoryRepository repo;
//   auto stored = storage::apply_sync(repo, {core::Metric::gauge("Alloc", 1.5)});
//
// Thread-safe. Callbacks complete inline, on the calling thread.
#pragma once

#include <memory>
#include <vector>

#include "metrics/storage/repository.hpp"

namespace metrics::storage {

class MemoryRepository final : public Repository {
 public:
  explicit MemoryRepository(std::size_t shards = 64);
  ~MemoryRepository() override;

  void apply(std::vector<core::Metric> batch, Callback<std::vector<core::Metric>> done) override;
  void get(core::MetricKey key, Callback<std::optional<core::Metric>> done) override;
  void list(Callback<std::vector<core::Metric>> done) override;
  void ping(Callback<bool> done) override;
  void close() override {}

  // Synchronous forms, used by the file storage built on top of this one.
  // apply_now throws core::InvalidInput on overflow and then changes nothing.
  std::vector<core::Metric> apply_now(const std::vector<core::Metric>& batch);
  [[nodiscard]] std::optional<core::Metric> get_now(const core::MetricKey& key) const;
  [[nodiscard]] std::vector<core::Metric> list_now() const;
  // Replaces the whole content (used when restoring from a file).
  void reset(const std::vector<core::Metric>& metrics);

 private:
  struct Shard;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace metrics::storage
