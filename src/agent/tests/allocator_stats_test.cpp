#include "allocator_stats.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <map>
#include <string>

#include "memstats.hpp"

namespace metrics::agent::detail {
namespace {

double find(const Metrics& out, const std::string& id) {
  for (const auto& m : out) {
    if (m.id == id) return m.value;
  }
  ADD_FAILURE() << id << " not sent";
  return -1;
}

bool has(const Metrics& out, const std::string& id) {
  for (const auto& m : out) {
    if (m.id == id) return true;
  }
  return false;
}

TEST(AllocatorStatsTest, GlibcMapping) {
  GlibcHeap h;
  h.arena = 1000;
  h.uordblks = 600;
  h.fordblks = 400;
  h.hblkhd = 5000;
  h.hblks = 2;
  h.keepcost = 128;
  Metrics out;
  glibc_metrics(h, out);
  EXPECT_EQ(find(out, "HeapAlloc"), 5600);
  EXPECT_EQ(find(out, "Alloc"), 5600);
  EXPECT_EQ(find(out, "HeapInuse"), 5600);
  EXPECT_EQ(find(out, "HeapSys"), 6000);
  EXPECT_EQ(find(out, "HeapIdle"), 400);
  EXPECT_EQ(find(out, "GlibcMmappedChunks"), 2);
  EXPECT_EQ(find(out, "GlibcTopReleasable"), 128);
  // glibc cannot tell what it returned to the OS, nor count allocations.
  EXPECT_FALSE(has(out, "HeapReleased"));
  EXPECT_FALSE(has(out, "Mallocs"));
}

// A fake mallctl over a table of values.
std::map<std::string, std::uint64_t> g_jemalloc;
int g_epoch_writes = 0;
int fake_mallctl(const char* name, void* old, std::size_t* oldlen, void* newp, std::size_t) {
  if (std::strcmp(name, "epoch") == 0) {
    if (newp != nullptr) ++g_epoch_writes;
    return 0;
  }
  const auto it = g_jemalloc.find(name);
  if (it == g_jemalloc.end()) return 2;  // ENOENT
  if (*oldlen == sizeof(std::uint64_t)) std::memcpy(old, &it->second, sizeof(std::uint64_t));
  return 0;
}

TEST(AllocatorStatsTest, JemallocAdvancesTheEpochAndMapsStats) {
  g_jemalloc = {{"stats.allocated", 100},
                {"stats.active", 150},
                {"stats.mapped", 400},
                {"stats.retained", 600},
                {"stats.resident", 300},
                {"stats.metadata", 20},
                {"stats.arenas.4096.tcache_bytes", 12},
                {"stats.arenas.4096.small.nmalloc", 10},
                {"stats.arenas.4096.small.ndalloc", 4},
                {"stats.arenas.4096.large.nmalloc", 5},
                {"stats.arenas.4096.large.ndalloc", 1}};
  g_epoch_writes = 0;
  Metrics out;
  ASSERT_TRUE(jemalloc_metrics(&fake_mallctl, true, out));
  EXPECT_EQ(g_epoch_writes, 1);
  EXPECT_EQ(find(out, "HeapAlloc"), 100);
  EXPECT_EQ(find(out, "HeapInuse"), 150);
  EXPECT_EQ(find(out, "HeapSys"), 1000);
  EXPECT_EQ(find(out, "HeapIdle"), 850);
  EXPECT_EQ(find(out, "HeapReleased"), 600);
  EXPECT_EQ(find(out, "JemallocResident"), 300);
  EXPECT_EQ(find(out, "JemallocMetadata"), 20);
  EXPECT_EQ(find(out, "MSpanInuse"), 20);
  EXPECT_EQ(find(out, "MSpanSys"), 20);
  EXPECT_EQ(find(out, "MCacheInuse"), 12);
  EXPECT_EQ(find(out, "MCacheSys"), 12);
  EXPECT_EQ(find(out, "Mallocs"), 15);
  EXPECT_EQ(find(out, "Frees"), 5);
  EXPECT_EQ(find(out, "HeapObjects"), 10);
  EXPECT_FALSE(has(out, "TotalAlloc"));  // jemalloc keeps no byte total

  Metrics without_counts;
  ASSERT_TRUE(jemalloc_metrics(&fake_mallctl, false, without_counts));
  EXPECT_FALSE(has(without_counts, "Mallocs"));
}

TEST(AllocatorStatsTest, JemallocWithoutStatsSendsNothing) {
  g_jemalloc.clear();
  Metrics out;
  EXPECT_FALSE(jemalloc_metrics(&fake_mallctl, true, out));
  EXPECT_TRUE(out.empty());
}

int fake_tcmalloc(const char* name, std::size_t* value) {
  static const std::map<std::string, std::size_t> props{{"generic.current_allocated_bytes", 100},
                                                        {"generic.heap_size", 1000},
                                                        {"tcmalloc.pageheap_free_bytes", 200},
                                                        {"tcmalloc.pageheap_unmapped_bytes", 300},
                                                        {"tcmalloc.thread_cache_free_bytes", 7}};
  const auto it = props.find(name);
  if (it == props.end()) return 0;
  *value = it->second;
  return 1;
}

TEST(AllocatorStatsTest, TcmallocMapping) {
  Metrics out;
  ASSERT_TRUE(tcmalloc_metrics(&fake_tcmalloc, out));
  EXPECT_EQ(find(out, "HeapAlloc"), 100);
  EXPECT_EQ(find(out, "HeapSys"), 1000);
  EXPECT_EQ(find(out, "HeapIdle"), 500);
  EXPECT_EQ(find(out, "HeapInuse"), 500);
  EXPECT_EQ(find(out, "HeapReleased"), 300);
  EXPECT_EQ(find(out, "TcmallocThreadCacheFree"), 7);
  EXPECT_EQ(find(out, "MCacheInuse"), 7);
  EXPECT_EQ(find(out, "MCacheSys"), 7);
  EXPECT_FALSE(has(out, "TcmallocCentralCacheFree"));
}

void fake_mi_process_info(std::size_t* elapsed, std::size_t* user, std::size_t* system,
                          std::size_t* rss, std::size_t* peak_rss, std::size_t* commit,
                          std::size_t* peak_commit, std::size_t* faults) {
  *elapsed = *user = *system = *rss = *peak_rss = *faults = 1;
  *commit = 4096;
  *peak_commit = 8192;
}

TEST(AllocatorStatsTest, MimallocMapping) {
  Metrics out;
  mimalloc_metrics(&fake_mi_process_info, out);
  EXPECT_EQ(find(out, "MimallocCommitted"), 4096);
  EXPECT_EQ(find(out, "MimallocPeakCommitted"), 8192);
  EXPECT_EQ(find(out, "HeapSys"), 4096);
  EXPECT_EQ(find(out, "HeapInuse"), 4096);
  EXPECT_EQ(find(out, "Alloc"), 4096);
}

TEST(AllocatorStatsTest, ShimCounts) {
  Metrics out;
  shim_metrics({10, 4, 4096}, out);
  EXPECT_EQ(find(out, "Mallocs"), 10);
  EXPECT_EQ(find(out, "Frees"), 4);
  EXPECT_EQ(find(out, "HeapObjects"), 6);
  EXPECT_EQ(find(out, "TotalAlloc"), 4096);
}

#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kSanitizerAllocator = true;
#else
constexpr bool kSanitizerAllocator = false;
#endif

TEST(AllocatorStatsTest, GlibcHeapMovesAfterAllocating) {
  if (kSanitizerAllocator) GTEST_SKIP() << "the sanitizer's allocator replaces glibc's heap";
  AllocatorCollector collector;
  ASSERT_EQ(collector.allocator(), Allocator::glibc);
  EXPECT_FALSE(collector.has_shim());
  Metrics before;
  collector.collect(before);
  // Many small blocks (arena) and one big one (its own mmap).
  std::vector<void*> blocks;
  for (int i = 0; i < 1000; ++i)
    blocks.push_back(std::malloc(1000));
  void* big = std::malloc(8 << 20);
  std::memset(big, 1, 8 << 20);
  Metrics during;
  collector.collect(during);
  EXPECT_GE(find(during, "HeapAlloc") - find(before, "HeapAlloc"), 1000 * 1000 + (8 << 20));
  EXPECT_GE(find(during, "GlibcMmapped") - find(before, "GlibcMmapped"), 8 << 20);
  for (void* p : blocks)
    std::free(p);
  std::free(big);
  Metrics after;
  collector.collect(after);
  EXPECT_LT(find(after, "HeapAlloc"), find(during, "HeapAlloc"));
}

}  // namespace
}  // namespace metrics::agent::detail

namespace metrics::agent::detail {
namespace {

// Run by the ctest variants that preload jemalloc, tcmalloc or mimalloc
// (METRICS_AGENT_EXPECT_ALLOCATOR names it): the real entry points are
// found and report the heap.
TEST(AllocatorLiveTest, PreloadedAllocatorIsDetectedAndRead) {
  const char* expect = std::getenv("METRICS_AGENT_EXPECT_ALLOCATOR");
  if (expect == nullptr) GTEST_SKIP() << "only in the allocator-preloading ctest variants";
  AllocatorCollector collector;
  ASSERT_EQ(to_string(collector.allocator()), expect);
  std::vector<char*> blocks;
  for (int i = 0; i < 64; ++i) {
    blocks.push_back(static_cast<char*>(std::malloc(64 << 10)));
    std::memset(blocks.back(), 1, 64 << 10);
  }
  Metrics out;
  collector.collect(out);
  const std::string name(expect);
  if (name == "mimalloc") {
    EXPECT_GE(find(out, "MimallocCommitted"), 4 << 20);
  }
  EXPECT_GE(find(out, "HeapAlloc"), 4 << 20);
  EXPECT_GE(find(out, "HeapSys"), find(out, "HeapAlloc"));
  if (name != "mimalloc") {
    // What the allocator caches and its bookkeeping are measured, not filled in.
    EXPECT_TRUE(has(out, "MCacheInuse"));
  }
  if (name == "jemalloc") {
    EXPECT_GT(find(out, "MSpanSys"), 0);
  }
  complete_memstats(measure_thread_stacks(), out);
  for (const auto memstat : kMemStatsNames)
    EXPECT_TRUE(has(out, std::string(memstat))) << memstat;
  EXPECT_GE(find(out, "Sys"), find(out, "HeapSys") + find(out, "StackSys"));
  if (name == "jemalloc") {
    EXPECT_GE(find(out, "Mallocs"), 64);
    EXPECT_GE(find(out, "HeapObjects"), 64);
  }
  EXPECT_FALSE(has(out, "GlibcArena"));
  for (char* p : blocks)
    std::free(p);
}

}  // namespace
}  // namespace metrics::agent::detail
