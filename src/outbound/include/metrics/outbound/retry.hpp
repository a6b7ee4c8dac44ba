// What an answer means for the sender, when to try again, and the one retry
// loop every pushing component uses.
//
//   const std::vector<std::chrono::milliseconds> schedule{1s, 3s, 5s};
//   const auto result = outbound::send_with_retry(client, request, schedule,
//       [&](std::chrono::milliseconds d) { return sleep_unless_stopping(d); });
//   if (result.verdict == outbound::Verdict::success) ...
//
// classify, retry_delay and parse_retry_after are pure and thread-safe;
// send_with_retry is reentrant (it uses only its arguments).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <span>
#include <string_view>

#include "metrics/outbound/client.hpp"

namespace metrics::outbound {

enum class Verdict : std::uint8_t {
  success,      // 2xx with a valid (or, unsigned, any) answer
  retry_later,  // not applied; worth resending on the schedule (no connection,
                // 408, 429/503 without Retry-After, 502, 401, 404, 3xx ...)
  retry_after,  // not applied; the peer said when (429/503 with Retry-After: N)
  permanent,    // the request itself is refused (400, 413, 414, 415, 422):
                // resending the same bytes cannot help
  unknown,      // it may or may not have been applied (no complete answer
                // after sending, 500, 504, a 2xx whose signature fails)
};

struct Classification {
  Verdict verdict = Verdict::retry_later;
  // Set with Verdict::retry_after: the wait the peer asked for (<= 1 h).
  std::optional<std::chrono::seconds> retry_after;
};

[[nodiscard]] std::string_view to_string(Verdict verdict) noexcept;

[[nodiscard]] Classification classify(const Response& response) noexcept;

// Parses a Retry-After value in seconds, capped at 1 h (HTTP dates are
// ignored: nullopt).
[[nodiscard]] std::optional<std::chrono::seconds> parse_retry_after(
    std::string_view value) noexcept;

// The wait before retry number `retry` (0 for the first retry), or nullopt
// when the schedule is exhausted. A Retry-After replaces the scheduled wait,
// capped at 60 s; it does not add attempts.
[[nodiscard]] std::optional<std::chrono::milliseconds> retry_delay(
    std::span<const std::chrono::milliseconds> schedule, std::size_t retry,
    std::optional<std::chrono::seconds> retry_after) noexcept;

struct SendResult {
  Verdict verdict = Verdict::retry_later;  // of the last attempt
  Response last;                           // the last attempt's answer
  std::size_t attempts = 0;
};

// Waits `delay` before the next attempt; false abandons the request (stopping,
// or the deadline would pass).
using WaitFn = std::function<bool(std::chrono::milliseconds delay)>;
// Sees every attempt's answer and verdict (for statistics and logs).
using ObserveFn = std::function<void(const Response&, const Classification&)>;

// Sends `request` until it succeeds, is refused for good, the schedule runs
// out or wait() gives up; retries retry_later, retry_after and unknown answers
// (an unknown outcome resent may be applied twice; the caller's protocol
// decides whether that is acceptable).
[[nodiscard]] SendResult send_with_retry(Transporter& transport, const Request& request,
                                         std::span<const std::chrono::milliseconds> schedule,
                                         const WaitFn& wait, const ObserveFn& observe = {});

}  // namespace metrics::outbound
