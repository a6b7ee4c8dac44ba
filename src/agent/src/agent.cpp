#include "metrics/agent/agent.hpp"

#include <errno.h>  // program_invocation_short_name
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <exception>
#include <limits>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>

#include "http_sender.hpp"
#include "metrics/core/authorization.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/outbound/client.hpp"
#include "metrics/outbound/failure_log.hpp"
#include "metrics/outbound/retry.hpp"
#include "pending_set.hpp"
#include "sampler.hpp"

namespace metrics::agent {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

std::string_view to_string(SendMode mode) noexcept {
  switch (mode) {
    case SendMode::batch:
      return "batch";
    case SendMode::json:
      return "json";
    case SendMode::text:
      return "text";
  }
  return "batch";
}

namespace {

// "<hostname>:<pid>", the pid read now.
std::string default_instance() {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') {
    std::snprintf(host, sizeof host, "localhost");
  }
  return std::string(host) + ":" + std::to_string(::getpid());
}

std::vector<core::Label> to_core(std::span<const Label> labels) {
  std::vector<core::Label> out;
  out.reserve(labels.size());
  for (const auto& l : labels)
    out.push_back({l.name, l.value});
  return out;
}

// The identity labels: instance, job and the extra ones. Throws
// core::InvalidInput naming the label.
core::Labels identity_labels(const AgentConfig& config) {
  for (const auto& l : config.labels) {
    if (l.name == "instance" || l.name == "job") {
      throw core::InvalidInput("label \"" + l.name + "\": set it with --" + l.name + " (the " +
                               l.name + " field), not as an extra label");
    }
  }
  auto all = to_core(config.labels);
  all.push_back({"instance", config.instance.empty() ? default_instance() : config.instance});
  all.push_back(
      {"job", config.job.empty() ? std::string(program_invocation_short_name) : config.job});
  return core::Labels::make(std::move(all));
}

// One sender's work: metrics to send, split into requests by the mode. A job
// with a key is one request already sent whose outcome is unknown (a lost
// answer, a 500, a timeout, a 409 "still in flight"): it is sent again with
// the same bytes and the same Idempotency-Key until the server answers for
// good, so the server applies it at most once (API.md, "Exactly-once writes").
struct Job {
  std::vector<core::Update> updates;
  std::string key;   // empty: fresh metrics, keys drawn per request
  std::string url;   // set with key
  std::string body;  // set with key
};

}  // namespace

bool parse_send_mode(std::string_view text, SendMode& mode) noexcept {
  for (const SendMode m : {SendMode::batch, SendMode::json, SendMode::text}) {
    if (text == to_string(m)) {
      mode = m;
      return true;
    }
  }
  return false;
}

std::string validate(const AgentConfig& config) noexcept {
  try {
    std::string why;
    if (!detail::updates_url(config.address, &why))
      return "address: '" + config.address + "' " + why;
    if (config.poll_interval <= milliseconds::zero()) return "poll interval: must be positive";
    if (config.report_interval <= milliseconds::zero()) return "report interval: must be positive";
    try {
      core::check_credentials(config.basic_auth, config.bearer_token);
    } catch (const std::invalid_argument& e) {
      return std::string("credentials: ") + e.what();
    }
    if (config.rate_limit == 0) return "rate limit: must be at least 1";
    if (config.rate_limit > 64) return "rate limit: at most 64 requests in flight";
    if (config.max_pending == 0) return "max pending: must be at least 1";
    if (config.max_batch == 0) return "max batch: must be at least 1";
    if (config.request_timeout <= milliseconds::zero()) return "request timeout: must be positive";
    if (config.send_mode != SendMode::batch && config.send_mode != SendMode::json &&
        config.send_mode != SendMode::text) {
      return "send mode: must be batch, json or text";
    }
    for (const auto& d : config.retry_backoff) {
      if (d < milliseconds::zero()) return "retry backoff: waits must not be negative";
    }
    try {
      (void)identity_labels(config);
    } catch (const core::InvalidInput& e) {
      return std::string("labels: ") + e.what();
    }
    return {};
  } catch (...) {
    return "out of memory";
  }
}

struct Agent::Impl {
  explicit Impl(AgentConfig c)
      : config(std::move(c)), pending(config.max_pending), failures(config.failure_log_interval) {}
  // Joins the senders shutdown() did not wait for (see there).
  ~Impl() {
    if (main_thread.joinable()) main_thread.join();
    for (auto& t : senders) {
      if (t.joinable()) t.join();
    }
  }
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

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
  // Sends `job` in the configured mode, each request with its own key and the
  // one retry loop; returns how many metrics from the front are done
  // (acknowledged, or refused and dropped, counted in *rejected). It stops at
  // the first request that gives up: when one of its attempts may have been
  // applied, that request (its metrics, key and bytes) is put in *doubtful
  // and the metrics after it are the rest; otherwise the rest starts with it.
  std::size_t deliver(outbound::Transporter& transport, const Job& job,
                      const outbound::WaitFn& wait, std::size_t* rejected,
                      std::optional<Job>* doubtful);
  // What a job did not get done goes back: the doubtful request to `held`,
  // the metrics never sent to the pending set. Needs mu.
  void put_back_locked(const Job& job, std::size_t done, std::optional<Job> doubtful);
  [[nodiscard]] std::string next_key();
  // Every attempt's statistics and log lines.
  void observe(const outbound::Response& response, const outbound::Classification& c);
  // Sends one job from a sender thread; what is not done goes back into the
  // pending set.
  void send_job(outbound::Client& client, Job job);
  bool final_send(Clock::time_point deadline) noexcept;
  [[nodiscard]] outbound::ClientOptions client_options() const;
  bool shutdown(milliseconds timeout) noexcept;

  AgentConfig config;
  std::string url;        // the server's base URL
  core::Labels identity;  // fixed at start
  std::string error;
  std::optional<detail::Sampler> sampler;

  mutable std::mutex mu;
  std::condition_variable main_cv;
  std::condition_variable sender_cv;
  std::condition_variable done_cv;
  detail::PendingSet pending;
  // Requests sent whose outcome is unknown, resent as they are before any
  // new metrics are taken from `pending` (which bounds them: see dispatch).
  std::deque<Job> held;
  std::deque<Job> jobs;
  unsigned busy = 0;
  unsigned slots = 0;  // sender threads; fixed before the main thread starts
  unsigned senders_exited = 0;
  bool stopping = false;
  bool stopping_senders = false;
  std::uint64_t flush_requests = 0;
  std::uint64_t flush_handled = 0;
  unsigned flush_waiters = 0;
  AgentStats stats;
  outbound::FailureLog failures;

  std::atomic<unsigned> posts_in_flight{0};
  std::atomic<unsigned> max_in_flight{0};
  std::atomic<std::int64_t> abort_at{std::numeric_limits<std::int64_t>::max()};
  std::atomic<bool> accepting{false};
  std::string key_prefix;  // random, fixed at start
  std::atomic<std::uint64_t> key_seq{0};

  std::mutex host_mu;
  // Keyed by series: the same name with other labels is another entry.
  std::unordered_map<core::SeriesKey, double, core::SeriesHash, core::SeriesEqual> host_gauges;
  std::unordered_map<core::SeriesKey, std::int64_t, core::SeriesHash, core::SeriesEqual>
      host_counters;

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
      for (const auto& [key, value] : host_gauges)
        sample.push_back(core::Update::gauge(key.id, value, key.labels));
      for (auto& [key, delta] : host_counters) {
        if (delta != 0) sample.push_back(core::Update::counter(key.id, delta, key.labels));
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

std::string Agent::Impl::next_key() {
  return detail::idempotency_key(key_prefix, ++key_seq);
}

namespace {

std::size_t held_metrics(const std::deque<Job>& held) noexcept {
  std::size_t n = 0;
  for (const Job& j : held)
    n += j.updates.size();
  return n;
}

}  // namespace

void Agent::Impl::dispatch_locked() {
  if (!jobs.empty() || busy >= slots) return;
  if (!held.empty()) {
    // Requests in doubt first, and nothing new while any is: so what is in
    // doubt stays bounded by what one report took from the pending set.
    while (!held.empty()) {
      jobs.push_back(std::move(held.front()));
      held.pop_front();
    }
    sender_cv.notify_all();
    return;
  }
  if (pending.empty()) return;
  auto all = pending.take();
  // A batch request carries max_batch metrics; one request per metric
  // shares the work among the free senders, so that up to RATE_LIMIT
  // requests are in flight.
  const std::size_t free_slots = slots - busy;
  const std::size_t chunk =
      config.send_mode == SendMode::batch
          ? config.max_batch
          : std::max<std::size_t>(1, (all.size() + free_slots - 1) / free_slots);
  if (all.size() <= chunk) {
    jobs.push_back(Job{std::move(all), {}, {}, {}});
  } else {
    for (std::size_t i = 0; i < all.size(); i += chunk) {
      const auto first = all.begin() + static_cast<std::ptrdiff_t>(i);
      const auto last = all.begin() + static_cast<std::ptrdiff_t>(std::min(i + chunk, all.size()));
      jobs.push_back(Job{
          std::vector<core::Update>(std::make_move_iterator(first), std::make_move_iterator(last)),
          {},
          {},
          {}});
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

namespace {

// Counts the requests in flight around the real transport.
class CountingTransport final : public outbound::Transporter {
 public:
  CountingTransport(outbound::Transporter& inner, std::atomic<unsigned>& in_flight,
                    std::atomic<unsigned>& max_in_flight) noexcept
      : inner_(inner), in_flight_(in_flight), max_(max_in_flight) {}
  outbound::Response perform(const outbound::Request& request) noexcept override {
    const unsigned now = in_flight_.fetch_add(1) + 1;
    unsigned seen = max_.load();
    while (now > seen && !max_.compare_exchange_weak(seen, now)) {
    }
    auto response = inner_.perform(request);
    in_flight_.fetch_sub(1);
    return response;
  }

 private:
  outbound::Transporter& inner_;
  std::atomic<unsigned>& in_flight_;
  std::atomic<unsigned>& max_;
};

}  // namespace

outbound::ClientOptions Agent::Impl::client_options() const {
  outbound::ClientOptions options;
  options.timeout = config.request_timeout;
  options.ca_file = config.ca_file;
  options.abort_at = &abort_at;
  return options;
}

void Agent::Impl::observe(const outbound::Response& response, const outbound::Classification& c) {
  std::optional<std::string> line;
  const bool ok = c.verdict == outbound::Verdict::success;
  {
    const std::lock_guard lock(mu);
    if (ok) {
      ++stats.requests_ok;
      line = failures.success(Clock::now(), url);
    } else {
      ++stats.requests_failed;
      // A refused request is the data's fault, not the connection's: it is
      // logged on its own and does not start an outage.
      if (c.verdict != outbound::Verdict::permanent) {
        line = failures.failure(Clock::now(), url, response.error);
      }
    }
  }
  if (line) {
    log(ok ? LogLevel::info : LogLevel::warn, *line);
  } else if (!ok) {
    log(LogLevel::debug, "send failed (" + response.error + ", " +
                             std::string(outbound::to_string(c.verdict)) + ")");
  }
}

std::size_t Agent::Impl::deliver(outbound::Transporter& transport, const Job& job,
                                 const outbound::WaitFn& wait, std::size_t* rejected,
                                 std::optional<Job>* doubtful) {
  bool in_doubt = false;
  const auto observer = [this, &in_doubt](const outbound::Response& r,
                                          const outbound::Classification& c) {
    // Once an attempt may have been applied, the request stays in doubt
    // until the server answers for good (a replay is a 200).
    in_doubt = in_doubt || c.verdict == outbound::Verdict::unknown ||
               (r.transport == outbound::Transport::answered && r.status == 409);
    observe(r, c);
  };
  std::size_t done = 0;
  std::string key;
  std::string body;
  outbound::Request request;
  request.sign_key = config.key;
  const std::span<const core::Update> updates(job.updates);
  while (done < updates.size()) {
    // A held job is one request, sent again as it was.
    const std::size_t n = !job.key.empty() ? updates.size()
                          : config.send_mode == SendMode::batch
                              ? std::min(config.max_batch, updates.size() - done)
                              : 1;
    const auto unit = updates.subspan(done, n);
    in_doubt = !job.key.empty();
    if (!job.key.empty()) {
      key = job.key;
      request.url = job.url;
      body = job.body;
    } else {
      key = next_key();
      switch (config.send_mode) {
        case SendMode::batch:
          request.url = url + "/updates/";
          body = detail::encode_body(identity, unit, key);
          break;
        case SendMode::json:
          request.url = url + "/update/";
          body = detail::encode_metric_body(identity, unit.front());
          break;
        case SendMode::text:
          request.url = url + detail::text_update_path(unit.front());
          body.clear();
          break;
      }
    }
    if (config.send_mode == SendMode::text) {
      request.headers = {"Content-Type: text/plain"};
    } else {
      // Accept-Encoding by hand (not CURLOPT_ACCEPT_ENCODING) so that the
      // answer stays as it came: its signature covers the bytes on the wire.
      request.headers = {"Content-Type: application/json", "Content-Encoding: gzip",
                         "Accept-Encoding: gzip"};
    }
    if (const auto auth = core::authorization_value(config.basic_auth, config.bearer_token);
        !auth.empty()) {
      request.headers.push_back("Authorization: " + auth);
    }
    request.headers.push_back("Idempotency-Key: " + key);
    request.body = body;
    const auto result =
        outbound::send_with_retry(transport, request, config.retry_backoff, wait, observer);
    if (result.verdict == outbound::Verdict::permanent) {
      if (rejected != nullptr) ++*rejected;
      {
        const std::lock_guard lock(mu);
        ++stats.batches_rejected;
      }
      log(LogLevel::error, "server refused " +
                               (n == 1 ? "metric " + unit.front().id
                                       : "a batch of " + std::to_string(n) + " metrics") +
                               ", dropped: " + result.last.error);
    } else if (result.verdict != outbound::Verdict::success) {
      if (in_doubt && doubtful != nullptr) {
        *doubtful = Job{std::vector<core::Update>(unit.begin(), unit.end()), std::move(key),
                        request.url, std::move(body)};
      }
      return done;
    }
    done += n;
  }
  return done;
}

void Agent::Impl::put_back_locked(const Job& job, std::size_t done, std::optional<Job> doubtful) {
  std::size_t next = done;
  if (doubtful) {
    next += doubtful->updates.size();
    held.push_back(std::move(*doubtful));
  }
  if (next < job.updates.size())
    pending.restore(std::span<const core::Update>(job.updates).subspan(next));
  ++stats.batches_requeued;
  stats.metrics_dropped = pending.dropped();
}

void Agent::Impl::send_job(outbound::Client& client, Job job) {
  CountingTransport transport(client, posts_in_flight, max_in_flight);
  const auto wait = [this](milliseconds delay) {
    std::unique_lock lock(mu);
    return !stopping_senders && !sender_cv.wait_for(lock, delay, [&] { return stopping_senders; });
  };
  std::size_t done = 0;
  std::optional<Job> doubtful;
  try {
    done = deliver(transport, job, wait, nullptr, &doubtful);
  } catch (const std::exception& e) {
    log(LogLevel::error, std::string("cannot send: ") + e.what());
  }
  if (done == job.updates.size()) return;
  const std::lock_guard lock(mu);
  put_back_locked(job, done, std::move(doubtful));
}

void Agent::Impl::sender_loop() {
  std::optional<outbound::Client> client;
  try {
    client.emplace(client_options());
  } catch (...) {
    log(LogLevel::error, "cannot create an HTTP sender");
    const std::lock_guard lock(mu);
    ++senders_exited;
    done_cv.notify_all();
    return;
  }
  std::unique_lock lock(mu);
  while (true) {
    sender_cv.wait(lock, [&] { return stopping_senders || !jobs.empty(); });
    if (stopping_senders) {
      // Queued jobs go back (held ones as they are); shutdown sends them.
      while (!jobs.empty()) {
        if (!jobs.front().key.empty()) {
          held.push_back(std::move(jobs.front()));
        } else {
          pending.restore(jobs.front().updates);
        }
        jobs.pop_front();
      }
      break;
    }
    auto job = std::move(jobs.front());
    jobs.pop_front();
    ++busy;
    lock.unlock();
    try {
      send_job(*client, std::move(job));
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
  ++senders_exited;
  done_cv.notify_all();
}

bool Agent::Impl::final_send(Clock::time_point deadline) noexcept {
  try {
    std::vector<Job> work;
    {
      const std::lock_guard lock(mu);
      // The requests in doubt first, with their keys, then what was never sent.
      while (!held.empty()) {
        work.push_back(std::move(held.front()));
        held.pop_front();
      }
      auto rest = pending.take();
      if (!rest.empty()) work.push_back(Job{std::move(rest), {}, {}, {}});
    }
    if (work.empty()) return true;
    const auto put_back_all = [&](std::size_t from) {
      const std::lock_guard lock(mu);
      for (std::size_t i = from; i < work.size(); ++i) {
        if (!work[i].key.empty()) {
          held.push_back(std::move(work[i]));
        } else {
          pending.restore(work[i].updates);
        }
      }
    };
    const auto remaining = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (remaining <= milliseconds::zero()) {
      put_back_all(0);
      return false;
    }
    outbound::Client client(client_options());
    client.limit_timeout(remaining);
    CountingTransport transport(client, posts_in_flight, max_in_flight);
    const auto wait = [&](milliseconds delay) {
      if (Clock::now() + delay >= deadline) return false;
      std::this_thread::sleep_for(delay);
      return true;
    };
    std::size_t rejected = 0;
    for (std::size_t i = 0; i < work.size(); ++i) {
      std::size_t done = 0;
      std::optional<Job> doubtful;
      try {
        done = deliver(transport, work[i], wait, &rejected, &doubtful);
      } catch (const std::exception& e) {
        log(LogLevel::error, std::string("final report: ") + e.what());
      }
      if (done == work[i].updates.size()) continue;
      std::size_t unsent = work[i].updates.size() - done;
      for (std::size_t j = i + 1; j < work.size(); ++j)
        unsent += work[j].updates.size();
      log(LogLevel::warn, "final report failed; " + std::to_string(unsent) + " metrics not sent");
      {
        const std::lock_guard lock(mu);
        put_back_locked(work[i], done, std::move(doubtful));
      }
      put_back_all(i + 1);
      return false;
    }
    return rejected == 0;
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
  bool senders_done = false;
  {
    std::unique_lock lock(mu);
    stopping_senders = true;
    sender_cv.notify_all();
    // A sender waiting for an answer notices abort_at only when libcurl
    // next calls its progress function, up to a second late: the deadline
    // is not extended for it. A sender still busy then is joined by the
    // destructor (the preload library never runs it: the process exits).
    senders_done = done_cv.wait_until(
        lock, deadline, [&] { return senders_exited == static_cast<unsigned>(senders.size()); });
  }
  if (senders_done) {
    for (auto& t : senders) {
      if (t.joinable()) t.join();
    }
  }
  // With senders still busy the deadline has passed: final_send sends
  // nothing, so RATE_LIMIT holds.
  const bool ok = senders_done && final_send(deadline);
  shutdown_result = ok;
  done_cv.notify_all();
  return ok;
}

Agent::Agent(AgentConfig config) noexcept {
  try {
    impl_ = std::make_unique<Impl>(std::move(config));
    impl_->error = validate(impl_->config);
    if (!impl_->error.empty()) return;
    impl_->url = *detail::base_url(impl_->config.address);
    // Here, not at the first report: the pid is this program's, also right
    // after an exec.
    impl_->identity = identity_labels(impl_->config);
    impl_->key_prefix = detail::random_key_prefix();
    // libcurl is loaded only for https:// (or a proxy): here, on the
    // host's thread, before the senders start.
    if (outbound::needs_curl(impl_->url)) outbound::ensure_global_init();
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

std::vector<Label> Agent::identity() const noexcept {
  try {
    if (!running()) return {};
    std::vector<Label> out;
    for (const core::LabelView l : impl_->identity)
      out.push_back({std::string(l.name), std::string(l.value)});
    return out;
  } catch (...) {
    return {};
  }
}

bool Agent::set_gauge(std::string_view name, double value) noexcept {
  return set_gauge(name, value, std::span<const Label>{});
}

bool Agent::set_gauge(std::string_view name, double value, std::span<const Label> labels) noexcept {
  if (!running() || !std::isfinite(value)) return false;
  try {
    if (core::validate_name(name)) return false;
    core::SeriesKey key{core::MetricType::gauge, std::string(name),
                        labels.empty() ? core::Labels{} : core::Labels::make(to_core(labels))};
    const std::lock_guard lock(impl_->host_mu);
    auto& gauges = impl_->host_gauges;
    if (auto it = gauges.find(core::SeriesView(key)); it != gauges.end()) {
      it->second = value;
      return true;
    }
    if (gauges.size() + impl_->host_counters.size() >= impl_->config.max_pending) return false;
    gauges.emplace(std::move(key), value);
    return true;
  } catch (...) {
    // An invalid label (core::InvalidInput) or no memory.
    return false;
  }
}

bool Agent::add_counter(std::string_view name, std::int64_t delta) noexcept {
  return add_counter(name, delta, std::span<const Label>{});
}

bool Agent::add_counter(std::string_view name, std::int64_t delta,
                        std::span<const Label> labels) noexcept {
  if (!running()) return false;
  try {
    if (core::validate_name(name)) return false;
    core::SeriesKey key{core::MetricType::counter, std::string(name),
                        labels.empty() ? core::Labels{} : core::Labels::make(to_core(labels))};
    const std::lock_guard lock(impl_->host_mu);
    auto& counters = impl_->host_counters;
    auto it = counters.find(core::SeriesView(key));
    if (it == counters.end()) {
      if (impl_->host_gauges.size() + counters.size() >= impl_->config.max_pending) return false;
      counters.emplace(std::move(key), delta);
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
    ok = d.flush_handled >= target && d.jobs.empty() && d.busy == 0 && d.pending.empty() &&
         d.held.empty();
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
  s.pending = impl_->pending.size() + held_metrics(impl_->held);
  s.metrics_dropped = impl_->pending.dropped();
  s.max_in_flight = impl_->max_in_flight.load();
  return s;
}

}  // namespace metrics::agent
