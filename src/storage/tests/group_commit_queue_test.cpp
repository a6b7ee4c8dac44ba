#include "detail/group_commit_queue.hpp"

#include <gtest/gtest.h>

#include <future>
#include <mutex>
#include <string>
#include <thread>

#include "metrics/core/clock.hpp"

namespace metrics::storage::detail {
namespace {

using namespace std::chrono_literals;
using Queue = GroupCommitQueue<std::string>;

TEST(GroupCommitQueue, IsBoundedAndLeavesARefusedItemAlone) {
  core::ManualClock clock;
  Queue q(2, clock);
  std::string a = "a";
  std::string b = "b";
  std::string c = "c";
  EXPECT_TRUE(q.push(std::move(a)));
  EXPECT_TRUE(q.push(std::move(b)));
  EXPECT_FALSE(q.push(std::move(c)));
  EXPECT_EQ(c, "c");
  EXPECT_EQ(q.size(), 2u);
  // Requests the owner counts against the same bound.
  Queue shared(3, clock);
  std::string d = "d";
  EXPECT_FALSE(shared.push(std::move(d), 3));
  EXPECT_TRUE(shared.push(std::move(d), 2));
}

TEST(GroupCommitQueue, TakesOldestFirstUpToTheMaximum) {
  core::ManualClock clock;
  Queue q(10, clock);
  for (const char* s : {"1", "2", "3"})
    q.push(s);
  EXPECT_EQ(q.take(2), (std::vector<std::string>{"1", "2"}));
  q.push("4");
  EXPECT_EQ(q.take_all(), (std::vector<std::string>{"3", "4"}));
  EXPECT_TRUE(q.empty());
}

// The consumer's side of a queue guarded by `mu`, as the storages use it.
struct Guarded {
  core::ManualClock clock;
  std::mutex mu;
  Queue q{100, clock};
  bool stopping = false;

  void push(std::string s) {
    std::lock_guard lock(mu);
    q.push(std::move(s));
  }
  std::future<std::vector<std::string>> take_group(std::size_t max) {
    return std::async(std::launch::async, [this, max] {
      std::unique_lock lock(mu);
      return q.take_group(lock, max, [this] { return stopping; });
    });
  }
};

TEST(GroupCommitQueue, LingersWhileTheQueueGrowsAndStopsAfterAQuietStep) {
  Guarded g;
  g.push("first");
  auto group = g.take_group(100);
  // A lone request waits one quiet step of the clock...
  const auto step1 = g.clock.await_waiter();
  ASSERT_TRUE(step1);
  EXPECT_EQ(*step1 - g.clock.steady_now(), Queue::kLingerStep);
  // ...during which a second one comes: the wait goes on for another step.
  g.push("second");
  g.clock.advance(Queue::kLingerStep);
  const auto step2 = g.clock.await_waiter(*step1);
  ASSERT_TRUE(step2);
  EXPECT_EQ(group.wait_for(5ms), std::future_status::timeout);
  // A quiet step: the group is taken, both together.
  g.clock.advance(Queue::kLingerStep);
  EXPECT_EQ(group.get(), (std::vector<std::string>{"first", "second"}));
}

TEST(GroupCommitQueue, LingersAtMostTheMaximumInTotal) {
  Guarded g;
  g.push("0");
  auto group = g.take_group(1000);
  auto after = core::Clock::SteadyTime::min();
  int pushed = 1;
  while (group.wait_for(0ms) != std::future_status::ready) {
    const auto step = g.clock.await_waiter(after, 2s);
    if (!step) break;
    after = *step;
    g.push(std::to_string(pushed++));  // always growing
    g.clock.advance(Queue::kLingerStep);
  }
  ASSERT_EQ(group.wait_for(2s), std::future_status::ready);
  const auto taken = group.get();
  EXPECT_EQ(static_cast<int>(taken.size()), pushed);
  EXPECT_EQ(pushed, 1 + Queue::kLingerMax / Queue::kLingerStep);
}

TEST(GroupCommitQueue, DoesNotLingerPastTheMaximumGroupOrWhenStopping) {
  Guarded g;
  g.push("a");
  g.push("b");
  // A full group is taken at once (the clock never moves).
  EXPECT_EQ(g.take_group(1).get(), std::vector<std::string>{"a"});
  g.stopping = true;
  EXPECT_EQ(g.take_group(10).get(), std::vector<std::string>{"b"});
  EXPECT_EQ(g.clock.waiters(), 0u);
}

}  // namespace
}  // namespace metrics::storage::detail
