// The original agent's MemStats names: the /proc parsing behind StackSys and
// StackInuse, the completion to all 27 names, and the live figures of this
// process (threads parked on a condition variable have measurable stacks).
#include "memstats.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <condition_variable>
#include <mutex>
#include <thread>

namespace metrics::agent::detail {
namespace {

double find(const Metrics& out, std::string_view name) {
  std::size_t seen = 0;
  double value = -1;
  for (const auto& m : out) {
    if (m.id == name) {
      ++seen;
      value = m.value;
    }
  }
  EXPECT_EQ(seen, 1U) << name;
  return value;
}

TEST(MemStatsTest, SyscallStackPointer) {
  EXPECT_EQ(parse_syscall_sp("202 0x7f0000001000 0x80 0x0 0x0 0x0 0x0 0x7ffd4a3b2c10 "
                             "0x7f1234567890\n"),
            std::uintptr_t{0x7ffd4a3b2c10});
  // Blocked outside a system call: "-1 sp pc".
  EXPECT_EQ(parse_syscall_sp("-1 0x7f00aa000ff0 0x55550000abcd\n"), std::uintptr_t{0x7f00aa000ff0});
  EXPECT_EQ(parse_syscall_sp("running\n"), std::nullopt);
  EXPECT_EQ(parse_syscall_sp(""), std::nullopt);
  EXPECT_EQ(parse_syscall_sp("1 zz 0x1\n"), std::nullopt);
}

TEST(MemStatsTest, StackRangesAreTheMainStackAndTheMappingsHoldingAStackPointer) {
  const std::string maps =
      "55d0c0000000-55d0c0021000 r-xp 00000000 08:01 123 /usr/bin/prog\n"
      "55d0c1000000-55d0c1200000 rw-p 00000000 00:00 0                          [heap]\n"
      "7f0000000000-7f0000001000 ---p 00000000 00:00 0 \n"
      "7f0000001000-7f0000801000 rw-p 00000000 00:00 0 \n"
      "7f0000801000-7f0000802000 ---p 00000000 00:00 0 \n"
      "7f0000802000-7f0001002000 rw-p 00000000 00:00 0 \n"
      "7f0002000000-7f0002100000 rw-p 00000000 00:00 0 \n"
      "7ffd4a300000-7ffd4a400000 rw-p 00000000 00:00 0                          [stack]\n";
  const std::vector<std::uintptr_t> sps{0x7f0000800f00, 0x7f0000800e00, 0x7f0001001000,
                                        0x55d0c1100000};
  EXPECT_EQ(stack_ranges(maps, sps), (std::vector<AddressRange>{{0x7f0000001000, 0x7f0000801000},
                                                                {0x7f0000802000, 0x7f0001002000},
                                                                {0x7ffd4a300000, 0x7ffd4a400000}}));
  EXPECT_TRUE(stack_ranges("garbage\n-\n", sps).empty());
}

TEST(MemStatsTest, CompletionAddsEveryNameOnceAndKeepsMeasuredOnes) {
  Metrics out{core::Update::gauge("HeapSys", 1000), core::Update::gauge("Alloc", 400),
              core::Update::gauge("MSpanSys", 30), core::Update::gauge("ProcessRSS", 5)};
  complete_memstats(ThreadStacks{.mapped = 8192, .resident = 4096, .threads_seen = 1}, out);
  for (const auto name : kMemStatsNames)
    find(out, name);  // exactly once each
  EXPECT_EQ(find(out, "Alloc"), 400);
  EXPECT_EQ(find(out, "MSpanSys"), 30);
  EXPECT_EQ(find(out, "StackSys"), 8192);
  EXPECT_EQ(find(out, "StackInuse"), 4096);
  EXPECT_EQ(find(out, "Sys"), 1000 + 8192);
  for (const char* gc : {"NumGC", "NumForcedGC", "PauseTotalNs", "LastGC", "GCCPUFraction",
                         "NextGC", "GCSys", "Lookups", "BuckHashSys"}) {
    EXPECT_EQ(find(out, gc), 0) << gc;
  }
  EXPECT_EQ(out.size(), kMemStatsNames.size() + 1);  // plus ProcessRSS
}

TEST(MemStatsTest, ParkedThreadsStacksAreMeasured) {
  const ThreadStacks before = measure_thread_stacks();
  EXPECT_GT(before.mapped, 0U);
  EXPECT_GT(before.resident, 0U);
  EXPECT_LE(before.resident, before.mapped);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return done; });
    });
  }
  // Each parked thread has its own stack mapping (glibc: 8 MiB by default).
  ThreadStacks during;
  for (int attempt = 0; attempt < 100; ++attempt) {
    during = measure_thread_stacks();
    if (during.threads_seen >= before.threads_seen + 4) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  {
    const std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  for (auto& t : threads)
    t.join();
  EXPECT_GE(during.threads_seen, before.threads_seen + 4);
  EXPECT_GE(during.mapped, before.mapped + 4 * 64 * 1024);
  EXPECT_GT(during.resident, before.resident);
  EXPECT_LE(during.resident, during.mapped);
}

TEST(MemStatsTest, StackMeterFindsNewThreadsAndForgetsExitedOnes) {
  StackMeter meter(std::chrono::hours{1});
  const auto now = std::chrono::steady_clock::now();
  const ThreadStacks before = meter.measure(now);
  EXPECT_GT(before.mapped, 0U);
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::vector<std::thread> threads;
  for (int i = 0; i < 2; ++i) {
    threads.emplace_back([&] {
      std::unique_lock lock(mu);
      cv.wait(lock, [&] { return done; });
    });
  }
  ThreadStacks during;
  for (int attempt = 0; attempt < 100; ++attempt) {
    during = meter.measure(now);
    if (during.threads_seen >= before.threads_seen + 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  }
  EXPECT_GE(during.threads_seen, before.threads_seen + 2);
  EXPECT_GT(during.mapped, before.mapped);
  {
    const std::lock_guard lock(mu);
    done = true;
  }
  cv.notify_all();
  for (auto& t : threads)
    t.join();
  const ThreadStacks after = meter.measure(now);
  // The exited threads' stacks are no longer counted (glibc may keep their
  // mappings cached for reuse; no thread's stack pointer is in them). Not
  // compared with `before`: another thread of the process (a sanitizer's)
  // may have been running then and parked now.
  EXPECT_LT(after.mapped, during.mapped);
  EXPECT_LT(after.threads_seen, during.threads_seen);
}

}  // namespace
}  // namespace metrics::agent::detail
