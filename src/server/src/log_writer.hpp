// The one writer of the server's log: the application log (spdlog) and the
// access log both append whole lines here, and one thread writes them to the
// file descriptor (stderr).
//
// Every line is stamped, under the same lock that appends it, with the time
// of the append in RFC 3339 UTC with milliseconds:
//   2026-12-01T18:49:50.561Z info listening on localhost:8080 (port 8080), ...
//   2026-12-01T18:49:51.560Z info POST /update/gauge/Alloc/1 200 0B 41us
// so the output is in the order the lines were made, their stamps never go
// backwards (unless the system clock itself is stepped back), and no line is
// ever split or mixed with another.
//
// Appending never blocks on the descriptor: a caller copies its line into a
// memory buffer and returns. The writer thread writes the buffer out when it
// holds kWriteAtBytes, when a line at warning or above arrives, and otherwise
// kWriteEvery after the first line waiting. When the descriptor cannot keep
// up and kMaxBufferedBytes wait, new lines are dropped and counted, and a
// warning line with the count is written once the writer catches up.
//
// What a kill -9 loses: the lines still in the buffer, i.e. those of the last
// kWriteEvery (100 ms) — a warning or error line is on its way to the
// descriptor at once — and never more than 2 × kMaxBufferedBytes (the buffer
// and the block being written), about 30 000 access lines. A graceful stop
// (the destructor, flush()) loses nothing.
//
// Thread-safety: every member function is thread-safe.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace spdlog {
class logger;
}

namespace metrics::server::detail {

class LogWriter {
 public:
  // `max_buffered_bytes`: the bound above which lines are dropped.
  explicit LogWriter(int fd, std::size_t max_buffered_bytes = kMaxBufferedBytes);
  ~LogWriter();  // writes everything appended, then stops
  LogWriter(const LogWriter&) = delete;
  LogWriter& operator=(const LogWriter&) = delete;

  // Appends "<stamp> <level> <text>\n" (the newline only when `text` lacks
  // one). `urgent` wakes the writer at once (warnings and errors).
  void append(std::string_view level, std::string_view text, bool urgent = false);
  // Returns once every line appended before the call has been written.
  void flush();
  [[nodiscard]] std::uint64_t dropped_lines() const;

  // "2026-12-01T18:49:50.561Z": RFC 3339, UTC, milliseconds.
  static std::string format_time(std::chrono::system_clock::time_point t);

  static constexpr std::size_t kWriteAtBytes = 64u << 10;
  static constexpr std::size_t kMaxBufferedBytes = 1u << 20;
  static constexpr std::chrono::milliseconds kWriteEvery{100};

 private:
  void run();
  void write_all(std::string_view data) const;
  // Under mutex_: the stamp of `now` followed by a space, cached per millisecond.
  const std::string& stamp(std::chrono::system_clock::time_point now);

  int fd_;
  std::size_t max_buffered_bytes_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;  // the writer: lines are waiting
  std::condition_variable done_;  // flush(): a block has been written
  std::string buffer_;            // lines not yet taken by the writer
  bool urgent_ = false;
  bool stop_ = false;
  std::size_t flush_waiters_ = 0;
  std::uint64_t appended_ = 0;  // lines appended so far
  std::uint64_t written_ = 0;   // of those, lines written (or given up on)
  std::uint64_t dropped_ = 0;
  std::uint64_t dropped_unreported_ = 0;
  std::int64_t stamp_ms_ = -1;
  std::string stamp_;
  std::thread thread_;
};

// The process's writer for stderr, created on first use; the application
// logger installed by init_logging() and the server's access log share it.
std::shared_ptr<LogWriter> stderr_log_writer();

// A synchronous spdlog logger whose lines go to `writer` (defined in
// logging.cpp; init_logging() installs one over stderr_log_writer()).
std::shared_ptr<spdlog::logger> make_logger(std::string name, std::shared_ptr<LogWriter> writer);

}  // namespace metrics::server::detail
