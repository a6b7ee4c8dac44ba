#include "proc_parse.hpp"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

namespace metrics::agent::detail {
namespace {

std::string fixture(const std::string& name) {
  std::ifstream in(std::string(METRICS_AGENT_FIXTURES) + "/" + name);
  std::ostringstream out;
  out << in.rdbuf();
  EXPECT_FALSE(out.str().empty()) << name;
  return out.str();
}

TEST(ProcParseTest, Status) {
  const auto s = parse_proc_status(fixture("proc_self_status.txt"));
  EXPECT_EQ(s.rss_bytes, 12060ULL * 1024);
  EXPECT_EQ(s.peak_rss_bytes, 13280ULL * 1024);
  EXPECT_EQ(s.virtual_bytes, 175436ULL * 1024);
  EXPECT_EQ(s.threads, 3U);
}

TEST(ProcParseTest, StatusWithMissingAndBrokenFields) {
  const auto s = parse_proc_status("VmRSS:\tjunk kB\nThreads:\t7\n");
  EXPECT_FALSE(s.rss_bytes);
  EXPECT_FALSE(s.peak_rss_bytes);
  EXPECT_EQ(s.threads, 7U);
}

TEST(ProcParseTest, StatSkipsACommandNameWithParentheses) {
  const auto s = parse_proc_stat(fixture("proc_self_stat.txt"));
  ASSERT_TRUE(s);
  EXPECT_EQ(s->minor_faults, 676U);
  EXPECT_EQ(s->major_faults, 3U);
  EXPECT_EQ(s->user_ticks, 125U);
  EXPECT_EQ(s->system_ticks, 37U);
}

TEST(ProcParseTest, StatRejectsTruncatedText) {
  EXPECT_FALSE(parse_proc_stat("4242 (x) S 1 2 3"));
  EXPECT_FALSE(parse_proc_stat("no parenthesis at all"));
}

TEST(ProcParseTest, MemInfo) {
  const auto m = parse_meminfo(fixture("meminfo.txt"));
  EXPECT_EQ(m.total_bytes, 24684096ULL * 1024);
  EXPECT_EQ(m.free_bytes, 23165380ULL * 1024);
}

TEST(ProcParseTest, CpuTimesAndUtilization) {
  const auto before = parse_cpu_times(fixture("proc_stat_1.txt"));
  const auto after = parse_cpu_times(fixture("proc_stat_2.txt"));
  ASSERT_EQ(before.size(), 2U);
  EXPECT_EQ(before[0].cpu, 0U);
  EXPECT_EQ(before[0].total, 1000U);
  EXPECT_EQ(before[0].idle, 800U);
  EXPECT_EQ(before[1].total, 1000U);
  const auto u = cpu_utilization(before, after);
  // cpu0: 200 ticks passed, 100 of them idle; cpu1 did not move: left out.
  ASSERT_EQ(u.size(), 1U);
  EXPECT_EQ(u[0].cpu, 0U);
  EXPECT_DOUBLE_EQ(u[0].percent, 50.0);
}

TEST(ProcParseTest, UtilizationNeedsAPreviousSample) {
  EXPECT_TRUE(cpu_utilization({}, parse_cpu_times(fixture("proc_stat_2.txt"))).empty());
}

}  // namespace
}  // namespace metrics::agent::detail
