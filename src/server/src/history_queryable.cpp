// HistoryQueryable: matchers become a per-name read of the history store
// (or a predicate over every series), samples become PromQL points.
#include "metrics/server/history_queryable.hpp"

#include <algorithm>
#include <array>
#include <map>
#include <optional>
#include <string_view>

namespace metrics::server {
namespace {

using query::Matcher;
using query::MatchType;

// The value of label `name` of a stored series as PromQL sees it.
std::string_view label_of(const history::SeriesIdentity& id, std::string_view name) {
  if (name == query::kMetricName) return id.id;
  return id.labels.get(name).value_or(std::string_view{});
}

bool matches(std::span<const Matcher> matchers, const history::SeriesIdentity& id) {
  return std::all_of(matchers.begin(), matchers.end(),
                     [&](const Matcher& m) { return m.matches(label_of(id, m.name())); });
}

query::LabelSet labels_of(const history::SeriesIdentity& id) {
  // One walk of the encoding: the views first (at most kMaxLabels), then an
  // exact reservation (Labels::size() would walk it a second time).
  std::array<core::LabelView, core::kMaxLabels> views;
  std::size_t n = 0;
  for (const auto l : id.labels) {
    if (n == views.size()) break;  // never: stored labels are bounded
    views[n++] = l;
  }
  query::LabelSet out;
  out.reserve(n + 1);
  // The stored labels are sorted and never named "__name__" (reserved), so
  // it goes before the first name that sorts after it.
  bool named = false;
  for (std::size_t i = 0; i < n; ++i) {
    const core::LabelView l = views[i];
    if (!named && l.name > query::kMetricName) {
      out.push_back({std::string(query::kMetricName), id.id});
      named = true;
    }
    out.push_back({std::string(l.name), std::string(l.value)});
  }
  if (!named) out.push_back({std::string(query::kMetricName), id.id});
  return out;
}

std::vector<query::SamplePoint> points_of(core::MetricType type,
                                          std::span<const history::Sample> samples) {
  std::vector<query::SamplePoint> points(samples.size());
  if (type == core::MetricType::counter) {
    for (std::size_t i = 0; i < samples.size(); ++i)
      points[i] = {samples[i].t_ms, static_cast<double>(samples[i].counter())};
  } else {
    for (std::size_t i = 0; i < samples.size(); ++i)
      points[i] = {samples[i].t_ms, samples[i].gauge()};
  }
  return points;
}

// The names of the store that the __name__ matchers accept; nullopt when
// there is no matcher on __name__ (every series must be looked at).
// Every __name__ matcher holds for every name returned.
std::optional<std::vector<std::string>> candidate_names(const history::HistoryStore& store,
                                                        std::span<const Matcher> matchers) {
  std::optional<std::vector<std::string>> names;
  for (const auto& m : matchers) {
    if (m.name() == query::kMetricName && m.type() == MatchType::equal) {
      names = std::vector<std::string>{m.value()};
      break;
    }
  }
  for (const auto& m : matchers) {
    if (m.name() != query::kMetricName) continue;
    if (!names) names = store.names();
    std::erase_if(*names, [&](const std::string& n) { return !m.matches(n); });
  }
  return names;
}

// The matchers on labels other than __name__ (what a read by name still
// has to check).
std::vector<Matcher> label_matchers(std::span<const Matcher> matchers) {
  std::vector<Matcher> out;
  for (const auto& m : matchers)
    if (m.name() != query::kMetricName) out.push_back(m);
  return out;
}

// Sorts the series by labels and merges those with one label set (a gauge
// and a counter of one name and labels), the earlier read's samples first.
std::vector<query::SeriesData> sort_and_merge(std::vector<query::SeriesData> found) {
  std::stable_sort(found.begin(), found.end(),
                   [](const query::SeriesData& a, const query::SeriesData& b) {
                     return query::compare(a.labels, b.labels) < 0;
                   });
  std::vector<query::SeriesData> out;
  out.reserve(found.size());
  for (auto& s : found) {
    if (!out.empty() && query::compare(out.back().labels, s.labels) == 0) {
      auto& into = out.back().samples;
      into.insert(into.end(), s.samples.begin(), s.samples.end());
    } else {
      out.push_back(std::move(s));
    }
  }
  return out;
}

// Time order, one sample per timestamp (the last written wins): the store
// keeps append order, which goes back when the server's clock does, and a
// gauge and a counter of one label set are merged.
void normalise(std::vector<query::SamplePoint>& samples) {
  if (std::is_sorted(samples.begin(), samples.end(),
                     [](const auto& a, const auto& b) { return a.t <= b.t; }) &&
      std::adjacent_find(samples.begin(), samples.end(),
                         [](const auto& a, const auto& b) { return a.t == b.t; }) == samples.end())
    return;
  std::stable_sort(samples.begin(), samples.end(),
                   [](const auto& a, const auto& b) { return a.t < b.t; });
  std::vector<query::SamplePoint> out;
  out.reserve(samples.size());
  for (const auto& p : samples) {
    if (!out.empty() && out.back().t == p.t) {
      out.back() = p;
    } else {
      out.push_back(p);
    }
  }
  samples = std::move(out);
}

// The liveness series that match, with their samples in [mint_ms, maxt_ms].
void add_liveness(const series::SeriesIndex& index, const HistoryQueryOptions& options,
                  std::span<const Matcher> matchers, std::int64_t mint_ms, std::int64_t maxt_ms,
                  std::vector<query::SeriesData>& found) {
  const bool wants_live = std::all_of(matchers.begin(), matchers.end(), [](const Matcher& m) {
    return m.name() != query::kMetricName || m.matches(series::kAgentUp) ||
           m.matches(series::kAgentLastPush);
  });
  if (wants_live) {
    const std::int64_t step = std::max<std::int64_t>(options.liveness_step_ms, 1);
    const std::int64_t end = std::min(maxt_ms, options.now_ms);
    for (const auto& live : index.liveness(options.now_ms, options.stale_after_ms)) {
      for (const std::string_view name : {series::kAgentUp, series::kAgentLastPush}) {
        query::LabelSet labels =
            query::make_labels({{std::string(query::kMetricName), std::string(name)},
                                {"instance", live.instance},
                                {"job", live.job}});
        if (!query::matches_all(matchers, labels)) continue;
        const std::int64_t last = live.last_push_ms;
        const std::int64_t down = last + options.stale_after_ms;
        auto value = [&](std::int64_t t) {
          if (name == series::kAgentLastPush) return static_cast<double>(last) / 1000.0;
          return t < down ? 1.0 : 0.0;
        };
        // A sample at the push, then every step up to now, and one at the
        // change of agent_up to 0.
        std::vector<query::SamplePoint> points;
        std::int64_t t = last;
        if (t < mint_ms) t = last + (mint_ms - last + step - 1) / step * step;
        for (; t <= end; t += step)
          points.push_back({t, value(t)});
        if (name == series::kAgentUp && down >= mint_ms && down <= end) {
          const auto at = std::lower_bound(points.begin(), points.end(), down,
                                           [](const auto& p, std::int64_t d) { return p.t < d; });
          if (at == points.end() || at->t != down) points.insert(at, {down, 0.0});
        }
        if (!points.empty()) found.push_back({std::move(labels), std::move(points)});
      }
    }
  }
}

}  // namespace

std::vector<query::SeriesData> HistoryQueryable::select(std::span<const Matcher> matchers,
                                                        std::int64_t mint_ms,
                                                        std::int64_t maxt_ms) const {
  return read(matchers, mint_ms, maxt_ms, false);
}

std::vector<query::SeriesData> HistoryQueryable::select_newest(std::span<const Matcher> matchers,
                                                               std::int64_t mint_ms,
                                                               std::int64_t maxt_ms) const {
  return read(matchers, mint_ms, maxt_ms, true);
}

// newest: each series' newest sample is enough (a series without a __name__
// matcher is read whole all the same; liveness series are made whole).
std::vector<query::SeriesData> HistoryQueryable::read(std::span<const Matcher> matchers,
                                                      std::int64_t mint_ms, std::int64_t maxt_ms,
                                                      bool newest) const {
  std::vector<query::SeriesData> found;
  auto take = [&](std::vector<history::SeriesSamples> read) {
    found.reserve(found.size() + read.size());
    for (auto& r : read) {
      if (options_.live_only && !index_.find(core::SeriesView(*r.identity))) continue;
      found.push_back({labels_of(*r.identity), points_of(r.identity->type, r.samples)});
    }
  };
  const history::HistoryStore::Predicate pred =
      [&](history::SeriesRef, const history::SeriesIdentity& id) { return matches(matchers, id); };
  if (store_ != nullptr) {
    if (auto names = candidate_names(*store_, matchers)) {
      // The names hold for __name__: the rest is checked per series, and
      // with no other matcher (`m`, `m[5m]`) nothing is.
      const auto rest = label_matchers(matchers);
      history::HistoryStore::Predicate by_labels;
      if (!rest.empty()) {
        by_labels = [&rest](history::SeriesRef, const history::SeriesIdentity& id) {
          return matches(rest, id);
        };
      }
      const history::HistoryStore::SamplesVisitor visit =
          [&](history::SeriesRef, const std::shared_ptr<const history::SeriesIdentity>& identity,
              std::span<const history::Sample> samples) {
            if (options_.live_only && !index_.find(core::SeriesView(*identity))) return;
            found.push_back({labels_of(*identity), points_of(identity->type, samples)});
          };
      for (const auto& name : *names)
        store_->visit_named(name, by_labels, mint_ms, maxt_ms, newest, visit);
    } else {
      take(store_->read_range(pred, mint_ms, maxt_ms));
    }
  }

  add_liveness(index_, options_, matchers, mint_ms, maxt_ms, found);

  auto out = sort_and_merge(std::move(found));
  for (auto& s : out)
    normalise(s.samples);
  return out;
}

std::vector<query::LabelSet> HistoryQueryable::series(
    std::span<const std::vector<Matcher>> selectors, std::int64_t mint_ms,
    std::int64_t maxt_ms) const {
  std::map<std::string, query::LabelSet> found;
  auto add_labels = [&](query::LabelSet labels) {
    auto key = query::key_of(labels);
    found.try_emplace(std::move(key), std::move(labels));
  };
  // From the store's chunk time bounds, never the samples themselves.
  auto add = [&](std::span<const Matcher> matchers) {
    if (store_ != nullptr) {
      const history::HistoryStore::Predicate pred = [&](history::SeriesRef,
                                                        const history::SeriesIdentity& id) {
        return matches(matchers, id);
      };
      auto take = [&](const std::vector<history::SeriesEntry>& entries) {
        for (const auto& e : entries) {
          if (options_.live_only && !index_.find(core::SeriesView(*e.identity))) continue;
          add_labels(labels_of(*e.identity));
        }
      };
      if (auto names = candidate_names(*store_, matchers)) {
        for (const auto& name : *names)
          if (!name.empty()) take(store_->series_in_range(name, pred, mint_ms, maxt_ms));
      } else {
        take(store_->series_in_range("", pred, mint_ms, maxt_ms));
      }
    }
    std::vector<query::SeriesData> live;
    add_liveness(index_, options_, matchers, mint_ms, maxt_ms, live);
    for (auto& s : live)
      add_labels(std::move(s.labels));
  };
  if (selectors.empty()) {
    add({});
  } else {
    for (const auto& sel : selectors)
      add(sel);
  }
  std::vector<query::LabelSet> out;
  out.reserve(found.size());
  for (auto& [key, labels] : found)
    out.push_back(std::move(labels));
  std::sort(out.begin(), out.end(), [](const query::LabelSet& a, const query::LabelSet& b) {
    return query::compare(a, b) < 0;
  });
  return out;
}

}  // namespace metrics::server
