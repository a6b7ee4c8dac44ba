// PromQL functions of the subset, with the arithmetic of Prometheus 2.42's
// promql/functions.go (extrapolatedRate, instantValue, linearRegression with
// Kahan-Neumaier sums, the *_over_time aggregations, label_replace, ...).
#include <re2/re2.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>

#include "detail/eval.hpp"

namespace metrics::query::detail {
namespace {

using Points = std::span<const SamplePoint>;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// kahanSumInc with Neumaier's improvement.
void kahan_inc(double inc, double& sum, double& c) {
  double t = sum + inc;
  if (std::abs(sum) >= std::abs(inc)) {
    c += (sum - t) + inc;
  } else {
    c += (inc - t) + sum;
  }
  sum = t;
}

// time.Duration.Seconds() of a millisecond duration.
double duration_seconds(std::int64_t ms) {
  return static_cast<double>(ms / 1000) + static_cast<double>((ms % 1000) * 1000000) / 1e9;
}

std::optional<double> extrapolated_rate(const Points& p, std::int64_t range_start,
                                        std::int64_t range_end, std::int64_t range_ms,
                                        bool is_counter, bool is_rate) {
  if (p.size() < 2) return std::nullopt;
  double result = p.back().v - p.front().v;
  if (is_counter) {
    double prev = p.front().v;
    for (std::size_t i = 1; i < p.size(); ++i) {
      if (p[i].v < prev) result += prev;
      prev = p[i].v;
    }
  }
  double duration_to_start = static_cast<double>(p.front().t - range_start) / 1000;
  double duration_to_end = static_cast<double>(range_end - p.back().t) / 1000;
  double sampled_interval = static_cast<double>(p.back().t - p.front().t) / 1000;
  double average_between = sampled_interval / static_cast<double>(p.size() - 1);
  if (is_counter && result > 0 && p.front().v >= 0) {
    double duration_to_zero = sampled_interval * (p.front().v / result);
    if (duration_to_zero < duration_to_start) duration_to_start = duration_to_zero;
  }
  double threshold = average_between * 1.1;
  double extrapolate_to = sampled_interval;
  if (duration_to_start < threshold) {
    extrapolate_to += duration_to_start;
  } else {
    extrapolate_to += average_between / 2;
  }
  if (duration_to_end < threshold) {
    extrapolate_to += duration_to_end;
  } else {
    extrapolate_to += average_between / 2;
  }
  double factor = extrapolate_to / sampled_interval;
  if (is_rate) factor /= duration_seconds(range_ms);
  result *= factor;
  return result;
}

std::optional<double> instant_value(const Points& p, bool is_rate) {
  if (p.size() < 2) return std::nullopt;
  const SamplePoint& last = p[p.size() - 1];
  const SamplePoint& prev = p[p.size() - 2];
  double result = (is_rate && last.v < prev.v) ? last.v : last.v - prev.v;
  std::int64_t interval = last.t - prev.t;
  if (interval == 0) return std::nullopt;
  if (is_rate) result /= static_cast<double>(interval) / 1000;
  return result;
}

std::pair<double, double> linear_regression(const Points& p, std::int64_t intercept_time) {
  double n = 0;
  double sum_x = 0, c_x = 0, sum_y = 0, c_y = 0, sum_xy = 0, c_xy = 0, sum_x2 = 0, c_x2 = 0;
  double init_y = p[0].v;
  bool const_y = true;
  for (std::size_t i = 0; i < p.size(); ++i) {
    if (const_y && i > 0 && p[i].v != init_y) const_y = false;
    n += 1.0;
    double x = static_cast<double>(p[i].t - intercept_time) / 1e3;
    kahan_inc(x, sum_x, c_x);
    kahan_inc(p[i].v, sum_y, c_y);
    kahan_inc(x * p[i].v, sum_xy, c_xy);
    kahan_inc(x * x, sum_x2, c_x2);
  }
  if (const_y) {
    if (std::isinf(init_y)) return {kNaN, kNaN};
    return {0, init_y};
  }
  sum_x += c_x;
  sum_y += c_y;
  sum_xy += c_xy;
  sum_x2 += c_x2;
  double cov_xy = sum_xy - sum_x * sum_y / n;
  double var_x = sum_x2 - sum_x * sum_x / n;
  double slope = cov_xy / var_x;
  double intercept = sum_y / n - slope * sum_x / n;
  return {slope, intercept};
}

double avg_over_time(const Points& p) {
  double mean = 0, count = 0, c = 0;
  for (const auto& s : p) {
    count++;
    if (std::isinf(mean)) {
      if (std::isinf(s.v) && (mean > 0) == (s.v > 0)) continue;
      if (!std::isinf(s.v) && !std::isnan(s.v)) continue;
    }
    kahan_inc(s.v / count - mean / count, mean, c);
  }
  if (std::isinf(mean)) return mean;
  return mean + c;
}

double sum_over_time(const Points& p) {
  double sum = 0, c = 0;
  for (const auto& s : p)
    kahan_inc(s.v, sum, c);
  if (std::isinf(sum)) return sum;
  return sum + c;
}

double stddev_over_time(const Points& p) {
  double count = 0, mean = 0, c_mean = 0, aux = 0, c_aux = 0;
  for (const auto& s : p) {
    count++;
    double delta = s.v - (mean + c_mean);
    kahan_inc(delta / count, mean, c_mean);
    kahan_inc(delta * (s.v - (mean + c_mean)), aux, c_aux);
  }
  return std::sqrt((aux + c_aux) / count);
}

// createLabelsForAbsentFunction: the equality matchers' labels, minus any
// name matched otherwise or twice.
LabelSet absent_labels(const Expr& arg) {
  const Expr* e = &arg;
  const VectorSelector* vs = nullptr;
  if (e->kind == ExprKind::vector_selector) vs = static_cast<const VectorSelector*>(e);
  if (e->kind == ExprKind::matrix_selector) vs = static_cast<const MatrixSelector*>(e)->vs.get();
  LabelSet out;
  if (vs == nullptr) return out;
  std::vector<std::string> empty;
  for (const auto& m : vs->matchers) {
    if (m.name() == kMetricName) continue;
    if (m.type() == MatchType::equal && get(out, m.name()).empty() &&
        std::none_of(out.begin(), out.end(),
                     [&](const core::Label& l) { return l.name == m.name(); })) {
      set(out, m.name(), m.value());
    } else {
      empty.push_back(m.name());
    }
  }
  for (const auto& name : empty)
    remove(out, name);
  return out;
}

bool valid_label_name(std::string_view s) {
  if (s.empty()) return false;
  for (std::size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (i > 0 && c >= '0' && c <= '9');
    if (!ok) return false;
  }
  return true;
}

const std::string& string_arg(const Expr& e) {
  const Expr* x = &e;
  while (x->kind == ExprKind::paren)
    x = static_cast<const Paren*>(x)->expr.get();
  if (x->kind != ExprKind::string) exec_error("expected a string literal");
  return static_cast<const StringLiteral*>(x)->value;
}

const Expr& unwrap(const Expr& e) {
  const Expr* x = &e;
  while (x->kind == ExprKind::paren)
    x = static_cast<const Paren*>(x)->expr.get();
  return *x;
}

// The range, offset and evaluation time of a range-vector argument.
struct RangeInfo {
  std::int64_t range_ms;
  std::int64_t offset_ms;
  std::int64_t ref;
};

RangeInfo range_info(Evaluator& ev, const Expr& arg, std::int64_t t) {
  const Expr& e = unwrap(arg);
  if (e.kind == ExprKind::matrix_selector) {
    const auto& ms = static_cast<const MatrixSelector&>(e);
    return {ms.range_ms, ms.vs->offset_ms, ev.at_time(ms.vs->at, t)};
  }
  const auto& sq = static_cast<const Subquery&>(e);
  return {sq.range_ms, sq.offset_ms, ev.at_time(sq.at, t)};
}

Value range_function(Evaluator& ev, const Call& call, std::int64_t t) {
  Function f = call.func->id;
  std::size_t matrix_arg = f == Function::quantile_over_time ? 1 : 0;
  double scalar_arg = 0;
  if (f == Function::quantile_over_time) scalar_arg = ev.eval_scalar(*call.args[0], t);
  if (f == Function::predict_linear) scalar_arg = ev.eval_scalar(*call.args[1], t);
  const Expr& arg = *call.args[matrix_arg];
  Matrix m = ev.eval_matrix(arg, t);
  Vector out;
  if (f == Function::absent_over_time) {
    if (m.empty()) out.push_back({absent_labels(unwrap(arg)), 1, t});
    return out;
  }
  RangeInfo ri = range_info(ev, arg, t);
  std::int64_t range_start = ri.ref - ri.range_ms - ri.offset_ms;
  std::int64_t range_end = ri.ref - ri.offset_ms;
  for (auto& s : m) {
    std::optional<double> v =
        range_value(f, s.points, range_start, range_end, ri.range_ms, t, scalar_arg);
    if (!v) continue;
    LabelSet metric =
        f == Function::last_over_time ? std::move(s.metric) : drop_name(std::move(s.metric));
    out.push_back({std::move(metric), *v, t});
  }
  check_unique_labelsets(out);
  return out;
}

template <typename F>
Vector simple(Vector v, std::int64_t t, F fn) {
  for (auto& s : v) {
    s.metric = drop_name(std::move(s.metric));
    s.v = fn(s.v);
    s.t = t;
  }
  return v;
}

Vector label_replace(Vector v, const Call& call, std::int64_t t) {
  const std::string& dst = string_arg(*call.args[1]);
  const std::string& repl = string_arg(*call.args[2]);
  const std::string& src = string_arg(*call.args[3]);
  const std::string& regex = string_arg(*call.args[4]);
  RE2::Options opts;
  opts.set_log_errors(false);
  RE2 re("^(?:" + regex + ")$", opts);
  if (!re.ok()) exec_error("invalid regular expression in label_replace(): " + regex);
  if (!valid_label_name(dst))
    exec_error("invalid destination label name in label_replace(): " + dst);
  int n = re.NumberOfCapturingGroups() + 1;
  std::vector<std::string> names(static_cast<std::size_t>(n));
  for (const auto& [name, index] : re.NamedCapturingGroups()) {
    names[static_cast<std::size_t>(index)] = name;
  }
  std::vector<re2::StringPiece> pieces(static_cast<std::size_t>(n));
  std::vector<std::string_view> groups(static_cast<std::size_t>(n));
  for (auto& s : v) {
    std::string_view src_val = get(s.metric, src);
    if (re.Match(re2::StringPiece(src_val.data(), src_val.size()), 0, src_val.size(),
                 RE2::UNANCHORED, pieces.data(), n)) {
      for (std::size_t g = 0; g < pieces.size(); ++g) {
        groups[g] = std::string_view(pieces[g].data(), pieces[g].size());
      }
      std::string res = expand_template(repl, groups.data(), n, names.data());
      set(s.metric, dst, res);
    }
    s.t = t;
  }
  check_unique_labelsets(v);
  return v;
}

Vector label_join(Vector v, const Call& call, std::int64_t t) {
  const std::string& dst = string_arg(*call.args[1]);
  const std::string& sep = string_arg(*call.args[2]);
  std::vector<std::string> srcs;
  for (std::size_t i = 3; i < call.args.size(); ++i) {
    srcs.push_back(string_arg(*call.args[i]));
    if (!valid_label_name(srcs.back())) {
      exec_error("invalid source label name in label_join(): " + srcs.back());
    }
  }
  if (!valid_label_name(dst)) exec_error("invalid destination label name in label_join(): " + dst);
  for (auto& s : v) {
    std::string joined;
    for (std::size_t i = 0; i < srcs.size(); ++i) {
      if (i > 0) joined += sep;
      joined += get(s.metric, srcs[i]);
    }
    set(s.metric, dst, joined);
    s.t = t;
  }
  check_unique_labelsets(v);
  return v;
}

}  // namespace

std::optional<double> range_value(Function f, std::span<const SamplePoint> p,
                                  std::int64_t range_start, std::int64_t range_end,
                                  std::int64_t range_ms, std::int64_t t, double scalar_arg) {
  std::optional<double> v;
  switch (f) {
    case Function::rate:
      v = extrapolated_rate(p, range_start, range_end, range_ms, true, true);
      break;
    case Function::increase:
      v = extrapolated_rate(p, range_start, range_end, range_ms, true, false);
      break;
    case Function::delta:
      v = extrapolated_rate(p, range_start, range_end, range_ms, false, false);
      break;
    case Function::irate:
      v = instant_value(p, true);
      break;
    case Function::idelta:
      v = instant_value(p, false);
      break;
    case Function::deriv:
      if (p.size() >= 2) v = linear_regression(p, p[0].t).first;
      break;
    case Function::predict_linear:
      if (p.size() >= 2) {
        auto [slope, intercept] = linear_regression(p, t);
        v = slope * scalar_arg + intercept;
      }
      break;
    case Function::resets: {
      int resets = 0;
      for (std::size_t i = 1; i < p.size(); ++i) {
        if (p[i].v < p[i - 1].v) ++resets;
      }
      v = resets;
      break;
    }
    case Function::changes: {
      int changes = 0;
      for (std::size_t i = 1; i < p.size(); ++i) {
        double cur = p[i].v;
        double prev = p[i - 1].v;
        if (cur != prev && !(std::isnan(cur) && std::isnan(prev))) ++changes;
      }
      v = changes;
      break;
    }
    case Function::avg_over_time:
      v = avg_over_time(p);
      break;
    case Function::sum_over_time:
      v = sum_over_time(p);
      break;
    case Function::count_over_time:
      v = static_cast<double>(p.size());
      break;
    case Function::last_over_time:
      v = p.back().v;
      break;
    case Function::max_over_time: {
      double mx = p[0].v;
      for (const auto& x : p) {
        if (x.v > mx || std::isnan(mx)) mx = x.v;
      }
      v = mx;
      break;
    }
    case Function::min_over_time: {
      double mn = p[0].v;
      for (const auto& x : p) {
        if (x.v < mn || std::isnan(mn)) mn = x.v;
      }
      v = mn;
      break;
    }
    case Function::stddev_over_time:
      v = stddev_over_time(p);
      break;
    case Function::quantile_over_time: {
      std::vector<double> values;
      values.reserve(p.size());
      for (const auto& x : p)
        values.push_back(x.v);
      v = quantile(scalar_arg, std::move(values));
      break;
    }
    default:
      exec_error("not a range-vector function");
  }
  return v;
}

Value call_function(Evaluator& ev, const Call& call, std::int64_t t) {
  Function f = call.func->id;
  switch (f) {
    case Function::time:
      return static_cast<double>(t) / 1000;
    case Function::scalar: {
      Vector v = ev.eval_vector(*call.args[0], t);
      return v.size() == 1 ? v[0].v : kNaN;
    }
    case Function::vector:
      return Vector{{LabelSet{}, ev.eval_scalar(*call.args[0], t), t}};
    case Function::rate:
    case Function::increase:
    case Function::delta:
    case Function::irate:
    case Function::idelta:
    case Function::deriv:
    case Function::predict_linear:
    case Function::resets:
    case Function::changes:
    case Function::avg_over_time:
    case Function::sum_over_time:
    case Function::count_over_time:
    case Function::last_over_time:
    case Function::max_over_time:
    case Function::min_over_time:
    case Function::stddev_over_time:
    case Function::quantile_over_time:
    case Function::absent_over_time:
      return range_function(ev, call, t);
    default:
      break;
  }
  Vector v = ev.eval_vector(*call.args[0], t);
  Vector out;
  switch (f) {
    case Function::abs:
      out = simple(std::move(v), t, [](double x) { return std::abs(x); });
      break;
    case Function::ceil:
      out = simple(std::move(v), t, [](double x) { return std::ceil(x); });
      break;
    case Function::floor:
      out = simple(std::move(v), t, [](double x) { return std::floor(x); });
      break;
    case Function::round: {
      double to_nearest = call.args.size() >= 2 ? ev.eval_scalar(*call.args[1], t) : 1.0;
      double inverse = 1.0 / to_nearest;
      out = simple(std::move(v), t,
                   [&](double x) { return std::floor(x * inverse + 0.5) / inverse; });
      break;
    }
    case Function::clamp: {
      double mn = ev.eval_scalar(*call.args[1], t);
      double mx = ev.eval_scalar(*call.args[2], t);
      if (mx < mn) return Vector{};
      out = simple(std::move(v), t, [&](double x) { return go_max(mn, go_min(mx, x)); });
      break;
    }
    case Function::clamp_max: {
      double mx = ev.eval_scalar(*call.args[1], t);
      out = simple(std::move(v), t, [&](double x) { return go_min(mx, x); });
      break;
    }
    case Function::clamp_min: {
      double mn = ev.eval_scalar(*call.args[1], t);
      out = simple(std::move(v), t, [&](double x) { return go_max(mn, x); });
      break;
    }
    case Function::timestamp: {
      // A plain selector gives its samples' own times; anything else the evaluation time.
      bool selector = unwrap(*call.args[0]).kind == ExprKind::vector_selector;
      for (auto& s : v) {
        s.metric = drop_name(std::move(s.metric));
        s.v = static_cast<double>(selector ? s.t : t) / 1000;
        s.t = t;
      }
      out = std::move(v);
      break;
    }
    case Function::absent:
      if (v.empty()) out.push_back({absent_labels(unwrap(*call.args[0])), 1, t});
      return out;
    case Function::sort:
      // Ascending with NaN last: Go sorts descending-with-NaN-first, reversed.
      go_sort(v, [](const Sample& a, const Sample& b) {
        // sort.Reverse(vectorByReverseValueHeap).Less(i, j) == heap.Less(j, i)
        if (std::isnan(b.v)) return true;
        return b.v > a.v;
      });
      for (auto& s : v)
        s.t = t;
      return v;
    case Function::sort_desc:
      go_sort(v, [](const Sample& a, const Sample& b) {
        if (std::isnan(b.v)) return true;
        return b.v < a.v;
      });
      for (auto& s : v)
        s.t = t;
      return v;
    case Function::label_replace:
      return label_replace(std::move(v), call, t);
    case Function::label_join:
      return label_join(std::move(v), call, t);
    default:
      exec_error("unsupported function");
  }
  check_unique_labelsets(out);
  return out;
}

}  // namespace metrics::query::detail
