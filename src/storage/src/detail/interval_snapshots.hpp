// File storage with store_interval > 0: updates complete inline in memory,
// and a background thread writes a JSON snapshot of the whole content every
// interval when something changed, and once more at close(). The interval
// is timed by the clock.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <thread>

#include "detail/file_mode.hpp"
#include "metrics/core/clock.hpp"
#include "metrics/storage/file_repository.hpp"
#include "metrics/storage/memory_repository.hpp"

namespace metrics::storage::detail {

class IntervalSnapshots final : public FileMode {
 public:
  IntervalSnapshots(const FileOptions& options, MemoryRepository& mem, KeyStore& keys);
  ~IntervalSnapshots() override;  // calls close()

  void apply(std::vector<core::Update> batch, std::int64_t received_ms,
             Callback<Applied> done) override;
  void apply_once(std::vector<core::Update> batch, std::int64_t received_ms, Guard guard,
                  Callback<Applied> done) override;
  void expire(std::int64_t cutoff_ms, Callback<std::vector<core::SeriesKey>> done) override;
  [[nodiscard]] bool healthy() const override { return healthy_.load(std::memory_order_relaxed); }
  void close() override;

 private:
  void apply_with(std::vector<core::Update> batch, std::int64_t received_ms, const Guard* guard,
                  Callback<Applied> done);
  void run();
  void write_snapshot(bool always);

  const FileOptions& opt_;
  MemoryRepository& mem_;
  KeyStore& keys_;
  std::shared_ptr<core::Clock> clock_;
  std::atomic<std::uint64_t> changes_{0};
  std::uint64_t written_changes_ = 0;  // timer thread, then close()
  std::atomic<bool> healthy_{true};
  std::atomic<bool> closed_flag_{false};  // closed_, readable without mu_
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  std::thread thread_;
};

}  // namespace metrics::storage::detail
