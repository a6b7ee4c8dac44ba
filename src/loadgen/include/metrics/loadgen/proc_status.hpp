// Memory of another process, from /proc/PID/status (Linux).
//
//   if (auto m = read_process_memory(pid)) { m->rss_kib; }
//
// Thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace metrics::loadgen {

struct ProcessMemory {
  std::uint64_t rss_kib = 0;   // VmRSS
  std::uint64_t peak_kib = 0;  // VmHWM: the highest RSS so far
};

// Parses the text of a status file; nullopt when VmRSS is missing.
[[nodiscard]] std::optional<ProcessMemory> parse_process_status(std::string_view text) noexcept;
// nullopt when the process does not exist or cannot be read.
[[nodiscard]] std::optional<ProcessMemory> read_process_memory(int pid);

}  // namespace metrics::loadgen
