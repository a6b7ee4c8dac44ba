#include "metrics/core/clock.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <thread>

namespace metrics::core {
namespace {

using namespace std::chrono_literals;

TEST(ManualClock, MovesOnlyWhenAdvanced) {
  ManualClock clock;
  const auto steady = clock.steady_now();
  const auto system = clock.system_now();
  std::this_thread::sleep_for(2ms);
  EXPECT_EQ(clock.steady_now(), steady);
  EXPECT_EQ(clock.system_now(), system);
  clock.advance(1500ms);
  EXPECT_EQ(clock.steady_now() - steady, 1500ms);
  EXPECT_EQ(clock.system_now() - system, 1500ms);
  clock.advance(-1s);  // never backwards
  EXPECT_EQ(clock.steady_now() - steady, 1500ms);
}

TEST(ManualClock, SetSystemLeavesSteadyAlone) {
  ManualClock clock;
  const auto steady = clock.steady_now();
  const Clock::SystemTime t = std::chrono::sys_days{std::chrono::year{2030} / 6 / 1};
  clock.set_system(t);
  EXPECT_EQ(clock.system_now(), t);
  EXPECT_EQ(clock.steady_now(), steady);
}

TEST(ManualClock, SleepEndsWhenTheTimeIsAdvancedPastItsDeadline) {
  ManualClock clock;
  const auto start = clock.steady_now();
  std::atomic<bool> woke{false};
  std::thread sleeper([&] {
    clock.sleep_for(3s);
    woke = true;
  });
  const auto deadline = clock.await_waiter();
  ASSERT_TRUE(deadline);
  EXPECT_EQ(*deadline - start, 3s);
  EXPECT_EQ(clock.waiters(), 1u);
  clock.advance(2999ms);
  std::this_thread::sleep_for(5ms);
  EXPECT_FALSE(woke.load());
  clock.advance(1ms);
  sleeper.join();
  EXPECT_TRUE(woke.load());
  EXPECT_EQ(clock.waiters(), 0u);
}

TEST(ManualClock, WaitEndsAtTheDeadlineOrWhenThePredicateHolds) {
  ManualClock clock;
  std::mutex mu;
  std::condition_variable cv;
  bool flag = false;

  // Deadline first: the predicate never holds.
  auto timed_out = std::async(std::launch::async, [&] {
    std::unique_lock lock(mu);
    return clock.wait_for(cv, lock, 1s, [&] { return flag; });
  });
  ASSERT_TRUE(clock.await_waiter());
  EXPECT_EQ(timed_out.wait_for(5ms), std::future_status::timeout);
  clock.advance(1s);
  EXPECT_FALSE(timed_out.get());

  // Notification first: the time never reaches the deadline.
  auto notified = std::async(std::launch::async, [&] {
    std::unique_lock lock(mu);
    return clock.wait_for(cv, lock, 1h, [&] { return flag; });
  });
  ASSERT_TRUE(clock.await_waiter());
  {
    std::lock_guard lock(mu);
    flag = true;
  }
  cv.notify_all();
  EXPECT_TRUE(notified.get());
}

TEST(ManualClock, AwaitWaiterSkipsEarlierDeadlinesAndTimesOut) {
  ManualClock clock;
  EXPECT_FALSE(clock.await_waiter(Clock::SteadyTime::min(), 5ms));
  const auto start = clock.steady_now();
  std::thread a([&] { clock.sleep_for(1s); });
  ASSERT_EQ(clock.await_waiter(), start + 1s);
  EXPECT_FALSE(clock.await_waiter(start + 1s, 5ms));
  std::thread b([&] { clock.sleep_for(2s); });
  EXPECT_EQ(clock.await_waiter(start + 1s), start + 2s);
  clock.advance(2s);
  a.join();
  b.join();
}

TEST(RealClock, ReadsAndWaitsInRealTime) {
  auto clock = real_clock();
  const auto before = std::chrono::steady_clock::now();
  const auto now = clock->steady_now();
  EXPECT_GE(now, before);
  EXPECT_LE(now, std::chrono::steady_clock::now());
  clock->sleep_for(2ms);
  EXPECT_GE(std::chrono::steady_clock::now() - before, 2ms);
  std::mutex mu;
  std::condition_variable cv;
  std::unique_lock lock(mu);
  EXPECT_FALSE(clock->wait_for(cv, lock, 2ms, [] { return false; }));
  EXPECT_TRUE(clock->wait_for(cv, lock, 1h, [] { return true; }));
  EXPECT_EQ(real_clock().get(), clock.get());
}

}  // namespace
}  // namespace metrics::core
