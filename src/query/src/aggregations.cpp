// Aggregation operators as Prometheus 2.42's engine.go aggregation():
// groups in order of first appearance, the incremental mean for avg,
// Welford's update for stddev, Go's container/heap for topk/bottomk (so
// ties come out in Prometheus's order).
#include <algorithm>
#include <cmath>
#include <unordered_map>

#include "detail/eval.hpp"

namespace metrics::query::detail {
namespace {

struct Group {
  LabelSet labels;
  double value = 0;
  double mean = 0;
  double group_count = 0;
  std::vector<Sample> heap;
  std::vector<double> values;  // quantile
};

// Go's container/heap over a vector with `less` (the min at the top).
template <typename Less>
void heap_up(std::vector<Sample>& h, std::size_t j, Less less) {
  while (j > 0) {
    std::size_t i = (j - 1) / 2;
    if (!less(h[j], h[i])) break;
    std::swap(h[i], h[j]);
    j = i;
  }
}

template <typename Less>
void heap_down(std::vector<Sample>& h, std::size_t i, std::size_t n, Less less) {
  while (true) {
    std::size_t j1 = 2 * i + 1;
    if (j1 >= n) break;
    std::size_t j = j1;
    if (std::size_t j2 = j1 + 1; j2 < n && less(h[j2], h[j1])) j = j2;
    if (!less(h[j], h[i])) break;
    std::swap(h[i], h[j]);
    i = j;
  }
}

template <typename Less>
void heap_push(std::vector<Sample>& h, Sample s, Less less) {
  h.push_back(std::move(s));
  heap_up(h, h.size() - 1, less);
}

template <typename Less>
void heap_pop(std::vector<Sample>& h, Less less) {
  std::size_t n = h.size() - 1;
  std::swap(h[0], h[n]);
  heap_down(h, 0, n, less);
  h.pop_back();
}

std::string grouping_key(const LabelSet& metric, const std::vector<std::string>& grouping,
                         bool without) {
  std::string key;
  for (const auto& l : metric) {
    bool listed = std::binary_search(grouping.begin(), grouping.end(), l.name);
    if (without ? (!listed && l.name != kMetricName) : listed) {
      key += l.name;
      key += '\xff';
      key += l.value;
      key += '\xff';
    }
  }
  return key;
}

}  // namespace

Vector aggregate(Evaluator& ev, const Aggregate& agg, std::int64_t t) {
  AggregateOp op = agg.op;
  double param = 0;
  std::string value_label;
  if (agg.param) {
    if (op == AggregateOp::count_values) {
      Value p = ev.eval(*agg.param, t);
      value_label = std::get<std::string>(p);
    } else {
      param = ev.eval_scalar(*agg.param, t);
    }
  }
  Vector vec = ev.eval_vector(*agg.expr, t);
  std::vector<std::string> grouping = agg.grouping;

  std::int64_t k = 0;
  if (op == AggregateOp::topk || op == AggregateOp::bottomk) {
    if (!(param <= 9.223372036854775807e18 && param >= -9.223372036854775808e18)) {
      exec_error("Scalar value " + format_value(param) + " overflows int64");
    }
    k = static_cast<std::int64_t>(param);
    if (k < 1) return {};
  }
  if (op == AggregateOp::count_values) {
    bool valid = !value_label.empty();
    for (std::size_t i = 0; i < value_label.size(); ++i) {
      char c = value_label[i];
      if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
            (i > 0 && c >= '0' && c <= '9'))) {
        valid = false;
      }
    }
    if (!valid) exec_error("invalid label name \"" + value_label + "\"");
    if (!agg.without) {
      grouping.push_back(value_label);
      std::sort(grouping.begin(), grouping.end());
    }
  }

  auto top_less = [](const Sample& a, const Sample& b) {  // vectorByValueHeap
    if (std::isnan(a.v)) return true;
    return a.v < b.v;
  };
  auto bottom_less = [](const Sample& a, const Sample& b) {  // vectorByReverseValueHeap
    if (std::isnan(a.v)) return true;
    return a.v > b.v;
  };

  std::unordered_map<std::string, std::size_t> index;
  std::vector<Group> groups;
  for (auto& s : vec) {
    LabelSet metric = s.metric;
    if (op == AggregateOp::count_values) set(metric, value_label, format_label_value(s.v));
    std::string key = grouping_key(metric, grouping, agg.without);
    auto [it, fresh] = index.try_emplace(key, groups.size());
    if (fresh) {
      Group g;
      if (agg.without) {
        g.labels = metric;
        for (const auto& name : grouping)
          remove(g.labels, name);
        remove(g.labels, kMetricName);
      } else {
        for (const auto& l : metric) {
          if (std::binary_search(grouping.begin(), grouping.end(), l.name)) g.labels.push_back(l);
        }
      }
      g.value = s.v;
      g.mean = s.v;
      g.group_count = 1;
      switch (op) {
        case AggregateOp::stddev:
          g.value = 0;
          break;
        case AggregateOp::topk:
        case AggregateOp::bottomk:
          g.heap.push_back({s.metric, s.v, t});
          break;
        case AggregateOp::quantile:
          g.values.push_back(s.v);
          break;
        case AggregateOp::group:
          g.value = 1;
          break;
        default:
          break;
      }
      groups.push_back(std::move(g));
      continue;
    }
    Group& g = groups[it->second];
    switch (op) {
      case AggregateOp::sum:
        g.value += s.v;
        break;
      case AggregateOp::avg:
        g.group_count++;
        if (std::isinf(g.mean)) {
          if (std::isinf(s.v) && (g.mean > 0) == (s.v > 0)) break;
          if (!std::isinf(s.v) && !std::isnan(s.v)) break;
        }
        // Each side of the '-' divided by the count, to avoid overflow (as Prometheus).
        g.mean += s.v / g.group_count - g.mean / g.group_count;
        break;
      case AggregateOp::group:
        break;
      case AggregateOp::max:
        if (g.value < s.v || std::isnan(g.value)) g.value = s.v;
        break;
      case AggregateOp::min:
        if (g.value > s.v || std::isnan(g.value)) g.value = s.v;
        break;
      case AggregateOp::count:
      case AggregateOp::count_values:
        g.group_count++;
        break;
      case AggregateOp::stddev: {
        g.group_count++;
        double delta = s.v - g.mean;
        g.mean += delta / g.group_count;
        g.value += delta * (s.v - g.mean);
        break;
      }
      case AggregateOp::topk:
        if (static_cast<std::int64_t>(g.heap.size()) < k || g.heap[0].v < s.v ||
            std::isnan(g.heap[0].v)) {
          if (static_cast<std::int64_t>(g.heap.size()) == k) {
            if (k == 1) {
              g.heap[0] = {s.metric, s.v, t};
              break;
            }
            heap_pop(g.heap, top_less);
          }
          heap_push(g.heap, {s.metric, s.v, t}, top_less);
        }
        break;
      case AggregateOp::bottomk:
        if (static_cast<std::int64_t>(g.heap.size()) < k || g.heap[0].v > s.v ||
            std::isnan(g.heap[0].v)) {
          if (static_cast<std::int64_t>(g.heap.size()) == k) {
            if (k == 1) {
              g.heap[0] = {s.metric, s.v, t};
              break;
            }
            heap_pop(g.heap, bottom_less);
          }
          heap_push(g.heap, {s.metric, s.v, t}, bottom_less);
        }
        break;
      case AggregateOp::quantile:
        g.values.push_back(s.v);
        break;
    }
  }

  Vector out;
  for (auto& g : groups) {
    switch (op) {
      case AggregateOp::avg:
        g.value = g.mean;
        break;
      case AggregateOp::count:
      case AggregateOp::count_values:
        g.value = g.group_count;
        break;
      case AggregateOp::stddev:
        g.value = std::sqrt(g.value / g.group_count);
        break;
      case AggregateOp::topk:
      case AggregateOp::bottomk: {
        // sort.Sort(sort.Reverse(heap)): Less(i, j) becomes heap.Less(j, i).
        if (g.heap.size() > 1) {
          if (op == AggregateOp::topk) {
            go_sort(g.heap, [&](const Sample& a, const Sample& b) { return top_less(b, a); });
          } else {
            go_sort(g.heap, [&](const Sample& a, const Sample& b) { return bottom_less(b, a); });
          }
        }
        for (auto& s : g.heap)
          out.push_back({std::move(s.metric), s.v, t});
        continue;
      }
      case AggregateOp::quantile:
        g.value = quantile(param, std::move(g.values));
        break;
      default:
        break;
    }
    out.push_back({std::move(g.labels), g.value, t});
  }
  return out;
}

}  // namespace metrics::query::detail
