#include "metrics/storage/postgres_repository.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <type_traits>
#include <variant>

#include "detail/complete.hpp"
#include "detail/linger.hpp"
#include "detail/pg.hpp"
#include "metrics/core/errors.hpp"

namespace metrics::storage {
namespace {

namespace pg = detail::pg;
using core::Metric;
using core::MetricType;
using detail::complete;

struct ApplyReq {
  std::vector<Metric> batch;
  Callback<std::vector<Metric>> done;
};
struct GetReq {
  core::MetricKey key;
  Callback<std::optional<Metric>> done;
};
struct ListReq {
  Callback<std::vector<Metric>> done;
};
struct PingReq {
  Callback<bool> done;
};
using ReadReq = std::variant<GetReq, ListReq, PingReq>;

struct Migration {
  int version;
  const char* description;
  const char* sql;
};

// Append-only: a released migration is never edited, a change is a new one.
constexpr Migration kMigrations[] = {
    {1, "metrics table",
     R"(CREATE TABLE metrics (
          type  smallint NOT NULL CHECK (type IN (0, 1)),  -- 0 gauge, 1 counter
          name  text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 255),
          delta bigint,            -- counters: the total
          value double precision,  -- gauges: the value
          PRIMARY KEY (type, name),
          CHECK ((type = 1) = (delta IS NOT NULL) AND (type = 0) = (value IS NOT NULL))))"},
    {2, "applied_groups: committed group commits, to tell after a lost connection",
     R"(CREATE TABLE applied_groups (
          id         bigint PRIMARY KEY,
          applied_at timestamptz NOT NULL DEFAULT now()))"},
};

// Any constant shared by every server: migrations run one at a time.
constexpr const char* kMigrationLock = "SELECT pg_advisory_xact_lock(738113001)";

// Counters are added by PostgreSQL itself, so concurrent servers sum exactly;
// an overflow raises 22003. The input rows are distinct and sorted by
// (type, name) so that concurrent transactions lock rows in the same order.
#define METRICS_UPSERT_SQL                                                                        \
  "INSERT INTO metrics AS m (type, name, delta, value) "                                          \
  "SELECT t.type, t.name, CASE WHEN t.type = 1 THEN t.delta END, "                                \
  "       CASE WHEN t.type = 0 THEN t.value END "                                                 \
  "FROM unnest($1::int2[], $2::text[], $3::int8[], $4::float8[]) AS t(type, name, delta, value) " \
  "ON CONFLICT (type, name) DO UPDATE "                                                           \
  "SET delta = CASE WHEN m.type = 1 THEN m.delta + EXCLUDED.delta END, "                          \
  "    value = CASE WHEN m.type = 0 THEN EXCLUDED.value END "                                     \
  "RETURNING m.type, m.name, m.delta, m.value"

// One statement is one transaction: the group's marker row and its upsert
// commit together, so a retry after a lost connection can tell whether the
// group was committed before the connection went away.
constexpr const char* kUpsertGroupSql =
    "WITH marker AS (INSERT INTO applied_groups (id) VALUES ($5)), up AS (" METRICS_UPSERT_SQL
    ") SELECT type, name, delta, value FROM up";
constexpr const char* kUpsertSql = METRICS_UPSERT_SQL;
constexpr const char* kMarkSql = "INSERT INTO applied_groups (id) VALUES ($1)";
constexpr const char* kSeenSql = "SELECT 1 FROM applied_groups WHERE id = $1";
constexpr const char* kFetchSql =
    "SELECT m.type, m.name, m.delta, m.value FROM metrics m "
    "JOIN unnest($1::int2[], $2::text[]) AS t(type, name) ON m.type = t.type AND m.name = t.name";
constexpr const char* kGetSql = "SELECT delta, value FROM metrics WHERE type = $1 AND name = $2";
// COLLATE "C": byte order, the same order as every other storage.
constexpr const char* kListSql =
    "SELECT type, name, delta, value FROM metrics ORDER BY name COLLATE \"C\", type";
constexpr const char* kPruneSql =
    "DELETE FROM applied_groups WHERE applied_at < now() - interval '1 hour'";

// Distinct (type, name) rows of one or more batches, in key order.
struct Rows {
  struct Row {
    MetricType type;
    std::string_view name;
    std::int64_t delta = 0;
    double value = 0;
    int sign = 0;  // of the counter deltas added: -1, 0, 1; 2 when mixed
  };
  std::map<std::pair<MetricType, std::string_view>, std::size_t> index;
  std::vector<Row> rows;
  bool overflow = false;  // a delta sum does not fit int64

  void add(const Metric& m) {
    auto [it, inserted] = index.try_emplace({m.type, m.id}, rows.size());
    if (inserted) rows.push_back(Row{m.type, m.id});
    auto& row = rows[it->second];
    if (m.type == MetricType::gauge) {
      row.value = m.value;
      return;
    }
    const auto sum = core::checked_add(row.delta, m.delta);
    if (!sum) overflow = true;
    row.delta = sum.value_or(0);
    const int s = m.delta > 0 ? 1 : (m.delta < 0 ? -1 : 0);
    if (s != 0) row.sign = row.sign == 0 || row.sign == s ? s : 2;
  }

  [[nodiscard]] bool mixed_signs() const {
    return std::any_of(rows.begin(), rows.end(), [](const Row& r) { return r.sign == 2; });
  }

  // The four array parameters, in key order.
  struct Params {
    std::string types, names, deltas, values;
  };
  [[nodiscard]] Params params() const {
    pg::ArrayBuilder types(pg::kInt2Oid, rows.size());
    pg::ArrayBuilder names(pg::kTextOid, rows.size());
    pg::ArrayBuilder deltas(pg::kInt8Oid, rows.size());
    pg::ArrayBuilder values(pg::kFloat8Oid, rows.size());
    for (const auto& [key, i] : index) {
      const auto& r = rows[i];
      types.add_int2(static_cast<std::int16_t>(r.type));
      names.add_text(r.name);
      deltas.add_int8(r.delta);
      values.add_float8(r.value);
    }
    return {types.bytes(), names.bytes(), deltas.bytes(), values.bytes()};
  }
};

std::string be64(std::int64_t v) {
  std::string out;
  const auto u = static_cast<std::uint64_t>(v);
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((u >> shift) & 0xff));
  return out;
}

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

// The connection or the server went away (as opposed to a statement failing
// on a working connection).
bool unreachable(const pg::Error& e) {
  return e.connection_lost() || e.sqlstate().starts_with("08") || e.sqlstate().starts_with("57P");
}

std::exception_ptr overflowed() {
  return std::make_exception_ptr(
      core::InvalidInput("counter total would overflow int64; nothing of the batch stored"));
}

// Stored totals by key, read from a result of (type, name, delta, value).
std::map<std::pair<MetricType, std::string>, Metric> stored_rows(const PGresult* res) {
  std::map<std::pair<MetricType, std::string>, Metric> out;
  for (int r = 0; r < PQntuples(res); ++r) {
    const auto type = pg::get_int2(res, r, 0) == 1 ? MetricType::counter : MetricType::gauge;
    std::string name(pg::get_text(res, r, 1));
    Metric m = type == MetricType::counter ? Metric::counter(name, pg::get_int8(res, r, 2))
                                           : Metric::gauge(name, pg::get_float8(res, r, 3));
    out.emplace(std::pair{type, std::move(name)}, std::move(m));
  }
  return out;
}

// What each request answers, given the totals stored after all of `requests`
// (applied in order): a counter's answer is the final total minus what later
// requests added, a gauge's answer its own value.
void answers_from_totals(const std::vector<const std::vector<Metric>*>& requests,
                         const std::map<std::pair<MetricType, std::string>, Metric>& totals,
                         std::vector<std::vector<Metric>*> answers) {
  std::map<std::pair<MetricType, std::string_view>, std::int64_t> later;
  for (std::size_t k = requests.size(); k-- > 0;) {
    const auto& batch = *requests[k];
    auto& out = *answers[k];
    out.assign(batch.begin(), batch.end());
    for (std::size_t j = batch.size(); j-- > 0;) {
      const auto& m = batch[j];
      if (m.type != MetricType::counter) continue;
      const auto it = totals.find({m.type, m.id});
      const std::int64_t total = it == totals.end() ? 0 : it->second.delta;
      auto& after = later[{m.type, m.id}];
      // In range: the total after this request lies between the totals
      // before and after the group.
      out[j].delta = total - after;
      after += m.delta;
    }
  }
}

}  // namespace

class PostgresRepository::Impl {
 public:
  explicit Impl(PostgresOptions options) : opt_(std::move(options)) {
    pg::validate_dsn(opt_.dsn);
    if (opt_.connections == 0) opt_.connections = 1;
    if (opt_.max_group == 0) opt_.max_group = 1;
    if (opt_.concurrent_groups == 0) opt_.concurrent_groups = 1;
    try {
      auto conn = pg::connect(opt_.dsn, opt_.connect_timeout_seconds);
      setup_session(conn.get());
      spdlog::info("PostgreSQL storage ready at {}", pg::redact_dsn(opt_.dsn));
    } catch (const pg::Error& e) {
      if (!e.transient()) {
        throw core::Error("PostgreSQL " + pg::redact_dsn(opt_.dsn) +
                          ": cannot create or migrate the schema: " + e.what());
      }
      // Start anyway, as the Go server did: ping fails and the workers keep
      // reconnecting until the database is back.
      spdlog::error(
          "PostgreSQL {} is unreachable at start ({}); starting anyway, ping fails and "
          "requests answer at once with an error until it answers",
          pg::redact_dsn(opt_.dsn), e.what());
      down_ = true;
      down_why_ = e.what();
      down_since_ = std::chrono::steady_clock::now();
      next_probe_ = down_since_;
    }
    std::random_device rd;
    rng_.seed((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
    for (std::size_t i = 0; i < opt_.connections; ++i)
      workers_.emplace_back([this] { run(); });
  }

  ~Impl() { close(); }

  void apply(std::vector<Metric> batch, Callback<std::vector<Metric>> done) {
    std::exception_ptr err;
    {
      std::lock_guard lock(mu_);
      err = refusal(false);
      if (!err) applies_.push_back(ApplyReq{std::move(batch), std::move(done)});
    }
    if (err) {
      complete(done, std::move(err), {});
      return;
    }
    cv_.notify_one();
  }

  template <class Req, class T>
  void read(Req req, const Callback<T>& done) {
    std::exception_ptr err;
    {
      std::lock_guard lock(mu_);
      err = refusal(std::is_same_v<Req, PingReq>);
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
    if (down_ && !ping) {
      return unavailable("database unreachable (" + down_why_ + "); nothing stored, retry later");
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
    std::vector<ApplyReq> group;
    for (;;) {
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
        const auto probe_due = [this] {
          return down_ && !probing_ && !stopping_ &&
                 std::chrono::steady_clock::now() >= next_probe_;
        };
        while (!(drained() || can_write() || !reads_.empty() || probe_due())) {
          if (down_ && !probing_) {
            cv_.wait_until(lock, next_probe_);
          } else {
            cv_.wait(lock);
          }
        }
        if (drained()) return;
        if (probe_due()) {
          probing_ = true;
          probe = true;
        } else if (!reads_.empty() && (!can_write() || reads_turn)) {
          // Alternate, so neither reads nor writes can starve the other.
          read.emplace(std::move(reads_.front()));
          reads_.pop_front();
        } else {
          ++writing_;
          // Holding the writer slot: wait briefly for more batches.
          detail::linger(
              lock, [this] { return applies_.size(); }, opt_.max_group,
              [this] { return stopping_; });
          const auto n = std::min(applies_.size(), opt_.max_group);
          for (std::size_t i = 0; i < n; ++i) {
            group.push_back(std::move(applies_.front()));
            applies_.pop_front();
          }
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
        group.clear();
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
      setup_session(conn.get());
      w.conn = std::move(conn);
    } catch (const pg::Error& e) {
      if (unreachable(e)) mark_down(e.what());
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
      if (down_ || stopping_) return;
      down_ = true;
      down_why_ = why;
      down_since_ = std::chrono::steady_clock::now();
      next_probe_ = down_since_ + opt_.reconnect_interval;
      applies.assign(std::make_move_iterator(applies_.begin()),
                     std::make_move_iterator(applies_.end()));
      applies_.clear();
      std::deque<ReadReq> pings;
      for (auto& r : reads_) {
        if (std::holds_alternative<PingReq>(r)) {
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
    std::chrono::steady_clock::duration down_for{};
    {
      std::lock_guard lock(mu_);
      if (!down_) return;
      down_ = false;
      ++reconnects_;
      down_for = std::chrono::steady_clock::now() - down_since_;
    }
    cv_.notify_all();
    spdlog::info("PostgreSQL: database reachable again after {} ms",
                 std::chrono::duration_cast<std::chrono::milliseconds>(down_for).count());
  }

  bool is_down() {
    std::lock_guard lock(mu_);
    return down_;
  }

  static void fail_read(GetReq& req, const std::exception_ptr& err) {
    complete(req.done, err, std::optional<Metric>{});
  }
  static void fail_read(ListReq& req, const std::exception_ptr& err) {
    complete(req.done, err, std::vector<Metric>{});
  }
  static void fail_read(PingReq& req, const std::exception_ptr& err) {
    complete(req.done, err, false);
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
      probing_ = false;
      next_probe_ = std::chrono::steady_clock::now() + opt_.reconnect_interval;
    }
    cv_.notify_all();
  }

  // Search path, schema migrations (once per process) and prepared statements.
  void setup_session(PGconn* conn) {
    if (!opt_.schema.empty()) {
      const auto schema = pg::quote_identifier(conn, opt_.schema);
      pg::exec(conn, ("SET search_path TO " + schema).c_str());
    }
    if (!migrated_.load()) {
      std::lock_guard lock(migrate_mu_);
      if (!migrated_.load()) {
        migrate(conn);
        migrated_.store(true);
      }
    }
    pg::prepare(conn, "upsert_group", kUpsertGroupSql);
    pg::prepare(conn, "upsert", kUpsertSql);
    pg::prepare(conn, "mark", kMarkSql);
    pg::prepare(conn, "seen", kSeenSql);
    pg::prepare(conn, "fetch", kFetchSql);
    pg::prepare(conn, "get", kGetSql);
    pg::prepare(conn, "list", kListSql);
  }

  void migrate(PGconn* conn) {
    pg::exec(conn, "BEGIN");
    try {
      pg::exec(conn, kMigrationLock);
      if (!opt_.schema.empty()) {
        pg::exec(
            conn,
            ("CREATE SCHEMA IF NOT EXISTS " + pg::quote_identifier(conn, opt_.schema)).c_str());
      }
      pg::exec(conn,
               "CREATE TABLE IF NOT EXISTS schema_migrations ("
               "version integer PRIMARY KEY, description text NOT NULL, "
               "applied_at timestamptz NOT NULL DEFAULT now())");
      auto res = pg::exec(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
      const int current = std::atoi(PQgetvalue(res.get(), 0, 0));
      for (const auto& m : kMigrations) {
        if (m.version <= current) continue;
        pg::exec(conn, m.sql);
        const auto version = std::to_string(m.version);
        const char* values[] = {version.c_str(), m.description};
        const int lengths[] = {0, 0};
        const int formats[] = {0, 0};
        pg::exec_params(conn,
                        "INSERT INTO schema_migrations (version, description) VALUES ($1, $2)",
                        values, lengths, formats, false);
        spdlog::info("PostgreSQL: applied migration {} ({})", m.version, m.description);
      }
      pg::exec(conn, "COMMIT");
    } catch (...) {
      rollback(conn);
      throw;
    }
  }

  static void rollback(PGconn* conn) noexcept {
    if (PQstatus(conn) != CONNECTION_OK) return;
    pg::Result res(PQexec(conn, "ROLLBACK"));
    (void)res;
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
        const bool lost = unreachable(e) || (w.conn && PQstatus(w.conn.get()) != CONNECTION_OK);
        if (w.conn) {
          if (PQstatus(w.conn.get()) != CONNECTION_OK) {
            w.conn.reset();
          } else {
            rollback(w.conn.get());
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
        const auto reconnects = reconnects_;
        cv_.wait_for(lock, opt_.retry_delays[attempt],
                     [&] { return stopping_ || reconnects_ != reconnects; });
      } catch (const std::exception& e) {
        // Not a database error (a malformed result, memory): not retried.
        spdlog::error("PostgreSQL: {}", e.what());
        if (w.conn) rollback(w.conn.get());
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
    std::vector<std::vector<Metric>> answers(n);
    std::vector<std::exception_ptr> errors(n);
    const auto group_id = next_group_id();
    const auto id_param = be64(group_id);
    Doubt doubt;

    with_retry(
        w,
        [&](PGconn* conn, std::size_t attempt) {
          std::fill(errors.begin(), errors.end(), nullptr);
          if (attempt > 0) {
            if (seen(conn, id_param)) {
              spdlog::warn("PostgreSQL: a group commit whose answer was lost had committed");
              answer_from_current(conn, group, answers);
              return;
            }
            // Not committed, and its connection is gone: no longer in doubt.
            doubt.in_doubt = false;
          }
          Rows rows;
          for (const auto& req : group) {
            for (const auto& m : req.batch)
              rows.add(m);
          }
          try {
            if (!rows.overflow && !rows.mixed_signs()) {
              try {
                doubt.commit_sent = true;
                fast_path(conn, group, rows, id_param, answers);
                return;
              } catch (const pg::Error& e) {
                if (e.sqlstate() != pg::kNumericValueOutOfRange) throw;
                doubt.commit_sent = false;
                // Some batch overflows: find it with the per-batch path below.
              }
            }
            slow_path(conn, group, id_param, answers, errors, doubt.commit_sent);
          } catch (const pg::Error& e) {
            // A retry whose marker collides: the earlier attempt's transaction
            // was still running when seen() looked, and has committed since.
            if (attempt == 0 || e.sqlstate() != pg::kUniqueViolation ||
                PQstatus(conn) != CONNECTION_OK) {
              throw;
            }
            rollback(conn);
            spdlog::warn("PostgreSQL: a group commit whose answer was lost committed late");
            std::fill(errors.begin(), errors.end(), nullptr);
            answer_from_current(conn, group, answers);
          }
        },
        [&](const std::exception_ptr& err) { std::fill(errors.begin(), errors.end(), err); },
        &doubt);
    for (std::size_t i = 0; i < n; ++i) {
      if (errors[i]) answers[i].clear();
      complete(group[i].done, std::move(errors[i]), std::move(answers[i]));
    }
    prune(w);
  }

  // One statement, one transaction, one round trip for the whole group. Only
  // used when every counter's deltas in the group have one sign, so the
  // totals between batches lie between the totals before and after the group
  // and cannot overflow unless the final one does (which PostgreSQL reports).
  static void fast_path(PGconn* conn, const std::vector<ApplyReq>& group, const Rows& rows,
                        const std::string& id_param, std::vector<std::vector<Metric>>& answers) {
    const auto p = rows.params();
    const char* values[] = {p.types.data(), p.names.data(), p.deltas.data(), p.values.data(),
                            id_param.data()};
    const int lengths[] = {static_cast<int>(p.types.size()), static_cast<int>(p.names.size()),
                           static_cast<int>(p.deltas.size()), static_cast<int>(p.values.size()),
                           static_cast<int>(id_param.size())};
    const int formats[] = {1, 1, 1, 1, 1};
    auto res = pg::exec_prepared(conn, "upsert_group", values, lengths, formats, true);
    fill_answers(group, stored_rows(res.get()), answers);
  }

  // The brief's general path: one transaction, each batch in its own
  // savepoint, so a batch that overflows is rolled back alone.
  static void slow_path(PGconn* conn, const std::vector<ApplyReq>& group,
                        const std::string& id_param, std::vector<std::vector<Metric>>& answers,
                        std::vector<std::exception_ptr>& errors, bool& commit_sent) {
    pg::exec(conn, "BEGIN");
    {
      const char* values[] = {id_param.data()};
      const int lengths[] = {static_cast<int>(id_param.size())};
      const int formats[] = {1};
      pg::exec_prepared(conn, "mark", values, lengths, formats, false);
    }
    for (std::size_t i = 0; i < group.size(); ++i) {
      Rows rows;
      for (const auto& m : group[i].batch)
        rows.add(m);
      if (rows.overflow) {
        errors[i] = overflowed();
        continue;
      }
      const auto p = rows.params();
      const char* values[] = {p.types.data(), p.names.data(), p.deltas.data(), p.values.data()};
      const int lengths[] = {static_cast<int>(p.types.size()), static_cast<int>(p.names.size()),
                             static_cast<int>(p.deltas.size()), static_cast<int>(p.values.size())};
      const int formats[] = {1, 1, 1, 1};
      pg::exec(conn, "SAVEPOINT batch");
      try {
        auto res = pg::exec_prepared(conn, "upsert", values, lengths, formats, true);
        pg::exec(conn, "RELEASE SAVEPOINT batch");
        const std::vector<const std::vector<Metric>*> one{&group[i].batch};
        answers_from_totals(one, stored_rows(res.get()), {&answers[i]});
      } catch (const pg::Error& e) {
        if (e.sqlstate() != pg::kNumericValueOutOfRange) throw;
        pg::exec(conn, "ROLLBACK TO SAVEPOINT batch");
        pg::exec(conn, "RELEASE SAVEPOINT batch");
        errors[i] = overflowed();
      }
    }
    commit_sent = true;
    pg::exec(conn, "COMMIT");
  }

  static void fill_answers(const std::vector<ApplyReq>& group,
                           const std::map<std::pair<MetricType, std::string>, Metric>& totals,
                           std::vector<std::vector<Metric>>& answers) {
    std::vector<const std::vector<Metric>*> requests;
    std::vector<std::vector<Metric>*> outs;
    for (std::size_t i = 0; i < group.size(); ++i) {
      requests.push_back(&group[i].batch);
      outs.push_back(&answers[i]);
    }
    answers_from_totals(requests, totals, outs);
  }

  static bool seen(PGconn* conn, const std::string& id_param) {
    const char* values[] = {id_param.data()};
    const int lengths[] = {static_cast<int>(id_param.size())};
    const int formats[] = {1};
    return PQntuples(pg::exec_prepared(conn, "seen", values, lengths, formats, true).get()) > 0;
  }

  // The group committed but its answer was lost with the connection: answer
  // with the totals stored now (exact unless another writer came in between).
  static void answer_from_current(PGconn* conn, const std::vector<ApplyReq>& group,
                                  std::vector<std::vector<Metric>>& answers) {
    Rows rows;
    for (const auto& req : group) {
      for (const auto& m : req.batch)
        rows.add(m);
    }
    const auto p = rows.params();
    const char* values[] = {p.types.data(), p.names.data()};
    const int lengths[] = {static_cast<int>(p.types.size()), static_cast<int>(p.names.size())};
    const int formats[] = {1, 1};
    auto res = pg::exec_prepared(conn, "fetch", values, lengths, formats, true);
    auto totals = stored_rows(res.get());
    for (std::size_t i = 0; i < group.size(); ++i) {
      answers[i] = group[i].batch;
      for (auto& m : answers[i]) {
        if (m.type != MetricType::counter) continue;
        const auto it = totals.find({m.type, m.id});
        if (it != totals.end()) m.delta = it->second.delta;
      }
    }
  }

  // Forgets group ids older than an hour, at most once a minute per process.
  void prune(Worker& w) {
    const auto now = std::chrono::steady_clock::now().time_since_epoch().count();
    auto last = last_prune_.load();
    const auto minute =
        std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::minutes{1})
            .count();
    if (now - last < minute || !last_prune_.compare_exchange_strong(last, now)) return;
    if (!w.conn || PQstatus(w.conn.get()) != CONNECTION_OK) return;
    try {
      pg::exec(w.conn.get(), kPruneSql);
    } catch (const pg::Error& e) {
      spdlog::warn("PostgreSQL: cannot prune applied_groups: {}", e.what());
    }
  }

  void serve(Worker& w, GetReq& req) {
    std::optional<Metric> out;
    std::exception_ptr err;
    with_retry(
        w,
        [&](PGconn* conn, std::size_t) {
          const auto type = be16(static_cast<std::int16_t>(req.key.type));
          const char* values[] = {type.data(), req.key.id.data()};
          const int lengths[] = {2, static_cast<int>(req.key.id.size())};
          const int formats[] = {1, 1};
          auto res = pg::exec_prepared(conn, "get", values, lengths, formats, true);
          out.reset();
          if (PQntuples(res.get()) == 0) return;
          out = req.key.type == MetricType::counter
                    ? Metric::counter(req.key.id, pg::get_int8(res.get(), 0, 0))
                    : Metric::gauge(req.key.id, pg::get_float8(res.get(), 0, 1));
        },
        [&](const std::exception_ptr& e) { err = e; });
    complete(req.done, std::move(err), std::move(out));
  }

  void serve(Worker& w, ListReq& req) {
    std::vector<Metric> out;
    std::exception_ptr err;
    with_retry(
        w,
        [&](PGconn* conn, std::size_t) {
          auto res = pg::exec_prepared(conn, "list", {}, {}, {}, true);
          const auto rows = PQntuples(res.get());
          out.clear();
          out.reserve(static_cast<std::size_t>(rows));
          for (int r = 0; r < rows; ++r) {
            std::string name(pg::get_text(res.get(), r, 1));
            out.push_back(pg::get_int2(res.get(), r, 0) == 1
                              ? Metric::counter(std::move(name), pg::get_int8(res.get(), r, 2))
                              : Metric::gauge(std::move(name), pg::get_float8(res.get(), r, 3)));
          }
        },
        [&](const std::exception_ptr& e) { err = e; });
    complete(req.done, std::move(err), std::move(out));
  }

  // A real round trip with no backoff: ping reports the state now. A pooled
  // connection found dead gets one immediate fresh attempt, so that a
  // database that restarted a while ago does not fail one ping per worker.
  void serve(Worker& w, PingReq& req) {
    for (int attempt = 0;; ++attempt) {
      const bool had_connection = w.conn != nullptr;
      try {
        pg::exec(connection(w), "SELECT 1");
        mark_up();
        complete(req.done, nullptr, true);
        return;
      } catch (const pg::Error& e) {
        const bool lost = w.conn && PQstatus(w.conn.get()) != CONNECTION_OK;
        if (lost) w.conn.reset();
        if (attempt == 0 && had_connection && lost) continue;
        complete(req.done, unavailable(e.what()), false);
        return;
      }
    }
  }

  std::int64_t next_group_id() {
    std::lock_guard lock(rng_mu_);
    return static_cast<std::int64_t>(rng_() >> 1);
  }

  static std::string be16(std::int16_t v) {
    const auto u = static_cast<std::uint16_t>(v);
    return {static_cast<char>(u >> 8), static_cast<char>(u & 0xff)};
  }

  PostgresOptions opt_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<ApplyReq> applies_;
  std::deque<ReadReq> reads_;
  bool stopping_ = false;
  std::size_t writing_ = 0;  // apply groups in progress
  // The database is unreachable (a connection attempt failed) and no
  // attempt has succeeded since: requests fail at once, idle workers probe.
  bool down_ = false;
  std::string down_why_;
  std::chrono::steady_clock::time_point down_since_;
  std::chrono::steady_clock::time_point next_probe_;
  bool probing_ = false;
  std::uint64_t reconnects_ = 0;  // times down_ was cleared
  std::vector<std::thread> workers_;
  std::mutex migrate_mu_;
  std::atomic<bool> migrated_{false};
  std::atomic<std::int64_t> last_prune_{0};
  std::mutex rng_mu_;
  std::mt19937_64 rng_;
};

PostgresRepository::PostgresRepository(PostgresOptions options)
    : impl_(std::make_unique<Impl>(std::move(options))) {}

PostgresRepository::~PostgresRepository() = default;

void PostgresRepository::apply(std::vector<Metric> batch, Callback<std::vector<Metric>> done) {
  impl_->apply(std::move(batch), std::move(done));
}

void PostgresRepository::get(core::MetricKey key, Callback<std::optional<Metric>> done) {
  impl_->read(GetReq{std::move(key), done}, done);
}

void PostgresRepository::list(Callback<std::vector<Metric>> done) {
  impl_->read(ListReq{done}, done);
}

void PostgresRepository::ping(Callback<bool> done) {
  impl_->read(PingReq{done}, done);
}

void PostgresRepository::close() {
  impl_->close();
}

std::string PostgresRepository::redact_dsn(const std::string& dsn) {
  return pg::redact_dsn(dsn);
}

}  // namespace metrics::storage
