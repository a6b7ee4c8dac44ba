// The access log: one line per request, written by the server's one log
// writer (log_writer.hpp) together with the application log, so access lines
// and application lines come out whole, in the order they were made, with the
// same stamp:
//   2026-11-25T18:37:27.470Z info POST /updates/ 200 1234B 96us
//
// Each I/O thread formats its lines in its own AccessLogBuffer (no lock) and
// appends each finished line to the writer: one short lock, no wake-up of
// the writer thread per line, never a wait for stderr.
//
// Thread-safety: AccessLog is thread-safe; an AccessLogBuffer belongs to one
// thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "log_writer.hpp"

namespace metrics::server::detail {

class AccessLog {
 public:
  explicit AccessLog(std::shared_ptr<LogWriter> writer) : writer_(std::move(writer)) {}

  // Appends one line (without stamp or level) at info level.
  void write(std::string_view line) { writer_->append("info", line); }
  [[nodiscard]] std::uint64_t dropped_lines() const { return writer_->dropped_lines(); }

 private:
  std::shared_ptr<LogWriter> writer_;
};

class AccessLogBuffer {
 public:
  explicit AccessLogBuffer(AccessLog* sink) : sink_(sink) {}

  void line(std::string_view method, std::string_view target, unsigned status, std::size_t bytes,
            std::chrono::microseconds duration);
  // Lines reach the writer as they are made; nothing waits here. Kept so that
  // the server can call it at the end of a request and at stop.
  void flush() {}

 private:
  AccessLog* sink_;
  std::string buffer_;  // the line being formatted; its capacity is reused
};

}  // namespace metrics::server::detail
