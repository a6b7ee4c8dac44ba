// The evaluator: selectors with lookback and staleness, offset and @,
// subqueries, unary minus and binary operators with vector matching, and the
// Engine's instant and range queries (Prometheus 2.42's engine.go).
#include "detail/eval.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <set>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace metrics::query::detail {

bool is_stale_nan(double v) noexcept {
  return std::bit_cast<std::uint64_t>(v) == 0x7ff0000000000002ULL;
}

LabelSet drop_name(LabelSet labels) {
  remove(labels, kMetricName);
  return labels;
}

// By hash, then label set for equal hashes: no key string per element
// (rules check every output vector, hundreds of thousands of elements a
// cycle).
void check_unique_labelsets(const Vector& v) {
  if (v.size() < 2) return;
  std::vector<std::pair<std::size_t, std::size_t>> by_hash;  // {hash, index}
  by_hash.reserve(v.size());
  for (std::size_t i = 0; i < v.size(); ++i) {
    std::size_t h = v[i].metric.size();
    for (const auto& l : v[i].metric) {
      h = h * 0x9e3779b97f4a7c15ULL + std::hash<std::string_view>{}(l.name);
      h = h * 0x9e3779b97f4a7c15ULL + std::hash<std::string_view>{}(l.value);
    }
    by_hash.emplace_back(h, i);
  }
  std::sort(by_hash.begin(), by_hash.end());
  for (std::size_t i = 0; i < by_hash.size(); ++i) {
    for (std::size_t j = i + 1; j < by_hash.size() && by_hash[j].first == by_hash[i].first; ++j) {
      if (v[by_hash[i].second].metric == v[by_hash[j].second].metric)
        exec_error("vector cannot contain metrics with the same labelset");
    }
  }
}

double go_max(double x, double y) noexcept {
  if (std::isinf(x) && x > 0) return x;
  if (std::isinf(y) && y > 0) return y;
  if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<double>::quiet_NaN();
  if (x == 0 && x == y) return std::signbit(x) ? y : x;
  return x > y ? x : y;
}

double go_min(double x, double y) noexcept {
  if (std::isinf(x) && x < 0) return x;
  if (std::isinf(y) && y < 0) return y;
  if (std::isnan(x) || std::isnan(y)) return std::numeric_limits<double>::quiet_NaN();
  if (x == 0 && x == y) return std::signbit(x) ? x : y;
  return x < y ? x : y;
}

// Go's math.Pow, step for step: the special cases, then x**yi by repeated
// squaring of Frexp's mantissa and x**yf through Go's own Exp(yf*Log(x)).
double go_pow(double x, double y) noexcept {
  const double nan = std::numeric_limits<double>::quiet_NaN();
  const double inf = std::numeric_limits<double>::infinity();
  auto is_odd_int = [](double v) {
    if (std::abs(v) >= 9007199254740992.0) return false;  // 1<<53
    double xi;
    double xf = std::modf(v, &xi);
    return xf == 0 && (static_cast<std::int64_t>(xi) & 1) == 1;
  };
  if (y == 0 || x == 1) return 1;
  if (y == 1) return x;
  if (std::isnan(x) || std::isnan(y)) return nan;
  if (x == 0) {
    if (y < 0) {
      if (std::signbit(x) && is_odd_int(y)) return -inf;
      return inf;
    }
    if (std::signbit(x) && is_odd_int(y)) return x;
    return 0;
  }
  if (std::isinf(y)) {
    if (x == -1) return 1;
    if ((std::abs(x) < 1) == (y > 0)) return 0;
    return inf;
  }
  if (std::isinf(x)) {
    if (x < 0) return go_pow(1 / x, -y);  // Pow(-0, -y)
    if (y < 0) return 0;
    return inf;
  }
  if (y == 0.5) return std::sqrt(x);
  if (y == -0.5) return 1 / std::sqrt(x);
  double yi;
  double yf = std::modf(std::abs(y), &yi);
  if (yf != 0 && x < 0) return nan;
  if (yi >= 9.223372036854775808e18) {
    if (x == -1) return 1;
    if ((std::abs(x) < 1) == (y > 0)) return 0;
    return inf;
  }
  double a1 = 1.0;
  long ae = 0;
  if (yf != 0) {
    if (yf > 0.5) {
      yf--;
      yi++;
    }
    a1 = go_exp(yf * go_log(x));
  }
  int xe_i = 0;
  double x1 = std::frexp(x, &xe_i);
  long xe = xe_i;
  for (auto i = static_cast<std::int64_t>(yi); i != 0; i >>= 1) {
    if (xe < -(1L << 12) || (1L << 12) < xe) {
      ae += xe;
      break;
    }
    if ((i & 1) == 1) {
      a1 *= x1;
      ae += xe;
    }
    x1 *= x1;
    xe <<= 1;
    if (x1 < .5) {
      x1 += x1;
      xe--;
    }
  }
  if (y < 0) {
    a1 = 1 / a1;
    ae = -ae;
  }
  if (ae > 100000) ae = 100000;
  if (ae < -100000) ae = -100000;
  return std::ldexp(a1, static_cast<int>(ae));
}

double quantile(double q, std::vector<double> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  if (q < 0) return -std::numeric_limits<double>::infinity();
  if (q > 1) return std::numeric_limits<double>::infinity();
  std::sort(values.begin(), values.end(), [](double a, double b) {
    if (std::isnan(a)) return !std::isnan(b);
    return a < b;
  });
  double n = static_cast<double>(values.size());
  double rank = q * (n - 1);
  double lower = std::max(0.0, std::floor(rank));
  double upper = std::min(n - 1, lower + 1);
  double weight = rank - std::floor(rank);
  return values[static_cast<std::size_t>(lower)] * (1 - weight) +
         values[static_cast<std::size_t>(upper)] * weight;
}

Evaluator::Evaluator(const Queryable& q, const EngineOptions& options, const QueryControl& control,
                     std::int64_t query_start, std::int64_t query_end)
    : queryable_(q),
      options_(options),
      control_(control),
      query_start_(query_start),
      query_end_(query_end) {}

std::int64_t Evaluator::at_time(const AtModifier& at, std::int64_t t) const noexcept {
  switch (at.kind) {
    case AtModifier::Kind::none:
      return t;
    case AtModifier::Kind::time:
      return at.ms;
    case AtModifier::Kind::start:
      return query_start_;
    case AtModifier::Kind::end:
      return query_end_;
  }
  return t;
}

void Evaluator::check() {
  if (control_.cancel != nullptr && control_.cancel->load(std::memory_order_relaxed)) {
    throw QueryError(ErrorType::canceled, "query was canceled in query execution");
  }
  if (control_.client_gone != nullptr && control_.client_gone->load(std::memory_order_relaxed)) {
    throw QueryError(ErrorType::canceled,
                     "query was canceled in query execution: the client closed the connection");
  }
  if (control_.deadline && std::chrono::steady_clock::now() > *control_.deadline) {
    throw QueryError(ErrorType::timeout, "query timed out in query execution");
  }
}

void Evaluator::touch(std::size_t n) {
  step_touched_ += n;
  if (step_touched_ + result_points_ > options_.max_samples) {
    exec_error("query processing would load too many samples into memory in query execution");
  }
}

void Evaluator::hold_result(std::size_t n) {
  result_points_ += n;
  touch(0);
}

void Evaluator::plan(const Expr& e, std::int64_t start, std::int64_t end) {
  switch (e.kind) {
    case ExprKind::number:
    case ExprKind::string:
      return;
    case ExprKind::vector_selector:
    case ExprKind::matrix_selector: {
      const VectorSelector* vs = e.kind == ExprKind::vector_selector
                                     ? static_cast<const VectorSelector*>(&e)
                                     : static_cast<const MatrixSelector&>(e).vs.get();
      std::int64_t back = e.kind == ExprKind::vector_selector
                              ? options_.lookback_delta_ms
                              : static_cast<const MatrixSelector&>(e).range_ms;
      std::int64_t s = vs->at.set() ? at_time(vs->at, 0) : start;
      std::int64_t en = vs->at.set() ? at_time(vs->at, 0) : end;
      std::int64_t mint = s - vs->offset_ms - back;
      std::int64_t maxt = en - vs->offset_ms;
      auto [it, fresh] = selected_.try_emplace(vs);
      if (fresh) {
        it->second.mint = mint;
        it->second.maxt = maxt;
        it->second.newest_only = e.kind == ExprKind::vector_selector && s == en;
      } else {
        it->second.mint = std::min(it->second.mint, mint);
        it->second.maxt = std::max(it->second.maxt, maxt);
        it->second.newest_only = false;
      }
      return;
    }
    case ExprKind::subquery: {
      const auto& sq = static_cast<const Subquery&>(e);
      std::int64_t s = sq.at.set() ? at_time(sq.at, 0) : start;
      std::int64_t en = sq.at.set() ? at_time(sq.at, 0) : end;
      plan(*sq.expr, s - sq.offset_ms - sq.range_ms, en - sq.offset_ms);
      return;
    }
    case ExprKind::call:
      for (const auto& a : static_cast<const Call&>(e).args)
        plan(*a, start, end);
      return;
    case ExprKind::aggregate: {
      const auto& a = static_cast<const Aggregate&>(e);
      if (a.param) plan(*a.param, start, end);
      plan(*a.expr, start, end);
      return;
    }
    case ExprKind::binary:
      plan(*static_cast<const Binary&>(e).lhs, start, end);
      plan(*static_cast<const Binary&>(e).rhs, start, end);
      return;
    case ExprKind::unary:
      plan(*static_cast<const Unary&>(e).expr, start, end);
      return;
    case ExprKind::paren:
      plan(*static_cast<const Paren&>(e).expr, start, end);
      return;
  }
}

void Evaluator::prepare(const Expr& root, std::int64_t start, std::int64_t end) {
  plan(root, start, end);
  for (auto& [vs, sel] : selected_) {
    check();
    sel.series = sel.newest_only ? queryable_.select_newest(vs->matchers, sel.mint, sel.maxt)
                                 : queryable_.select(vs->matchers, sel.mint, sel.maxt);
    // Prometheus's storage answers in label order, which fixes the order of
    // instant vectors; do not depend on the Queryable for it.
    auto less = [](const SeriesData& a, const SeriesData& b) {
      return compare(a.labels, b.labels) < 0;
    };
    if (!std::is_sorted(sel.series.begin(), sel.series.end(), less)) {
      std::sort(sel.series.begin(), sel.series.end(), less);
    }
  }
}

Vector Evaluator::select_instant(const VectorSelector& vs, std::int64_t t) {
  check();
  const auto& sel = selected_.at(&vs);
  std::int64_t ref = at_time(vs.at, t) - vs.offset_ms;
  Vector out;
  for (const auto& s : sel.series) {
    auto it = std::upper_bound(s.samples.begin(), s.samples.end(), ref,
                               [](std::int64_t x, const SamplePoint& p) { return x < p.t; });
    if (it == s.samples.begin()) continue;
    --it;
    if (it->t < ref - options_.lookback_delta_ms || is_stale_nan(it->v)) continue;
    out.push_back({s.labels, it->v, it->t});
  }
  touch(out.size());
  return out;
}

Matrix Evaluator::select_range(const MatrixSelector& ms, std::int64_t t) {
  check();
  const VectorSelector& vs = *ms.vs;
  const auto& sel = selected_.at(&vs);
  std::int64_t maxt = at_time(vs.at, t) - vs.offset_ms;
  std::int64_t mint = maxt - ms.range_ms;
  Matrix out;
  std::size_t n = 0;
  for (const auto& s : sel.series) {
    auto lo = std::lower_bound(s.samples.begin(), s.samples.end(), mint,
                               [](const SamplePoint& p, std::int64_t x) { return p.t < x; });
    Series series;
    for (auto it = lo; it != s.samples.end() && it->t <= maxt; ++it) {
      if (!is_stale_nan(it->v)) series.points.push_back(*it);
    }
    if (series.points.empty()) continue;
    n += series.points.size();
    series.metric = s.labels;
    out.push_back(std::move(series));
  }
  touch(n);
  return out;
}

Matrix Evaluator::eval_subquery(const Subquery& sq, std::int64_t t) {
  std::int64_t ref = at_time(sq.at, t);
  std::int64_t step = sq.step_ms != 0 ? sq.step_ms : options_.default_step_ms;
  std::int64_t lower = ref - sq.offset_ms - sq.range_ms;
  std::int64_t end = ref - sq.offset_ms;
  // The first multiple of the step at or after the range's start (engine.go).
  std::int64_t start = step * (lower / step);
  if (start < lower) start += step;
  Matrix out;
  std::unordered_map<std::string, std::size_t> index;
  std::size_t n = 0;
  for (std::int64_t ti = start; ti <= end; ti += step) {
    // An inner expression without a selector (vector(1)) checks nothing
    // itself, and the steps are the client's to choose.
    check();
    Vector v = eval_vector(*sq.expr, ti);
    for (auto& s : v) {
      auto [it, fresh] = index.try_emplace(key_of(s.metric), out.size());
      if (fresh) out.push_back({std::move(s.metric), {}});
      out[it->second].points.push_back({ti, s.v});
      ++n;
    }
  }
  touch(n);
  return out;
}

Matrix Evaluator::eval_matrix(const Expr& e, std::int64_t t) {
  switch (e.kind) {
    case ExprKind::matrix_selector:
      return select_range(static_cast<const MatrixSelector&>(e), t);
    case ExprKind::subquery:
      return eval_subquery(static_cast<const Subquery&>(e), t);
    case ExprKind::paren:
      return eval_matrix(*static_cast<const Paren&>(e).expr, t);
    default:
      exec_error("expected a range vector");
  }
}

Vector Evaluator::eval_vector(const Expr& e, std::int64_t t) {
  Value v = eval(e, t);
  if (auto* vec = std::get_if<Vector>(&v)) return std::move(*vec);
  exec_error("expected an instant vector");
}

double Evaluator::eval_scalar(const Expr& e, std::int64_t t) {
  Value v = eval(e, t);
  if (auto* d = std::get_if<double>(&v)) return *d;
  exec_error("expected a scalar");
}

Value Evaluator::eval(const Expr& e, std::int64_t t) {
  switch (e.kind) {
    case ExprKind::number:
      return static_cast<const NumberLiteral&>(e).value;
    case ExprKind::string:
      return static_cast<const StringLiteral&>(e).value;
    case ExprKind::vector_selector:
      return select_instant(static_cast<const VectorSelector&>(e), t);
    case ExprKind::matrix_selector:
    case ExprKind::subquery:
      return eval_matrix(e, t);
    case ExprKind::paren:
      return eval(*static_cast<const Paren&>(e).expr, t);
    case ExprKind::unary: {
      Value v = eval(*static_cast<const Unary&>(e).expr, t);
      if (auto* d = std::get_if<double>(&v)) return -*d;
      Vector vec = std::get<Vector>(std::move(v));
      for (auto& s : vec) {
        s.metric = drop_name(std::move(s.metric));
        s.v = -s.v;
        s.t = t;
      }
      check_unique_labelsets(vec);
      return vec;
    }
    case ExprKind::call:
      return call_function(*this, static_cast<const Call&>(e), t);
    case ExprKind::aggregate: {
      Vector v = aggregate(*this, static_cast<const Aggregate&>(e), t);
      for (auto& s : v)
        s.t = t;
      check_unique_labelsets(v);
      return v;
    }
    case ExprKind::binary:
      return eval_binary(static_cast<const Binary&>(e), t);
  }
  exec_error("unknown expression");
}

bool drops_metric_name(BinaryOp op) noexcept {
  switch (op) {
    case BinaryOp::add:
    case BinaryOp::sub:
    case BinaryOp::mul:
    case BinaryOp::div:
    case BinaryOp::pow:
    case BinaryOp::mod:
      return true;
    default:
      return false;
  }
}

std::pair<double, bool> elem_binop(BinaryOp op, double l, double r) {
  switch (op) {
    case BinaryOp::add:
      return {l + r, true};
    case BinaryOp::sub:
      return {l - r, true};
    case BinaryOp::mul:
      return {l * r, true};
    case BinaryOp::div:
      return {l / r, true};
    case BinaryOp::pow:
      return {go_pow(l, r), true};
    case BinaryOp::mod:
      return {std::fmod(l, r), true};
    case BinaryOp::eq:
      return {l, l == r};
    case BinaryOp::ne:
      return {l, l != r};
    case BinaryOp::gt:
      return {l, l > r};
    case BinaryOp::lt:
      return {l, l < r};
    case BinaryOp::ge:
      return {l, l >= r};
    case BinaryOp::le:
      return {l, l <= r};
    default:
      return {0, false};
  }
}

namespace {

// The matching signature (signatureFunc): only the on() labels, or all but
// __name__ and the ignoring() ones.
std::string signature(const LabelSet& labels, const VectorMatching& m) {
  std::string key;
  for (const auto& l : labels) {
    bool listed = std::find(m.labels.begin(), m.labels.end(), l.name) != m.labels.end();
    if (m.on ? listed : (!listed && l.name != kMetricName)) {
      key += l.name;
      key += '\xff';
      key += l.value;
      key += '\xff';
    }
  }
  return key;
}

LabelSet matched_labels(const LabelSet& labels, const VectorMatching& m) {
  LabelSet out;
  for (const auto& l : labels) {
    bool listed = std::find(m.labels.begin(), m.labels.end(), l.name) != m.labels.end();
    if (m.on ? listed : (!listed && l.name != kMetricName)) out.push_back(l);
  }
  return out;
}

LabelSet result_metric(const LabelSet& lhs, const LabelSet& rhs, BinaryOp op,
                       const VectorMatching& m) {
  LabelSet out = lhs;
  if (drops_metric_name(op)) remove(out, kMetricName);
  if (m.card == Cardinality::one_to_one) {
    if (m.on) {
      LabelSet kept;
      for (const auto& l : out) {
        if (std::find(m.labels.begin(), m.labels.end(), l.name) != m.labels.end()) {
          kept.push_back(l);
        }
      }
      out = std::move(kept);
    } else {
      for (const auto& name : m.labels)
        remove(out, name);
    }
  }
  for (const auto& name : m.include)
    set(out, name, get(rhs, name));
  return out;
}

Vector vector_binop(BinaryOp op, Vector lhs, Vector rhs, const VectorMatching& m, bool return_bool,
                    std::int64_t t) {
  Vector out;
  if (lhs.empty() || rhs.empty()) return out;
  if (m.card == Cardinality::one_to_many) std::swap(lhs, rhs);
  std::unordered_map<std::string, const Sample*> right;
  for (const auto& rs : rhs) {
    std::string sig = signature(rs.metric, m);
    auto [it, fresh] = right.try_emplace(sig, &rs);
    if (!fresh) {
      std::string one_side = m.card == Cardinality::one_to_many ? "left" : "right";
      exec_error("found duplicate series for the match group " +
                 to_string(matched_labels(rs.metric, m)) + " on the " + one_side +
                 " hand-side of the operation: [" + to_string(rs.metric) + ", " +
                 to_string(it->second->metric) +
                 "];many-to-many matching not allowed: matching labels must be unique on one side");
    }
  }
  std::unordered_map<std::string, std::unordered_set<std::string>> matched;
  for (const auto& ls : lhs) {
    std::string sig = signature(ls.metric, m);
    auto found = right.find(sig);
    if (found == right.end()) continue;
    const Sample& rs = *found->second;
    double vl = ls.v;
    double vr = rs.v;
    if (m.card == Cardinality::one_to_many) std::swap(vl, vr);
    auto [value, keep] = elem_binop(op, vl, vr);
    if (return_bool) {
      value = keep ? 1.0 : 0.0;
    } else if (!keep) {
      continue;
    }
    LabelSet metric = result_metric(ls.metric, rs.metric, op, m);
    if (return_bool) remove(metric, kMetricName);
    auto existing = matched.find(sig);
    if (m.card == Cardinality::one_to_one) {
      if (existing != matched.end()) {
        exec_error(
            "multiple matches for labels: many-to-one matching must be explicit "
            "(group_left/group_right)");
      }
      matched[sig];
    } else {
      auto& inserted = matched[sig];
      if (!inserted.insert(key_of(metric)).second) {
        exec_error("multiple matches for labels: grouping labels must ensure unique matches");
      }
    }
    out.push_back({std::move(metric), value, t});
  }
  return out;
}

Vector vector_scalar_binop(BinaryOp op, Vector lhs, double scalar, bool swap, bool return_bool,
                           std::int64_t t) {
  Vector out;
  for (auto& s : lhs) {
    double lv = s.v;
    double rv = scalar;
    if (swap) std::swap(lv, rv);
    auto [value, keep] = elem_binop(op, lv, rv);
    // A comparison keeps the vector's value even when the scalar is on the left.
    if (is_comparison(op) && swap) value = rv;
    if (return_bool) {
      value = keep ? 1.0 : 0.0;
      keep = true;
    }
    if (!keep) continue;
    s.v = value;
    s.t = t;
    if (drops_metric_name(op) || return_bool) remove(s.metric, kMetricName);
    out.push_back(std::move(s));
  }
  return out;
}

double scalar_binop(BinaryOp op, double l, double r) {
  auto [value, keep] = elem_binop(op, l, r);
  if (is_comparison(op)) return keep ? 1.0 : 0.0;
  return value;
}

}  // namespace

Value Evaluator::eval_binary(const Binary& b, std::int64_t t) {
  Value lv = eval(*b.lhs, t);
  Value rv = eval(*b.rhs, t);
  const VectorMatching& m = b.matching;
  if (auto* ls = std::get_if<double>(&lv)) {
    if (auto* rs = std::get_if<double>(&rv)) return scalar_binop(b.op, *ls, *rs);
    Vector out =
        vector_scalar_binop(b.op, std::get<Vector>(std::move(rv)), *ls, true, b.return_bool, t);
    check_unique_labelsets(out);
    return out;
  }
  Vector lhs = std::get<Vector>(std::move(lv));
  if (auto* rs = std::get_if<double>(&rv)) {
    Vector out = vector_scalar_binop(b.op, std::move(lhs), *rs, false, b.return_bool, t);
    check_unique_labelsets(out);
    return out;
  }
  Vector rhs = std::get<Vector>(std::move(rv));
  Vector out;
  switch (b.op) {
    case BinaryOp::land: {
      if (lhs.empty() || rhs.empty()) break;
      std::unordered_set<std::string> right;
      for (const auto& s : rhs)
        right.insert(signature(s.metric, m));
      for (auto& s : lhs) {
        if (right.count(signature(s.metric, m)) != 0) out.push_back(std::move(s));
      }
      break;
    }
    case BinaryOp::lor: {
      if (lhs.empty()) {
        out = std::move(rhs);
        break;
      }
      if (rhs.empty()) {
        out = std::move(lhs);
        break;
      }
      std::unordered_set<std::string> left;
      for (auto& s : lhs) {
        left.insert(signature(s.metric, m));
        out.push_back(std::move(s));
      }
      for (auto& s : rhs) {
        if (left.count(signature(s.metric, m)) == 0) out.push_back(std::move(s));
      }
      break;
    }
    case BinaryOp::lunless: {
      if (lhs.empty() || rhs.empty()) {
        out = std::move(lhs);
        break;
      }
      std::unordered_set<std::string> right;
      for (const auto& s : rhs)
        right.insert(signature(s.metric, m));
      for (auto& s : lhs) {
        if (right.count(signature(s.metric, m)) == 0) out.push_back(std::move(s));
      }
      break;
    }
    default:
      out = vector_binop(b.op, std::move(lhs), std::move(rhs), m, b.return_bool, t);
      break;
  }
  for (auto& s : out)
    s.t = t;
  check_unique_labelsets(out);
  return out;
}

}  // namespace metrics::query::detail

namespace metrics::query {

namespace {
void sort_matrix(Matrix& m) {
  std::sort(m.begin(), m.end(),
            [](const Series& a, const Series& b) { return compare(a.metric, b.metric) < 0; });
}
}  // namespace

Result Engine::instant(const Queryable& q, std::string_view query, std::int64_t time_ms,
                       const QueryControl& control) const {
  ExprPtr e = parse(query);
  return instant(q, *e, time_ms, control);
}

Result Engine::instant(const Queryable& q, const Expr& expr, std::int64_t time_ms,
                       const QueryControl& control) const {
  detail::Evaluator ev(q, options_, control, time_ms, time_ms);
  ev.prepare(expr, time_ms, time_ms);
  detail::Value v = ev.eval(expr, time_ms);
  if (auto* d = std::get_if<double>(&v)) return Scalar{time_ms, *d};
  if (auto* s = std::get_if<std::string>(&v)) return String{time_ms, std::move(*s)};
  if (auto* vec = std::get_if<Vector>(&v)) {
    for (auto& s : *vec)
      s.t = time_ms;  // the evaluation time, as Prometheus answers
    return std::move(*vec);
  }
  Matrix m = std::get<Matrix>(std::move(v));
  sort_matrix(m);
  return m;
}

Result Engine::range(const Queryable& q, std::string_view query, std::int64_t start_ms,
                     std::int64_t end_ms, std::int64_t step_ms, const QueryControl& control) const {
  ExprPtr e = parse(query);
  return range(q, *e, start_ms, end_ms, step_ms, control);
}

Result Engine::range(const Queryable& q, const Expr& expr, std::int64_t start_ms,
                     std::int64_t end_ms, std::int64_t step_ms, const QueryControl& control) const {
  ValueType type = expr.type();
  if (type != ValueType::scalar && type != ValueType::vector) {
    throw QueryError(ErrorType::bad_data,
                     "invalid expression type \"" + std::string(value_type_name(type)) +
                         "\" for range query, must be Scalar or instant Vector");
  }
  if (step_ms <= 0) {
    throw QueryError(ErrorType::bad_data,
                     "zero or negative query resolution step widths are not accepted. Try a "
                     "positive integer");
  }
  if (end_ms < start_ms) {
    throw QueryError(ErrorType::bad_data, "end timestamp must not be before start time");
  }
  detail::Evaluator ev(q, options_, control, start_ms, end_ms);
  ev.prepare(expr, start_ms, end_ms);
  if (auto by_series = options_.range_by_series
                           ? detail::range_by_series(ev, expr, start_ms, end_ms, step_ms)
                           : std::nullopt) {
    sort_matrix(*by_series);
    return std::move(*by_series);
  }
  Matrix out;
  std::unordered_map<std::string, std::size_t> index;
  for (std::int64_t t = start_ms; t <= end_ms; t += step_ms) {
    ev.check();
    ev.begin_step();
    detail::Value v = ev.eval(expr, t);
    if (auto* d = std::get_if<double>(&v)) {
      if (out.empty()) out.push_back({{}, {}});
      out[0].points.push_back({t, *d});
      ev.hold_result(1);
      continue;
    }
    Vector vec = std::get<Vector>(std::move(v));
    ev.hold_result(vec.size());
    for (auto& s : vec) {
      auto [it, fresh] = index.try_emplace(key_of(s.metric), out.size());
      if (fresh) out.push_back({std::move(s.metric), {}});
      out[it->second].points.push_back({t, s.v});
    }
  }
  sort_matrix(out);
  return out;
}

}  // namespace metrics::query
