// The bounded queue behind group commit, shared by the file storage (one
// writer thread) and the PostgreSQL storage (a pool of workers): requests
// wait here until a writer takes a whole group of them and makes the group
// durable with one operation (one fdatasync, one COMMIT).
//
//   std::unique_lock lock(mu);
//   if (!queue.push(std::move(req))) fail(Overloaded);      // full
//   ...
//   cv.wait(lock, [&] { return stopping || !queue.empty(); });
//   auto group = queue.take_group(lock, max_group, [&] { return stopping; });
//
// Not thread-safe on its own: the owner guards it with its own mutex (so
// that it can wait for the queue and for its other work under one lock), and
// every call must hold that mutex. take_group() releases it while lingering.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>
#include <utility>
#include <vector>

#include "metrics/core/clock.hpp"

namespace metrics::storage::detail {

template <class T>
class GroupCommitQueue {
 public:
  // The linger: at most kLingerMax in total, in kLingerStep quiet steps.
  static constexpr std::chrono::microseconds kLingerStep{50};
  static constexpr std::chrono::microseconds kLingerMax{1000};

  GroupCommitQueue(std::size_t capacity, core::Clock& clock)
      : capacity_(capacity == 0 ? 1 : capacity), clock_(clock) {}

  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
  [[nodiscard]] std::size_t capacity() const noexcept { return capacity_; }
  // Non-empty groups take_group() returned, and the items in them.
  [[nodiscard]] std::uint64_t groups() const noexcept { return groups_; }
  [[nodiscard]] std::uint64_t grouped() const noexcept { return grouped_; }

  // Queues `item` unless the queue, with `also_waiting` other requests the
  // owner counts against the same bound, is full; false (item untouched)
  // then.
  bool push(T&& item, std::size_t also_waiting = 0) {
    if (items_.size() + also_waiting >= capacity_) return false;
    items_.push_back(std::move(item));
    return true;
  }

  // Takes the next group: up to `max` items, oldest first, after waiting
  // briefly while the queue keeps growing (not past `max` items, and not
  // once stopping() says so). Clients answered by the last group come back
  // one after the other; without the wait the next group would take the
  // first few, and the rest would wait for a whole further commit. A lone
  // request waits one quiet step. The time comes from the clock. May return
  // nothing when another taker emptied the queue during the wait.
  template <class Stopping>
  std::vector<T> take_group(std::unique_lock<std::mutex>& lock, std::size_t max,
                            Stopping&& stopping) {
    if (max == 0) max = 1;
    const auto deadline = clock_.steady_now() + kLingerMax;
    std::size_t seen = 0;
    while (!stopping() && items_.size() != seen && items_.size() < max &&
           clock_.steady_now() < deadline) {
      seen = items_.size();
      lock.unlock();
      clock_.sleep_for(kLingerStep);
      lock.lock();
    }
    auto group = take(max);
    if (!group.empty()) {
      ++groups_;
      grouped_ += group.size();
    }
    return group;
  }

  // Takes up to `max` items at once, oldest first, without waiting.
  std::vector<T> take(std::size_t max) {
    const auto n = std::min(items_.size(), max);
    std::vector<T> out;
    out.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      out.push_back(std::move(items_.front()));
      items_.pop_front();
    }
    return out;
  }

  // Takes everything (to fail it, for instance).
  std::vector<T> take_all() { return take(items_.size()); }

 private:
  std::size_t capacity_;
  core::Clock& clock_;
  std::deque<T> items_;
  std::uint64_t groups_ = 0;
  std::uint64_t grouped_ = 0;
};

}  // namespace metrics::storage::detail
