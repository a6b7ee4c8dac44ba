// Decides which send failures are worth a log line: the first one at once,
// then at most one line per interval with the number of failures it stands
// for, and one line when sending works again. A dead address is visible in
// the first second, and a long outage does not flood the log.
//
//   outbound::FailureLog failures(std::chrono::seconds{30});
//   if (auto line = failures.failure(now, "http://h:1/updates/", "Connection refused"))
//     log(warn, *line);
//   if (auto line = failures.success(now, "http://h:1/updates/")) log(info, *line);
//
// Pure (time comes from the caller). Not thread-safe: guard it with the
// sender's mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace metrics::outbound {

class FailureLog {
 public:
  using TimePoint = std::chrono::steady_clock::time_point;

  explicit FailureLog(std::chrono::milliseconds interval = std::chrono::seconds{30}) noexcept
      : interval_(interval) {}

  // One failed attempt; the line to log now, or nullopt when it is counted
  // for the next line instead.
  [[nodiscard]] std::optional<std::string> failure(TimePoint now, std::string_view target,
                                                   std::string_view what);
  // One acknowledged request; a line when it ends a run of failures.
  [[nodiscard]] std::optional<std::string> success(TimePoint now, std::string_view target);

  [[nodiscard]] bool failing() const noexcept { return failures_ > 0; }

 private:
  std::chrono::milliseconds interval_;
  std::uint64_t failures_ = 0;    // in the current run
  std::uint64_t suppressed_ = 0;  // since the last line
  TimePoint first_{};
  TimePoint last_line_{};
};

}  // namespace metrics::outbound
