// Group commit's short wait for more work, shared by the file and PostgreSQL
// storages.
#pragma once

#include <chrono>
#include <cstddef>
#include <mutex>
#include <thread>

namespace metrics::storage::detail {

// Waits while a queue keeps growing, briefly: at most 1 ms, in 50 µs quiet
// steps, and not past `cap` entries or once `stopping()` says so. Clients
// answered by the last group come back one after the other; without this the
// next group would take the first few, and the rest would wait for a whole
// further commit (an fdatasync, a PostgreSQL round trip). A lone request
// waits one quiet step. `lock` holds the mutex guarding the queue; it is
// released while sleeping.
template <class Size, class Stopping>
void linger(std::unique_lock<std::mutex>& lock, Size size, std::size_t cap, Stopping stopping) {
  constexpr auto kStep = std::chrono::microseconds{50};
  constexpr auto kMax = std::chrono::microseconds{1000};
  const auto deadline = std::chrono::steady_clock::now() + kMax;
  std::size_t seen = 0;
  while (!stopping() && size() != seen && size() < cap &&
         std::chrono::steady_clock::now() < deadline) {
    seen = size();
    lock.unlock();
    std::this_thread::sleep_for(kStep);
    lock.lock();
  }
}

}  // namespace metrics::storage::detail
