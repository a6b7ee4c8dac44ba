#include "allocator_stats.hpp"

#include <dlfcn.h>
#include <malloc.h>

#include <string>

namespace metrics::agent::detail {
namespace {

void gauge(Metrics& out, const char* name, std::uint64_t value) {
  out.push_back(core::Update::gauge(name, static_cast<double>(value)));
}

template <typename T>
bool read_mallctl(MallctlFn mallctl, const char* name, T& value) {
  std::size_t size = sizeof(T);
  return mallctl(name, &value, &size, nullptr, 0) == 0 && size == sizeof(T);
}

template <typename Fn>
Fn lookup(const char* name) noexcept {
  // The entry points are C functions; converting the object pointer dlsym
  // returns to a function pointer is the documented POSIX idiom.
  return reinterpret_cast<Fn>(dlsym(RTLD_DEFAULT, name));
}

}  // namespace

void glibc_metrics(const GlibcHeap& heap, Metrics& out) {
  // In use: the arenas' used bytes plus the chunks mmapped on their own.
  const std::uint64_t in_use = heap.uordblks + heap.hblkhd;
  gauge(out, "Alloc", in_use);
  gauge(out, "HeapAlloc", in_use);
  gauge(out, "HeapInuse", in_use);
  gauge(out, "HeapSys", heap.arena + heap.hblkhd);
  gauge(out, "HeapIdle", heap.fordblks);
  gauge(out, "GlibcArena", heap.arena);
  gauge(out, "GlibcMmapped", heap.hblkhd);
  gauge(out, "GlibcMmappedChunks", heap.hblks);
  gauge(out, "GlibcFreeChunks", heap.ordblks);
  gauge(out, "GlibcFastbinFree", heap.fsmblks);
  gauge(out, "GlibcTopReleasable", heap.keepcost);
}

bool jemalloc_metrics(MallctlFn mallctl, bool with_counts, Metrics& out) {
  // jemalloc refreshes its statistics only when the epoch advances.
  std::uint64_t epoch = 1;
  std::size_t epoch_size = sizeof(epoch);
  if (mallctl("epoch", &epoch, &epoch_size, &epoch, sizeof(epoch)) != 0) return false;
  std::size_t allocated = 0;
  std::size_t active = 0;
  std::size_t resident = 0;
  std::size_t mapped = 0;
  std::size_t retained = 0;
  std::size_t metadata = 0;
  if (!read_mallctl(mallctl, "stats.allocated", allocated) ||
      !read_mallctl(mallctl, "stats.active", active) ||
      !read_mallctl(mallctl, "stats.mapped", mapped)) {
    return false;
  }
  gauge(out, "Alloc", allocated);
  gauge(out, "HeapAlloc", allocated);
  gauge(out, "HeapInuse", active);
  const bool has_retained = read_mallctl(mallctl, "stats.retained", retained);
  // Go's HeapSys includes the released pages; jemalloc's "retained" are
  // mappings kept but returned to the OS, i.e. Go's HeapReleased.
  const std::uint64_t sys = mapped + (has_retained ? retained : 0);
  gauge(out, "HeapSys", sys);
  gauge(out, "HeapIdle", sys >= active ? sys - active : 0);
  if (has_retained) gauge(out, "HeapReleased", retained);
  gauge(out, "JemallocMapped", mapped);
  if (read_mallctl(mallctl, "stats.resident", resident)) gauge(out, "JemallocResident", resident);
  if (read_mallctl(mallctl, "stats.metadata", metadata)) {
    gauge(out, "JemallocMetadata", metadata);
    // jemalloc's bookkeeping (extent headers, radix tree, base blocks) is
    // what Go's span structures are; it lies inside the mapped bytes.
    gauge(out, "MSpanInuse", metadata);
    gauge(out, "MSpanSys", metadata);
  }
  // Bytes cached by the threads' caches, over every arena.
  if (std::size_t tcache = 0; read_mallctl(mallctl, "stats.arenas.4096.tcache_bytes", tcache)) {
    gauge(out, "MCacheInuse", tcache);
    gauge(out, "MCacheSys", tcache);
  }
  if (with_counts) {
    std::uint64_t small_malloc = 0;
    std::uint64_t small_free = 0;
    std::uint64_t large_malloc = 0;
    std::uint64_t large_free = 0;
    // 4096 is MALLCTL_ARENAS_ALL: the sum over every arena.
    if (read_mallctl(mallctl, "stats.arenas.4096.small.nmalloc", small_malloc) &&
        read_mallctl(mallctl, "stats.arenas.4096.small.ndalloc", small_free) &&
        read_mallctl(mallctl, "stats.arenas.4096.large.nmalloc", large_malloc) &&
        read_mallctl(mallctl, "stats.arenas.4096.large.ndalloc", large_free)) {
      const std::uint64_t mallocs = small_malloc + large_malloc;
      const std::uint64_t frees = small_free + large_free;
      gauge(out, "Mallocs", mallocs);
      gauge(out, "Frees", frees);
      gauge(out, "HeapObjects", mallocs >= frees ? mallocs - frees : 0);
    }
  }
  return true;
}

bool tcmalloc_metrics(TcmallocPropertyFn get_property, Metrics& out) {
  const auto read = [&](const char* name, std::size_t& value) {
    return get_property(name, &value) != 0;
  };
  std::size_t allocated = 0;
  std::size_t heap = 0;
  std::size_t free_bytes = 0;
  std::size_t unmapped = 0;
  if (!read("generic.current_allocated_bytes", allocated) || !read("generic.heap_size", heap) ||
      !read("tcmalloc.pageheap_free_bytes", free_bytes) ||
      !read("tcmalloc.pageheap_unmapped_bytes", unmapped)) {
    return false;
  }
  gauge(out, "Alloc", allocated);
  gauge(out, "HeapAlloc", allocated);
  gauge(out, "HeapSys", heap);
  // Go's HeapIdle counts released pages too, as tcmalloc's unmapped bytes.
  const std::uint64_t idle = std::uint64_t{free_bytes} + unmapped;
  gauge(out, "HeapIdle", idle);
  gauge(out, "HeapInuse", heap >= idle ? heap - idle : 0);
  gauge(out, "HeapReleased", unmapped);
  std::size_t value = 0;
  if (read("tcmalloc.central_cache_free_bytes", value))
    gauge(out, "TcmallocCentralCacheFree", value);
  if (read("tcmalloc.transfer_cache_free_bytes", value)) {
    gauge(out, "TcmallocTransferCacheFree", value);
  }
  if (read("tcmalloc.thread_cache_free_bytes", value)) {
    gauge(out, "TcmallocThreadCacheFree", value);
    // The per-thread caches are Go's mcaches; their bytes lie in the heap.
    gauge(out, "MCacheInuse", value);
    gauge(out, "MCacheSys", value);
  }
  return true;
}

void mimalloc_metrics(MiProcessInfoFn process_info, Metrics& out) {
  std::size_t elapsed = 0;
  std::size_t user = 0;
  std::size_t system = 0;
  std::size_t rss = 0;
  std::size_t peak_rss = 0;
  std::size_t commit = 0;
  std::size_t peak_commit = 0;
  std::size_t faults = 0;
  process_info(&elapsed, &user, &system, &rss, &peak_rss, &commit, &peak_commit, &faults);
  gauge(out, "MimallocCommitted", commit);
  gauge(out, "MimallocPeakCommitted", peak_commit);
  // mimalloc's public API reports committed bytes, not allocated ones: the
  // committed memory is the heap obtained from the OS, and an upper bound
  // of what is allocated and in use.
  gauge(out, "HeapSys", commit);
  gauge(out, "HeapInuse", commit);
  gauge(out, "HeapAlloc", commit);
  gauge(out, "Alloc", commit);
}

void shim_metrics(const metrics_agent_alloc_counts& counts, Metrics& out) {
  gauge(out, "Mallocs", counts.mallocs);
  gauge(out, "Frees", counts.frees);
  gauge(out, "HeapObjects", counts.mallocs >= counts.frees ? counts.mallocs - counts.frees : 0);
  gauge(out, "TotalAlloc", counts.allocated_bytes);
}

std::string_view to_string(Allocator a) noexcept {
  switch (a) {
    case Allocator::glibc:
      return "glibc";
    case Allocator::jemalloc:
      return "jemalloc";
    case Allocator::tcmalloc:
      return "tcmalloc";
    case Allocator::mimalloc:
      return "mimalloc";
    case Allocator::unknown:
      break;
  }
  return "unknown";
}

AllocatorCollector::AllocatorCollector() noexcept {
  shim_ = lookup<metrics_agent_read_alloc_counts_fn>("metrics_agent_read_alloc_counts");
  if (shim_ != nullptr) {
    // The shim counts only when its malloc is the one the process calls:
    // with LD_PRELOAD="libjemalloc.so.2 libmetrics-agent-preload.so" the
    // program binds to jemalloc and the shim would report almost nothing.
    Dl_info shim_info{};
    Dl_info malloc_info{};
    void* const global_malloc = dlsym(RTLD_DEFAULT, "malloc");
    if (dladdr(reinterpret_cast<void*>(shim_), &shim_info) == 0 || global_malloc == nullptr ||
        dladdr(global_malloc, &malloc_info) == 0 || shim_info.dli_fbase != malloc_info.dli_fbase) {
      shim_ = nullptr;
    }
  }
  if ((mallctl_ = lookup<MallctlFn>("mallctl")) != nullptr) {
    allocator_ = Allocator::jemalloc;
  } else if ((tcmalloc_ = lookup<TcmallocPropertyFn>("MallocExtension_GetNumericProperty")) !=
             nullptr) {
    allocator_ = Allocator::tcmalloc;
  } else if ((mimalloc_ = lookup<MiProcessInfoFn>("mi_process_info")) != nullptr) {
    allocator_ = Allocator::mimalloc;
  } else if (lookup<void (*)()>("gnu_get_libc_version") != nullptr) {
    allocator_ = Allocator::glibc;
  }
}

void AllocatorCollector::collect(Metrics& out) {
  switch (allocator_) {
    case Allocator::glibc: {
      const struct mallinfo2 mi = mallinfo2();
      glibc_metrics(GlibcHeap{mi.arena, mi.ordblks, mi.hblks, mi.hblkhd, mi.fsmblks, mi.uordblks,
                              mi.fordblks, mi.keepcost},
                    out);
      break;
    }
    case Allocator::jemalloc:
      jemalloc_metrics(mallctl_, shim_ == nullptr, out);
      break;
    case Allocator::tcmalloc:
      tcmalloc_metrics(tcmalloc_, out);
      break;
    case Allocator::mimalloc:
      mimalloc_metrics(mimalloc_, out);
      break;
    case Allocator::unknown:
      break;
  }
  // The shim counts exactly what the process asked for, so it wins over
  // the allocator's own counts when both exist.
  if (shim_ != nullptr) {
    metrics_agent_alloc_counts counts{};
    if (shim_(&counts) != 0) shim_metrics(counts, out);
  }
}

}  // namespace metrics::agent::detail
