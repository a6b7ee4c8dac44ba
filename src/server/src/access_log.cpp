#include "access_log.hpp"

#include <fmt/format.h>

#include <iterator>

namespace metrics::server::detail {

void AccessLogBuffer::line(std::string_view method, std::string_view target, unsigned status,
                           std::size_t bytes, std::chrono::microseconds duration) {
  buffer_.clear();
  fmt::format_to(std::back_inserter(buffer_), "{} {} {} {}B {}us\n", method, target, status, bytes,
                 duration.count());
  sink_->write(buffer_);
}

}  // namespace metrics::server::detail
