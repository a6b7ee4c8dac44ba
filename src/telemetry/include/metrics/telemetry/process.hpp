// The standard process_… metrics of the Prometheus client libraries, read
// from /proc at every scrape (Linux only; elsewhere the collector writes
// nothing):
//
//   process_cpu_seconds_total       counter  user + system CPU time
//   process_resident_memory_bytes   gauge    resident set size
//   process_virtual_memory_bytes    gauge    virtual memory size
//   process_open_fds                gauge    entries of /proc/self/fd
//   process_max_fds                 gauge    the soft RLIMIT_NOFILE
//   process_start_time_seconds      gauge    since the Unix epoch
//
//   auto hook = telemetry::add_process_collector(registry);
//
// Thread-safety: the parsers are pure; the collector may run on any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

#include "metrics/telemetry/registry.hpp"

namespace metrics::telemetry {

struct ProcessStats {
  double cpu_seconds = 0;
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double start_time_seconds = 0;  // since the Unix epoch
  double open_fds = 0;
  double max_fds = 0;
};

// The fields of /proc/<pid>/stat that the collector uses (utime, stime,
// starttime in clock ticks; vsize in bytes; rss in pages). nullopt when
// the text does not parse. The command name (field 2) may hold spaces and
// parentheses: parsing starts after its last ')'.
struct ProcStat {
  std::uint64_t utime_ticks = 0;
  std::uint64_t stime_ticks = 0;
  std::uint64_t start_ticks = 0;  // after boot
  std::uint64_t vsize_bytes = 0;
  std::int64_t rss_pages = 0;
};
[[nodiscard]] std::optional<ProcStat> parse_proc_stat(std::string_view text) noexcept;
// `btime` of /proc/stat: the boot time in seconds since the Unix epoch.
[[nodiscard]] std::optional<std::uint64_t> parse_boot_time(std::string_view proc_stat) noexcept;
// The soft limit of "Max open files" in /proc/<pid>/limits (nullopt for
// "unlimited" or a text that does not parse).
[[nodiscard]] std::optional<std::uint64_t> parse_max_open_files(std::string_view limits) noexcept;

// This process now; nullopt when /proc cannot be read.
[[nodiscard]] std::optional<ProcessStats> read_process_stats();

[[nodiscard]] Registration add_process_collector(Registry& registry);

}  // namespace metrics::telemetry
