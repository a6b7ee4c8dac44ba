// Whether the PostgreSQL database answers, as the storage's workers last
// found it: up, or down since when and why; when the next reconnection
// probe is due; and the rate limit of the log line for a refused login.
//
//   std::lock_guard lock(mu);
//   if (health.mark_down(reason)) fail_everything_queued();
//   ...
//   if (health.probe_due()) { health.start_probe(); ... health.end_probe(); }
//
// Not thread-safe on its own: the owner guards it with the mutex of its
// queue (requests are refused under the same lock as they are queued), and
// every call must hold that mutex.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>

#include "metrics/core/clock.hpp"

namespace metrics::storage::detail::pg {

class Reachability {
 public:
  // How often a refused login is logged while it keeps being refused.
  static constexpr std::chrono::minutes kAuthLogInterval{1};

  Reachability(core::Clock& clock, std::chrono::milliseconds probe_interval)
      : clock_(clock), probe_interval_(probe_interval) {}

  [[nodiscard]] bool down() const noexcept { return down_; }
  // Why it is down (libpq's message, or the refused login's reason).
  [[nodiscard]] const std::string& why() const noexcept { return why_; }
  // Times the database was reached again after being down.
  [[nodiscard]] std::uint64_t reconnects() const noexcept { return reconnects_; }

  // Marks it down; false (nothing changed) when it already was. The first
  // probe is due after `first_probe_after` (0 at start: at once).
  bool mark_down(std::string why, core::Clock::Duration first_probe_after) {
    if (down_) return false;
    down_ = true;
    why_ = std::move(why);
    since_ = clock_.steady_now();
    next_probe_ = since_ + first_probe_after;
    return true;
  }
  bool mark_down(std::string why) { return mark_down(std::move(why), probe_interval_); }

  // Marks it up; how long it was down, or nullopt when it was not.
  std::optional<core::Clock::Duration> mark_up() {
    if (!down_) return std::nullopt;
    down_ = false;
    ++reconnects_;
    last_auth_log_.reset();
    return clock_.steady_now() - since_;
  }

  // While down, one probe at a time, every probe interval.
  [[nodiscard]] bool probe_due() const {
    return down_ && !probing_ && clock_.steady_now() >= next_probe_;
  }
  // Whether an idle worker should wait for next_probe() (else for work).
  [[nodiscard]] bool awaiting_probe() const noexcept { return down_ && !probing_; }
  [[nodiscard]] core::Clock::SteadyTime next_probe() const noexcept { return next_probe_; }
  void start_probe() noexcept { probing_ = true; }
  void end_probe() {
    probing_ = false;
    next_probe_ = clock_.steady_now() + probe_interval_;
  }

  // Whether a refused login is to be logged now: the first time, then at
  // most once per kAuthLogInterval until the database is reached again.
  bool auth_log_due() {
    const auto now = clock_.steady_now();
    if (last_auth_log_ && now - *last_auth_log_ < kAuthLogInterval) return false;
    last_auth_log_ = now;
    return true;
  }

 private:
  core::Clock& clock_;
  const std::chrono::milliseconds probe_interval_;
  bool down_ = false;
  std::string why_;
  core::Clock::SteadyTime since_{};
  core::Clock::SteadyTime next_probe_{};
  bool probing_ = false;
  std::uint64_t reconnects_ = 0;
  std::optional<core::Clock::SteadyTime> last_auth_log_;
};

}  // namespace metrics::storage::detail::pg
