#include "detail/pg_statements.hpp"

#include <algorithm>
#include <map>
#include <string_view>

#include "detail/pg.hpp"
#include "metrics/core/errors.hpp"

namespace metrics::storage::detail::pg {
namespace {

using core::Metric;
using core::MetricType;

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
    ArrayBuilder types(kInt2Oid, rows.size());
    ArrayBuilder names(kTextOid, rows.size());
    ArrayBuilder deltas(kInt8Oid, rows.size());
    ArrayBuilder values(kFloat8Oid, rows.size());
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

std::exception_ptr overflowed() {
  return std::make_exception_ptr(
      core::InvalidInput("counter total would overflow int64; nothing of the batch stored"));
}

std::string be16(std::int16_t v) {
  const auto u = static_cast<std::uint16_t>(v);
  return {static_cast<char>(u >> 8), static_cast<char>(u & 0xff)};
}

// Stored totals by key, read from a result of (type, name, delta, value).
std::map<std::pair<MetricType, std::string>, Metric> stored_rows(const PGresult* res) {
  std::map<std::pair<MetricType, std::string>, Metric> out;
  for (int r = 0; r < PQntuples(res); ++r) {
    const auto type = get_int2(res, r, 0) == 1 ? MetricType::counter : MetricType::gauge;
    std::string name(get_text(res, r, 1));
    Metric m = type == MetricType::counter ? Metric::counter(name, get_int8(res, r, 2))
                                           : Metric::gauge(name, get_float8(res, r, 3));
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

void fill_answers(const Group& group,
                  const std::map<std::pair<MetricType, std::string>, Metric>& totals,
                  std::vector<std::vector<Metric>>& answers) {
  std::vector<const std::vector<Metric>*> requests;
  std::vector<std::vector<Metric>*> outs;
  for (std::size_t i = 0; i < group.size(); ++i) {
    requests.push_back(group[i]);
    outs.push_back(&answers[i]);
  }
  answers_from_totals(requests, totals, outs);
}

// One statement, one transaction, one round trip for the whole group. Only
// used when every counter's deltas in the group have one sign, so the
// totals between batches lie between the totals before and after the group
// and cannot overflow unless the final one does (which PostgreSQL reports).
void fast_path(PGconn* conn, const Group& group, const Rows& rows, const std::string& id_param,
               std::vector<std::vector<Metric>>& answers) {
  const auto p = rows.params();
  const char* values[] = {p.types.data(), p.names.data(), p.deltas.data(), p.values.data(),
                          id_param.data()};
  const int lengths[] = {static_cast<int>(p.types.size()), static_cast<int>(p.names.size()),
                         static_cast<int>(p.deltas.size()), static_cast<int>(p.values.size()),
                         static_cast<int>(id_param.size())};
  const int formats[] = {1, 1, 1, 1, 1};
  auto res = exec_prepared(conn, "upsert_group", values, lengths, formats, true);
  fill_answers(group, stored_rows(res.get()), answers);
}

// The brief's general path: one transaction, each batch in its own
// savepoint, so a batch that overflows is rolled back alone.
void slow_path(PGconn* conn, const Group& group, const std::string& id_param,
               std::vector<std::vector<Metric>>& answers, std::vector<std::exception_ptr>& errors,
               bool& commit_sent) {
  exec(conn, "BEGIN");
  {
    const char* values[] = {id_param.data()};
    const int lengths[] = {static_cast<int>(id_param.size())};
    const int formats[] = {1};
    exec_prepared(conn, "mark", values, lengths, formats, false);
  }
  for (std::size_t i = 0; i < group.size(); ++i) {
    Rows rows;
    for (const auto& m : *group[i])
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
    exec(conn, "SAVEPOINT batch");
    try {
      auto res = exec_prepared(conn, "upsert", values, lengths, formats, true);
      exec(conn, "RELEASE SAVEPOINT batch");
      const std::vector<const std::vector<Metric>*> one{group[i]};
      answers_from_totals(one, stored_rows(res.get()), {&answers[i]});
    } catch (const Error& e) {
      if (e.sqlstate() != kNumericValueOutOfRange) throw;
      exec(conn, "ROLLBACK TO SAVEPOINT batch");
      exec(conn, "RELEASE SAVEPOINT batch");
      errors[i] = overflowed();
    }
  }
  commit_sent = true;
  exec(conn, "COMMIT");
}

}  // namespace

bool seen(PGconn* conn, const std::string& id_param) {
  const char* values[] = {id_param.data()};
  const int lengths[] = {static_cast<int>(id_param.size())};
  const int formats[] = {1};
  return PQntuples(exec_prepared(conn, "seen", values, lengths, formats, true).get()) > 0;
}

void answer_from_current(PGconn* conn, const Group& group,
                         std::vector<std::vector<Metric>>& answers) {
  Rows rows;
  for (const auto* batch : group) {
    for (const auto& m : *batch)
      rows.add(m);
  }
  const auto p = rows.params();
  const char* values[] = {p.types.data(), p.names.data()};
  const int lengths[] = {static_cast<int>(p.types.size()), static_cast<int>(p.names.size())};
  const int formats[] = {1, 1};
  auto res = exec_prepared(conn, "fetch", values, lengths, formats, true);
  auto totals = stored_rows(res.get());
  for (std::size_t i = 0; i < group.size(); ++i) {
    answers[i] = *group[i];
    for (auto& m : answers[i]) {
      if (m.type != MetricType::counter) continue;
      const auto it = totals.find({m.type, m.id});
      if (it != totals.end()) m.delta = it->second.delta;
    }
  }
}

void prepare_statements(PGconn* conn) {
  prepare(conn, "upsert_group", kUpsertGroupSql);
  prepare(conn, "upsert", kUpsertSql);
  prepare(conn, "mark", kMarkSql);
  prepare(conn, "seen", kSeenSql);
  prepare(conn, "fetch", kFetchSql);
  prepare(conn, "get", kGetSql);
  prepare(conn, "list", kListSql);
}

std::string group_id_param(std::int64_t id) {
  std::string out;
  const auto u = static_cast<std::uint64_t>(id);
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((u >> shift) & 0xff));
  return out;
}

void write_group(PGconn* conn, const Group& group, const std::string& id_param,
                 std::vector<std::vector<Metric>>& answers, std::vector<std::exception_ptr>& errors,
                 bool& commit_sent) {
  Rows rows;
  for (const auto* batch : group) {
    for (const auto& m : *batch)
      rows.add(m);
  }
  if (!rows.overflow && !rows.mixed_signs()) {
    try {
      commit_sent = true;
      fast_path(conn, group, rows, id_param, answers);
      return;
    } catch (const Error& e) {
      if (e.sqlstate() != kNumericValueOutOfRange) throw;
      commit_sent = false;
      // Some batch overflows: find it with the per-batch path below.
    }
  }
  slow_path(conn, group, id_param, answers, errors, commit_sent);
}

void prune_groups(PGconn* conn) {
  exec(conn, kPruneSql);
}

std::optional<Metric> get(PGconn* conn, const core::MetricKey& key) {
  const auto type = be16(static_cast<std::int16_t>(key.type));
  const char* values[] = {type.data(), key.id.data()};
  const int lengths[] = {2, static_cast<int>(key.id.size())};
  const int formats[] = {1, 1};
  auto res = exec_prepared(conn, "get", values, lengths, formats, true);
  if (PQntuples(res.get()) == 0) return std::nullopt;
  return key.type == MetricType::counter ? Metric::counter(key.id, get_int8(res.get(), 0, 0))
                                         : Metric::gauge(key.id, get_float8(res.get(), 0, 1));
}

std::vector<Metric> list(PGconn* conn) {
  auto res = exec_prepared(conn, "list", {}, {}, {}, true);
  const auto rows = PQntuples(res.get());
  std::vector<Metric> out;
  out.reserve(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    std::string name(get_text(res.get(), r, 1));
    out.push_back(get_int2(res.get(), r, 0) == 1
                      ? Metric::counter(std::move(name), get_int8(res.get(), r, 2))
                      : Metric::gauge(std::move(name), get_float8(res.get(), r, 3)));
  }
  return out;
}

}  // namespace metrics::storage::detail::pg
