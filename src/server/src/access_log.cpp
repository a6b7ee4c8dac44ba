#include "access_log.hpp"

#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <ctime>

namespace metrics::server::detail {

AccessLog::AccessLog(int fd) : fd_(fd), thread_([this] { run(); }) {}

AccessLog::~AccessLog() {
  {
    std::lock_guard lock(mutex_);
    stop_ = true;
  }
  cv_.notify_one();
  thread_.join();
}

void AccessLog::submit(std::string chunk) {
  if (chunk.empty()) return;
  {
    std::lock_guard lock(mutex_);
    if (queued_bytes_ + chunk.size() > kMaxQueuedBytes) {
      dropped_lines_ += static_cast<std::uint64_t>(std::count(chunk.begin(), chunk.end(), '\n'));
      return;
    }
    queued_bytes_ += chunk.size();
    queue_.push_back(std::move(chunk));
  }
  cv_.notify_one();
}

std::uint64_t AccessLog::dropped_lines() const {
  std::lock_guard lock(mutex_);
  return dropped_lines_;
}

void AccessLog::run() {
  std::unique_lock lock(mutex_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !queue_.empty(); });
    while (!queue_.empty()) {
      std::string chunk = std::move(queue_.front());
      queue_.pop_front();
      queued_bytes_ -= chunk.size();
      lock.unlock();
      write_all(chunk);
      lock.lock();
    }
    if (stop_) return;
  }
}

void AccessLog::write_all(std::string_view data) const {
  while (!data.empty()) {
    const ssize_t n = ::write(fd_, data.data(), data.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;  // nowhere to write: drop rather than spin
    data.remove_prefix(static_cast<std::size_t>(n));
  }
}

void AccessLogBuffer::refresh_timestamp(std::chrono::system_clock::time_point now) {
  const auto ms =
      std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()).count();
  if (ms == stamp_ms_) return;
  stamp_ms_ = ms;
  const std::time_t seconds = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  stamp_ = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}+00:00 info ", tm.tm_year + 1900,
                       tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms % 1000);
}

void AccessLogBuffer::line(std::string_view method, std::string_view target, unsigned status,
                           std::size_t bytes, std::chrono::microseconds duration) {
  refresh_timestamp(std::chrono::system_clock::now());
  buffer_ += stamp_;
  fmt::format_to(std::back_inserter(buffer_), "{} {} {} {}B {}us\n", method, target, status, bytes,
                 duration.count());
  if (buffer_.size() >= kChunkBytes) flush();
}

void AccessLogBuffer::flush() {
  if (buffer_.empty()) return;
  std::string chunk;
  chunk.reserve(kChunkBytes + 512);
  chunk.swap(buffer_);
  sink_->submit(std::move(chunk));
}

}  // namespace metrics::server::detail
