// The counting shim, linked into this test program as metrics-agent links
// it: each test counts exactly the allocations it makes.
#include <gtest/gtest.h>
#include <malloc.h>

#include <cstdlib>
#include <memory>
#include <thread>
#include <vector>

#include "alloc_shim.h"
#include "allocator_stats.hpp"

namespace {

// Keeps the compiler from pairing up and removing a malloc and its free.
void escape(void* p) {
  asm volatile("" : : "g"(p) : "memory");
}

struct Delta {
  metrics_agent_alloc_counts start{};
  Delta() { metrics_agent_read_alloc_counts(&start); }
  [[nodiscard]] metrics_agent_alloc_counts now() const {
    metrics_agent_alloc_counts c{};
    metrics_agent_read_alloc_counts(&c);
    return {c.mallocs - start.mallocs, c.frees - start.frees,
            c.allocated_bytes - start.allocated_bytes};
  }
};

TEST(ShimTest, MallocAndFree) {
  Delta d;
  std::uint64_t asked = 0;
  for (std::size_t i = 0; i < 1000; ++i) {
    void* p = std::malloc(16 + i);
    escape(p);
    asked += 16 + i;
    std::free(p);
  }
  std::free(nullptr);
  const auto c = d.now();
  EXPECT_EQ(c.mallocs, 1000U);
  EXPECT_EQ(c.frees, 1000U);
  EXPECT_GE(c.allocated_bytes, asked);
  EXPECT_LE(c.allocated_bytes, asked + 1000 * 32);
}

TEST(ShimTest, EveryEntryPoint) {
  Delta d;
  void* a = std::calloc(10, 10);
  void* b = std::aligned_alloc(64, 128);
  void* c = memalign(32, 100);
  void* e = nullptr;
  ASSERT_EQ(posix_memalign(&e, 64, 200), 0);
  void* f = valloc(100);
  for (void* p : {a, b, c, e, f})
    escape(p);
  auto counts = d.now();
  EXPECT_EQ(counts.mallocs, 5U);
  EXPECT_EQ(counts.frees, 0U);
  for (void* p : {a, b, c, e, f})
    std::free(p);
  counts = d.now();
  EXPECT_EQ(counts.frees, 5U);
}

TEST(ShimTest, ReallocCountsAFreeAndAMalloc) {
  Delta d;
  void* p = std::realloc(nullptr, 10);  // a malloc
  escape(p);
  p = std::realloc(p, 100000);  // old block released, new one allocated
  escape(p);
  auto c = d.now();
  EXPECT_EQ(c.mallocs, 2U);
  EXPECT_EQ(c.frees, 1U);
  EXPECT_GE(c.allocated_bytes, 100010U);
  void* q = reallocarray(nullptr, 10, 10);
  escape(q);
  std::free(q);
  std::free(p);
  c = d.now();
  EXPECT_EQ(c.mallocs, 3U);
  EXPECT_EQ(c.frees, 3U);
}

TEST(ShimTest, NewAndDeleteGoThroughMalloc) {
  Delta d;
  for (int i = 0; i < 100; ++i) {
    auto p = std::make_unique<std::vector<int>>(100);
    escape(p->data());
  }
  const auto c = d.now();
  EXPECT_EQ(c.mallocs, 200U);
  EXPECT_EQ(c.frees, 200U);
}

TEST(ShimTest, ThreadsAreCountedExactly) {
  Delta d;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([] {
      for (int i = 0; i < 10000; ++i) {
        void* p = std::malloc(32);
        escape(p);
        std::free(p);
      }
    });
  }
  for (auto& t : threads)
    t.join();
  const auto c = d.now();
  // std::thread and glibc allocate a few blocks per thread (its state, TLS
  // bookkeeping), some kept for reuse after the thread ends.
  EXPECT_GE(c.frees, 40000U);
  EXPECT_GE(c.mallocs, c.frees);
  EXPECT_LE(c.mallocs, 40000U + 4 * 8);
}

TEST(ShimTest, TheAgentFindsTheShim) {
  metrics::agent::detail::AllocatorCollector collector;
  EXPECT_TRUE(collector.has_shim());
  metrics::agent::detail::Metrics out;
  collector.collect(out);
  bool total_alloc = false;
  for (const auto& m : out)
    total_alloc |= m.id == "TotalAlloc" && m.value > 0;
  EXPECT_TRUE(total_alloc);
}

}  // namespace
