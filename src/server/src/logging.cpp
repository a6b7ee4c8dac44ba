#include "metrics/server/logging.hpp"

#include <spdlog/sinks/sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "log_writer.hpp"

namespace metrics::server {
namespace {

// Hands each application log line to the shared LogWriter, which stamps it
// and writes it in order with the access log. The logger is synchronous:
// a call only copies the line into the writer's buffer, it never waits for
// the descriptor, so no second queue (and no second order) exists.
class WriterSink final : public spdlog::sinks::sink {
 public:
  explicit WriterSink(std::shared_ptr<detail::LogWriter> writer) : writer_(std::move(writer)) {}

  void log(const spdlog::details::log_msg& msg) override {
    const auto level = spdlog::level::to_string_view(msg.level);
    writer_->append(std::string_view(level.data(), level.size()),
                    std::string_view(msg.payload.data(), msg.payload.size()),
                    msg.level >= spdlog::level::warn);
  }
  void flush() override { writer_->flush(); }
  // The writer owns the format: "<RFC 3339 UTC stamp> <level> <message>".
  void set_pattern(const std::string&) override {}
  void set_formatter(std::unique_ptr<spdlog::formatter>) override {}

 private:
  std::shared_ptr<detail::LogWriter> writer_;
};

}  // namespace

namespace detail {
std::shared_ptr<spdlog::logger> make_logger(std::string name, std::shared_ptr<LogWriter> writer) {
  return std::make_shared<spdlog::logger>(std::move(name),
                                          std::make_shared<WriterSink>(std::move(writer)));
}
}  // namespace detail

void init_logging(const std::string& level) {
  auto logger = detail::make_logger("metrics-server", detail::stderr_log_writer());
  logger->set_level(spdlog::level::from_str(level));
  spdlog::set_default_logger(std::move(logger));
}

void shutdown_logging() {
  spdlog::default_logger()->flush();
  spdlog::shutdown();
  detail::stderr_log_writer()->flush();
}

}  // namespace metrics::server
