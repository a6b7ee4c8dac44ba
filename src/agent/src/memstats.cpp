#include "memstats.hpp"

#include <dirent.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstdlib>
#include <string>

#include "sampler.hpp"

namespace metrics::agent::detail {
namespace {

bool parse_hex(std::string_view text, std::uintptr_t& value) noexcept {
  if (text.starts_with("0x")) text.remove_prefix(2);
  if (text.empty()) return false;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value, 16);
  return ec == std::errc{} && ptr == text.data() + text.size();
}

std::string_view trim_end(std::string_view s) noexcept {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.remove_suffix(1);
  return s;
}

const core::Update* find_gauge(const Metrics& out, std::string_view name) noexcept {
  for (const auto& m : out) {
    if (m.type == core::MetricType::gauge && m.id == name) return &m;
  }
  return nullptr;
}

double gauge_or_zero(const Metrics& out, std::string_view name) noexcept {
  const core::Update* m = find_gauge(out, name);
  return m != nullptr ? m->value : 0.0;
}

}  // namespace

std::optional<std::uintptr_t> parse_syscall_sp(std::string_view text) noexcept {
  text = trim_end(text);
  // The last two fields are the stack pointer and the program counter.
  std::array<std::string_view, 3> last{};
  std::size_t fields = 0;
  while (!text.empty()) {
    const std::size_t space = text.rfind(' ');
    const std::string_view field = space == std::string_view::npos ? text : text.substr(space + 1);
    if (!field.empty()) {
      if (fields < last.size()) last[fields] = field;
      ++fields;
    }
    if (space == std::string_view::npos) break;
    text = text.substr(0, space);
  }
  if (fields < 3) return std::nullopt;  // "running", or junk
  std::uintptr_t sp = 0;
  std::uintptr_t pc = 0;
  if (!parse_hex(last[1], sp) || !parse_hex(last[0], pc) || sp == 0) return std::nullopt;
  return sp;
}

std::vector<AddressRange> stack_ranges(std::string_view maps, std::span<const std::uintptr_t> sps) {
  std::vector<AddressRange> out;
  while (!maps.empty()) {
    const std::size_t eol = maps.find('\n');
    const std::string_view line = maps.substr(0, eol);
    maps = eol == std::string_view::npos ? std::string_view{} : maps.substr(eol + 1);
    const std::size_t dash = line.find('-');
    const std::size_t space = line.find(' ');
    if (dash == std::string_view::npos || space == std::string_view::npos || dash > space) continue;
    AddressRange r;
    if (!parse_hex(line.substr(0, dash), r.begin) ||
        !parse_hex(line.substr(dash + 1, space - dash - 1), r.end) || r.end <= r.begin) {
      continue;
    }
    // A stack the program placed in malloc'd memory is heap, counted in
    // HeapSys already.
    if (trim_end(line).ends_with("[heap]")) continue;
    bool is_stack = trim_end(line).ends_with("[stack]");
    for (const std::uintptr_t sp : sps) {
      is_stack = is_stack || (sp >= r.begin && sp < r.end);
    }
    if (is_stack) out.push_back(r);
  }
  return out;
}

namespace {

struct Found {
  std::vector<long> tids;  // sorted
  std::vector<AddressRange> ranges;
  std::size_t threads_seen = 0;
  bool complete = true;  // every thread's stack pointer was read
};

std::vector<long> list_tids() {
  std::vector<long> tids;
  if (DIR* dir = opendir("/proc/self/task")) {
    while (const dirent* entry = readdir(dir)) {
      if (entry->d_name[0] < '0' || entry->d_name[0] > '9') continue;
      tids.push_back(std::strtol(entry->d_name, nullptr, 10));
    }
    closedir(dir);
  }
  std::sort(tids.begin(), tids.end());
  return tids;
}

Found find_stacks(std::vector<long> tids) {
  Found found;
  found.tids = std::move(tids);
  std::vector<std::uintptr_t> sps;
  // This thread is running (reading), so its own syscall file may say so.
  const int here = 0;
  sps.push_back(reinterpret_cast<std::uintptr_t>(&here));
  const long self = static_cast<long>(gettid());
  for (const long tid : found.tids) {
    if (tid == self) continue;
    const std::string path = "/proc/self/task/" + std::to_string(tid) + "/syscall";
    const auto text = read_small_file(path.c_str());
    const auto sp = text ? parse_syscall_sp(*text) : std::nullopt;
    if (sp) {
      sps.push_back(*sp);
    } else {
      found.complete = false;
    }
  }
  if (const auto maps = read_small_file("/proc/self/maps")) {
    found.ranges = stack_ranges(*maps, sps);
  } else {
    found.complete = false;
  }
  for (const std::uintptr_t sp : sps) {
    for (const auto& r : found.ranges) {
      if (sp >= r.begin && sp < r.end) {
        ++found.threads_seen;
        break;
      }
    }
  }
  return found;
}

ThreadStacks measure_ranges(std::span<const AddressRange> ranges) {
  ThreadStacks stacks;
  const long page_size = sysconf(_SC_PAGESIZE);
  const auto page = static_cast<std::uintptr_t>(page_size > 0 ? page_size : 4096);
  std::vector<unsigned char> pages;
  for (const auto& r : ranges) {
    const std::uintptr_t length = r.end - r.begin;
    // The ranges come from the kernel's own list, page-aligned; a mapping
    // gone since (a thread that exited) fails with ENOMEM and counts as 0.
    pages.assign((length + page - 1) / page, 0);
    if (mincore(reinterpret_cast<void*>(r.begin), length, pages.data()) != 0) continue;
    stacks.mapped += length;
    stacks.resident +=
        static_cast<std::uint64_t>(std::count_if(pages.begin(), pages.end(),
                                                 [](unsigned char p) { return (p & 1) != 0; })) *
        page;
  }
  return stacks;
}

}  // namespace

ThreadStacks measure_thread_stacks() {
  const Found found = find_stacks(list_tids());
  ThreadStacks stacks = measure_ranges(found.ranges);
  stacks.threads_seen = found.threads_seen;
  return stacks;
}

ThreadStacks StackMeter::measure(std::chrono::steady_clock::time_point now) {
  auto tids = list_tids();
  if (!complete_ || tids != tids_ || now - found_at_ >= refresh_) {
    Found found = find_stacks(std::move(tids));
    tids_ = std::move(found.tids);
    ranges_ = std::move(found.ranges);
    threads_seen_ = found.threads_seen;
    complete_ = found.complete;
    found_at_ = now;
  }
  ThreadStacks stacks = measure_ranges(ranges_);
  stacks.threads_seen = threads_seen_;
  return stacks;
}

void complete_memstats(const ThreadStacks& stacks, Metrics& out) {
  const auto add_if_absent = [&](std::string_view name, double value) {
    if (find_gauge(out, name) == nullptr)
      out.push_back(core::Update::gauge(std::string(name), value));
  };
  add_if_absent("StackSys", static_cast<double>(stacks.mapped));
  add_if_absent("StackInuse", static_cast<double>(stacks.resident));
  add_if_absent("Sys", gauge_or_zero(out, "HeapSys") + gauge_or_zero(out, "StackSys") +
                           gauge_or_zero(out, "OtherSys"));
  // No collection ever runs (NumGC, PauseTotalNs, ...), or the allocator at
  // hand does not measure it: 0, as docs/AGENT.md says per name.
  for (const std::string_view name : kMemStatsNames)
    add_if_absent(name, 0.0);
}

}  // namespace metrics::agent::detail
