#include "metrics/outbound/retry.hpp"

#include <algorithm>
#include <charconv>
#include <cstdint>

#include "metrics/core/text.hpp"

namespace metrics::outbound {

std::string_view to_string(Verdict verdict) noexcept {
  switch (verdict) {
    case Verdict::success:
      return "success";
    case Verdict::retry_later:
      return "retry later";
    case Verdict::retry_after:
      return "retry after";
    case Verdict::permanent:
      return "permanent failure";
    case Verdict::unknown:
      return "outcome unknown";
  }
  return "unknown";
}

Classification classify(const Response& response) noexcept {
  switch (response.transport) {
    case Transport::not_sent:
      return {Verdict::retry_later, std::nullopt};
    case Transport::unknown:
      return {Verdict::unknown, std::nullopt};
    case Transport::answered:
      break;
  }
  const long s = response.status;
  if (s >= 200 && s < 300) {
    // The peer says it acted, but the answer cannot be trusted: it may or
    // may not have been applied.
    return {response.signature_ok ? Verdict::success : Verdict::unknown, std::nullopt};
  }
  if (s == 429 || s == 503) {
    if (const auto after = parse_retry_after(response.retry_after)) {
      return {Verdict::retry_after, after};
    }
    return {Verdict::retry_later, std::nullopt};
  }
  if (s == 400 || s == 413 || s == 414 || s == 415 || s == 422) {
    return {Verdict::permanent, std::nullopt};
  }
  // A 500 may come after the change was applied (a failed commit whose
  // outcome the server does not know); a 504 from a proxy likewise.
  if (s == 500 || s == 504) return {Verdict::unknown, std::nullopt};
  // 401 (a key being rotated), 404/405 (a server being upgraded or a proxy
  // in between), 408, 502, 3xx (not followed) and everything else: not applied.
  return {Verdict::retry_later, std::nullopt};
}

std::optional<std::chrono::seconds> parse_retry_after(std::string_view value) noexcept {
  value = core::trim(value);
  if (value.empty()) return std::nullopt;
  std::int64_t seconds = 0;
  const auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc{} || ptr != value.data() + value.size() || seconds < 0) return std::nullopt;
  return std::chrono::seconds{std::min<std::int64_t>(seconds, 3600)};
}

std::optional<std::chrono::milliseconds> retry_delay(
    std::span<const std::chrono::milliseconds> schedule, std::size_t retry,
    std::optional<std::chrono::seconds> retry_after) noexcept {
  if (retry >= schedule.size()) return std::nullopt;
  if (retry_after) {
    return std::chrono::milliseconds{std::min(*retry_after, std::chrono::seconds{60})};
  }
  return schedule[retry];
}

SendResult send_with_retry(Transporter& transport, const Request& request,
                           std::span<const std::chrono::milliseconds> schedule, const WaitFn& wait,
                           const ObserveFn& observe) {
  SendResult result;
  for (std::size_t retry = 0;; ++retry) {
    result.last = transport.perform(request);
    ++result.attempts;
    const Classification c = classify(result.last);
    result.verdict = c.verdict;
    if (observe) observe(result.last, c);
    if (c.verdict == Verdict::success || c.verdict == Verdict::permanent) return result;
    const auto delay = retry_delay(schedule, retry, c.retry_after);
    if (!delay || !wait || !wait(*delay)) return result;
  }
}

}  // namespace metrics::outbound
