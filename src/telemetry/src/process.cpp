#include "metrics/telemetry/process.hpp"

#include <dirent.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <fstream>
#include <iterator>
#include <string>

namespace metrics::telemetry {
namespace {

template <class T>
bool to_number(std::string_view s, T& out) {
  const auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  return r.ec == std::errc{} && r.ptr == s.data() + s.size();
}

// The next space-separated token of `s` (advanced past it).
std::string_view next_token(std::string_view& s) {
  const auto start = s.find_first_not_of(" \t\n");
  if (start == std::string_view::npos) {
    s = {};
    return {};
  }
  s.remove_prefix(start);
  const auto end = std::min(s.find_first_of(" \t\n"), s.size());
  const std::string_view token = s.substr(0, end);
  s.remove_prefix(end);
  return token;
}

std::string read_file(const char* path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

}  // namespace

std::optional<ProcStat> parse_proc_stat(std::string_view text) noexcept {
  const auto paren = text.rfind(')');
  if (paren == std::string_view::npos) return std::nullopt;
  std::string_view rest = text.substr(paren + 1);
  // Tokens after the command: index 0 is field 3 (state).
  std::array<std::string_view, 22> tok{};
  for (auto& t : tok) {
    t = next_token(rest);
    if (t.empty()) return std::nullopt;
  }
  ProcStat s;
  if (!to_number(tok[11], s.utime_ticks) || !to_number(tok[12], s.stime_ticks) ||
      !to_number(tok[19], s.start_ticks) || !to_number(tok[20], s.vsize_bytes) ||
      !to_number(tok[21], s.rss_pages)) {
    return std::nullopt;
  }
  return s;
}

std::optional<std::uint64_t> parse_boot_time(std::string_view proc_stat) noexcept {
  std::size_t pos = 0;
  while (pos < proc_stat.size()) {
    const auto eol = std::min(proc_stat.find('\n', pos), proc_stat.size());
    std::string_view line = proc_stat.substr(pos, eol - pos);
    pos = eol + 1;
    if (next_token(line) != "btime") continue;
    std::uint64_t v = 0;
    if (to_number(next_token(line), v)) return v;
    return std::nullopt;
  }
  return std::nullopt;
}

std::optional<std::uint64_t> parse_max_open_files(std::string_view limits) noexcept {
  constexpr std::string_view kKey = "Max open files";
  const auto at = limits.find(kKey);
  if (at == std::string_view::npos) return std::nullopt;
  std::string_view rest = limits.substr(at + kKey.size());
  std::uint64_t v = 0;
  if (to_number(next_token(rest), v)) return v;
  return std::nullopt;
}

std::optional<ProcessStats> read_process_stats() {
  const std::string stat_text = read_file("/proc/self/stat");
  const auto stat = parse_proc_stat(stat_text);
  if (!stat) return std::nullopt;
  const long ticks = ::sysconf(_SC_CLK_TCK);
  const long page = ::sysconf(_SC_PAGESIZE);
  const double hz = ticks > 0 ? static_cast<double>(ticks) : 100.0;
  ProcessStats p;
  p.cpu_seconds = static_cast<double>(stat->utime_ticks + stat->stime_ticks) / hz;
  p.resident_bytes = static_cast<double>(stat->rss_pages) * static_cast<double>(page);
  p.virtual_bytes = static_cast<double>(stat->vsize_bytes);
  if (const auto boot = parse_boot_time(read_file("/proc/stat"))) {
    p.start_time_seconds = static_cast<double>(*boot) + static_cast<double>(stat->start_ticks) / hz;
  }
  if (const auto max = parse_max_open_files(read_file("/proc/self/limits"))) {
    p.max_fds = static_cast<double>(*max);
  }
  if (DIR* dir = ::opendir("/proc/self/fd")) {
    std::size_t n = 0;
    while (const dirent* e = ::readdir(dir)) {
      if (e->d_name[0] != '.') ++n;
    }
    ::closedir(dir);
    p.open_fds = static_cast<double>(n);
  }
  return p;
}

Registration add_process_collector(Registry& registry) {
  return registry.add_collector([](Writer& w) {
    const auto p = read_process_stats();
    if (!p) return;
    w.family("process_cpu_seconds_total", Type::counter,
             "Total user and system CPU time spent in seconds.");
    w.sample({}, p->cpu_seconds);
    w.family("process_max_fds", Type::gauge, "Maximum number of open file descriptors.");
    w.sample({}, p->max_fds);
    w.family("process_open_fds", Type::gauge, "Number of open file descriptors.");
    w.sample({}, p->open_fds);
    w.family("process_resident_memory_bytes", Type::gauge, "Resident memory size in bytes.");
    w.sample({}, p->resident_bytes);
    w.family("process_start_time_seconds", Type::gauge,
             "Start time of the process since unix epoch in seconds.");
    w.sample({}, p->start_time_seconds);
    w.family("process_virtual_memory_bytes", Type::gauge, "Virtual memory size in bytes.");
    w.sample({}, p->virtual_bytes);
  });
}

}  // namespace metrics::telemetry
