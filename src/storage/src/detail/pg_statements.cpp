#include "detail/pg_statements.hpp"

#include <algorithm>
#include <map>
#include <stdexcept>
#include <string_view>
#include <unordered_map>

#include "detail/pg.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/core/json_codec.hpp"

namespace metrics::storage::detail::pg {
namespace {

using core::MetricType;
using core::Point;
using core::Update;

// Both tables in one statement: the series ($1-$7) and the classic values
// ($8-$11). Counters are added by PostgreSQL itself, so concurrent servers
// sum exactly; an overflow of either raises 22003. The input rows of each
// table are distinct and in key order, and every writer takes the series
// before the classic values, so concurrent transactions lock rows in one
// order. A series keeps the latest receive time it has seen (two servers'
// clocks may differ). Only counters are returned: a gauge answers its own
// value.
#define METRICS_UPSERT_CTES                                                                        \
  "ws AS (INSERT INTO series AS s (type, name, labels, labels_json, total, value, updated_at) "    \
  "SELECT t.type, t.name, t.labels, t.labels_json::jsonb, CASE WHEN t.type = 1 THEN t.delta END, " \
  "       CASE WHEN t.type = 0 THEN t.value END, t.ms "                                            \
  "FROM unnest($1::int2[], $2::text[], $3::bytea[], $4::text[], $5::int8[], $6::float8[], "        \
  "            $7::int8[]) AS t(type, name, labels, labels_json, delta, value, ms) "               \
  "ON CONFLICT (type, name, labels) DO UPDATE "                                                    \
  "SET total = CASE WHEN s.type = 1 THEN s.total + EXCLUDED.total END, "                           \
  "    value = CASE WHEN s.type = 0 THEN EXCLUDED.value END, "                                     \
  "    updated_at = GREATEST(s.updated_at, EXCLUDED.updated_at) "                                  \
  "RETURNING s.type, s.name, s.labels, s.total), "                                                 \
  "wc AS (INSERT INTO metrics AS m (type, name, delta, value) "                                    \
  "SELECT t.type, t.name, CASE WHEN t.type = 1 THEN t.delta END, "                                 \
  "       CASE WHEN t.type = 0 THEN t.value END "                                                  \
  "FROM unnest($8::int2[], $9::text[], $10::int8[], $11::float8[]) AS t(type, name, delta, "       \
  "value) "                                                                                        \
  "ON CONFLICT (type, name) DO UPDATE "                                                            \
  "SET delta = CASE WHEN m.type = 1 THEN m.delta + EXCLUDED.delta END, "                           \
  "    value = CASE WHEN m.type = 0 THEN EXCLUDED.value END "                                      \
  "RETURNING m.type, m.name, m.delta) "

// (table: 0 series, 1 classic; type; name; labels; total) of the counters.
#define METRICS_UPSERT_RESULT                                         \
  "SELECT 0::int2, type, name, labels, total FROM ws WHERE type = 1 " \
  "UNION ALL SELECT 1::int2, type, name, NULL::bytea, delta FROM wc WHERE type = 1"

// One statement is one transaction: the group's marker row and its upserts
// commit together, so a retry after a lost connection can tell whether the
// group was committed before the connection went away.
constexpr const char* kUpsertGroupSql =
    "WITH marker AS (INSERT INTO applied_groups (id) VALUES ($12)), " METRICS_UPSERT_CTES
        METRICS_UPSERT_RESULT;
constexpr const char* kUpsertSql = "WITH " METRICS_UPSERT_CTES METRICS_UPSERT_RESULT;
constexpr const char* kMarkSql = "INSERT INTO applied_groups (id) VALUES ($1)";
constexpr const char* kSeenSql = "SELECT 1 FROM applied_groups WHERE id = $1";
constexpr const char* kFetchSql =
    "SELECT 0::int2, s.type, s.name, s.labels, s.total FROM series s "
    "JOIN unnest($1::int2[], $2::text[], $3::bytea[]) AS t(type, name, labels) "
    "ON s.type = t.type AND s.name = t.name AND s.labels = t.labels WHERE s.type = 1 "
    "UNION ALL SELECT 1::int2, m.type, m.name, NULL::bytea, m.delta FROM metrics m "
    "JOIN unnest($4::int2[], $5::text[]) AS t(type, name) ON m.type = t.type AND m.name = t.name "
    "WHERE m.type = 1";
constexpr const char* kGetSql =
    "SELECT total, value, updated_at FROM series WHERE type = $1 AND name = $2 AND labels = $3";
constexpr const char* kGetClassicSql =
    "SELECT delta, value FROM metrics WHERE type = $1 AND name = $2";
// COLLATE "C": byte order, the same order as every other storage.
constexpr const char* kListSql =
    "SELECT type, name, delta, value FROM metrics ORDER BY name COLLATE \"C\", type";
// Sorted here, not in SQL: labels order pair by pair, which the encoding's
// byte order is not (0xFF ends a name).
constexpr const char* kListSeriesSql =
    "SELECT type, name, labels, total, value, updated_at FROM series";
constexpr const char* kExpireSql =
    "DELETE FROM series WHERE updated_at < $1 RETURNING type, name, labels";
// A key is taken when it is new, or when its last use left the window ($4);
// no row back: it was applied within the window (by any server).
constexpr const char* kClaimKeySql =
    "INSERT INTO idempotency_keys AS k (key, fingerprint, received_ms) VALUES ($1, $2, $3) "
    "ON CONFLICT (key) DO UPDATE SET fingerprint = EXCLUDED.fingerprint, "
    "received_ms = EXCLUDED.received_ms WHERE k.received_ms < $4 RETURNING 1";
constexpr const char* kKeyFingerprintSql =
    "SELECT fingerprint FROM idempotency_keys WHERE key = $1";
constexpr const char* kPruneKeysSql = "DELETE FROM idempotency_keys WHERE received_ms < $1";
constexpr const char* kPruneSql =
    "DELETE FROM applied_groups WHERE applied_at < now() - interval '1 hour'";

// Flat map keys: the type, the name, NUL (never in a name), the encoded
// labels. Any fixed order serves to lock rows in one order.
std::string series_key(MetricType type, std::string_view name, std::string_view labels) {
  std::string k;
  k.reserve(2 + name.size() + labels.size());
  k.push_back(static_cast<char>(type));
  k.append(name);
  k.push_back('\0');
  k.append(labels);
  return k;
}
std::string classic_key(MetricType type, std::string_view name) {
  std::string k;
  k.reserve(1 + name.size());
  k.push_back(static_cast<char>(type));
  k.append(name);
  return k;
}

int sign_of(std::int64_t v) {
  return v > 0 ? 1 : (v < 0 ? -1 : 0);
}
// Sign of the deltas added so far: 0 none, -1 or 1, 2 when mixed.
int merge_sign(int so_far, std::int64_t delta) {
  const int s = sign_of(delta);
  if (s == 0) return so_far;
  return so_far == 0 || so_far == s ? s : 2;
}

// Distinct series and classic rows of one or more batches, in key order.
struct Rows {
  struct SeriesRow {
    MetricType type;
    std::string_view name;
    const core::Labels* labels;
    std::int64_t delta = 0;
    double value = 0;
    std::int64_t ms = 0;
    int sign = 0;
  };
  struct ClassicRow {
    MetricType type;
    std::string_view name;
    std::int64_t delta = 0;
    double value = 0;
    int sign = 0;
  };
  std::map<std::string, SeriesRow> series;
  std::map<std::string, ClassicRow> classic;
  bool overflow = false;  // a delta sum does not fit int64

  void add(const Update& u, std::int64_t received_ms) {
    auto& s =
        series.try_emplace(series_key(u.type, u.id, u.labels.encoded()), u.type, u.id, &u.labels)
            .first->second;
    s.ms = std::max(s.ms, received_ms);
    if (u.series_only) {
      // The classic value stays as it is: no row of `metrics` is written.
      if (u.type == MetricType::gauge) {
        s.value = u.value;
        return;
      }
      const auto ss = core::checked_add(s.delta, u.delta);
      if (!ss) overflow = true;
      s.delta = ss.value_or(0);
      s.sign = merge_sign(s.sign, u.delta);
      return;
    }
    auto& c = classic.try_emplace(classic_key(u.type, u.id), u.type, u.id).first->second;
    if (u.type == MetricType::gauge) {
      s.value = u.value;
      c.value = u.value;
      return;
    }
    const auto ss = core::checked_add(s.delta, u.delta);
    const auto cs = core::checked_add(c.delta, u.delta);
    if (!ss || !cs) overflow = true;
    s.delta = ss.value_or(0);
    c.delta = cs.value_or(0);
    s.sign = merge_sign(s.sign, u.delta);
    c.sign = merge_sign(c.sign, u.delta);
  }
  void add(const Batch& b) {
    for (const auto& u : *b.updates)
      add(u, b.received_ms);
  }

  [[nodiscard]] bool mixed_signs() const {
    return std::any_of(series.begin(), series.end(),
                       [](const auto& r) { return r.second.sign == 2; }) ||
           std::any_of(classic.begin(), classic.end(),
                       [](const auto& r) { return r.second.sign == 2; });
  }

  // The eleven array parameters of kUpsertSql, in key order.
  struct Params {
    std::vector<std::string> arrays;
    [[nodiscard]] std::vector<const char*> values() const {
      std::vector<const char*> v;
      for (const auto& a : arrays)
        v.push_back(a.data());
      return v;
    }
    [[nodiscard]] std::vector<int> lengths() const {
      std::vector<int> v;
      for (const auto& a : arrays)
        v.push_back(static_cast<int>(a.size()));
      return v;
    }
  };
  [[nodiscard]] Params params() const {
    ArrayBuilder types(kInt2Oid, series.size());
    ArrayBuilder names(kTextOid, series.size());
    ArrayBuilder labels(kByteaOid, series.size());
    ArrayBuilder jsons(kTextOid, series.size());
    ArrayBuilder deltas(kInt8Oid, series.size());
    ArrayBuilder values(kFloat8Oid, series.size());
    ArrayBuilder times(kInt8Oid, series.size());
    for (const auto& [key, r] : series) {
      types.add_int2(static_cast<std::int16_t>(r.type));
      names.add_text(r.name);
      labels.add_bytes(r.labels->encoded());
      jsons.add_text(labels_json(*r.labels));
      deltas.add_int8(r.delta);
      values.add_float8(r.value);
      times.add_int8(r.ms);
    }
    ArrayBuilder ctypes(kInt2Oid, classic.size());
    ArrayBuilder cnames(kTextOid, classic.size());
    ArrayBuilder cdeltas(kInt8Oid, classic.size());
    ArrayBuilder cvalues(kFloat8Oid, classic.size());
    for (const auto& [key, r] : classic) {
      ctypes.add_int2(static_cast<std::int16_t>(r.type));
      cnames.add_text(r.name);
      cdeltas.add_int8(r.delta);
      cvalues.add_float8(r.value);
    }
    return {{types.bytes(), names.bytes(), labels.bytes(), jsons.bytes(), deltas.bytes(),
             values.bytes(), times.bytes(), ctypes.bytes(), cnames.bytes(), cdeltas.bytes(),
             cvalues.bytes()}};
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

std::string be64(std::int64_t v) {
  std::string out;
  const auto u = static_cast<std::uint64_t>(v);
  for (int shift = 56; shift >= 0; shift -= 8)
    out.push_back(static_cast<char>((u >> shift) & 0xff));
  return out;
}

MetricType type_of(const PGresult* res, int row, int col) {
  return get_int2(res, row, col) == 1 ? MetricType::counter : MetricType::gauge;
}

core::Labels labels_of(const PGresult* res, int row, int col) {
  auto labels = core::Labels::from_encoded(get_bytes(res, row, col));
  if (!labels) throw std::runtime_error("PostgreSQL: a series with malformed labels");
  return std::move(*labels);
}

// Counter totals by flat key, from a result of (table, type, name, labels,
// total).
struct Totals {
  std::unordered_map<std::string, std::int64_t> series;
  std::unordered_map<std::string, std::int64_t> classic;

  explicit Totals(const PGresult* res) {
    for (int r = 0; r < PQntuples(res); ++r) {
      const auto type = type_of(res, r, 1);
      const auto name = get_text(res, r, 2);
      const auto total = get_int8(res, r, 4);
      if (get_int2(res, r, 0) == 0) {
        series[series_key(type, name, get_bytes(res, r, 3))] = total;
      } else {
        classic[classic_key(type, name)] = total;
      }
    }
  }

  static std::int64_t at(const std::unordered_map<std::string, std::int64_t>& m,
                         const std::string& key) {
    const auto it = m.find(key);
    return it == m.end() ? 0 : it->second;
  }
};

// What each batch answers, given the counter totals stored after all of
// `group` (applied in order): a counter's answer is the final total minus
// what later batches added (unless `current`: then the totals as they are),
// a series gauge its own value, a classic gauge the last value its batch
// wrote to that name. Series points carry their batch's receive time,
// classic ones none.
void fill_answers(const Group& group, const Totals& totals, bool current,
                  std::vector<Applied*> answers) {
  std::unordered_map<std::string, std::int64_t> later_series;
  std::unordered_map<std::string, std::int64_t> later_classic;
  for (std::size_t k = group.size(); k-- > 0;) {
    const auto& batch = *group[k].updates;
    auto& out = *answers[k];
    out.series.clear();
    out.classic.clear();
    out.series.reserve(batch.size());
    out.classic.reserve(batch.size());
    std::vector<std::string> skeys;
    std::vector<std::string> ckeys;
    skeys.reserve(batch.size());
    ckeys.reserve(batch.size());
    std::unordered_map<std::string_view, double> last_gauge;
    for (const auto& u : batch) {
      skeys.push_back(series_key(u.type, u.id, u.labels.encoded()));
      ckeys.push_back(classic_key(u.type, u.id));
      if (u.type == MetricType::gauge && !u.series_only) last_gauge[u.id] = u.value;
    }
    for (std::size_t j = 0; j < batch.size(); ++j) {
      const auto& u = batch[j];
      Point s{u.id, u.type, u.labels, 0, 0, group[k].received_ms};
      Point c{u.id, u.type, {}, 0, 0, 0};
      if (u.type == MetricType::gauge) {
        s.value = u.value;
        c.value = last_gauge[u.id];
      } else {
        // In range: the total after this batch lies between the totals
        // before and after the group.
        s.total = Totals::at(totals.series, skeys[j]) - later_series[skeys[j]];
        if (!u.series_only) {
          c.total = Totals::at(totals.classic, ckeys[j]) - later_classic[ckeys[j]];
        }
      }
      out.series.push_back(std::move(s));
      out.classic.push_back(std::move(c));
    }
    if (current) continue;
    for (std::size_t j = 0; j < batch.size(); ++j) {
      if (batch[j].type != MetricType::counter) continue;
      later_series[skeys[j]] += batch[j].delta;
      if (!batch[j].series_only) later_classic[ckeys[j]] += batch[j].delta;
    }
  }
}

std::vector<Applied*> all_of(std::vector<Applied>& answers) {
  std::vector<Applied*> out;
  out.reserve(answers.size());
  for (auto& a : answers)
    out.push_back(&a);
  return out;
}

// One statement, one transaction, one round trip for the whole group. Only
// used when every counter's deltas in the group (of a series and of a
// classic value) have one sign, so the totals between batches lie between
// the totals before and after the group and cannot overflow unless the
// final one does (which PostgreSQL reports).
void fast_path(PGconn* conn, const Group& group, const Rows& rows, const std::string& id_param,
               std::vector<Applied>& answers) {
  auto p = rows.params();
  p.arrays.push_back(id_param);
  const auto values = p.values();
  const auto lengths = p.lengths();
  const std::vector<int> formats(values.size(), 1);
  auto res = exec_prepared(conn, "upsert_group", values, lengths, formats, true);
  fill_answers(group, Totals(res.get()), false, all_of(answers));
}

// The general path: one transaction, each batch in its own savepoint, so a
// batch that overflows is rolled back alone.
// Takes batch b's key; false (and the outcome) when it was applied already.
bool claim_key(PGconn* conn, const Batch& b, Once& outcome) {
  const Guard& g = *b.guard;
  const std::string key(reinterpret_cast<const char*>(g.key.data()), g.key.size());
  const std::string fp(reinterpret_cast<const char*>(g.fingerprint.data()), g.fingerprint.size());
  const auto ms = be64(b.received_ms);
  const auto cutoff = be64(b.key_cutoff_ms);
  {
    const char* values[] = {key.data(), fp.data(), ms.data(), cutoff.data()};
    const int lengths[] = {16, 16, 8, 8};
    const int formats[] = {1, 1, 1, 1};
    if (PQntuples(exec_prepared(conn, "claim_key", values, lengths, formats, true).get()) > 0) {
      outcome = Once::applied;
      return true;
    }
  }
  const char* values[] = {key.data()};
  const int lengths[] = {16};
  const int formats[] = {1};
  auto res = exec_prepared(conn, "key_fingerprint", values, lengths, formats, true);
  const bool same = PQntuples(res.get()) > 0 && PQgetlength(res.get(), 0, 0) == 16 &&
                    std::string_view(PQgetvalue(res.get(), 0, 0), 16) == fp;
  outcome = same ? Once::replayed : Once::mismatch;
  return false;
}

void slow_path(PGconn* conn, const Group& group, const std::string& id_param,
               std::vector<Applied>& answers, std::vector<std::exception_ptr>& errors,
               std::vector<Once>& outcomes, bool& commit_sent) {
  exec(conn, "BEGIN");
  {
    const char* values[] = {id_param.data()};
    const int lengths[] = {static_cast<int>(id_param.size())};
    const int formats[] = {1};
    exec_prepared(conn, "mark", values, lengths, formats, false);
  }
  for (std::size_t i = 0; i < group.size(); ++i) {
    Rows rows;
    rows.add(group[i]);
    if (rows.overflow) {
      errors[i] = overflowed();
      continue;
    }
    const auto p = rows.params();
    const auto values = p.values();
    const auto lengths = p.lengths();
    const std::vector<int> formats(values.size(), 1);
    exec(conn, "SAVEPOINT batch");
    // The key in the batch's savepoint: a batch rolled back keeps no key.
    if (group[i].guard != nullptr && !claim_key(conn, group[i], outcomes[i])) {
      exec(conn, "RELEASE SAVEPOINT batch");
      continue;
    }
    try {
      auto res = exec_prepared(conn, "upsert", values, lengths, formats, true);
      exec(conn, "RELEASE SAVEPOINT batch");
      fill_answers({group[i]}, Totals(res.get()), false, {&answers[i]});
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

Point classic_point(const PGresult* res, int row, MetricType type, std::string name, int delta_col,
                    int value_col) {
  return type == MetricType::counter
             ? Point::counter(std::move(name), get_int8(res, row, delta_col))
             : Point::gauge(std::move(name), get_float8(res, row, value_col));
}

}  // namespace

std::string labels_json(const core::Labels& labels) {
  std::string out = "{";
  std::string scratch;
  for (const core::LabelView l : labels) {
    if (out.size() > 1) out.push_back(',');
    core::append_json_string(out, l.name);
    out.push_back(':');
    if (l.value.find('\0') == std::string_view::npos) {
      core::append_json_string(out, l.value);
      continue;
    }
    scratch.clear();
    for (const char ch : l.value) {
      if (ch == '\0') {
        scratch.append("\xEF\xBF\xBD");
      } else {
        scratch.push_back(ch);
      }
    }
    core::append_json_string(out, scratch);
  }
  out.push_back('}');
  return out;
}

bool seen(PGconn* conn, const std::string& id_param) {
  const char* values[] = {id_param.data()};
  const int lengths[] = {static_cast<int>(id_param.size())};
  const int formats[] = {1};
  return PQntuples(exec_prepared(conn, "seen", values, lengths, formats, true).get()) > 0;
}

void answer_from_current(PGconn* conn, const Group& group, std::vector<Applied>& answers) {
  Rows rows;
  for (const auto& batch : group)
    rows.add(batch);
  ArrayBuilder types(kInt2Oid, rows.series.size());
  ArrayBuilder names(kTextOid, rows.series.size());
  ArrayBuilder labels(kByteaOid, rows.series.size());
  for (const auto& [key, r] : rows.series) {
    types.add_int2(static_cast<std::int16_t>(r.type));
    names.add_text(r.name);
    labels.add_bytes(r.labels->encoded());
  }
  ArrayBuilder ctypes(kInt2Oid, rows.classic.size());
  ArrayBuilder cnames(kTextOid, rows.classic.size());
  for (const auto& [key, r] : rows.classic) {
    ctypes.add_int2(static_cast<std::int16_t>(r.type));
    cnames.add_text(r.name);
  }
  const std::string* arrays[] = {&types.bytes(), &names.bytes(), &labels.bytes(), &ctypes.bytes(),
                                 &cnames.bytes()};
  std::vector<const char*> values;
  std::vector<int> lengths;
  for (const auto* a : arrays) {
    values.push_back(a->data());
    lengths.push_back(static_cast<int>(a->size()));
  }
  const std::vector<int> formats(values.size(), 1);
  auto res = exec_prepared(conn, "fetch", values, lengths, formats, true);
  fill_answers(group, Totals(res.get()), true, all_of(answers));
}

void prepare_statements(PGconn* conn) {
  prepare(conn, "upsert_group", kUpsertGroupSql);
  prepare(conn, "upsert", kUpsertSql);
  prepare(conn, "mark", kMarkSql);
  prepare(conn, "seen", kSeenSql);
  prepare(conn, "fetch", kFetchSql);
  prepare(conn, "get", kGetSql);
  prepare(conn, "get_classic", kGetClassicSql);
  prepare(conn, "list", kListSql);
  prepare(conn, "list_series", kListSeriesSql);
  prepare(conn, "expire", kExpireSql);
  prepare(conn, "claim_key", kClaimKeySql);
  prepare(conn, "key_fingerprint", kKeyFingerprintSql);
}

std::string group_id_param(std::int64_t id) {
  return be64(id);
}

void write_group(PGconn* conn, const Group& group, const std::string& id_param,
                 std::vector<Applied>& answers, std::vector<std::exception_ptr>& errors,
                 std::vector<Once>& outcomes, bool& commit_sent) {
  Rows rows;
  for (const auto& batch : group)
    rows.add(batch);
  std::fill(outcomes.begin(), outcomes.end(), Once::applied);
  // Keys are claimed batch by batch, in the batch's savepoint.
  const bool guarded =
      std::any_of(group.begin(), group.end(), [](const Batch& b) { return b.guard != nullptr; });
  if (!guarded && !rows.overflow && !rows.mixed_signs()) {
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
  slow_path(conn, group, id_param, answers, errors, outcomes, commit_sent);
}

void prune_groups(PGconn* conn) {
  exec(conn, kPruneSql);
}

void prune_keys(PGconn* conn, std::int64_t cutoff_ms) {
  const auto cutoff = be64(cutoff_ms);
  const char* values[] = {cutoff.data()};
  const int lengths[] = {8};
  const int formats[] = {1};
  (void)exec_params(conn, kPruneKeysSql, values, lengths, formats, false);
}

std::optional<Point> get(PGconn* conn, const core::SeriesKey& key) {
  const auto type = be16(static_cast<std::int16_t>(key.type));
  const auto labels = key.labels.encoded();
  const char* values[] = {type.data(), key.id.data(), labels.data()};
  const int lengths[] = {2, static_cast<int>(key.id.size()), static_cast<int>(labels.size())};
  const int formats[] = {1, 1, 1};
  auto res = exec_prepared(conn, "get", values, lengths, formats, true);
  if (PQntuples(res.get()) == 0) return std::nullopt;
  Point p = classic_point(res.get(), 0, key.type, key.id, 0, 1);
  p.labels = key.labels;
  p.timestamp_ms = get_int8(res.get(), 0, 2);
  return p;
}

std::optional<Point> get_classic(PGconn* conn, const core::MetricKey& key) {
  const auto type = be16(static_cast<std::int16_t>(key.type));
  const char* values[] = {type.data(), key.id.data()};
  const int lengths[] = {2, static_cast<int>(key.id.size())};
  const int formats[] = {1, 1};
  auto res = exec_prepared(conn, "get_classic", values, lengths, formats, true);
  if (PQntuples(res.get()) == 0) return std::nullopt;
  return classic_point(res.get(), 0, key.type, key.id, 0, 1);
}

std::vector<Point> list(PGconn* conn) {
  auto res = exec_prepared(conn, "list", {}, {}, {}, true);
  const auto rows = PQntuples(res.get());
  std::vector<Point> out;
  out.reserve(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    out.push_back(classic_point(res.get(), r, type_of(res.get(), r, 0),
                                std::string(get_text(res.get(), r, 1)), 2, 3));
  }
  return out;
}

std::vector<Point> list_series(PGconn* conn) {
  auto res = exec_prepared(conn, "list_series", {}, {}, {}, true);
  const auto rows = PQntuples(res.get());
  std::vector<Point> out;
  out.reserve(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    Point p = classic_point(res.get(), r, type_of(res.get(), r, 0),
                            std::string(get_text(res.get(), r, 1)), 3, 4);
    p.labels = labels_of(res.get(), r, 2);
    p.timestamp_ms = get_int8(res.get(), r, 5);
    out.push_back(std::move(p));
  }
  std::sort(out.begin(), out.end(), core::point_less);
  return out;
}

std::vector<core::SeriesKey> expire(PGconn* conn, std::int64_t cutoff_ms) {
  const auto cutoff = be64(cutoff_ms);
  const char* values[] = {cutoff.data()};
  const int lengths[] = {8};
  const int formats[] = {1};
  auto res = exec_prepared(conn, "expire", values, lengths, formats, true);
  const auto rows = PQntuples(res.get());
  std::vector<core::SeriesKey> out;
  out.reserve(static_cast<std::size_t>(rows));
  for (int r = 0; r < rows; ++r) {
    out.push_back({type_of(res.get(), r, 0), std::string(get_text(res.get(), r, 1)),
                   labels_of(res.get(), r, 2)});
  }
  std::sort(out.begin(), out.end());
  return out;
}

}  // namespace metrics::storage::detail::pg
