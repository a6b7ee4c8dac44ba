// The original agent's metric set: every name of Go's runtime.MemStats the
// original sent, each with the honest value for a process without a garbage
// collector. The allocator collectors give what their allocator measures;
// this file adds the thread stacks (from /proc/self), Sys, and 0 for what
// cannot exist here (no collection ever runs: NumGC, PauseTotalNs, ...) or
// is not measured by the allocator at hand. docs/AGENT.md has the table.
//
//   Metrics out;
//   collector.collect(out);
//   complete_memstats(measure_thread_stacks(), out);   // all 27 names now present
//
// parse_syscall_sp, stack_ranges and complete_memstats are pure;
// measure_thread_stacks reads /proc/self. All are thread-safe.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "allocator_stats.hpp"

namespace metrics::agent::detail {

inline constexpr std::array<std::string_view, 27> kMemStatsNames{
    "Alloc",    "BuckHashSys", "Frees",       "GCCPUFraction", "GCSys",        "HeapAlloc",
    "HeapIdle", "HeapInuse",   "HeapObjects", "HeapReleased",  "HeapSys",      "LastGC",
    "Lookups",  "MCacheInuse", "MCacheSys",   "MSpanInuse",    "MSpanSys",     "Mallocs",
    "NextGC",   "NumForcedGC", "NumGC",       "OtherSys",      "PauseTotalNs", "StackInuse",
    "StackSys", "Sys",         "TotalAlloc"};

// Bytes of the threads' stacks: mapped (StackSys) and resident (StackInuse).
struct ThreadStacks {
  std::uint64_t mapped = 0;
  std::uint64_t resident = 0;
  std::size_t threads_seen = 0;  // threads whose stack was found
};

// The stack pointer in a /proc/<pid>/task/<tid>/syscall text ("nr args... sp
// pc", or "-1 sp pc"); nullopt for "running" (a thread on a CPU has no
// saved one) or junk.
[[nodiscard]] std::optional<std::uintptr_t> parse_syscall_sp(std::string_view text) noexcept;

struct AddressRange {
  std::uintptr_t begin = 0;
  std::uintptr_t end = 0;
  friend bool operator==(const AddressRange&, const AddressRange&) = default;
};

// The mappings of a /proc/self/maps text that hold a stack: named [stack]
// (the main thread's) or containing one of the stack pointers; each once.
[[nodiscard]] std::vector<AddressRange> stack_ranges(std::string_view maps,
                                                     std::span<const std::uintptr_t> sps);

// Reads every thread's stack pointer and the process's mappings; resident
// bytes come from mincore(). A thread running on a CPU at that moment is
// not counted (its stack pointer is not saved anywhere readable).
[[nodiscard]] ThreadStacks measure_thread_stacks();

// measure_thread_stacks for every sample, cheaper: the stack mappings are
// found again (per-thread /proc reads and /proc/self/maps) only when the set
// of threads changed, a thread's stack was not found, or `refresh` passed;
// otherwise only mincore() runs on the known mappings.
// Thread-compatible: one sampler thread uses it.
class StackMeter {
 public:
  explicit StackMeter(std::chrono::milliseconds refresh = std::chrono::seconds{30}) noexcept
      : refresh_(refresh) {}
  [[nodiscard]] ThreadStacks measure(std::chrono::steady_clock::time_point now);

 private:
  std::chrono::milliseconds refresh_;
  std::vector<long> tids_;
  std::vector<AddressRange> ranges_;
  std::size_t threads_seen_ = 0;
  bool complete_ = false;
  std::chrono::steady_clock::time_point found_at_{};
};

// Adds StackInuse and StackSys, Sys = HeapSys + StackSys + OtherSys, and 0
// for every MemStats name still absent; names already in out stay as they
// are. Each name ends up exactly once.
void complete_memstats(const ThreadStacks& stacks, Metrics& out);

}  // namespace metrics::agent::detail
