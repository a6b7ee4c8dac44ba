// The clock seam: everything that reads the time, sleeps, or waits with a
// deadline asks a Clock, so tests can set the time instead of sleeping.
//
//   core::Clock& clock = *options.clock;            // core::real_clock() in production
//   const auto deadline = clock.steady_now() + std::chrono::seconds{1};
//   std::unique_lock lock(mu);
//   clock.wait_until(cv, lock, deadline, [&] { return stopping; });
//
// In a test:
//
//   auto clock = std::make_shared<core::ManualClock>();
//   ... start something that waits one second on `clock` ...
//   clock->await_waiter();                          // it is waiting now
//   clock->advance(std::chrono::seconds{1});        // and wakes up
//
// Thread-safety: every member of RealClock and ManualClock may be called from
// any number of threads at once. wait_until() must be called with `lock`
// holding the mutex that guards `pred`'s state, as with
// std::condition_variable.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>

namespace metrics::core {

class Clock {
 public:
  using SystemTime = std::chrono::system_clock::time_point;
  using SteadyTime = std::chrono::steady_clock::time_point;
  using Duration = std::chrono::steady_clock::duration;

  Clock() = default;
  Clock(const Clock&) = delete;
  Clock& operator=(const Clock&) = delete;
  virtual ~Clock() = default;

  // Wall-clock time, for timestamps shown to people or stored.
  [[nodiscard]] virtual SystemTime system_now() const = 0;
  // Monotonic time, for intervals, deadlines and rate limits.
  [[nodiscard]] virtual SteadyTime steady_now() const = 0;

  // Blocks the calling thread until steady_now() >= deadline.
  virtual void sleep_until(SteadyTime deadline) = 0;
  void sleep_for(Duration d) { sleep_until(steady_now() + d); }

  // Waits on `cv` (releasing `lock` meanwhile) until pred() holds or
  // steady_now() >= deadline; returns pred(). Wakes up when `cv` is
  // notified, like std::condition_variable::wait_until.
  virtual bool wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                          SteadyTime deadline, const std::function<bool()>& pred) = 0;
  bool wait_for(std::condition_variable& cv, std::unique_lock<std::mutex>& lock, Duration d,
                const std::function<bool()>& pred) {
    return wait_until(cv, lock, steady_now() + d, pred);
  }
};

// std::chrono::system_clock and steady_clock, and real sleeps.
class RealClock final : public Clock {
 public:
  [[nodiscard]] SystemTime system_now() const override;
  [[nodiscard]] SteadyTime steady_now() const override;
  void sleep_until(SteadyTime deadline) override;
  bool wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                  SteadyTime deadline, const std::function<bool()>& pred) override;
};

// The process-wide real clock (never destroyed before its users).
[[nodiscard]] std::shared_ptr<Clock> real_clock();

// A clock that moves only when a test says so. Both times start at a fixed
// point (system time 2026-01-01T00:00:00Z) and advance() moves them together.
// Sleeps and waits with a deadline block until the time is advanced past
// the deadline (or, for wait_until, until the predicate holds after a
// notification); a waiting thread notices an advance within about a
// millisecond of real time.
class ManualClock final : public Clock {
 public:
  ManualClock();

  [[nodiscard]] SystemTime system_now() const override;
  [[nodiscard]] SteadyTime steady_now() const override;
  void sleep_until(SteadyTime deadline) override;
  bool wait_until(std::condition_variable& cv, std::unique_lock<std::mutex>& lock,
                  SteadyTime deadline, const std::function<bool()>& pred) override;

  // Moves both times forward by d (d >= 0) and wakes the sleepers.
  void advance(Duration d);
  // Sets the wall-clock time (steady time is unchanged).
  void set_system(SystemTime t);

  // How many threads are sleeping or waiting with a deadline right now.
  [[nodiscard]] std::size_t waiters() const;
  // Blocks (in real time, at most `timeout`) until some thread sleeps or
  // waits on a deadline later than `after`; returns the earliest such
  // deadline, or nullopt on timeout.
  std::optional<SteadyTime> await_waiter(SteadyTime after = SteadyTime::min(),
                                         std::chrono::milliseconds timeout = std::chrono::seconds{
                                             10});

 private:
  class Registration;
  mutable std::mutex mu_;
  std::condition_variable changed_;  // time advanced or a waiter came or went
  SystemTime system_;
  SteadyTime steady_;
  std::multiset<SteadyTime> deadlines_;
};

}  // namespace metrics::core
