#include "metrics/outbound/failure_log.hpp"

namespace metrics::outbound {

std::optional<std::string> FailureLog::failure(TimePoint now, std::string_view target,
                                               std::string_view what) {
  ++failures_;
  if (failures_ == 1) {
    first_ = now;
    last_line_ = now;
    suppressed_ = 0;
    return "cannot send to " + std::string(target) + ": " + std::string(what) +
           " (data kept and retried; further failures logged at most every " +
           std::to_string(std::chrono::duration_cast<std::chrono::seconds>(interval_).count()) +
           " s)";
  }
  if (now - last_line_ < interval_) {
    ++suppressed_;
    return std::nullopt;
  }
  const auto since = std::chrono::duration_cast<std::chrono::seconds>(now - first_).count();
  std::string line = "still cannot send to " + std::string(target) + " after " +
                     std::to_string(since) + " s: " + std::string(what) + " (" +
                     std::to_string(suppressed_) + " more failures since the last line)";
  last_line_ = now;
  suppressed_ = 0;
  return line;
}

std::optional<std::string> FailureLog::success(TimePoint now, std::string_view target) {
  if (failures_ == 0) return std::nullopt;
  const auto since = std::chrono::duration_cast<std::chrono::seconds>(now - first_).count();
  std::string line = "sending to " + std::string(target) + " recovered after " +
                     std::to_string(failures_) + " failed attempts in " + std::to_string(since) +
                     " s";
  failures_ = 0;
  suppressed_ = 0;
  return line;
}

}  // namespace metrics::outbound
