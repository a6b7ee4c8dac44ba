#include "proc_parse.hpp"

#include <algorithm>
#include <charconv>
#include <cstddef>

namespace metrics::agent::detail {
namespace {

std::string_view trim(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

std::optional<std::uint64_t> to_u64(std::string_view s) noexcept {
  s = trim(s);
  if (s.empty()) return std::nullopt;
  std::uint64_t v = 0;
  const auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc{} || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// "  1234 kB" -> 1234 * 1024; a value without a unit is taken as is.
std::optional<std::uint64_t> kb_value(std::string_view s) noexcept {
  s = trim(s);
  std::uint64_t scale = 1;
  if (s.ends_with("kB")) {
    s.remove_suffix(2);
    scale = 1024;
  }
  const auto v = to_u64(s);
  if (!v || *v > UINT64_MAX / scale) return std::nullopt;
  return *v * scale;
}

// Calls fn(key, value) for each "Key: value" line.
template <typename Fn>
void for_each_field(std::string_view text, Fn&& fn) {
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    fn(line.substr(0, colon), line.substr(colon + 1));
  }
}

// Splits on runs of spaces.
std::vector<std::string_view> fields(std::string_view s) {
  std::vector<std::string_view> out;
  while (true) {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\n'))
      s.remove_prefix(1);
    if (s.empty()) break;
    const std::size_t end = std::min(s.find(' '), s.find('\n'));
    out.push_back(s.substr(0, end));
    s.remove_prefix(end == std::string_view::npos ? s.size() : end);
  }
  return out;
}

}  // namespace

ProcStatus parse_proc_status(std::string_view text) noexcept {
  ProcStatus out;
  for_each_field(text, [&](std::string_view key, std::string_view value) {
    if (key == "VmRSS") {
      out.rss_bytes = kb_value(value);
    } else if (key == "VmHWM") {
      out.peak_rss_bytes = kb_value(value);
    } else if (key == "VmSize") {
      out.virtual_bytes = kb_value(value);
    } else if (key == "Threads") {
      out.threads = to_u64(value);
    }
  });
  return out;
}

std::optional<ProcStat> parse_proc_stat(std::string_view text) noexcept {
  // The command name (field 2) is in parentheses and may itself contain
  // spaces and parentheses: the fields we want follow the last ')'.
  const std::size_t close = text.rfind(')');
  if (close == std::string_view::npos) return std::nullopt;
  text.remove_prefix(close + 1);
  // After ')' come field 3 (state) onwards; we need 10 minflt, 12 majflt,
  // 14 utime, 15 stime, i.e. indexes 7, 9, 11, 12 from field 3.
  std::uint64_t values[13] = {};
  std::size_t index = 0;
  while (index < 13) {
    while (!text.empty() && text.front() == ' ')
      text.remove_prefix(1);
    if (text.empty()) return std::nullopt;
    const std::size_t end = std::min(text.find(' '), text.size());
    if (index >= 1) {
      const auto v = to_u64(text.substr(0, end));
      // Some fields (ppid, pgrp, ...) may be negative in theory; only the
      // ones we read must be unsigned numbers.
      if (v) {
        values[index] = *v;
      } else if (index == 7 || index == 9 || index == 11 || index == 12) {
        return std::nullopt;
      }
    }
    text.remove_prefix(end);
    ++index;
  }
  return ProcStat{values[7], values[9], values[11], values[12]};
}

MemInfo parse_meminfo(std::string_view text) noexcept {
  MemInfo out;
  for_each_field(text, [&](std::string_view key, std::string_view value) {
    if (key == "MemTotal") {
      out.total_bytes = kb_value(value);
    } else if (key == "MemFree") {
      out.free_bytes = kb_value(value);
    }
  });
  return out;
}

std::vector<CpuTimes> parse_cpu_times(std::string_view text) {
  std::vector<CpuTimes> out;
  while (!text.empty()) {
    const std::size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (!line.starts_with("cpu") || line.size() < 4 || line[3] < '0' || line[3] > '9') continue;
    const auto parts = fields(line);
    if (parts.size() < 5) continue;
    const auto n = to_u64(parts[0].substr(3));
    if (!n || *n > 1u << 20) continue;
    CpuTimes t;
    t.cpu = static_cast<unsigned>(*n);
    bool ok = true;
    // user nice system idle iowait irq softirq steal (guest time is already
    // included in user and nice, so it is not added again).
    for (std::size_t i = 1; i < parts.size() && i <= 8; ++i) {
      const auto v = to_u64(parts[i]);
      if (!v) {
        ok = false;
        break;
      }
      t.total += *v;
      if (i == 4 || i == 5) t.idle += *v;
    }
    if (ok) out.push_back(t);
  }
  return out;
}

std::vector<CpuUtilization> cpu_utilization(const std::vector<CpuTimes>& before,
                                            const std::vector<CpuTimes>& after) {
  std::vector<CpuUtilization> out;
  for (const auto& cur : after) {
    const auto prev = std::find_if(before.begin(), before.end(),
                                   [&](const CpuTimes& t) { return t.cpu == cur.cpu; });
    if (prev == before.end() || cur.total <= prev->total || cur.idle < prev->idle) continue;
    const auto total = static_cast<double>(cur.total - prev->total);
    const auto idle = static_cast<double>(cur.idle - prev->idle);
    const double busy = std::clamp((total - idle) / total * 100.0, 0.0, 100.0);
    out.push_back({cur.cpu, busy});
  }
  return out;
}

}  // namespace metrics::agent::detail
