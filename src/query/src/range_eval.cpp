// Range queries series by series: the common shapes of a dashboard's
// query_range (a selector, a range function over a matrix selector, sum/avg/
// min/max/count/group/stddev by or without, an operator with a number) are
// evaluated with one cursor per selected series and one output buffer per
// output series, instead of building a labelled instant vector at every step.
// Labels are computed once per series; each step hands on (series index,
// value) pairs. The arithmetic, the order in which values meet, the sample
// limit and the errors are those of the step-by-step evaluator in eval.cpp,
// so results are bit-identical; anything else is left to it.
#include <algorithm>
#include <cmath>
#include <memory>
#include <optional>
#include <unordered_map>

#include "detail/eval.hpp"

namespace metrics::query::detail {
namespace {

const Expr& unwrap(const Expr& e) {
  const Expr* x = &e;
  while (x->kind == ExprKind::paren)
    x = static_cast<const Paren*>(x)->expr.get();
  return *x;
}

// One element of a node's instant vector at a step: the output series and
// its value. A step's entries are in the order the instant vector has.
struct Entry {
  std::uint32_t id;
  double v;
};

class Node {
 public:
  virtual ~Node() = default;
  // Appends the node's value at t, as eval() would compute it, to out.
  virtual void step(std::int64_t t, std::vector<Entry>& out) = 0;
  // The labels of every output series, by id.
  std::vector<LabelSet> labels;
};

using NodePtr = std::unique_ptr<Node>;

// check_unique_labelsets for a node whose output labels may repeat (after
// __name__ is dropped): ids with equal labels share a class, and two
// entries of one class in one step are the error.
class UniqueCheck {
 public:
  explicit UniqueCheck(const std::vector<LabelSet>& labels) {
    std::unordered_map<std::string, std::uint32_t> seen;
    class_.resize(labels.size());
    for (std::size_t i = 0; i < labels.size(); ++i) {
      auto [it, fresh] =
          seen.try_emplace(key_of(labels[i]), static_cast<std::uint32_t>(seen.size()));
      class_[i] = it->second;
      if (!fresh) repeats_ = true;
    }
    stamp_.assign(seen.size(), 0);
  }
  void check(const std::vector<Entry>& entries, std::size_t from) {
    if (!repeats_) return;
    ++step_;
    for (std::size_t i = from; i < entries.size(); ++i) {
      std::uint32_t c = class_[entries[i].id];
      if (stamp_[c] == step_) exec_error("vector cannot contain metrics with the same labelset");
      stamp_[c] = step_;
    }
  }

 private:
  bool repeats_ = false;
  std::uint64_t step_ = 0;
  std::vector<std::uint32_t> class_;
  std::vector<std::uint64_t> stamp_;
};

// select_instant with one cursor per series.
class SelectorNode final : public Node {
 public:
  SelectorNode(Evaluator& ev, const VectorSelector& vs)
      : ev_(ev), vs_(vs), series_(ev.selected(vs)), cursor_(series_.size(), 0) {
    labels.reserve(series_.size());
    for (const auto& s : series_)
      labels.push_back(s.labels);
  }
  void step(std::int64_t t, std::vector<Entry>& out) override {
    ev_.check();
    const std::int64_t ref = ev_.at_time(vs_.at, t) - vs_.offset_ms;
    const std::int64_t oldest = ref - ev_.options().lookback_delta_ms;
    const std::size_t before = out.size();
    for (std::size_t i = 0; i < series_.size(); ++i) {
      const auto& samples = series_[i].samples;
      std::size_t& c = cursor_[i];
      while (c < samples.size() && samples[c].t <= ref)
        ++c;
      if (c == 0) continue;
      const SamplePoint& p = samples[c - 1];
      if (p.t < oldest || is_stale_nan(p.v)) continue;
      out.push_back({static_cast<std::uint32_t>(i), p.v});
    }
    ev_.touch(out.size() - before);
  }

 private:
  Evaluator& ev_;
  const VectorSelector& vs_;
  const std::vector<SeriesData>& series_;
  std::vector<std::size_t> cursor_;  // samples at or before the last step's time
};

bool fast_range_function(Function f) {
  switch (f) {
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
      return true;
    default:
      return false;
  }
}

// range_function over a matrix selector: the window of each series is a
// span of its samples without stale markers, moved by two cursors.
class RangeFunctionNode final : public Node {
 public:
  RangeFunctionNode(Evaluator& ev, const Call& call, const MatrixSelector& ms)
      : ev_(ev), call_(call), ms_(ms) {
    const auto& series = ev.selected(*ms.vs);
    windows_.resize(series.size());
    labels.reserve(series.size());
    for (std::size_t i = 0; i < series.size(); ++i) {
      const auto& samples = series[i].samples;
      if (std::any_of(samples.begin(), samples.end(),
                      [](const SamplePoint& p) { return is_stale_nan(p.v); })) {
        auto& copy = windows_[i].owned;
        copy.reserve(samples.size());
        for (const auto& p : samples) {
          if (!is_stale_nan(p.v)) copy.push_back(p);
        }
        windows_[i].samples = copy;
      } else {
        windows_[i].samples = samples;
      }
      labels.push_back(call.func->id == Function::last_over_time ? series[i].labels
                                                                 : drop_name(series[i].labels));
    }
    unique_ = std::make_unique<UniqueCheck>(labels);
  }
  void step(std::int64_t t, std::vector<Entry>& out) override {
    const Function f = call_.func->id;
    double scalar_arg = 0;
    if (f == Function::quantile_over_time) scalar_arg = ev_.eval_scalar(*call_.args[0], t);
    if (f == Function::predict_linear) scalar_arg = ev_.eval_scalar(*call_.args[1], t);
    ev_.check();
    const VectorSelector& vs = *ms_.vs;
    const std::int64_t ref = ev_.at_time(vs.at, t);
    const std::int64_t maxt = ref - vs.offset_ms;
    const std::int64_t mint = maxt - ms_.range_ms;
    std::size_t n = 0;
    for (auto& w : windows_) {
      while (w.lo < w.samples.size() && w.samples[w.lo].t < mint)
        ++w.lo;
      if (w.hi < w.lo) w.hi = w.lo;
      while (w.hi < w.samples.size() && w.samples[w.hi].t <= maxt)
        ++w.hi;
      n += w.hi - w.lo;
    }
    ev_.touch(n);
    const std::int64_t range_start = ref - ms_.range_ms - vs.offset_ms;
    const std::int64_t range_end = ref - vs.offset_ms;
    const std::size_t before = out.size();
    for (std::size_t i = 0; i < windows_.size(); ++i) {
      const auto& w = windows_[i];
      if (w.hi == w.lo) continue;
      std::optional<double> v = range_value(f, w.samples.subspan(w.lo, w.hi - w.lo), range_start,
                                            range_end, ms_.range_ms, t, scalar_arg);
      if (v) out.push_back({static_cast<std::uint32_t>(i), *v});
    }
    unique_->check(out, before);
  }

 private:
  struct Window {
    std::span<const SamplePoint> samples;
    std::vector<SamplePoint> owned;  // the samples without stale markers, when there are some
    std::size_t lo = 0;              // first sample at or after the window's start
    std::size_t hi = 0;              // first sample after the window's end
  };
  Evaluator& ev_;
  const Call& call_;
  const MatrixSelector& ms_;
  std::vector<Window> windows_;
  std::unique_ptr<UniqueCheck> unique_;
};

bool fast_aggregation(AggregateOp op) {
  switch (op) {
    case AggregateOp::sum:
    case AggregateOp::avg:
    case AggregateOp::min:
    case AggregateOp::max:
    case AggregateOp::count:
    case AggregateOp::group:
    case AggregateOp::stddev:
      return true;
    default:
      return false;
  }
}

// aggregate() with the group of every input series found once.
class AggregateNode final : public Node {
 public:
  AggregateNode(const Aggregate& agg, NodePtr inner) : op_(agg.op), inner_(std::move(inner)) {
    std::unordered_map<std::string, std::uint32_t> index;
    group_of_.reserve(inner_->labels.size());
    for (const auto& metric : inner_->labels) {
      std::string key;
      LabelSet group;
      for (const auto& l : metric) {
        bool listed = std::binary_search(agg.grouping.begin(), agg.grouping.end(), l.name);
        if (agg.without ? (!listed && l.name != kMetricName) : listed) {
          key += l.name;
          key += '\xff';
          key += l.value;
          key += '\xff';
          group.push_back(l);
        }
      }
      auto [it, fresh] =
          index.try_emplace(std::move(key), static_cast<std::uint32_t>(labels.size()));
      if (fresh) labels.push_back(std::move(group));
      group_of_.push_back(it->second);
    }
    groups_.resize(labels.size());
    stamp_.assign(labels.size(), 0);
  }
  void step(std::int64_t t, std::vector<Entry>& out) override {
    input_.clear();
    inner_->step(t, input_);
    ++step_;
    order_.clear();
    for (const auto& e : input_) {
      const std::uint32_t gi = group_of_[e.id];
      Group& g = groups_[gi];
      const double v = e.v;
      if (stamp_[gi] != step_) {
        stamp_[gi] = step_;
        order_.push_back(gi);
        g.value = v;
        g.mean = v;
        g.group_count = 1;
        if (op_ == AggregateOp::stddev) g.value = 0;
        if (op_ == AggregateOp::group) g.value = 1;
        continue;
      }
      switch (op_) {
        case AggregateOp::sum:
          g.value += v;
          break;
        case AggregateOp::avg:
          g.group_count++;
          if (std::isinf(g.mean)) {
            if (std::isinf(v) && (g.mean > 0) == (v > 0)) break;
            if (!std::isinf(v) && !std::isnan(v)) break;
          }
          g.mean += v / g.group_count - g.mean / g.group_count;
          break;
        case AggregateOp::max:
          if (g.value < v || std::isnan(g.value)) g.value = v;
          break;
        case AggregateOp::min:
          if (g.value > v || std::isnan(g.value)) g.value = v;
          break;
        case AggregateOp::count:
          g.group_count++;
          break;
        case AggregateOp::stddev: {
          g.group_count++;
          double delta = v - g.mean;
          g.mean += delta / g.group_count;
          g.value += delta * (v - g.mean);
          break;
        }
        default:
          break;
      }
    }
    for (const std::uint32_t gi : order_) {
      const Group& g = groups_[gi];
      double v = g.value;
      if (op_ == AggregateOp::avg) v = g.mean;
      if (op_ == AggregateOp::count) v = g.group_count;
      if (op_ == AggregateOp::stddev) v = std::sqrt(g.value / g.group_count);
      out.push_back({gi, v});
    }
  }

 private:
  struct Group {
    double value = 0;
    double mean = 0;
    double group_count = 0;
  };
  AggregateOp op_;
  NodePtr inner_;
  std::vector<std::uint32_t> group_of_;
  std::vector<Group> groups_;
  std::vector<std::uint64_t> stamp_;  // the step a group was last seen in
  std::uint64_t step_ = 0;
  std::vector<std::uint32_t> order_;  // groups of this step by first appearance
  std::vector<Entry> input_;
};

// vector_scalar_binop with a number on one side.
class ScalarOperatorNode final : public Node {
 public:
  ScalarOperatorNode(const Binary& b, NodePtr inner, double scalar, bool swap)
      : b_(b), inner_(std::move(inner)), scalar_(scalar), swap_(swap) {
    const bool drop = drops_metric_name(b.op) || b.return_bool;
    labels.reserve(inner_->labels.size());
    for (const auto& l : inner_->labels)
      labels.push_back(drop ? drop_name(l) : l);
    unique_ = std::make_unique<UniqueCheck>(labels);
  }
  void step(std::int64_t t, std::vector<Entry>& out) override {
    input_.clear();
    inner_->step(t, input_);
    const std::size_t before = out.size();
    for (const auto& e : input_) {
      double lv = e.v;
      double rv = scalar_;
      if (swap_) std::swap(lv, rv);
      auto [value, keep] = elem_binop(b_.op, lv, rv);
      if (is_comparison(b_.op) && swap_) value = rv;
      if (b_.return_bool) {
        value = keep ? 1.0 : 0.0;
        keep = true;
      }
      if (keep) out.push_back({e.id, value});
    }
    unique_->check(out, before);
  }

 private:
  const Binary& b_;
  NodePtr inner_;
  double scalar_;
  bool swap_;
  std::unique_ptr<UniqueCheck> unique_;
  std::vector<Entry> input_;
};

// The node for e, or null when e is outside these shapes.
NodePtr build(Evaluator& ev, const Expr& expr) {
  const Expr& e = unwrap(expr);
  switch (e.kind) {
    case ExprKind::vector_selector:
      return std::make_unique<SelectorNode>(ev, static_cast<const VectorSelector&>(e));
    case ExprKind::call: {
      const auto& call = static_cast<const Call&>(e);
      if (!fast_range_function(call.func->id)) return nullptr;
      const std::size_t matrix_arg = call.func->id == Function::quantile_over_time ? 1 : 0;
      const Expr& arg = unwrap(*call.args[matrix_arg]);
      if (arg.kind != ExprKind::matrix_selector) return nullptr;
      return std::make_unique<RangeFunctionNode>(ev, call, static_cast<const MatrixSelector&>(arg));
    }
    case ExprKind::aggregate: {
      const auto& agg = static_cast<const Aggregate&>(e);
      if (!fast_aggregation(agg.op) || agg.param) return nullptr;
      NodePtr inner = build(ev, *agg.expr);
      if (!inner) return nullptr;
      return std::make_unique<AggregateNode>(agg, std::move(inner));
    }
    case ExprKind::binary: {
      const auto& b = static_cast<const Binary&>(e);
      if (is_set_operator(b.op)) return nullptr;
      const Expr& lhs = unwrap(*b.lhs);
      const Expr& rhs = unwrap(*b.rhs);
      if (rhs.kind == ExprKind::number && lhs.type() == ValueType::vector) {
        NodePtr inner = build(ev, lhs);
        if (!inner) return nullptr;
        return std::make_unique<ScalarOperatorNode>(
            b, std::move(inner), static_cast<const NumberLiteral&>(rhs).value, false);
      }
      if (lhs.kind == ExprKind::number && rhs.type() == ValueType::vector) {
        NodePtr inner = build(ev, rhs);
        if (!inner) return nullptr;
        return std::make_unique<ScalarOperatorNode>(
            b, std::move(inner), static_cast<const NumberLiteral&>(lhs).value, true);
      }
      return nullptr;
    }
    default:
      return nullptr;
  }
}

}  // namespace

std::optional<Matrix> range_by_series(Evaluator& ev, const Expr& expr, std::int64_t start,
                                      std::int64_t end, std::int64_t step) {
  NodePtr root = build(ev, expr);
  if (!root) return std::nullopt;
  std::vector<std::vector<SamplePoint>> points(root->labels.size());
  std::vector<Entry> entries;
  for (std::int64_t t = start; t <= end; t += step) {
    ev.check();
    ev.begin_step();
    entries.clear();
    root->step(t, entries);
    ev.hold_result(entries.size());
    for (const auto& e : entries)
      points[e.id].push_back({t, e.v});
  }
  // Output series of equal labels are one series, their points in the order
  // the steps produced them (ids of one step are in vector order).
  std::unordered_map<std::string, std::size_t> index;
  std::vector<std::vector<std::uint32_t>> members;
  Matrix out;
  for (std::size_t id = 0; id < points.size(); ++id) {
    if (points[id].empty()) continue;
    auto [it, fresh] = index.try_emplace(key_of(root->labels[id]), out.size());
    if (fresh) {
      out.push_back({std::move(root->labels[id]), std::move(points[id])});
      members.push_back({static_cast<std::uint32_t>(id)});
      continue;
    }
    auto& series = out[it->second].points;
    series.insert(series.end(), points[id].begin(), points[id].end());
    members[it->second].push_back(static_cast<std::uint32_t>(id));
  }
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (members[i].size() > 1) {
      std::stable_sort(out[i].points.begin(), out[i].points.end(),
                       [](const SamplePoint& a, const SamplePoint& b) { return a.t < b.t; });
    }
  }
  return out;
}

}  // namespace metrics::query::detail
