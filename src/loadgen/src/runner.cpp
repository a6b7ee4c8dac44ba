#include "metrics/loadgen/runner.hpp"

#include <sys/resource.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <cmath>
#include <deque>
#include <exception>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <utility>

#include "metrics/core/authorization.hpp"
#include "metrics/core/json_codec.hpp"
#include "metrics/core/value_format.hpp"
#include "metrics/loadgen/http_response.hpp"
#include "metrics/loadgen/request_builder.hpp"

namespace metrics::loadgen {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;
using boost::system::error_code;

enum class Phase : std::uint8_t { connect, load, verify, done };

// Big enough for any answer head and for a whole batch echo in one read;
// small enough that 10,000 agents cost 40 MiB.
constexpr std::size_t kReadBuffer = 4096;
// Attempts before an agent gives up connecting (connect phase) or reading
// back (verify phase); the load phase instead retries until its deadline.
constexpr unsigned kMaxAttempts = 3;
constexpr auto kBackoff = std::chrono::milliseconds{100};
// --idempotency-keys: how long after the load's end a request in doubt is
// still resent (a server being restarted, a database coming back) before it
// is recorded in doubt after all.
constexpr auto kResolveGrace = std::chrono::seconds{30};

class Shard;

// State shared by the shards: the phase barrier and what the transitions record.
struct Shared {
  explicit Shared(const Options& o) : options(o), ledger(o.workload, o.agents) {}

  const Options& options;
  Ledger ledger;
  tcp::endpoint endpoint;
  std::vector<std::unique_ptr<Shard>> shards;
  std::atomic<unsigned> remaining{0};  // shards yet to finish the current phase
  // Written by the thread that completes a barrier, read by the others only
  // after the post() that starts the next phase (which orders them).
  Clock::time_point connect_start, load_start, load_deadline, load_end, verify_end;
  std::optional<ProcessMemory> memory_connected, memory_after;
  std::mutex error_mutex;
  std::exception_ptr error;

  void shard_arrived(Phase finished);
  void start_phase(Phase phase);
  void fail(std::exception_ptr e);
};

class Agent;

// Bounds how many agents do one kind of work at once (connecting; reading
// back), so 10,000 agents do not fire 10,000 connects or 280,000 pipelined
// reads at the same instant and then time out waiting for each other.
class Gate {
 public:
  using Start = void (Agent::*)();
  explicit Gate(unsigned limit) : limit_(limit) {}
  void acquire(Agent* agent, Start start);
  void release();

 private:
  unsigned limit_;
  unsigned busy_ = 0;
  std::deque<std::pair<Agent*, Start>> waiting_;
};

// One thread's io_context, its agents and its statistics.
class Shard {
 public:
  Shard(Shared& shared, unsigned index, std::vector<std::uint32_t> ids);
  Shard(const Shard&) = delete;
  Shard& operator=(const Shard&) = delete;
  ~Shard();

  void start_phase(Phase phase);
  void agent_done() {
    if (--pending_ == 0) shared.shard_arrived(phase);
  }
  Gate& connect_gate() { return connect_gate_; }
  Gate& read_gate() { return read_gate_; }
  bool take_budget() noexcept {
    if (unlimited_) return true;
    if (budget_ == 0) return false;
    --budget_;
    return true;
  }
  void set_budget(std::uint64_t budget) {
    unlimited_ = false;
    budget_ = budget;
  }

  Shared& shared;
  const Options& options;
  unsigned index;
  asio::io_context ioc{1};
  asio::executor_work_guard<asio::io_context::executor_type> guard{ioc.get_executor()};
  RequestBuilder builder;
  Stats stats;
  Phase phase = Phase::connect;
  // Whether an agent of this shard has taken the shared targets' reads.
  bool shared_baseline_taken = false;
  bool shared_final_taken = false;
  std::uint32_t connected_agents = 0;
  std::uint32_t failed_agents = 0;

 private:
  std::vector<std::unique_ptr<Agent>> agents_;
  std::size_t pending_ = 0;
  Gate connect_gate_;
  Gate read_gate_;
  bool unlimited_ = true;
  std::uint64_t budget_ = 0;
};

// One simulated agent: a connection driven by callbacks. Completion handlers
// carry the generation of the socket (or timer) they were started on and
// return quietly when it has moved on, so a close or a re-arm never has to
// chase the handlers it leaves behind.
class Agent {
 public:
  Agent(Shard& shard, std::uint32_t id)
      : sh_(shard), id_(id), socket_(shard.ioc), timer_(shard.ioc), buf_(kReadBuffer) {}

  void start_phase(Phase phase);
  void do_connect();  // called by the shard when a connect slot is free
  void close() {
    ++conn_gen_;
    error_code ignored;
    socket_.close(ignored);
    connected_ = false;
  }
  // End of the run: nothing may stay pending, or the io_context never returns.
  void shutdown() {
    cancel_timer();
    close();
  }

 private:
  enum class TimerUse : std::uint8_t { connect_timeout, request_timeout, pace, retry };
  enum class Reading : std::uint8_t { none, baseline, final };

  void open() { sh_.connect_gate().acquire(this, &Agent::do_connect); }
  void on_connected();
  void on_connect_failed();
  void arm_timer(Clock::time_point when, TimerUse use);
  void cancel_timer() {
    ++timer_gen_;
    timer_.cancel();
  }
  void on_timer(TimerUse use);

  void start_exchange(unsigned responses);
  void read_more();
  void process();
  void fail_exchange(bool timed_out);
  void exchange_done();
  void on_answer(unsigned status);
  // What the answer to a read of `target` (in body_) says.
  [[nodiscard]] Observation read_answer(ReadTarget target, unsigned status) const;

  // Load phase.
  void start_load();
  void send_next();
  void schedule_next();
  void back_off(std::chrono::seconds wait);
  // The load phase's end for this agent: a request in doubt may still be
  // resent a while after the load's deadline.
  [[nodiscard]] Clock::time_point load_deadline() const noexcept {
    return resend_ ? sh_.shared.load_deadline + kResolveGrace : sh_.shared.load_deadline;
  }
  // After attempt of the current request: what the answer (status, 0 for
  // none) means; false when the request is to be resent.
  bool settle(unsigned status);
  void finish() {
    if (phase_ == Phase::load && resend_) {
      // Given up on: the request stays in doubt.
      resend_ = false;
      ++sh_.stats.in_doubt;
      sh_.shared.ledger.record(id_, seq_, Outcome::in_doubt);
    }
    sh_.agent_done();
  }

  // Connect and verify phases.
  void start_reads(Reading reading);
  void begin_reads();
  void send_reads();
  void reads_done();
  void retry_reads();

  Shard& sh_;
  std::uint32_t id_;
  tcp::socket socket_;
  asio::steady_timer timer_;
  unsigned conn_gen_ = 0;
  unsigned timer_gen_ = 0;
  bool connected_ = false;
  bool ever_connected_ = false;
  bool excluded_ = false;
  // Failed connection attempts in a row; reset by a successful connect.
  unsigned connect_failures_ = 0;
  // Failed attempts of the current read-back; reset when a read-back starts.
  unsigned read_attempts_ = 0;
  Phase phase_ = Phase::connect;

  // Outgoing bytes of the current exchange.
  RequestBytes request_;
  std::string reads_;
  std::array<asio::const_buffer, 2> out_{};

  // Incoming bytes and the answer being parsed.
  std::vector<char> buf_;
  std::size_t beg_ = 0;
  std::size_t end_ = 0;
  bool have_head_ = false;
  ResponseHead head_;
  std::size_t body_left_ = 0;
  bool capture_ = false;
  std::string body_;
  unsigned responses_left_ = 0;
  bool server_closes_ = false;

  // Load phase.
  std::uint64_t seq_ = 0;
  Clock::time_point started_;  // latency origin: send time, or the paced slot
  Clock::time_point pace_origin_;
  std::uint64_t pace_k_ = 0;
  unsigned retry_after_s_ = 0;  // of the last load answer that asked to back off
  // --idempotency-keys: request_ (number seq_) is in doubt and is sent again as it is.
  bool resend_ = false;

  // Reads (baseline or final).
  Reading reading_ = Reading::none;
  std::vector<ReadTarget> read_targets_;
  core::Labels labels_;  // what a series read's answer must echo
  std::size_t read_index_ = 0;
  bool reads_complete_ = true;
  bool holds_read_slot_ = false;
};

// ---------------------------------------------------------------- Shared

void Shared::fail(std::exception_ptr e) {
  {
    std::lock_guard lock(error_mutex);
    if (!error) error = e;
  }
  for (auto& s : shards)
    s->ioc.stop();
}

void Shared::start_phase(Phase phase) {
  remaining.store(static_cast<unsigned>(shards.size()), std::memory_order_release);
  for (auto& s : shards) {
    Shard* shard = s.get();
    asio::post(shard->ioc, [this, shard, phase] {
      try {
        shard->start_phase(phase);
      } catch (...) {
        fail(std::current_exception());
      }
    });
  }
}

void Shared::shard_arrived(Phase finished) {
  if (remaining.fetch_sub(1, std::memory_order_acq_rel) != 1) return;
  const auto now = Clock::now();
  switch (finished) {
    case Phase::connect:
      memory_connected = read_process_memory(options.server_pid);
      load_start = now;
      load_deadline = now + options.duration;
      start_phase(Phase::load);
      break;
    case Phase::load:
      load_end = now;
      memory_after = read_process_memory(options.server_pid);
      start_phase(options.verify ? Phase::verify : Phase::done);
      break;
    case Phase::verify:
      verify_end = now;
      start_phase(Phase::done);
      break;
    case Phase::done:
      break;
  }
}

// ---------------------------------------------------------------- Shard

Shard::Shard(Shared& s, unsigned idx, std::vector<std::uint32_t> ids)
    : shared(s),
      options(s.options),
      index(idx),
      builder(s.options.workload, s.options.host_header, s.options.key, s.options.gzip),
      connect_gate_(std::max(1u, s.options.connect_concurrency / s.options.threads)),
      read_gate_(std::max(1u, s.options.connect_concurrency / s.options.threads)) {
  builder.set_authorization(
      core::authorization_value(s.options.basic_auth, s.options.bearer_token));
  agents_.reserve(ids.size());
  for (std::uint32_t id : ids)
    agents_.push_back(std::make_unique<Agent>(*this, id));
}

Shard::~Shard() = default;

void Shard::start_phase(Phase p) {
  phase = p;
  if (p == Phase::done) {
    for (auto& a : agents_)
      a->shutdown();
    guard.reset();
    return;
  }
  pending_ = agents_.size();
  if (pending_ == 0) {
    shared.shard_arrived(p);
    return;
  }
  for (auto& a : agents_)
    a->start_phase(p);
}

void Gate::acquire(Agent* agent, Start start) {
  if (busy_ < limit_) {
    ++busy_;
    (agent->*start)();
  } else {
    waiting_.emplace_back(agent, start);
  }
}

void Gate::release() {
  --busy_;
  while (busy_ < limit_ && !waiting_.empty()) {
    auto [agent, start] = waiting_.front();
    waiting_.pop_front();
    ++busy_;
    (agent->*start)();
  }
}

// ---------------------------------------------------------------- Agent

void Agent::start_phase(Phase phase) {
  phase_ = phase;
  switch (phase) {
    case Phase::connect:
      open();
      break;
    case Phase::load:
      if (excluded_) return finish();
      start_load();
      break;
    case Phase::verify:
      if (excluded_) return finish();
      start_reads(Reading::final);
      break;
    case Phase::done:
      break;
  }
}

void Agent::do_connect() {
  close();
  socket_ = tcp::socket(sh_.ioc);
  arm_timer(Clock::now() + sh_.options.connect_timeout, TimerUse::connect_timeout);
  socket_.async_connect(sh_.shared.endpoint, [this, gen = conn_gen_](const error_code& ec) {
    if (gen != conn_gen_) return;
    cancel_timer();
    sh_.connect_gate().release();
    if (ec) {
      ++sh_.stats.connect_errors;
      close();
      return on_connect_failed();
    }
    error_code ignored;
    socket_.set_option(tcp::no_delay(true), ignored);
    connected_ = true;
    beg_ = end_ = 0;
    have_head_ = false;
    on_connected();
  });
}

void Agent::on_connected() {
  connect_failures_ = 0;
  switch (phase_) {
    case Phase::connect:
      if (!ever_connected_) ++sh_.connected_agents;
      ever_connected_ = true;
      if (reading_ != Reading::none) return send_reads();  // a retry of the baseline read
      if (!sh_.options.verify) return finish();
      start_reads(Reading::baseline);
      break;
    case Phase::load:
      ++sh_.stats.reconnects;
      send_next();
      break;
    case Phase::verify:
      send_reads();
      break;
    case Phase::done:
      break;
  }
}

void Agent::on_connect_failed() {
  ++connect_failures_;
  if (reading_ != Reading::none) return retry_reads();  // reconnecting to read back
  switch (phase_) {
    case Phase::connect:
      if (connect_failures_ < kMaxAttempts)
        return arm_timer(Clock::now() + kBackoff * connect_failures_, TimerUse::retry);
      excluded_ = true;
      ++sh_.failed_agents;
      sh_.shared.ledger.exclude(id_);
      finish();
      break;
    case Phase::load: {
      const auto when = Clock::now() + kBackoff * std::min(connect_failures_, 10u);
      if (when >= load_deadline()) return finish();
      arm_timer(when, TimerUse::retry);
      break;
    }
    case Phase::verify:
    case Phase::done:
      break;
  }
}

void Agent::retry_reads() {
  if (++read_attempts_ >= kMaxAttempts) return reads_done();
  arm_timer(Clock::now() + kBackoff * read_attempts_, TimerUse::retry);
}

void Agent::arm_timer(Clock::time_point when, TimerUse use) {
  ++timer_gen_;
  timer_.expires_at(when);
  timer_.async_wait([this, gen = timer_gen_, use](const error_code& ec) {
    if (ec || gen != timer_gen_) return;
    on_timer(use);
  });
}

void Agent::on_timer(TimerUse use) {
  switch (use) {
    case TimerUse::connect_timeout:
      // The connect handler is abandoned by close(); account for it here.
      close();
      sh_.connect_gate().release();
      ++sh_.stats.connect_errors;
      on_connect_failed();
      break;
    case TimerUse::request_timeout:
      fail_exchange(true);
      break;
    case TimerUse::pace:
      send_next();
      break;
    case TimerUse::retry:
      if (!connected_) return open();
      if (phase_ == Phase::load) return send_next();
      send_reads();
      break;
  }
}

void Agent::start_exchange(unsigned responses) {
  responses_left_ = responses;
  server_closes_ = false;
  arm_timer(Clock::now() + sh_.options.request_timeout, TimerUse::request_timeout);
  asio::async_write(socket_, out_, [this, gen = conn_gen_](const error_code& ec, std::size_t) {
    if (gen != conn_gen_) return;
    if (ec) return fail_exchange(false);
    process();  // bytes of an earlier read may already hold the answer
  });
}

void Agent::read_more() {
  if (beg_ > 0) {
    std::copy(buf_.begin() + static_cast<std::ptrdiff_t>(beg_),
              buf_.begin() + static_cast<std::ptrdiff_t>(end_), buf_.begin());
    end_ -= beg_;
    beg_ = 0;
  }
  if (end_ == buf_.size()) return fail_exchange(false);  // a head larger than the buffer
  socket_.async_read_some(asio::buffer(buf_.data() + end_, buf_.size() - end_),
                          [this, gen = conn_gen_](const error_code& ec, std::size_t n) {
                            if (gen != conn_gen_) return;
                            if (ec) return fail_exchange(false);
                            end_ += n;
                            process();
                          });
}

void Agent::process() {
  while (responses_left_ > 0) {
    if (!have_head_) {
      const std::string_view data(buf_.data() + beg_, end_ - beg_);
      switch (parse_response_head(data, head_)) {
        case HeadStatus::incomplete:
          return read_more();
        case HeadStatus::malformed:
          return fail_exchange(false);
        case HeadStatus::complete:
          break;
      }
      have_head_ = true;
      beg_ += head_.head_bytes;
      body_left_ = head_.content_length;
      body_.clear();
    }
    const std::size_t take = std::min(body_left_, end_ - beg_);
    if (capture_) body_.append(buf_.data() + beg_, take);
    beg_ += take;
    body_left_ -= take;
    if (body_left_ > 0) return read_more();
    have_head_ = false;
    --responses_left_;
    if (!head_.keep_alive) server_closes_ = true;
    on_answer(head_.status);
    if (server_closes_ && responses_left_ > 0) return fail_exchange(false);
  }
  if (beg_ == end_) beg_ = end_ = 0;
  exchange_done();
}

void Agent::on_answer(unsigned status) {
  if (phase_ == Phase::load) {
    if (status != 200) ++sh_.stats.status_counts[status];
    const auto now = Clock::now();
    sh_.stats.latency.record(static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::nanoseconds>(now - started_).count()));
    retry_after_s_ = (status == 503 || status == 429) ? head_.retry_after_s : 0;
    if (head_.replayed) ++sh_.stats.replayed;
    settle(status);
    return;
  }
  // A read: baseline or final.
  const ReadTarget target = read_targets_[read_index_++];
  const Observation seen = read_answer(target, status);
  if (!seen.read) reads_complete_ = false;
  Ledger& ledger = sh_.shared.ledger;
  if (reading_ == Reading::baseline)
    ledger.set_baseline(id_, target, seen);
  else
    ledger.observe(id_, target, seen);
}

bool Agent::settle(unsigned status) {
  const Step step = next_step(status, sh_.options.workload.idempotency_keys, resend_);
  Outcome outcome = Outcome::in_doubt;
  switch (step) {
    case Step::resend:
      resend_ = true;
      return false;
    case Step::acknowledged:
      outcome = Outcome::acknowledged;
      ++sh_.stats.acknowledged;
      sh_.stats.metric_updates += slots_of(sh_.options.workload, seq_).count;
      break;
    case Step::rejected:
      outcome = Outcome::rejected;
      ++sh_.stats.rejected;
      break;
    case Step::in_doubt:
      ++sh_.stats.in_doubt;
      break;
  }
  resend_ = false;
  sh_.shared.ledger.record(id_, seq_, outcome);
  return true;
}

Observation Agent::read_answer(ReadTarget target, unsigned status) const {
  if (status == 404) return Observation::absent();
  if (status != 200) return Observation::failed();
  core::Update answer;
  try {
    answer = core::decode_update(body_);
  } catch (const std::exception&) {
    return Observation::failed();
  }
  const bool gauge = slot_kind(target.slot) == SlotKind::gauge;
  Observation seen = gauge ? Observation::gauge(answer.value) : Observation::counter(answer.delta);
  // POST /value/ answers with the series it read: anything else is the
  // server mixing series up, whatever the value.
  const bool classic = target.scope == Scope::classic;
  seen.foreign =
      answer.id != metric_name(sh_.options.workload, id_, target.slot) ||
      answer.type != (gauge ? core::MetricType::gauge : core::MetricType::counter) ||
      !(classic || shared_target(sh_.options.workload, target) ? answer.labels.empty()
                                                               : answer.labels == labels_);
  return seen;
}

void Agent::fail_exchange(bool timed_out) {
  cancel_timer();
  close();
  if (phase_ != Phase::load) {
    // A read-back: not part of the measured load, so counted apart.
    ++sh_.stats.read_failures;
    return retry_reads();
  }
  if (timed_out)
    ++sh_.stats.timeouts;
  else
    ++sh_.stats.transport_errors;
  // No answer: the request may or may not have been applied (with keys:
  // resent over the next connection).
  settle(0);
  if (Clock::now() >= load_deadline()) return finish();
  open();
}

void Agent::exchange_done() {
  cancel_timer();
  if (server_closes_) close();
  if (phase_ == Phase::load) {
    if (retry_after_s_ > 0 && sh_.options.honour_retry_after) {
      return back_off(std::chrono::seconds{std::exchange(retry_after_s_, 0)});
    }
    if (resend_) {
      // An answer of unknown outcome (a 500 while the database is away):
      // not resent in a tight loop.
      const auto when = Clock::now() + kBackoff;
      if (when >= load_deadline()) return finish();
      return arm_timer(when, TimerUse::retry);
    }
    if (sh_.options.rate > 0) return schedule_next();
    return send_next();
  }
  if (!reads_complete_) return retry_reads();
  reads_done();
}

void Agent::start_load() {
  if (sh_.options.rate > 0) {
    // Spread the agents' first requests over one interval, so a paced run
    // does not start with every agent firing at once.
    const auto interval = std::chrono::duration<double>(1.0 / sh_.options.rate);
    const double fraction = static_cast<double>(id_) / static_cast<double>(sh_.options.agents);
    pace_origin_ =
        sh_.shared.load_start + std::chrono::duration_cast<Clock::duration>(interval * fraction);
    pace_k_ = 0;
    const auto first = pace_origin_;
    if (first >= sh_.shared.load_deadline) return finish();
    started_ = first;
    return arm_timer(first, TimerUse::pace);
  }
  send_next();
}

void Agent::schedule_next() {
  ++pace_k_;
  const auto interval = std::chrono::duration<double>(1.0 / sh_.options.rate);
  const auto slot = pace_origin_ + std::chrono::duration_cast<Clock::duration>(
                                       interval * static_cast<double>(pace_k_));
  if (slot >= sh_.shared.load_deadline) return finish();
  started_ = slot;
  if (slot <= Clock::now()) return send_next();
  arm_timer(slot, TimerUse::pace);
}

// After a 503/429 with Retry-After: the next request waits that long. A paced
// agent skips the slots inside the wait instead of sending them in a burst.
void Agent::back_off(std::chrono::seconds wait) {
  const auto when = Clock::now() + wait;
  if (when >= load_deadline()) return finish();
  ++sh_.stats.retry_after_waits;
  if (resend_) return arm_timer(when, TimerUse::retry);
  if (sh_.options.rate > 0) {
    const std::chrono::duration<double> interval(1.0 / sh_.options.rate);
    const double k = std::ceil(std::chrono::duration<double>(when - pace_origin_) / interval);
    if (k >= 1) pace_k_ = std::max(pace_k_, static_cast<std::uint64_t>(k) - 1);
    return schedule_next();
  }
  arm_timer(when, TimerUse::retry);
}

void Agent::send_next() {
  const auto now = Clock::now();
  if (now >= load_deadline()) return finish();
  if (!connected_) return open();
  if (resend_) {
    // The same bytes (and key) again; not a new request of the budget.
    ++sh_.stats.resent;
    capture_ = false;
    out_[0] = asio::buffer(request_.head);
    out_[1] = asio::buffer(request_.body);
    return start_exchange(1);
  }
  if (!sh_.take_budget()) return finish();
  ++seq_;
  sh_.builder.build(id_, seq_, request_);
  // Paced: latency counts from the planned send time, so a server that makes
  // requests wait is not flattered by the wait (coordinated omission).
  if (sh_.options.rate <= 0) started_ = now;
  ++sh_.stats.sent;
  capture_ = false;
  out_[0] = asio::buffer(request_.head);
  out_[1] = asio::buffer(request_.body);
  start_exchange(1);
}

void Agent::start_reads(Reading reading) {
  reading_ = reading;
  read_attempts_ = 0;
  const Workload& workload = sh_.options.workload;
  // The targets of all agents together (the hot counter; labelled, every
  // classic value) are read once, by the first agent of shard 0 to get here.
  bool with_shared = false;
  if (sh_.index == 0) {
    bool& taken = reading == Reading::baseline ? sh_.shared_baseline_taken : sh_.shared_final_taken;
    with_shared = !taken;
    taken = true;
  }
  read_targets_ = read_plan(workload, reading == Reading::baseline, with_shared);
  labels_ = agent_labels(workload, id_);
  if (reading == Reading::baseline) {
    // Unread until an answer says otherwise: a baseline that cannot be read
    // makes its counter unverifiable rather than silently assumed absent.
    for (const ReadTarget& t : read_targets_)
      sh_.shared.ledger.set_baseline(id_, t, Observation::failed());
  }
  reads_.clear();
  sh_.builder.build_reads(id_, read_targets_, reads_);
  if (read_targets_.empty()) return reads_done();
  sh_.read_gate().acquire(this, &Agent::begin_reads);
}

void Agent::begin_reads() {
  holds_read_slot_ = true;
  if (!connected_) return open();
  send_reads();
}

void Agent::send_reads() {
  read_index_ = 0;
  reads_complete_ = true;
  capture_ = true;
  out_[0] = asio::buffer(reads_);
  out_[1] = asio::const_buffer();
  start_exchange(static_cast<unsigned>(read_targets_.size()));
}

void Agent::reads_done() {
  reading_ = Reading::none;
  if (holds_read_slot_) {
    holds_read_slot_ = false;
    sh_.read_gate().release();
  }
  if (phase_ == Phase::verify) close();
  finish();
}

}  // namespace

// ---------------------------------------------------------------- public

void Stats::merge(const Stats& o) {
  sent += o.sent;
  acknowledged += o.acknowledged;
  rejected += o.rejected;
  in_doubt += o.in_doubt;
  metric_updates += o.metric_updates;
  connect_errors += o.connect_errors;
  timeouts += o.timeouts;
  transport_errors += o.transport_errors;
  reconnects += o.reconnects;
  retry_after_waits += o.retry_after_waits;
  read_failures += o.read_failures;
  resent += o.resent;
  replayed += o.replayed;
  for (const auto& [status, n] : o.status_counts)
    status_counts[status] += n;
  latency.merge(o.latency);
}

double Report::batches_per_second() const noexcept {
  return load_seconds > 0 ? static_cast<double>(stats.acknowledged) / load_seconds : 0;
}
double Report::updates_per_second() const noexcept {
  return load_seconds > 0 ? static_cast<double>(stats.metric_updates) / load_seconds : 0;
}

std::optional<double> Report::server_kib_per_connection() const noexcept {
  if (!server_before || !server_connected || agents_connected == 0) return std::nullopt;
  return (static_cast<double>(server_connected->rss_kib) -
          static_cast<double>(server_before->rss_kib)) /
         static_cast<double>(agents_connected);
}

int Report::exit_code() const noexcept {
  if (agents_connected == 0) return 3;
  if (verified && !verify.ok()) return 1;
  if (stats.acknowledged == 0) return 3;
  if (options.strict &&
      (stats.errors() > 0 || stats.timeouts > 0 || stats.transport_errors > 0 || agents_failed > 0))
    return 3;
  return 0;
}

int raise_fd_limit() noexcept {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return -1;
  if (lim.rlim_cur < lim.rlim_max) {
    lim.rlim_cur = lim.rlim_max;
    setrlimit(RLIMIT_NOFILE, &lim);
    getrlimit(RLIMIT_NOFILE, &lim);
  }
  return lim.rlim_cur > static_cast<rlim_t>(INT32_MAX) ? INT32_MAX : static_cast<int>(lim.rlim_cur);
}

Report run(const Options& options) {
  Report report;
  report.options = options;
  report.nofile_limit = raise_fd_limit();
  // One descriptor per agent plus a few for the process itself.
  if (report.nofile_limit > 0 && static_cast<std::uint64_t>(options.agents) + 32 >
                                     static_cast<std::uint64_t>(report.nofile_limit))
    throw std::runtime_error("--agents " + std::to_string(options.agents) +
                             " needs more open files than RLIMIT_NOFILE allows (" +
                             std::to_string(report.nofile_limit) + "); raise ulimit -n");

  const unsigned threads = std::min<unsigned>(options.threads, options.agents);
  Shared shared(options);
  shared.endpoint = tcp::endpoint(asio::ip::make_address_v4("127.0.0.1"), options.port);

  std::vector<std::vector<std::uint32_t>> ids(threads);
  for (std::uint32_t a = 0; a < options.agents; ++a)
    ids[a % threads].push_back(a);
  for (unsigned t = 0; t < threads; ++t)
    shared.shards.push_back(std::make_unique<Shard>(shared, t, std::move(ids[t])));
  if (options.requests > 0) {
    for (unsigned t = 0; t < threads; ++t)
      shared.shards[t]->set_budget(options.requests / threads +
                                   (t < options.requests % threads ? 1 : 0));
  }

  report.server_before = read_process_memory(options.server_pid);
  shared.connect_start = Clock::now();
  shared.start_phase(Phase::connect);
  std::vector<std::thread> workers;
  workers.reserve(threads);
  for (unsigned t = 0; t < threads; ++t) {
    workers.emplace_back([&shared, t] {
      try {
        shared.shards[t]->ioc.run();
      } catch (...) {
        shared.fail(std::current_exception());
      }
    });
  }
  for (auto& w : workers)
    w.join();
  if (shared.error) std::rethrow_exception(shared.error);

  auto seconds = [](Clock::duration d) { return std::chrono::duration<double>(d).count(); };
  report.connect_seconds = seconds(shared.load_start - shared.connect_start);
  report.load_seconds = seconds(shared.load_end - shared.load_start);
  if (options.verify) report.verify_seconds = seconds(shared.verify_end - shared.load_end);
  report.server_connected = shared.memory_connected;
  report.server_after = shared.memory_after;
  for (auto& s : shared.shards) {
    report.stats.merge(s->stats);
    report.agents_connected += s->connected_agents;
    report.agents_failed += s->failed_agents;
  }
  if (options.verify) {
    report.verified = true;
    report.verify = shared.ledger.check();
  } else {
    report.verify.in_doubt_requests = report.stats.in_doubt;
  }
  return report;
}

}  // namespace metrics::loadgen
