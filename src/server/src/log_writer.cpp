#include "log_writer.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <ctime>

namespace metrics::server::detail {

LogWriter::LogWriter(int fd, std::size_t max_buffered_bytes)
    : fd_(fd), max_buffered_bytes_(max_buffered_bytes) {
  buffer_.reserve(kWriteAtBytes * 2);
  thread_ = std::thread([this] { run(); });
}

LogWriter::~LogWriter() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  wake_.notify_one();
  thread_.join();
}

std::string LogWriter::format_time(std::chrono::system_clock::time_point t) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
  // Floor division, so that a time before 1970 still prints a valid stamp.
  const std::int64_t seconds = ms >= 0 ? ms / 1000 : (ms - 999) / 1000;
  const std::int64_t millis = ms - seconds * 1000;
  const auto tt = static_cast<std::time_t>(seconds);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z", tm.tm_year + 1900, tm.tm_mon + 1,
                     tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, millis);
}

const std::string& LogWriter::stamp(std::chrono::system_clock::time_point now) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  if (ms != stamp_ms_) {
    stamp_ms_ = ms;
    stamp_ = format_time(now);
    stamp_ += ' ';
  }
  return stamp_;
}

void LogWriter::append(std::string_view level, std::string_view text, bool urgent) {
  const bool newline = text.empty() || text.back() != '\n';
  bool notify = false;
  {
    std::lock_guard lock(mutex_);
    // The time is read under the lock: lines are stamped in the order they
    // enter the buffer, which is the order they are written.
    const std::string& s = stamp(std::chrono::system_clock::now());
    const std::size_t size = s.size() + level.size() + 1 + text.size() + (newline ? 1 : 0);
    if (buffer_.size() + size > max_buffered_bytes_) {
      ++dropped_;
      ++dropped_unreported_;
      return;
    }
    const std::size_t before = buffer_.size();
    buffer_ += s;
    buffer_ += level;
    buffer_ += ' ';
    buffer_ += text;
    if (newline) buffer_ += '\n';
    ++appended_;
    // Wake the writer only when it sleeps with nothing to do, when a block
    // is full, or for an urgent line: not once per line under load.
    if (urgent) urgent_ = true;
    notify = before == 0 || urgent || (before < kWriteAtBytes && buffer_.size() >= kWriteAtBytes);
  }
  if (notify) wake_.notify_one();
}

void LogWriter::flush() {
  std::unique_lock lock(mutex_);
  const std::uint64_t target = appended_;
  if (written_ >= target) return;
  ++flush_waiters_;
  wake_.notify_one();
  done_.wait(lock, [&] { return written_ >= target; });
  --flush_waiters_;
}

std::uint64_t LogWriter::dropped_lines() const {
  std::lock_guard lock(mutex_);
  return dropped_;
}

void LogWriter::run() {
  std::string block;
  block.reserve(kWriteAtBytes * 2);
  std::unique_lock lock(mutex_);
  for (;;) {
    wake_.wait(lock, [&] { return stop_ || !buffer_.empty() || dropped_unreported_ != 0; });
    // Let lines gather for up to kWriteEvery unless someone waits for them.
    wake_.wait_for(lock, kWriteEvery, [&] {
      return stop_ || urgent_ || flush_waiters_ != 0 || buffer_.size() >= kWriteAtBytes;
    });
    urgent_ = false;
    block.swap(buffer_);
    if (dropped_unreported_ != 0) {
      // After the lines taken, before any later one: stamps stay in order.
      block += stamp(std::chrono::system_clock::now());
      fmt::format_to(std::back_inserter(block),
                     "warning log: {} line(s) dropped: stderr did not keep up\n",
                     dropped_unreported_);
      dropped_unreported_ = 0;
    }
    const std::uint64_t taken = appended_;
    lock.unlock();
    write_all(block);
    block.clear();
    lock.lock();
    written_ = taken;
    if (flush_waiters_ != 0) done_.notify_all();
    if (stop_ && buffer_.empty() && dropped_unreported_ == 0) return;
  }
}

void LogWriter::write_all(std::string_view data) const {
  while (!data.empty()) {
    const ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to write: drop rather than spin
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

std::shared_ptr<LogWriter> stderr_log_writer() {
  static const std::shared_ptr<LogWriter> writer = std::make_shared<LogWriter>(STDERR_FILENO);
  return writer;
}

}  // namespace metrics::server::detail
