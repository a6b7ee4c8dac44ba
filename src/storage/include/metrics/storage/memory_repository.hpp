// In-memory storage: the series and the classic values (repository.hpp) in
// a sharded hash map so that many concurrent writers of different (and the
// same) names do not serialize on one lock. Everything of one type and name
// (its classic value, its unlabelled series, its labelled series) lives in
// one shard, so an update locks one shard whatever its labels; a batch is
// applied atomically by locking every shard it touches, in shard order.
//
//   storage::MemoryRepository repo;
//   auto stored = storage::apply_sync(repo, {core::Update::gauge("Alloc", 1.5)}, now_ms);
//
// Thread-safe. Callbacks complete inline, on the calling thread.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "metrics/storage/repository.hpp"

namespace metrics::storage {

class MemoryRepository final : public Repository {
 public:
  explicit MemoryRepository(std::size_t shards = 64);
  ~MemoryRepository() override;

  void apply(std::vector<core::Update> batch, std::int64_t received_ms,
             Callback<Applied> done) override;
  void get(core::SeriesKey key, Callback<std::optional<core::Point>> done) override;
  void get_classic(core::MetricKey key, Callback<std::optional<core::Point>> done) override;
  void list(Callback<std::vector<core::Point>> done) override;
  void list_series(Callback<std::vector<core::Point>> done) override;
  void expire(std::int64_t cutoff_ms, Callback<std::vector<core::SeriesKey>> done) override;
  void ping(Callback<bool> done) override;
  void close() override {}

  // Synchronous forms, used by the file storage built on top of this one.
  // apply_now throws core::InvalidInput on overflow and then changes nothing.
  Applied apply_now(std::vector<core::Update> batch, std::int64_t received_ms);
  // apply_now with `also` run while the batch's shards are still locked,
  // after the batch applied: what it does (the file storage commits the
  // batch's idempotency key) is one step with the batch for a reader that
  // uses contents_now(also).
  Applied apply_now(std::vector<core::Update> batch, std::int64_t received_ms,
                    const std::function<void()>& also);
  [[nodiscard]] std::optional<core::Point> get_now(const core::SeriesKey& key) const;
  [[nodiscard]] std::optional<core::Point> get_classic_now(const core::MetricKey& key) const;
  [[nodiscard]] std::vector<core::Point> list_now() const;
  [[nodiscard]] std::vector<core::Point> list_series_now() const;
  // Both tables from one instant (no batch half in), each sorted as above.
  struct Contents {
    std::vector<core::Point> classic;
    std::vector<core::Point> series;
  };
  [[nodiscard]] Contents contents_now() const;
  // contents_now with `also` run while every shard is locked.
  [[nodiscard]] Contents contents_now(const std::function<void()>& also) const;
  // Removes the series last written before cutoff_ms and returns their keys.
  std::vector<core::SeriesKey> expire_now(std::int64_t cutoff_ms);
  // The keys expire_now(cutoff_ms) would remove, removing nothing.
  [[nodiscard]] std::vector<core::SeriesKey> expired_keys_now(std::int64_t cutoff_ms) const;
  // Removes these series (absent ones are skipped); classic values stay.
  void remove_now(std::span<const core::SeriesKey> keys);
  // Sets series and classic values as given (inserting the missing ones),
  // atomically for readers; for a writer that computed them itself (the
  // write-ahead log). A series' timestamp_ms is kept as given.
  void store_now(std::span<const core::Point> series, std::span<const core::Point> classic);
  // Replaces the whole content (used when restoring from a file).
  void reset(std::span<const core::Point> classic, std::span<const core::Point> series);

 private:
  struct Shard;
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace metrics::storage
