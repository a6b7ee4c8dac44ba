#include "metrics/agent/agent.hpp"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "http_sender.hpp"
#include "pending_set.hpp"
#include "sampler.hpp"

namespace metrics::agent {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string validate(const AgentConfig& config) noexcept {
  try {
    std::string why;
    if (!detail::updates_url(config.address, &why))
      return "address: '" + config.address + "' " + why;
    if (config.poll_interval <= milliseconds::zero()) return "poll interval: must be positive";
    if (config.report_interval <= milliseconds::zero()) return "report interval: must be positive";
    if (config.rate_limit == 0) return "rate limit: must be at least 1";
    if (config.rate_limit > 64) return "rate limit: at most 64 requests in flight";
    if (config.max_pending == 0) return "max pending: must be at least 1";
    if (config.max_batch == 0) return "max batch: must be at least 1";
    if (config.request_timeout <= milliseconds::zero()) return "request timeout: must be positive";
    for (const auto& d : config.retry_backoff) {
      if (d < milliseconds::zero()) return "retry backoff: waits must not be negative";
    }
    return {};
  } catch (...) {
    return "out of memory";
  }
}

struct Agent::Impl {
  explicit Impl(AgentConfig c) : config(std::move(c)), pending(config.max_pending) {}

  void log(LogLevel level, std::string_view message) const noexcept {
    if (!config.log) return;
    try {
      config.log(level, message);
    } catch (...) {
      // A failing sink must not take the agent (or the host) down.
    }
  }

  void start();
  void main_loop();
  void sender_loop();
  void take_sample() noexcept;
  // Hands the pending set to the senders when a slot is free. Needs mu.
  void dispatch_locked();
  // Sends one job with retries; returns when it is acknowledged, refused,
  // out of attempts or the agent is stopping (then it is put back).
  void send_job(detail::HttpSender& sender, std::vector<core::Metric> job);
  bool final_send(Clock::time_point deadline) noexcept;
  bool shutdown(milliseconds timeout) noexcept;

  AgentConfig config;
  std::string url;
  std::string error;
  std::optional<detail::Sampler> sampler;

  mutable std::mutex mu;
  std::condition_variable main_cv;
  std::condition_variable sender_cv;
  std::condition_variable done_cv;
  detail::PendingSet pending;
  std::deque<std::vector<core::Metric>> jobs;
  unsigned busy = 0;
  unsigned slots = 0;  // sender threads; fixed before the main thread starts
  bool stopping = false;
  bool stopping_senders = false;
  std::uint64_t flush_requests = 0;
  std::uint64_t flush_handled = 0;
  unsigned flush_waiters = 0;
  AgentStats stats;

  std::atomic<unsigned> posts_in_flight{0};
  std::atomic<std::int64_t> abort_at{std::numeric_limits<std::int64_t>::max()};
  std::atomic<bool> accepting{false};

  std::mutex host_mu;
  std::unordered_map<std::string, double> host_gauges;
  std::unordered_map<std::string, std::int64_t> host_counters;

  std::thread main_thread;
  std::vector<std::thread> senders;

  std::mutex shutdown_mu;
  std::optional<bool> shutdown_result;
};

void Agent::Impl::start() {
  sampler.emplace(config);
  // Senders first: the main thread reads `slots`, fixed before it starts.
  try {
    for (unsigned i = 0; i < config.rate_limit; ++i) {
      senders.emplace_back([this] { sender_loop(); });
    }
  } catch (...) {
    // Fewer senders than asked still work; none is an error for the caller.
    if (senders.empty()) throw;
  }
  {
    const std::lock_guard lock(mu);
    slots = static_cast<unsigned>(senders.size());
  }
  main_thread = std::thread([this] { main_loop(); });
  accepting = true;
}

void Agent::Impl::take_sample() noexcept {
  try {
    detail::Metrics sample;
    sample.reserve(64);
    sampler->sample(sample);
    {
      const std::lock_guard host_lock(host_mu);
      for (const auto& [name, value] : host_gauges)
        sample.push_back(core::Metric::gauge(name, value));
      for (auto& [name, delta] : host_counters) {
        if (delta != 0) sample.push_back(core::Metric::counter(name, delta));
      }
      host_counters.clear();
    }
    const std::lock_guard lock(mu);
    pending.merge(sample);
    ++stats.polls;
    stats.metrics_dropped = pending.dropped();
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("sampling failed: ") + e.what());
  } catch (...) {
    log(LogLevel::error, "sampling failed");
  }
}

void Agent::Impl::dispatch_locked() {
  if (pending.empty() || !jobs.empty() || busy >= slots) return;
  auto all = pending.take();
  const std::size_t chunk = config.max_batch;
  if (all.size() <= chunk) {
    jobs.push_back(std::move(all));
  } else {
    for (std::size_t i = 0; i < all.size(); i += chunk) {
      const auto first = all.begin() + static_cast<std::ptrdiff_t>(i);
      const auto last = all.begin() + static_cast<std::ptrdiff_t>(std::min(i + chunk, all.size()));
      jobs.emplace_back(std::make_move_iterator(first), std::make_move_iterator(last));
    }
  }
  sender_cv.notify_all();
}

void Agent::Impl::main_loop() {
  auto next_poll = Clock::now() + config.poll_interval;
  auto next_report = Clock::now() + config.report_interval;
  std::unique_lock lock(mu);
  while (!stopping) {
    main_cv.wait_until(lock, std::min(next_poll, next_report),
                       [&] { return stopping || flush_requests != flush_handled; });
    if (stopping) break;
    const auto now = Clock::now();
    const std::uint64_t flush_target = flush_requests;
    const bool flushing = flush_target != flush_handled;
    if (flushing || now >= next_poll) {
      lock.unlock();
      take_sample();
      lock.lock();
      // Missed ticks (a suspended VM, a slow sample) are skipped, not replayed.
      while (next_poll <= now)
        next_poll += config.poll_interval;
    }
    if (flushing || now >= next_report || flush_waiters > 0) {
      try {
        dispatch_locked();
      } catch (...) {
        log(LogLevel::error, "out of memory while dispatching a report");
      }
      while (next_report <= now)
        next_report += config.report_interval;
    }
    if (flushing) {
      flush_handled = flush_target;
      done_cv.notify_all();
    }
  }
  lock.unlock();
  // The last sample, so that what happened since the previous one is sent.
  take_sample();
}

void Agent::Impl::send_job(detail::HttpSender& sender, std::vector<core::Metric> job) {
  std::string body;
  try {
    body = detail::encode_body(job);
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("cannot encode a batch: ") + e.what());
    const std::lock_guard lock(mu);
    pending.restore(job);
    ++stats.batches_requeued;
    return;
  }
  for (std::size_t retry = 0;; ++retry) {
    const unsigned now_in_flight = posts_in_flight.fetch_add(1) + 1;
    detail::SendResult result;
    try {
      result = sender.post(body);
    } catch (const std::exception& e) {
      result.error = e.what();
    }
    posts_in_flight.fetch_sub(1);
    std::unique_lock lock(mu);
    stats.max_in_flight = std::max(stats.max_in_flight, now_in_flight);
    if (result.outcome == detail::Outcome::ok) {
      ++stats.requests_ok;
      return;
    }
    ++stats.requests_failed;
    if (result.outcome == detail::Outcome::rejected) {
      ++stats.batches_rejected;
      lock.unlock();
      log(LogLevel::error, "server refused a batch of " + std::to_string(job.size()) +
                               " metrics, dropped: " + result.error);
      return;
    }
    const auto delay = detail::retry_delay(config.retry_backoff, retry, result.retry_after);
    if (!delay || stopping_senders ||
        sender_cv.wait_for(lock, *delay, [&] { return stopping_senders; })) {
      pending.restore(job);
      ++stats.batches_requeued;
      stats.metrics_dropped = pending.dropped();
      lock.unlock();
      log(LogLevel::warn, "report failed (" + result.error + "), kept for the next report");
      return;
    }
    lock.unlock();
    log(LogLevel::debug, "report failed (" + result.error + "), retrying");
  }
}

void Agent::Impl::sender_loop() {
  std::optional<detail::HttpSender> sender;
  try {
    sender.emplace(url, config.key, config.request_timeout, &abort_at, config.ca_file);
  } catch (...) {
    log(LogLevel::error, "cannot create an HTTP sender");
    return;
  }
  std::unique_lock lock(mu);
  while (true) {
    sender_cv.wait(lock, [&] { return stopping_senders || !jobs.empty(); });
    if (stopping_senders) {
      // Queued jobs go back to the pending set; shutdown sends it.
      while (!jobs.empty()) {
        pending.restore(jobs.front());
        jobs.pop_front();
      }
      break;
    }
    auto job = std::move(jobs.front());
    jobs.pop_front();
    ++busy;
    lock.unlock();
    try {
      send_job(*sender, std::move(job));
    } catch (...) {
      log(LogLevel::error, "unexpected error while sending");
    }
    lock.lock();
    --busy;
    if (flush_waiters > 0) {
      try {
        dispatch_locked();
      } catch (...) {
        log(LogLevel::error, "out of memory while dispatching a report");
      }
    }
    done_cv.notify_all();
  }
  done_cv.notify_all();
}

bool Agent::Impl::final_send(Clock::time_point deadline) noexcept {
  try {
    std::vector<core::Metric> all;
    {
      const std::lock_guard lock(mu);
      all = pending.take();
    }
    if (all.empty()) return true;
    const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (remaining <= milliseconds::zero()) {
      const std::lock_guard lock(mu);
      pending.restore(all);
      return false;
    }
    detail::HttpSender sender(url, config.key, std::min(config.request_timeout, remaining),
                              &abort_at, config.ca_file);
    std::size_t sent = 0;
    while (sent < all.size()) {
      const std::size_t n = std::min(config.max_batch, all.size() - sent);
      const std::span<const core::Metric> chunk(all.data() + sent, n);
      const std::string body = detail::encode_body(chunk);
      bool done = false;
      for (std::size_t retry = 0; !done; ++retry) {
        const auto result = sender.post(body);
        {
          const std::lock_guard lock(mu);
          if (result.outcome == detail::Outcome::ok) {
            ++stats.requests_ok;
          } else {
            ++stats.requests_failed;
          }
        }
        if (result.outcome == detail::Outcome::ok) {
          done = true;
          break;
        }
        const auto delay = detail::retry_delay(config.retry_backoff, retry, result.retry_after);
        if (result.outcome == detail::Outcome::rejected || !delay ||
            Clock::now() + *delay >= deadline) {
          log(LogLevel::warn, "final report failed (" + result.error + "); " +
                                  std::to_string(all.size() - sent) + " metrics not sent");
          const std::lock_guard lock(mu);
          pending.restore(std::span<const core::Metric>(all).subspan(sent));
          return false;
        }
        std::this_thread::sleep_for(*delay);
      }
      sent += n;
    }
    return true;
  } catch (...) {
    log(LogLevel::error, "final report failed");
    return false;
  }
}

bool Agent::Impl::shutdown(milliseconds timeout) noexcept {
  const std::lock_guard once(shutdown_mu);
  if (shutdown_result) return *shutdown_result;
  const auto deadline = Clock::now() + std::max(timeout, milliseconds::zero());
  accepting = false;
  {
    const std::lock_guard lock(mu);
    stopping = true;
  }
  main_cv.notify_all();
  done_cv.notify_all();
  if (main_thread.joinable()) main_thread.join();
  abort_at.store(
      std::chrono::duration_cast<std::chrono::nanoseconds>(deadline.time_since_epoch()).count());
  {
    const std::lock_guard lock(mu);
    stopping_senders = true;
  }
  sender_cv.notify_all();
  for (auto& t : senders) {
    if (t.joinable()) t.join();
  }
  const bool ok = final_send(deadline);
  shutdown_result = ok;
  done_cv.notify_all();
  return ok;
}

Agent::Agent(AgentConfig config) noexcept {
  try {
    impl_ = std::make_unique<Impl>(std::move(config));
    impl_->error = validate(impl_->config);
    if (!impl_->error.empty()) return;
    impl_->url = *detail::updates_url(impl_->config.address);
    detail::ensure_curl_initialized();
    impl_->start();
  } catch (const std::exception& e) {
    if (impl_) {
      impl_->error = std::string("cannot start: ") + e.what();
      impl_->shutdown(milliseconds::zero());
    }
  } catch (...) {
    if (impl_) {
      impl_->error = "cannot start";
      impl_->shutdown(milliseconds::zero());
    }
  }
}

Agent::~Agent() {
  if (impl_) impl_->shutdown(std::chrono::seconds{2});
}

bool Agent::running() const noexcept {
  return impl_ && impl_->accepting.load();
}

std::string Agent::error() const noexcept {
  try {
    if (!impl_) return "out of memory";
    return impl_->error;
  } catch (...) {
    return {};
  }
}

bool Agent::set_gauge(std::string_view name, double value) noexcept {
  if (!running() || !std::isfinite(value)) return false;
  try {
    if (core::validate_name(name)) return false;
    const std::lock_guard lock(impl_->host_mu);
    auto& gauges = impl_->host_gauges;
    if (auto it = gauges.find(std::string(name)); it != gauges.end()) {
      it->second = value;
      return true;
    }
    if (gauges.size() + impl_->host_counters.size() >= impl_->config.max_pending) return false;
    gauges.emplace(std::string(name), value);
    return true;
  } catch (...) {
    return false;
  }
}

bool Agent::add_counter(std::string_view name, std::int64_t delta) noexcept {
  if (!running()) return false;
  try {
    if (core::validate_name(name)) return false;
    const std::lock_guard lock(impl_->host_mu);
    auto& counters = impl_->host_counters;
    auto it = counters.find(std::string(name));
    if (it == counters.end()) {
      if (impl_->host_gauges.size() + counters.size() >= impl_->config.max_pending) return false;
      counters.emplace(std::string(name), delta);
      return true;
    }
    const auto sum = core::checked_add(it->second, delta);
    if (!sum) return false;
    it->second = *sum;
    return true;
  } catch (...) {
    return false;
  }
}

bool Agent::flush(milliseconds timeout) noexcept {
  if (!running()) return false;
  Impl& d = *impl_;
  const auto deadline = Clock::now() + std::max(timeout, milliseconds::zero());
  std::unique_lock lock(d.mu);
  if (d.stopping) return false;
  const std::uint64_t target = ++d.flush_requests;
  const std::uint64_t failures_before = d.stats.batches_requeued + d.stats.batches_rejected;
  ++d.flush_waiters;
  d.main_cv.notify_all();
  bool ok = false;
  const bool finished = d.done_cv.wait_until(lock, deadline, [&] {
    if (d.stopping) return true;
    if (d.stats.batches_requeued + d.stats.batches_rejected != failures_before) return true;
    ok = d.flush_handled >= target && d.jobs.empty() && d.busy == 0 && d.pending.empty();
    return ok;
  });
  --d.flush_waiters;
  return finished && ok;
}

bool Agent::shutdown(milliseconds timeout) noexcept {
  if (!impl_) return false;
  return impl_->shutdown(timeout);
}

AgentStats Agent::stats() const noexcept {
  if (!impl_) return {};
  const std::lock_guard lock(impl_->mu);
  AgentStats s = impl_->stats;
  s.pending = impl_->pending.size();
  s.metrics_dropped = impl_->pending.dropped();
  return s;
}

}  // namespace metrics::agent
