// Takes one sample of everything the agent reports: allocator, process
// (/proc/self), machine (/proc/meminfo, per-CPU utilization from /proc/stat
// deltas between samples), PollCount (counter, 1 per sample) and
// RandomValue (gauge). A figure that cannot be read is left out.
//
// Thread-compatible: the agent samples from one thread at a time.
#pragma once

#include <optional>
#include <random>
#include <string>
#include <vector>

#include "allocator_stats.hpp"
#include "memstats.hpp"
#include "metrics/agent/agent.hpp"
#include "proc_parse.hpp"

namespace metrics::agent::detail {

// Whole contents of a (small, /proc) file; nullopt when it cannot be read.
[[nodiscard]] std::optional<std::string> read_small_file(const char* path);

class Sampler {
 public:
  explicit Sampler(const AgentConfig& config);
  // Appends one sample to out.
  void sample(Metrics& out);
  [[nodiscard]] const AllocatorCollector& allocator() const noexcept { return allocator_; }

 private:
  void sample_process(Metrics& out);
  void sample_system(Metrics& out);

  bool allocator_on_;
  bool process_on_;
  bool system_on_;
  AllocatorCollector allocator_;
  StackMeter stacks_;
  std::vector<CpuTimes> last_cpu_;
  std::mt19937_64 random_;
  double seconds_per_tick_;
};

}  // namespace metrics::agent::detail
