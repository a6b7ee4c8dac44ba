#include "metrics/storage/postgres_repository.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <random>
#include <thread>
#include <type_traits>
#include <variant>

#include "detail/complete.hpp"
#include "detail/group_commit_queue.hpp"
#include "detail/pg.hpp"
#include "detail/pg_failure.hpp"
#include "detail/pg_health.hpp"
#include "detail/pg_schema.hpp"
#include "detail/pg_statements.hpp"
#include "metrics/core/errors.hpp"

// The PostgreSQL storage's queueing, connections, health and retry policy;
// the schema is in detail/pg_schema.cpp, the statements in
// detail/pg_statements.cpp, the failure classification in
// detail/pg_failure.cpp, the up/down state in detail/pg_health.hpp.

namespace metrics::storage {
namespace {

namespace pg = detail::pg;
using core::Point;
using detail::complete;

struct ApplyReq {
  std::vector<core::Update> batch;
  std::int64_t received_ms = 0;
  Callback<Applied> done;
  // Guarded by an idempotency key (apply_once): when the database already
  // had the key, `skipped` runs with the outcome and the batch instead of done.
  std::optional<Guard> guard{};
  std::int64_t key_cutoff_ms = 0;
  std::function<void(Once, std::vector<core::Update>)> skipped{};
};
struct GetReq {
  core::SeriesKey key;
  Callback<std::optional<Point>> done;
};
struct GetClassicReq {
  core::MetricKey key;
  Callback<std::optional<Point>> done;
};
struct ListReq {
  Callback<std::vector<Point>> done;
};
struct ListSeriesReq {
  Callback<std::vector<Point>> done;
};
// A write, but one statement on its own: served like a read.
struct ExpireReq {
  std::int64_t cutoff_ms = 0;
  Callback<std::vector<core::SeriesKey>> done;
};
// ping() and health(): one real round trip.
struct HealthReq {
  Callback<Health> done;
};
using ReadReq = std::variant<GetReq, GetClassicReq, ListReq, ListSeriesReq, ExpireReq, HealthReq>;

std::exception_ptr unavailable(const std::string& why) {
  return std::make_exception_ptr(core::StorageUnavailable("PostgreSQL: " + why));
}

// A group whose COMMIT may have reached the server before the connection was
// lost, and whose marker could not be looked up since: never a 503.
std::exception_ptr outcome_unknown(const std::string& why) {
  return std::make_exception_ptr(core::OutcomeUnknown(
      "PostgreSQL: the connection was lost while the update was being committed and the "
      "outcome could not be checked; it may or may not have been stored (" +
      why + ")"));
}

}  // namespace

class PostgresRepository::Impl {
 public:
  [[nodiscard]] StorageStats stats() {
    const std::lock_guard lock(mu_);
    return {.queue_depth = applies_.size() + reads_.size(),
            .queue_capacity = applies_.capacity(),
            .group_commits = applies_.groups(),
            .grouped_batches = applies_.grouped()};
  }

  Impl(PostgresOptions options, KeyStore& keys)
      : keys_(keys),
        opt_(std::move(options)),
        clock_(opt_.clock ? opt_.clock : core::real_clock()),
        schema_(opt_.schema),
        applies_(opt_.max_queue, *clock_),
        health_(*clock_, opt_.reconnect_interval) {
    pg::validate_dsn(opt_.dsn);
    if (opt_.connections == 0) opt_.connections = 1;
    if (opt_.max_group == 0) opt_.max_group = 1;
    if (opt_.concurrent_groups == 0) opt_.concurrent_groups = 1;
    try {
      auto conn = pg::connect(opt_.dsn, opt_.connect_timeout_seconds);
      schema_.setup_session(conn.get());
      spdlog::info("PostgreSQL storage ready at {}", pg::redact_dsn(opt_.dsn));
    } catch (const pg::Error& e) {
      if (!e.transient()) {
        throw core::Error("PostgreSQL " + pg::redact_dsn(opt_.dsn) +
                          ": cannot create or migrate the schema: " + e.what());
      }
      // Start anyway, as the Go server did: ping fails and the workers keep
      // reconnecting until the database is back (or accepts the login).
      if (e.authentication_failed()) {
        log_authentication_failure(e);
      } else {
        spdlog::error(
            "PostgreSQL {} is unreachable at start ({}); starting anyway, ping fails and "
            "requests answer at once with an error until it answers",
            pg::redact_dsn(opt_.dsn), e.what());
      }
      health_.mark_down(down_reason(e), core::Clock::Duration::zero());
    }
    std::random_device rd;
    rng_.seed((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
    for (std::size_t i = 0; i < opt_.connections; ++i)
      workers_.emplace_back([this] { run(); });
  }

  ~Impl() { close(); }

  void apply(std::vector<core::Update> batch, std::int64_t received_ms, Callback<Applied> done) {
    ApplyReq req;
    req.batch = std::move(batch);
    req.received_ms = received_ms;
    req.done = std::move(done);
    push(std::move(req));
  }

  void push(ApplyReq req) {
    std::exception_ptr err;
    {
      std::lock_guard lock(mu_);
      err = refusal(false);
      if (!err && !applies_.push(std::move(req), reads_.size())) {
        err = std::make_exception_ptr(core::Overloaded("PostgreSQL queue is full"));
      }
    }
    if (err) {
      complete(req.done, std::move(err), {});
      return;
    }
    cv_.notify_one();
  }

  template <class Req, class T>
  void read(Req req, const Callback<T>& done) {
    std::exception_ptr err;
    {
      std::lock_guard lock(mu_);
      err = refusal(std::is_same_v<Req, HealthReq>);
      if (!err) reads_.emplace_back(std::move(req));
    }
    if (err) {
      complete(done, std::move(err), T{});
      return;
    }
    cv_.notify_one();
  }

  void close() {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
    }
    cv_.notify_all();
    for (auto& w : workers_)
      w.join();
    workers_.clear();
  }

 private:
  // Why a new request cannot be queued, if it cannot. Caller holds mu_, and
  // queues the request under the same lock, so close() cannot slip between.
  // While the database is unreachable every request but a ping (which is a
  // reconnection attempt) fails at once: nothing is stored, retry later.
  std::exception_ptr refusal(bool ping) {
    if (stopping_) return unavailable("storage is closed");
    if (health_.down() && !ping) {
      return unavailable("database unreachable (" + health_.why() +
                         "); nothing stored, retry later");
    }
    if (applies_.size() + reads_.size() >= opt_.max_queue) {
      return std::make_exception_ptr(core::Overloaded("PostgreSQL queue is full"));
    }
    return nullptr;
  }

  struct Worker {
    pg::Conn conn;
  };

  void run() {
    Worker w;
    bool reads_turn = false;
    for (;;) {
      std::vector<ApplyReq> group;
      std::optional<ReadReq> read;
      bool probe = false;
      {
        std::unique_lock lock(mu_);
        const auto can_write = [this] {
          return !applies_.empty() && writing_ < opt_.concurrent_groups;
        };
        const auto drained = [this] { return stopping_ && applies_.empty() && reads_.empty(); };
        // While the database is unreachable, one idle worker at a time tries
        // to reconnect every reconnect_interval.
        const auto probe_due = [this] { return !stopping_ && health_.probe_due(); };
        const auto ready = [&] {
          return drained() || can_write() || !reads_.empty() || probe_due();
        };
        while (!ready()) {
          if (health_.awaiting_probe()) {
            clock_->wait_until(cv_, lock, health_.next_probe(), ready);
          } else {
            cv_.wait(lock);
          }
        }
        if (drained()) return;
        if (probe_due()) {
          health_.start_probe();
          probe = true;
        } else if (!reads_.empty() && (!can_write() || reads_turn)) {
          // Alternate, so neither reads nor writes can starve the other.
          read.emplace(std::move(reads_.front()));
          reads_.pop_front();
        } else {
          ++writing_;
          // Holding the writer slot: wait briefly for more batches.
          group = applies_.take_group(lock, opt_.max_group, [this] { return stopping_; });
        }
        if (!probe) reads_turn = !reads_turn;
      }
      if (probe) {
        reconnect_probe(w);
      } else if (read) {
        std::visit([&](auto& req) { serve(w, req); }, *read);
      } else if (group.empty()) {
        // Another writer took them while this one lingered.
        {
          std::lock_guard lock(mu_);
          --writing_;
        }
        cv_.notify_all();
      } else {
        apply_group(w, group);
        {
          std::lock_guard lock(mu_);
          --writing_;
        }
        cv_.notify_all();
      }
    }
  }

  // The worker's connection, reconnecting when it is gone. PQconsumeInput
  // (never blocking) first reads whatever already arrived, so a connection
  // the server has closed in the meantime (a restart) is noticed here, before
  // a write is sent on it and would have to count as in doubt.
  PGconn* connection(Worker& w) {
    if (w.conn && PQstatus(w.conn.get()) == CONNECTION_OK && PQconsumeInput(w.conn.get()) == 1 &&
        PQstatus(w.conn.get()) == CONNECTION_OK) {
      return w.conn.get();
    }
    w.conn.reset();
    try {
      auto conn = pg::connect(opt_.dsn, opt_.connect_timeout_seconds);
      schema_.setup_session(conn.get());
      w.conn = std::move(conn);
    } catch (const pg::Error& e) {
      if (e.authentication_failed()) log_authentication_failure(e);
      if (pg::unreachable(e)) mark_down(down_reason(e));
      throw;
    }
    mark_up();
    return w.conn.get();
  }

  // The database cannot be reached: from now on requests fail at once (see
  // refusal()), and so do the ones already queued, instead of each waiting
  // through the retries while the queue fills up. Pings stay queued: they
  // are reconnection attempts. Idempotent.
  void mark_down(const std::string& why) {
    std::vector<ApplyReq> applies;
    std::vector<ReadReq> reads;
    {
      std::lock_guard lock(mu_);
      if (stopping_ || !health_.mark_down(why)) return;
      applies = applies_.take_all();
      std::deque<ReadReq> pings;
      for (auto& r : reads_) {
        if (std::holds_alternative<HealthReq>(r)) {
          pings.push_back(std::move(r));
        } else {
          reads.push_back(std::move(r));
        }
      }
      reads_ = std::move(pings);
    }
    cv_.notify_all();
    spdlog::error(
        "PostgreSQL: database unreachable ({}); requests fail at once with 503 until it "
        "answers again ({} queued ones failed)",
        why, applies.size() + reads.size());
    const auto err = unavailable("database unreachable (" + why + "); nothing stored, retry later");
    for (auto& a : applies)
      complete(a.done, err, {});
    for (auto& r : reads)
      std::visit([&](auto& req) { fail_read(req, err); }, r);
  }

  void mark_up() {
    core::Clock::Duration down_for{};
    {
      std::lock_guard lock(mu_);
      const auto was_down = health_.mark_up();
      if (!was_down) return;
      down_for = *was_down;
    }
    cv_.notify_all();
    spdlog::info("PostgreSQL: database reachable again after {} ms",
                 std::chrono::duration_cast<std::chrono::milliseconds>(down_for).count());
  }

  bool is_down() {
    std::lock_guard lock(mu_);
    return health_.down();
  }

  template <class Req>
  static void fail_read(Req& req, const std::exception_ptr& err) {
    complete(req.done, err, {});
  }
  static void fail_read(HealthReq& req, const std::exception_ptr& err) {
    complete(req.done, err, Health{});
  }

  // What requests are told while the database is down.
  static std::string down_reason(const pg::Error& e) {
    return e.authentication_failed() ? pg::reason(e) : std::string(e.what());
  }

  // A refused login is a configuration error, not an outage: say so plainly,
  // at once and then at most once a minute while it lasts (probes retry it
  // every reconnect_interval).
  void log_authentication_failure(const pg::Error& e) {
    {
      std::lock_guard lock(mu_);
      if (!health_.auth_log_due()) return;
    }
    spdlog::error(
        "PostgreSQL {}: authentication failed for user \"{}\" ({}); check the user and "
        "password of the DSN. The server keeps serving: /ping answers 500 and storage requests "
        "503 until the login succeeds (retried every {} ms)",
        pg::redact_dsn(opt_.dsn), e.user(), pg::one_line(e.what()),
        opt_.reconnect_interval.count());
  }

  // One reconnection attempt while the database is unreachable: a real
  // round trip, so a pooled connection that only looks alive does not count.
  void reconnect_probe(Worker& w) {
    try {
      pg::exec(connection(w), "SELECT 1");
      mark_up();
    } catch (const pg::Error&) {
      if (w.conn && PQstatus(w.conn.get()) != CONNECTION_OK) w.conn.reset();
    }
    {
      std::lock_guard lock(mu_);
      health_.end_probe();
    }
    cv_.notify_all();
  }

  // Whether a write may have been stored although its attempt failed. The
  // body sets commit_sent just before it sends a statement that can commit
  // (the one-statement group, or COMMIT); losing the connection after that
  // makes the group in doubt until an attempt has looked its marker up.
  struct Doubt {
    bool commit_sent = false;
    bool in_doubt = false;
  };

  // Runs body() with the retry policy: transient failures are retried after
  // each delay in turn (waking early when closing, or when the database was
  // reached again); then, or for any other failure, fail(error) is called
  // with core::StorageUnavailable (nothing stored) or, for a write in doubt,
  // core::OutcomeUnknown. While the database is unreachable a request that
  // is not in doubt fails at once instead of waiting through the delays.
  template <class Body, class Fail>
  void with_retry(Worker& w, Body&& body, Fail&& fail, Doubt* doubt = nullptr) {
    const auto failure = [&](const std::string& why) {
      fail(doubt && doubt->in_doubt ? outcome_unknown(why) : unavailable(why));
    };
    for (std::size_t attempt = 0;; ++attempt) {
      if (doubt) doubt->commit_sent = false;
      try {
        body(connection(w), attempt);
        return;
      } catch (const pg::Error& e) {
        const bool lost = pg::unreachable(e) || (w.conn && PQstatus(w.conn.get()) != CONNECTION_OK);
        if (w.conn) {
          if (PQstatus(w.conn.get()) != CONNECTION_OK) {
            w.conn.reset();
          } else {
            pg::rollback(w.conn.get());
          }
        }
        if (doubt && doubt->commit_sent && lost) doubt->in_doubt = true;
        if (!e.transient() || attempt >= opt_.retry_delays.size() || stopping()) {
          spdlog::error("PostgreSQL: {}", e.what());
          failure(e.what());
          return;
        }
        // Reconnect at once: either only this connection was lost, or the
        // database is down (connection() then marks it so).
        if (lost && !w.conn) {
          try {
            (void)connection(w);
          } catch (const pg::Error&) {
            // Reported by the next attempt.
          }
        }
        if (is_down() && !(doubt && doubt->in_doubt)) {
          failure("database unreachable (" + std::string(e.what()) +
                  "); nothing stored, retry later");
          return;
        }
        spdlog::warn("PostgreSQL: {}; retrying in {} ms", e.what(),
                     opt_.retry_delays[attempt].count());
        std::unique_lock lock(mu_);
        const auto reconnects = health_.reconnects();
        clock_->wait_for(cv_, lock, opt_.retry_delays[attempt],
                         [&] { return stopping_ || health_.reconnects() != reconnects; });
      } catch (const std::exception& e) {
        // Not a database error (a malformed result, memory): not retried.
        spdlog::error("PostgreSQL: {}", e.what());
        if (w.conn) pg::rollback(w.conn.get());
        failure(e.what());
        return;
      }
    }
  }

  bool stopping() {
    std::lock_guard lock(mu_);
    return stopping_;
  }

  void apply_group(Worker& w, std::vector<ApplyReq>& group) {
    const std::size_t n = group.size();
    std::vector<Applied> answers(n);
    std::vector<std::exception_ptr> errors(n);
    const auto group_id = next_group_id();
    const auto id_param = pg::group_id_param(group_id);
    pg::Group batches;
    batches.reserve(n);
    for (const auto& req : group) {
      batches.push_back(
          {&req.batch, req.received_ms, req.guard ? &*req.guard : nullptr, req.key_cutoff_ms});
    }
    std::vector<Once> outcomes(n, Once::applied);
    Doubt doubt;

    with_retry(
        w,
        [&](PGconn* conn, std::size_t attempt) {
          std::fill(errors.begin(), errors.end(), nullptr);
          std::fill(outcomes.begin(), outcomes.end(), Once::applied);
          if (attempt > 0) {
            if (pg::seen(conn, id_param)) {
              spdlog::warn("PostgreSQL: a group commit whose answer was lost had committed");
              pg::answer_from_current(conn, batches, answers);
              return;
            }
            // Not committed, and its connection is gone: no longer in doubt.
            doubt.in_doubt = false;
          }
          try {
            pg::write_group(conn, batches, id_param, answers, errors, outcomes, doubt.commit_sent);
          } catch (const pg::Error& e) {
            // A retry whose marker collides: the earlier attempt's transaction
            // was still running when seen() looked, and has committed since.
            if (attempt == 0 || e.sqlstate() != pg::kUniqueViolation ||
                PQstatus(conn) != CONNECTION_OK) {
              throw;
            }
            pg::rollback(conn);
            spdlog::warn("PostgreSQL: a group commit whose answer was lost committed late");
            std::fill(errors.begin(), errors.end(), nullptr);
            pg::answer_from_current(conn, batches, answers);
          }
        },
        [&](const std::exception_ptr& err) { std::fill(errors.begin(), errors.end(), err); },
        &doubt);
    for (std::size_t i = 0; i < n; ++i) {
      if (!errors[i] && outcomes[i] != Once::applied && group[i].skipped) {
        group[i].skipped(outcomes[i], std::move(group[i].batch));
        continue;
      }
      if (errors[i]) answers[i] = {};
      complete(group[i].done, std::move(errors[i]), std::move(answers[i]));
    }
    prune(w);
  }

  // Forgets group ids older than an hour, at most once a minute per process.
  void prune(Worker& w) {
    const auto now = clock_->steady_now().time_since_epoch().count();
    auto last = last_prune_.load();
    const auto minute =
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::minutes{1})
            .count();
    if (now - last < minute || !last_prune_.compare_exchange_strong(last, now)) return;
    if (!w.conn || PQstatus(w.conn.get()) != CONNECTION_OK) return;
    try {
      pg::prune_groups(w.conn.get());
      const auto now_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              clock_->system_now().time_since_epoch())
                              .count();
      pg::prune_keys(w.conn.get(), now_ms - keys_.options().window.count());
    } catch (const pg::Error& e) {
      spdlog::warn("PostgreSQL: cannot prune applied_groups or idempotency_keys: {}", e.what());
    }
  }

  // One statement with the retry policy; `run` returns the request's result.
  template <class Req, class Run>
  void serve_one(Worker& w, Req& req, Run&& run) {
    decltype(run(static_cast<PGconn*>(nullptr))) out{};
    std::exception_ptr err;
    with_retry(
        w, [&](PGconn* conn, std::size_t) { out = run(conn); },
        [&](const std::exception_ptr& e) { err = e; });
    if (err) out = {};
    complete(req.done, std::move(err), std::move(out));
  }

  void serve(Worker& w, GetReq& req) {
    serve_one(w, req, [&](PGconn* conn) { return pg::get(conn, req.key); });
  }
  void serve(Worker& w, GetClassicReq& req) {
    serve_one(w, req, [&](PGconn* conn) { return pg::get_classic(conn, req.key); });
  }
  void serve(Worker& w, ListReq& req) {
    serve_one(w, req, [&](PGconn* conn) { return pg::list(conn); });
  }
  void serve(Worker& w, ListSeriesReq& req) {
    serve_one(w, req, [&](PGconn* conn) { return pg::list_series(conn); });
  }
  void serve(Worker& w, ExpireReq& req) {
    serve_one(w, req, [&](PGconn* conn) { return pg::expire(conn, req.cutoff_ms); });
  }

  // A real round trip with no backoff: the health check reports the state
  // now, and why it fails. A pooled connection found dead gets one immediate
  // fresh attempt, so that a database that restarted a while ago does not
  // fail one check per worker.
  void serve(Worker& w, HealthReq& req) {
    for (int attempt = 0;; ++attempt) {
      const bool had_connection = w.conn != nullptr;
      try {
        pg::exec(connection(w), "SELECT 1");
        mark_up();
        complete(req.done, nullptr, Health{});
        return;
      } catch (const pg::Error& e) {
        const bool lost = w.conn && PQstatus(w.conn.get()) != CONNECTION_OK;
        if (lost) w.conn.reset();
        if (attempt == 0 && had_connection && lost) continue;
        complete(req.done, nullptr, Health{.ok = false, .reason = pg::reason(e)});
        return;
      }
    }
  }

  std::int64_t next_group_id() {
    std::lock_guard lock(rng_mu_);
    return static_cast<std::int64_t>(rng_() >> 1);
  }

  KeyStore& keys_;
  PostgresOptions opt_;
  std::shared_ptr<core::Clock> clock_;
  pg::Schema schema_;
  std::mutex mu_;
  std::condition_variable cv_;
  detail::GroupCommitQueue<ApplyReq> applies_;  // the bound counts reads_ too
  std::deque<ReadReq> reads_;
  bool stopping_ = false;
  std::size_t writing_ = 0;  // apply groups in progress
  // Down once a connection attempt failed, until one succeeds: requests
  // fail at once meanwhile, idle workers probe. Guarded by mu_.
  pg::Reachability health_;
  std::vector<std::thread> workers_;
  std::atomic<std::int64_t> last_prune_{0};
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

PostgresRepository::PostgresRepository(PostgresOptions options)
    : impl_(std::make_unique<Impl>(std::move(options), keys_)) {}

PostgresRepository::~PostgresRepository() = default;

void PostgresRepository::apply(std::vector<core::Update> batch, std::int64_t received_ms,
                               Callback<Applied> done) {
  impl_->apply(std::move(batch), received_ms, std::move(done));
}

void PostgresRepository::apply_once(std::vector<core::Update> batch, std::int64_t received_ms,
                                    Guard guard, Callback<OnceApplied> done) {
  // This server's keys answer what they know (and 409 for its own requests
  // in flight); the database decides the rest, for every server on it.
  if (!begin_once(batch, received_ms, guard, done)) return;
  ApplyReq req;
  req.batch = std::move(batch);
  req.received_ms = received_ms;
  req.done = finish_once(guard, received_ms, done);
  req.guard = guard;
  req.key_cutoff_ms = received_ms - keys_.options().window.count();
  req.skipped = [this, guard, received_ms, done](Once outcome, std::vector<core::Update> b) {
    if (outcome == Once::replayed) {
      keys_.commit(guard, received_ms);
    } else {
      keys_.abort(guard);
    }
    done(nullptr, OnceApplied{.outcome = outcome, .applied = {}, .batch = std::move(b)});
  };
  impl_->push(std::move(req));
}

void PostgresRepository::get(core::SeriesKey key, Callback<std::optional<Point>> done) {
  impl_->read(GetReq{std::move(key), done}, done);
}

void PostgresRepository::get_classic(core::MetricKey key, Callback<std::optional<Point>> done) {
  impl_->read(GetClassicReq{std::move(key), done}, done);
}

void PostgresRepository::list(Callback<std::vector<Point>> done) {
  impl_->read(ListReq{done}, done);
}

void PostgresRepository::list_series(Callback<std::vector<Point>> done) {
  impl_->read(ListSeriesReq{done}, done);
}

void PostgresRepository::expire(std::int64_t cutoff_ms,
                                Callback<std::vector<core::SeriesKey>> done) {
  impl_->read(ExpireReq{cutoff_ms, done}, done);
}

void PostgresRepository::ping(Callback<bool> done) {
  // The health check, with a failure as core::StorageUnavailable.
  Callback<Health> health = [done](std::exception_ptr err, Health h) {
    if (!err && !h.ok) err = std::make_exception_ptr(core::StorageUnavailable(h.reason));
    const bool ok = !err;
    complete(done, std::move(err), ok);
  };
  impl_->read(HealthReq{health}, health);
}

void PostgresRepository::health(Callback<Health> done) {
  impl_->read(HealthReq{done}, done);
}

StorageStats PostgresRepository::stats() const {
  return impl_->stats();
}

void PostgresRepository::close() {
  impl_->close();
}

std::string PostgresRepository::redact_dsn(const std::string& dsn) {
  return pg::redact_dsn(dsn);
}

}  // namespace metrics::storage
