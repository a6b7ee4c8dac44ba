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
#include <variant>

#include "detail/complete.hpp"
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
          "PostgreSQL {} is unreachable at start ({}); starting anyway, ping fails "
          "until it answers",
          pg::redact_dsn(opt_.dsn), e.what());
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
      err = refusal();
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
      err = refusal();
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
  std::exception_ptr refusal() {
    if (stopping_) return unavailable("storage is closed");
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
      {
        std::unique_lock lock(mu_);
        const auto can_write = [this] {
          return !applies_.empty() && writing_ < opt_.concurrent_groups;
        };
        const auto drained = [this] { return stopping_ && applies_.empty() && reads_.empty(); };
        cv_.wait(lock, [&] { return drained() || can_write() || !reads_.empty(); });
        if (drained()) return;
        // Alternate, so neither reads nor writes can starve the other.
        if (!reads_.empty() && (!can_write() || reads_turn)) {
          read.emplace(std::move(reads_.front()));
          reads_.pop_front();
        } else {
          ++writing_;
          linger(lock);
          const auto n = std::min(applies_.size(), opt_.max_group);
          for (std::size_t i = 0; i < n; ++i) {
            group.push_back(std::move(applies_.front()));
            applies_.pop_front();
          }
        }
        reads_turn = !reads_turn;
      }
      if (read) {
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

  // Waits while batches keep arriving, briefly (caller holds mu_ and the
  // writer slot). Clients answered by the last group come back one after
  // the other; without this the next group would take the first few and
  // the rest would wait for a whole further commit.
  void linger(std::unique_lock<std::mutex>& lock) {
    constexpr auto kStep = std::chrono::microseconds{50};
    constexpr auto kMax = std::chrono::microseconds{1000};
    const auto deadline = std::chrono::steady_clock::now() + kMax;
    std::size_t seen = 0;
    while (!stopping_ && applies_.size() != seen && applies_.size() < opt_.max_group &&
           std::chrono::steady_clock::now() < deadline) {
      seen = applies_.size();
      lock.unlock();
      std::this_thread::sleep_for(kStep);
      lock.lock();
    }
  }

  PGconn* connection(Worker& w) {
    if (w.conn && PQstatus(w.conn.get()) == CONNECTION_OK) return w.conn.get();
    w.conn.reset();
    auto conn = pg::connect(opt_.dsn, opt_.connect_timeout_seconds);
    setup_session(conn.get());
    w.conn = std::move(conn);
    return w.conn.get();
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

  // Runs body() with the retry policy: transient failures are retried after
  // each delay in turn (waking early when closing); then, or for any other
  // failure, fail(message) is called.
  template <class Body, class Fail>
  void with_retry(Worker& w, Body&& body, Fail&& fail) {
    for (std::size_t attempt = 0;; ++attempt) {
      try {
        body(connection(w), attempt);
        return;
      } catch (const pg::Error& e) {
        if (w.conn) {
          if (PQstatus(w.conn.get()) != CONNECTION_OK) {
            w.conn.reset();
          } else {
            rollback(w.conn.get());
          }
        }
        if (!e.transient() || attempt >= opt_.retry_delays.size() || stopping()) {
          spdlog::error("PostgreSQL: {}", e.what());
          fail(std::string(e.what()));
          return;
        }
        spdlog::warn("PostgreSQL: {}; retrying in {} ms", e.what(),
                     opt_.retry_delays[attempt].count());
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, opt_.retry_delays[attempt], [this] { return stopping_; });
      } catch (const std::exception& e) {
        // Not a database error (a malformed result, memory): not retried.
        spdlog::error("PostgreSQL: {}", e.what());
        if (w.conn) rollback(w.conn.get());
        fail(std::string(e.what()));
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

    with_retry(
        w,
        [&](PGconn* conn, std::size_t attempt) {
          std::fill(errors.begin(), errors.end(), nullptr);
          if (attempt > 0 && seen(conn, id_param)) {
            spdlog::warn("PostgreSQL: a group commit whose answer was lost had committed");
            answer_from_current(conn, group, answers);
            return;
          }
          Rows rows;
          for (const auto& req : group) {
            for (const auto& m : req.batch)
              rows.add(m);
          }
          if (!rows.overflow && !rows.mixed_signs()) {
            try {
              fast_path(conn, group, rows, id_param, answers);
              return;
            } catch (const pg::Error& e) {
              if (e.sqlstate() != pg::kNumericValueOutOfRange) throw;
              // Some batch overflows: find it with the per-batch path below.
            }
          }
          slow_path(conn, group, id_param, answers, errors);
        },
        [&](const std::string& why) {
          for (auto& e : errors)
            e = unavailable(why);
        });
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
                        std::vector<std::exception_ptr>& errors) {
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
        [&](const std::string& why) { err = unavailable(why); });
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
        [&](const std::string& why) { err = unavailable(why); });
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
