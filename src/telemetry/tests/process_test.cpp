#include "metrics/telemetry/process.hpp"

#include <fcntl.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <chrono>

namespace metrics::telemetry {
namespace {

using ::testing::HasSubstr;

TEST(ProcStat, ParsesTheFieldsAfterTheCommand) {
  // A command with spaces and a ')' of its own.
  const auto s = parse_proc_stat(
      "1234 (my (odd) cmd) S 1 1234 1234 0 -1 4194560 1000 0 0 0 250 75 0 0 20 0 8 0 "
      "987654 123456789 4321 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0\n");
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->utime_ticks, 250u);
  EXPECT_EQ(s->stime_ticks, 75u);
  EXPECT_EQ(s->start_ticks, 987654u);
  EXPECT_EQ(s->vsize_bytes, 123456789u);
  EXPECT_EQ(s->rss_pages, 4321);
}

TEST(ProcStat, RefusesTextThatIsCutShortOrNotNumbers) {
  EXPECT_FALSE(parse_proc_stat("").has_value());
  EXPECT_FALSE(parse_proc_stat("1 (x) S 1 2 3").has_value());
  EXPECT_FALSE(
      parse_proc_stat("1 (x) S 1 1 1 0 -1 0 0 0 0 0 ab 75 0 0 20 0 8 0 9 9 9").has_value());
}

TEST(ProcStat, BootTimeAndMaxOpenFiles) {
  EXPECT_EQ(parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1700000000\nprocesses 9\n"), 1'700'000'000u);
  EXPECT_FALSE(parse_boot_time("cpu 1 2\n").has_value());
  EXPECT_EQ(
      parse_max_open_files("Limit                     Soft Limit           Hard Limit  Units\n"
                           "Max open files            1024                 524288      files\n"),
      1024u);
  EXPECT_FALSE(parse_max_open_files("Max open files  unlimited unlimited files\n").has_value());
}

TEST(Process, ReadsThisProcess) {
  const auto p = read_process_stats();
  ASSERT_TRUE(p.has_value());
  EXPECT_GT(p->resident_bytes, 1 << 20);
  EXPECT_GE(p->virtual_bytes, p->resident_bytes);
  rlimit lim{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &lim), 0);
  if (lim.rlim_cur != RLIM_INFINITY) EXPECT_EQ(p->max_fds, static_cast<double>(lim.rlim_cur));
  const double now =
      std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
  EXPECT_LE(p->start_time_seconds, now + 1);
  EXPECT_GT(p->start_time_seconds, now - 3600);  // the test started moments ago
  // One more open descriptor is seen.
  const int fd = ::open("/dev/null", O_RDONLY);
  const auto q = read_process_stats();
  ::close(fd);
  ASSERT_TRUE(q.has_value());
  EXPECT_EQ(q->open_fds, p->open_fds + 1);
}

TEST(Process, TheCollectorWritesTheSixFamilies) {
  Registry r;
  auto hook = add_process_collector(r);
  const auto out = r.render();
  for (const char* name : {"process_cpu_seconds_total", "process_max_fds", "process_open_fds",
                           "process_resident_memory_bytes", "process_start_time_seconds",
                           "process_virtual_memory_bytes"}) {
    EXPECT_THAT(out.text, HasSubstr(std::string("\n# TYPE ") + name)) << name;
  }
  EXPECT_THAT(out.text, HasSubstr("# TYPE process_cpu_seconds_total counter\n"));
}

}  // namespace
}  // namespace metrics::telemetry
