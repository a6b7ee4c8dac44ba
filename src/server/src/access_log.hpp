// The access log: one line per request, written without costing the I/O
// threads a wake-up of another thread per line.
//
// Each I/O thread appends lines to its own AccessLogBuffer (no lock, no
// signal) and hands a whole chunk to the shared AccessLog writer thread when
// the chunk is full or a second has passed. The writer is woken once per
// chunk, not once per line: with spdlog's async queue, the per-line
// condition-variable signal and the context switches it caused cost more
// than the requests being logged.
//
// Lines look like the rest of the server's log:
//   2026-11-25T18:37:27.470+00:00 info POST /updates/ 200 1234B 96us
//
// Thread-safety: AccessLog::submit is thread-safe; an AccessLogBuffer
// belongs to one thread.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>

namespace metrics::server::detail {

class AccessLog {
 public:
  explicit AccessLog(int fd);
  ~AccessLog();  // writes everything submitted, then stops
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  // Queues a chunk of complete lines. When more than kMaxQueuedBytes wait
  // (the log cannot keep up, e.g. a blocked pipe), the chunk is dropped and
  // counted rather than growing memory or blocking a request.
  void submit(std::string chunk);
  [[nodiscard]] std::uint64_t dropped_lines() const;

  static constexpr std::size_t kMaxQueuedBytes = 8u << 20;

 private:
  void run();
  void write_all(std::string_view data) const;

  int fd_;
  mutable std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::string> queue_;
  std::size_t queued_bytes_ = 0;
  std::uint64_t dropped_lines_ = 0;
  bool stop_ = false;
  std::thread thread_;
};

class AccessLogBuffer {
 public:
  explicit AccessLogBuffer(AccessLog* sink) : sink_(sink) {}

  void line(std::string_view method, std::string_view target, unsigned status, std::size_t bytes,
            std::chrono::microseconds duration);
  // Hands what is buffered to the writer.
  void flush();

  static constexpr std::size_t kChunkBytes = 32u << 10;

 private:
  void refresh_timestamp(std::chrono::system_clock::time_point now);

  AccessLog* sink_;
  std::string buffer_;
  std::int64_t stamp_ms_ = -1;
  std::string stamp_;  // "2026-11-25T18:37:27.470+00:00 info "
};

}  // namespace metrics::server::detail
