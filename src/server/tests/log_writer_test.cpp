// The one log writer: application and access lines from many threads come
// out whole, each once, in stamp order; a writer that cannot keep up drops
// lines and says how many; flush() means written.
#include "../src/log_writer.hpp"

#include <gtest/gtest.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <map>
#include <memory>
#include <regex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "../src/access_log.hpp"

namespace metrics::server::detail {
namespace {

// A temporary file the writer writes to; read back whole.
class CaptureFile {
 public:
  CaptureFile() : file_(std::tmpfile()) {}
  ~CaptureFile() { std::fclose(file_); }
  CaptureFile(const CaptureFile&) = delete;
  CaptureFile& operator=(const CaptureFile&) = delete;
  [[nodiscard]] int fd() const { return fileno(file_); }
  [[nodiscard]] std::vector<std::string> lines() const {
    std::string all;
    std::array<char, 1 << 16> chunk{};
    off_t at = 0;
    for (;;) {
      const ssize_t n = ::pread(fd(), chunk.data(), chunk.size(), at);
      if (n <= 0) break;
      all.append(chunk.data(), static_cast<std::size_t>(n));
      at += n;
    }
    EXPECT_TRUE(all.empty() || all.back() == '\n') << "the output ends inside a line";
    std::vector<std::string> out;
    std::istringstream in(all);
    for (std::string line; std::getline(in, line);)
      out.push_back(line);
    return out;
  }

 private:
  std::FILE* file_;
};

const std::regex kStamped(
    R"(^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z) (info|warning|error) (.*)$)");

TEST(LogWriterTest, FormatsTimeAsRfc3339UtcWithMilliseconds) {
  using namespace std::chrono;
  // 2026-12-01T18:49:50.561Z
  const sys_time<milliseconds> t = sys_days{year{2026} / December / 1} + hours{18} + minutes{49} +
                                   seconds{50} + milliseconds{561};
  EXPECT_EQ(LogWriter::format_time(t), "2026-12-01T18:49:50.561Z");
  EXPECT_EQ(LogWriter::format_time(sys_days{year{1970} / January / 1}), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(LogWriter::format_time(sys_days{year{1970} / January / 1} - milliseconds{1}),
            "1969-12-31T23:59:59.999Z");
}

TEST(LogWriterTest, ApplicationAndAccessLinesShareOneFormat) {
  CaptureFile out;
  {
    auto writer = std::make_shared<LogWriter>(out.fd());
    auto logger = make_logger("test", writer);
    AccessLog access(writer);
    AccessLogBuffer buffer(&access);
    logger->info("listening on {}", "localhost:8080");
    buffer.line("POST", "/update/gauge/Alloc/1", 200, 0, std::chrono::microseconds{41});
    logger->warn("storage unavailable");
  }
  const auto lines = out.lines();
  ASSERT_EQ(lines.size(), 3u);
  std::smatch m;
  ASSERT_TRUE(std::regex_match(lines[0], m, kStamped)) << lines[0];
  EXPECT_EQ(m[2], "info");
  EXPECT_EQ(m[3], "listening on localhost:8080");
  ASSERT_TRUE(std::regex_match(lines[1], m, kStamped)) << lines[1];
  EXPECT_EQ(m[2], "info");
  EXPECT_EQ(m[3], "POST /update/gauge/Alloc/1 200 0B 41us");
  ASSERT_TRUE(std::regex_match(lines[2], m, kStamped)) << lines[2];
  EXPECT_EQ(m[2], "warning");
  EXPECT_EQ(m[3], "storage unavailable");
}

TEST(LogWriterTest, FlushReturnsOnceEverythingIsWritten) {
  CaptureFile out;
  auto writer = std::make_shared<LogWriter>(out.fd());
  for (int i = 0; i < 1000; ++i)
    writer->append("info", "line " + std::to_string(i));
  writer->flush();
  const auto lines = out.lines();
  ASSERT_EQ(lines.size(), 1000u);
  EXPECT_NE(lines.back().find(" info line 999"), std::string::npos) << lines.back();
  writer->flush();  // nothing new: returns at once
}

// Several threads log application lines through spdlog and several write
// access lines, all at once. Every line must come out whole and exactly once
// (or be counted as dropped), each thread's lines in the order it made them,
// and the stamps of the whole output must never go backwards.
TEST(LogWriterTest, ConcurrentApplicationAndAccessLinesComeOutWholeAndInStampOrder) {
  constexpr int kThreadsPerKind = 3;
  constexpr int kLinesPerThread = 10000;
  CaptureFile out;
  std::uint64_t dropped = 0;
  {
    // Six threads that do nothing but log can starve the writer thread on a
    // small machine; with room for everything, no line may be missing.
    auto writer = std::make_shared<LogWriter>(out.fd(), std::size_t{64} << 20);
    auto logger = make_logger("test", writer);
    AccessLog access(writer);
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreadsPerKind; ++t) {
      threads.emplace_back([&logger, t] {
        for (int n = 0; n < kLinesPerThread; ++n) {
          if (n % 1000 == 999) {
            logger->warn("app t={} n={}", t, n);
          } else {
            logger->info("app t={} n={}", t, n);
          }
        }
      });
      threads.emplace_back([&access, t] {
        AccessLogBuffer buffer(&access);
        for (int n = 0; n < kLinesPerThread; ++n)
          buffer.line("GET", "/t" + std::to_string(t) + "/" + std::to_string(n), 200, 5,
                      std::chrono::microseconds{7});
      });
    }
    for (auto& th : threads)
      th.join();
    dropped = writer->dropped_lines();
  }

  const std::regex app(R"(^app t=(\d+) n=(\d+)$)");
  const std::regex acc(R"(^GET /t(\d+)/(\d+) 200 5B 7us$)");
  const std::regex drop(R"(^log: (\d+) line\(s\) dropped: stderr did not keep up$)");
  std::map<std::pair<char, int>, int> last;  // (kind, thread) -> last n seen
  for (int t = 0; t < kThreadsPerKind; ++t) {
    last[{'a', t}] = -1;
    last[{'r', t}] = -1;
  }
  std::uint64_t seen = 0, reported_dropped = 0, gaps = 0;
  std::string previous_stamp;
  for (const auto& line : out.lines()) {
    std::smatch m, b;
    ASSERT_TRUE(std::regex_match(line, m, kStamped)) << "not a whole line: " << line;
    const std::string stamp = m[1], body = m[3];
    // Fixed-width stamps: string order is time order.
    ASSERT_LE(previous_stamp, stamp) << "stamps go backwards at: " << line;
    previous_stamp = stamp;
    char kind = 0;
    if (std::regex_match(body, b, app)) {
      kind = 'a';
      EXPECT_EQ(m[2], std::stoi(b[2]) % 1000 == 999 ? "warning" : "info") << line;
    } else if (std::regex_match(body, b, acc)) {
      kind = 'r';
      EXPECT_EQ(m[2], "info") << line;
    } else if (std::regex_match(body, b, drop)) {
      reported_dropped += std::stoull(b[1]);
      continue;
    } else {
      FAIL() << "unexpected line: " << line;
    }
    const int t = std::stoi(b[1]), n = std::stoi(b[2]);
    auto it = last.find({kind, t});
    ASSERT_NE(it, last.end()) << line;
    ASSERT_GT(n, it->second) << "out of order or repeated: " << line;
    gaps += static_cast<std::uint64_t>(n - it->second - 1);
    it->second = n;
    ++seen;
  }
  for (auto& [key, n] : last)
    gaps += static_cast<std::uint64_t>(kLinesPerThread - 1 - n);
  EXPECT_EQ(dropped, 0u);
  EXPECT_EQ(seen + dropped, 2u * kThreadsPerKind * kLinesPerThread);
  EXPECT_EQ(gaps, dropped) << "a line is missing that was not counted as dropped";
  EXPECT_EQ(reported_dropped, dropped) << "dropped lines must be reported in the log";
}

// A descriptor that does not keep up (a pipe nobody reads for a while):
// appending never blocks, the buffer stays bounded, and the loss is
// reported once the pipe drains.
TEST(LogWriterTest, SlowDescriptorDropsAndReportsInsteadOfBlocking) {
  std::array<int, 2> pipe_fds{};
  ASSERT_EQ(::pipe(pipe_fds.data()), 0);
  constexpr int kLines = 100000;  // about 6 MB: far more than the pipe and the buffer hold
  std::string all;
  {
    auto writer = std::make_shared<LogWriter>(pipe_fds[1]);
    const auto start = std::chrono::steady_clock::now();
    for (int n = 0; n < kLines; ++n)
      writer->append("info", "GET /some/longer/path/to/fill/the/pipe " + std::to_string(n));
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_LT(took, std::chrono::seconds{5}) << "append waited for the descriptor";
    EXPECT_GT(writer->dropped_lines(), 0u);
    std::thread reader([&] {
      std::array<char, 1 << 16> chunk{};
      for (;;) {
        const ssize_t n = ::read(pipe_fds[0], chunk.data(), chunk.size());
        if (n <= 0) return;
        all.append(chunk.data(), static_cast<std::size_t>(n));
      }
    });
    const std::uint64_t dropped = writer->dropped_lines();
    writer.reset();  // writes the rest, including the report
    ::close(pipe_fds[1]);
    reader.join();
    std::istringstream in(all);
    std::uint64_t lines = 0, reported = 0;
    const std::regex drop(R"(^\S+Z warning log: (\d+) line\(s\) dropped: stderr did not keep up$)");
    for (std::string line; std::getline(in, line);) {
      std::smatch m;
      if (std::regex_match(line, m, drop)) {
        reported += std::stoull(m[1]);
      } else {
        ++lines;
      }
    }
    EXPECT_EQ(reported, dropped);
    EXPECT_EQ(lines + dropped, static_cast<std::uint64_t>(kLines));
  }
  ::close(pipe_fds[0]);
}

}  // namespace
}  // namespace metrics::server::detail
