#include "metrics/loadgen/proc_status.hpp"

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

namespace metrics::loadgen {
namespace {

// "VmRSS:\t   12345 kB" -> 12345
std::optional<std::uint64_t> field_kib(std::string_view text, std::string_view name) noexcept {
  std::size_t pos = 0;
  while (pos < text.size()) {
    auto eol = text.find('\n', pos);
    if (eol == std::string_view::npos) eol = text.size();
    std::string_view line = text.substr(pos, eol - pos);
    pos = eol + 1;
    if (line.size() <= name.size() || line.substr(0, name.size()) != name ||
        line[name.size()] != ':')
      continue;
    line.remove_prefix(name.size() + 1);
    while (!line.empty() && (line.front() == ' ' || line.front() == '\t'))
      line.remove_prefix(1);
    std::uint64_t value = 0;
    auto [p, ec] = std::from_chars(line.data(), line.data() + line.size(), value);
    if (ec != std::errc{}) return std::nullopt;
    return value;
  }
  return std::nullopt;
}

}  // namespace

std::optional<ProcessMemory> parse_process_status(std::string_view text) noexcept {
  auto rss = field_kib(text, "VmRSS");
  if (!rss) return std::nullopt;
  ProcessMemory m;
  m.rss_kib = *rss;
  m.peak_kib = field_kib(text, "VmHWM").value_or(*rss);
  return m;
}

std::optional<ProcessMemory> read_process_memory(int pid) {
  if (pid <= 0) return std::nullopt;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return parse_process_status(text.str());
}

}  // namespace metrics::loadgen
