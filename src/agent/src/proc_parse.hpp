// Pure parsers for the /proc files the agent samples, unit-tested on fixture
// text. A field that is missing or malformed comes back empty, and the
// metric built from it is not sent.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>
#include <vector>

namespace metrics::agent::detail {

// /proc/self/status: sizes converted from kB to bytes.
struct ProcStatus {
  std::optional<std::uint64_t> rss_bytes;       // VmRSS
  std::optional<std::uint64_t> peak_rss_bytes;  // VmHWM
  std::optional<std::uint64_t> virtual_bytes;   // VmSize
  std::optional<std::uint64_t> threads;         // Threads
};
[[nodiscard]] ProcStatus parse_proc_status(std::string_view text) noexcept;

// /proc/self/stat: fault counts and CPU time in clock ticks.
struct ProcStat {
  std::uint64_t minor_faults = 0;
  std::uint64_t major_faults = 0;
  std::uint64_t user_ticks = 0;
  std::uint64_t system_ticks = 0;
};
[[nodiscard]] std::optional<ProcStat> parse_proc_stat(std::string_view text) noexcept;

// /proc/meminfo: MemTotal and MemFree in bytes.
struct MemInfo {
  std::optional<std::uint64_t> total_bytes;
  std::optional<std::uint64_t> free_bytes;
};
[[nodiscard]] MemInfo parse_meminfo(std::string_view text) noexcept;

// One "cpuN" line of /proc/stat, in ticks: idle counts idle and iowait.
struct CpuTimes {
  unsigned cpu = 0;  // N of cpuN
  std::uint64_t idle = 0;
  std::uint64_t total = 0;
};
// The per-CPU lines (not the "cpu" summary line), in file order.
[[nodiscard]] std::vector<CpuTimes> parse_cpu_times(std::string_view text);

// Busy share in percent (0..100) of each CPU present in both samples and
// whose counters moved; CPUs absent or unchanged are left out.
struct CpuUtilization {
  unsigned cpu = 0;
  double percent = 0;
};
[[nodiscard]] std::vector<CpuUtilization> cpu_utilization(const std::vector<CpuTimes>& before,
                                                          const std::vector<CpuTimes>& after);

}  // namespace metrics::agent::detail
