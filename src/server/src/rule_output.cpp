// What rule evaluation reads and writes through the service: the history
// as PromQL sees it at the server's time, and rule output stored as
// series-only samples at their own timestamps (as remote write in stores
// its samples).
#include <algorithm>
#include <chrono>
#include <future>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "live_queryable.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/core/metric.hpp"
#include "metrics/server/history_queryable.hpp"
#include "metrics/server/service.hpp"

namespace metrics::server {
namespace detail {
namespace {

class LiveQueryable final : public query::Queryable {
 public:
  LiveQueryable(const series::SeriesIndex& index, const history::HistoryStore* store,
                std::shared_ptr<core::Clock> clock, std::chrono::milliseconds stale_after)
      : index_(index), store_(store), clock_(std::move(clock)), stale_after_(stale_after) {}

  [[nodiscard]] std::vector<query::SeriesData> select(std::span<const query::Matcher> matchers,
                                                      std::int64_t mint_ms,
                                                      std::int64_t maxt_ms) const override {
    return now_queryable().select(matchers, mint_ms, maxt_ms);
  }
  // An instant selector needs each series' newest sample only: the store
  // reads it off the open chunk's writer without decoding the lookback.
  [[nodiscard]] std::vector<query::SeriesData> select_newest(
      std::span<const query::Matcher> matchers, std::int64_t mint_ms,
      std::int64_t maxt_ms) const override {
    return now_queryable().select_newest(matchers, mint_ms, maxt_ms);
  }

 private:
  [[nodiscard]] HistoryQueryable now_queryable() const {
    const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                                 clock_->system_now().time_since_epoch())
                                 .count();
    return HistoryQueryable(index_, store_,
                            {.now_ms = now, .stale_after_ms = stale_after_.count()});
  }

  const series::SeriesIndex& index_;
  const history::HistoryStore* store_;
  std::shared_ptr<core::Clock> clock_;
  std::chrono::milliseconds stale_after_;
};

}  // namespace

std::unique_ptr<query::Queryable> make_live_queryable(const series::SeriesIndex& index,
                                                      const history::HistoryStore* store,
                                                      std::shared_ptr<core::Clock> clock,
                                                      std::chrono::milliseconds stale_after) {
  return std::make_unique<LiveQueryable>(index, store, std::move(clock), stale_after);
}

}  // namespace detail

void Service::write_series_samples(std::span<const SeriesSample> samples) {
  if (samples.empty()) return;
  // One update per label set (its newest sample is its current value), its
  // samples in time order.
  struct Series {
    core::Update update;
    std::vector<std::pair<std::int64_t, double>> samples;
  };
  std::vector<Series> series;
  const auto less = [](const std::vector<core::Label>& a, const std::vector<core::Label>& b) {
    return std::lexicographical_compare(
        a.begin(), a.end(), b.begin(), b.end(), [](const core::Label& x, const core::Label& y) {
          return std::tie(x.name, x.value) < std::tie(y.name, y.value);
        });
  };
  std::map<std::vector<core::Label>, std::size_t, decltype(less)> seen(less);
  for (const SeriesSample& s : samples) {
    auto [it, fresh] = seen.try_emplace(s.labels, series.size());
    if (fresh) {
      std::string name;
      std::vector<core::Label> rest;
      rest.reserve(s.labels.size());
      for (const core::Label& l : s.labels) {
        if (l.name == "__name__") {
          name = l.value;
        } else if (!l.value.empty()) {
          rest.push_back(l);
        }
      }
      if (auto err = core::validate_name(name)) throw core::InvalidInput("rule output: " + *err);
      core::Update u = core::Update::gauge(name, 0, core::Labels::make(std::move(rest)));
      u.series_only = true;
      series.push_back({std::move(u), {}});
    }
    series[it->second].samples.emplace_back(s.t_ms, s.v);
  }
  std::size_t total = 0;
  for (Series& s : series) {
    std::stable_sort(s.samples.begin(), s.samples.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    s.update.value = s.samples.back().second;
    total += s.samples.size();
  }

  std::vector<core::Update> updates;
  updates.reserve(series.size());
  for (const Series& s : series)
    updates.push_back(s.update);
  auto reservation = index_->reserve(updates, /*liveness=*/false);  // core::LimitExceeded
  std::vector<core::Point> points;
  std::vector<std::uint64_t> refs;
  std::vector<std::int64_t> times;
  points.reserve(total);
  refs.reserve(total);
  times.reserve(total);
  for (std::size_t i = 0; i < series.size(); ++i) {
    const core::Update& u = series[i].update;
    for (const auto& [t, v] : series[i].samples) {
      points.push_back(core::Point::gauge(u.id, v, u.labels));
      refs.push_back(reservation.id(i));
      times.push_back(t);
    }
  }

  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               options_.clock->system_now().time_since_epoch())
                               .count();
  std::promise<void> stored;
  auto done = stored.get_future();
  repo_.apply(std::move(updates), now, [&stored](std::exception_ptr err, storage::Applied) {
    if (err) {
      stored.set_exception(err);
    } else {
      stored.set_value();
    }
  });
  try {
    done.get();
  } catch (const core::OutcomeUnknown&) {
    reservation.commit(now, /*liveness=*/false);  // may be stored
    throw;
  }
  reservation.commit(now, /*liveness=*/false);
  if (options_.fanout && !options_.fanout->empty()) {
    for (auto& p : points)
      p.timestamp_ms = now;
    options_.fanout->publish({.received_ms = now, .points = points, .refs = refs, .times = times});
  }
}

}  // namespace metrics::server
