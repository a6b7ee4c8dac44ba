#include "metrics/loadgen/proc_status.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

namespace metrics::loadgen {
namespace {

TEST(ProcStatus, ParsesRssAndPeak) {
  const auto m = parse_process_status(
      "Name:\tmetrics-server\nVmPeak:\t  300000 kB\nVmHWM:\t   20480 kB\nVmRSS:\t   10240 kB\n");
  ASSERT_TRUE(m);
  EXPECT_EQ(m->rss_kib, 10240u);
  EXPECT_EQ(m->peak_kib, 20480u);
}

TEST(ProcStatus, MissingRssIsNullopt) {
  EXPECT_FALSE(parse_process_status("Name:\tx\nVmRSSX: 5 kB\n"));
}

TEST(ProcStatus, ReadsOwnProcess) {
  const auto m = read_process_memory(static_cast<int>(::getpid()));
  ASSERT_TRUE(m);
  EXPECT_GT(m->rss_kib, 0u);
  EXPECT_GE(m->peak_kib, m->rss_kib);
  EXPECT_FALSE(read_process_memory(0));
}

}  // namespace
}  // namespace metrics::loadgen
