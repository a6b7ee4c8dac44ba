// Allocator statistics of the process: glibc (mallinfo2), jemalloc
// (mallctl), gperftools tcmalloc (MallocExtension C API) and mimalloc
// (mi_process_info), each found at run time with dlsym and never linked,
// plus the allocation counts of the counting shim when it is present.
//
// The *_metrics functions are pure translations from an allocator's figures
// to metrics, tested with fake entry points; AllocatorCollector wires the
// real ones. Names follow Go's runtime.MemStats where the meaning is the
// same; docs/AGENT.md lists every metric and its source.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "alloc_shim.h"
#include "metrics/core/metric.hpp"

namespace metrics::agent::detail {

using Metrics = std::vector<core::Update>;

using MallctlFn = int (*)(const char*, void*, std::size_t*, void*, std::size_t);
using TcmallocPropertyFn = int (*)(const char*, std::size_t*);
using MiProcessInfoFn = void (*)(std::size_t*, std::size_t*, std::size_t*, std::size_t*,
                                 std::size_t*, std::size_t*, std::size_t*, std::size_t*);

// The fields of glibc's struct mallinfo2 that the agent reports.
struct GlibcHeap {
  std::uint64_t arena = 0;     // bytes obtained with brk/mmap for the arenas
  std::uint64_t ordblks = 0;   // free chunks
  std::uint64_t hblks = 0;     // chunks served by their own mmap
  std::uint64_t hblkhd = 0;    // bytes in those mmapped chunks
  std::uint64_t fsmblks = 0;   // bytes in free fastbin chunks
  std::uint64_t uordblks = 0;  // bytes in use in the arenas
  std::uint64_t fordblks = 0;  // free bytes in the arenas
  std::uint64_t keepcost = 0;  // releasable bytes at the top of the main arena
};
void glibc_metrics(const GlibcHeap& heap, Metrics& out);

// Advances "epoch" and reads stats.*; returns false (and adds nothing) when
// the stats cannot be read (jemalloc built without stats). Adds Mallocs and
// Frees from the all-arenas small+large counters when with_counts.
bool jemalloc_metrics(MallctlFn mallctl, bool with_counts, Metrics& out);

// Returns false when the basic properties are missing.
bool tcmalloc_metrics(TcmallocPropertyFn get_property, Metrics& out);

void mimalloc_metrics(MiProcessInfoFn process_info, Metrics& out);

// Mallocs, Frees, HeapObjects, TotalAlloc from the shim's counters.
void shim_metrics(const metrics_agent_alloc_counts& counts, Metrics& out);

enum class Allocator : std::uint8_t { glibc, jemalloc, tcmalloc, mimalloc, unknown };
[[nodiscard]] std::string_view to_string(Allocator a) noexcept;

// Detects the allocator once (at construction) and reads it at each collect().
// Thread-compatible: one collector is used by one thread at a time.
class AllocatorCollector {
 public:
  AllocatorCollector() noexcept;
  void collect(Metrics& out);
  [[nodiscard]] Allocator allocator() const noexcept { return allocator_; }
  [[nodiscard]] bool has_shim() const noexcept { return shim_ != nullptr; }

 private:
  Allocator allocator_ = Allocator::unknown;
  MallctlFn mallctl_ = nullptr;
  TcmallocPropertyFn tcmalloc_ = nullptr;
  MiProcessInfoFn mimalloc_ = nullptr;
  metrics_agent_read_alloc_counts_fn shim_ = nullptr;
};

}  // namespace metrics::agent::detail
