#include "sampler.hpp"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <string>

namespace metrics::agent::detail {
namespace {

void gauge(Metrics& out, std::string name, double value) {
  out.push_back(core::Update::gauge(std::move(name), value));
}

template <typename T>
void gauge_if(Metrics& out, const char* name, const std::optional<T>& value) {
  if (value) gauge(out, name, static_cast<double>(*value));
}

std::optional<std::uint64_t> count_open_fds() {
  DIR* dir = opendir("/proc/self/fd");
  if (dir == nullptr) return std::nullopt;
  std::uint64_t n = 0;
  while (const dirent* entry = readdir(dir)) {
    if (entry->d_name[0] != '.') ++n;
  }
  closedir(dir);
  // The directory stream's own descriptor was listed too.
  return n > 0 ? n - 1 : 0;
}

}  // namespace

std::optional<std::string> read_small_file(const char* path) {
  const int fd = ::open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string out;
  std::array<char, 4096> buf{};
  // /proc files are generated on read; a bound keeps a surprise from
  // growing the agent (the largest, /proc/stat, is ~ 100 bytes per CPU).
  constexpr std::size_t kMaxBytes = 1 << 20;
  while (out.size() < kMaxBytes) {
    const ssize_t n = ::read(fd, buf.data(), buf.size());
    if (n < 0) {
      ::close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    out.append(buf.data(), static_cast<std::size_t>(n));
  }
  ::close(fd);
  return out;
}

Sampler::Sampler(const AgentConfig& config)
    : allocator_on_(config.collect_allocator),
      process_on_(config.collect_process),
      system_on_(config.collect_system),
      random_(std::random_device{}()) {
  const long ticks = sysconf(_SC_CLK_TCK);
  seconds_per_tick_ = ticks > 0 ? 1.0 / static_cast<double>(ticks) : 0.01;
  if (system_on_) {
    if (const auto stat = read_small_file("/proc/stat")) last_cpu_ = parse_cpu_times(*stat);
  }
}

void Sampler::sample(Metrics& out) {
  if (allocator_on_) {
    allocator_.collect(out);
    complete_memstats(stacks_.measure(std::chrono::steady_clock::now()), out);
  }
  if (process_on_) sample_process(out);
  if (system_on_) sample_system(out);
  out.push_back(core::Update::counter("PollCount", 1));
  gauge(out, "RandomValue", std::uniform_real_distribution<double>(0.0, 1.0)(random_));
}

void Sampler::sample_process(Metrics& out) {
  if (const auto status = read_small_file("/proc/self/status")) {
    const ProcStatus s = parse_proc_status(*status);
    gauge_if(out, "ProcessRSS", s.rss_bytes);
    gauge_if(out, "ProcessPeakRSS", s.peak_rss_bytes);
    gauge_if(out, "ProcessVirtualMemory", s.virtual_bytes);
    gauge_if(out, "ProcessThreads", s.threads);
  }
  if (const auto stat = read_small_file("/proc/self/stat")) {
    if (const auto s = parse_proc_stat(*stat)) {
      gauge(out, "ProcessMinorFaults", static_cast<double>(s->minor_faults));
      gauge(out, "ProcessMajorFaults", static_cast<double>(s->major_faults));
      gauge(out, "ProcessCPUUserSeconds", static_cast<double>(s->user_ticks) * seconds_per_tick_);
      gauge(out, "ProcessCPUSystemSeconds",
            static_cast<double>(s->system_ticks) * seconds_per_tick_);
    }
  }
  gauge_if(out, "ProcessOpenFDs", count_open_fds());
}

void Sampler::sample_system(Metrics& out) {
  if (const auto meminfo = read_small_file("/proc/meminfo")) {
    const MemInfo m = parse_meminfo(*meminfo);
    gauge_if(out, "TotalMemory", m.total_bytes);
    gauge_if(out, "FreeMemory", m.free_bytes);
  }
  if (const auto stat = read_small_file("/proc/stat")) {
    auto now = parse_cpu_times(*stat);
    for (const auto& u : cpu_utilization(last_cpu_, now)) {
      gauge(out, "CPUutilization" + std::to_string(u.cpu + 1), u.percent);
    }
    last_cpu_ = std::move(now);
  }
}

}  // namespace metrics::agent::detail
