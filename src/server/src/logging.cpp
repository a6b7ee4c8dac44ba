#include "metrics/server/logging.hpp"

#include <spdlog/async.h>
#include <spdlog/sinks/base_sink.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <mutex>
#include <string>

namespace metrics::server {
namespace {

// Writes to a file descriptor in large blocks. spdlog's stderr sink issues
// one write(2) per line, which at tens of thousands of requests per second
// costs more than the requests; the async logger's single worker thread is
// the only writer here, so buffering until a flush or 64 KiB is safe.
class BufferedFdSink final : public spdlog::sinks::base_sink<std::mutex> {
 public:
  explicit BufferedFdSink(int fd) : fd_(fd) { buffer_.reserve(kFlushAt * 2); }
  ~BufferedFdSink() override {
    // The last line may have been written by the logger's worker thread;
    // the sink's own mutex orders that write before this final flush.
    std::lock_guard lock(mutex_);
    write_out();
  }

 protected:
  void sink_it_(const spdlog::details::log_msg& msg) override {
    spdlog::memory_buf_t formatted;
    formatter_->format(msg, formatted);
    buffer_.append(formatted.data(), formatted.size());
    if (buffer_.size() >= kFlushAt) write_out();
  }
  void flush_() override { write_out(); }

 private:
  static constexpr std::size_t kFlushAt = 64u << 10;

  void write_out() {
    std::size_t done = 0;
    while (done < buffer_.size()) {
      ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;  // nowhere to write: drop rather than block the logger
      done += static_cast<std::size_t>(n);
    }
    buffer_.clear();
  }

  int fd_;
  std::string buffer_;
};

}  // namespace

void init_logging(const std::string& level) {
  spdlog::init_thread_pool(1u << 14, 1);
  auto sink = std::make_shared<BufferedFdSink>(STDERR_FILENO);
  auto logger = std::make_shared<spdlog::async_logger>(
      "metrics-server", std::move(sink), spdlog::thread_pool(),
      spdlog::async_overflow_policy::overrun_oldest);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e%z %^%l%$ %v");
  logger->set_level(spdlog::level::from_str(level));
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(std::move(logger));
  // Lines below warn reach stderr within a second even when traffic is light.
  spdlog::flush_every(std::chrono::seconds{1});
}

void shutdown_logging() {
  spdlog::default_logger()->flush();
  spdlog::shutdown();
}

}  // namespace metrics::server
