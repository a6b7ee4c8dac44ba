#include "remote_write_in.hpp"

#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <exception>
#include <memory>
#include <stdexcept>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "await_storage.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/core/metric.hpp"
#include "metrics/exposition/remote_write.hpp"
#include "metrics/exposition/snappy_block.hpp"
#include "metrics/server/sample_times.hpp"
#include "metrics/server/service.hpp"
#include "metrics/storage/repository.hpp"

namespace metrics::server {
namespace asio = boost::asio;
namespace http = boost::beast::http;
namespace ex = exposition;

namespace {

using detail::await_storage;

// One series of the request after its entries are joined: the update that
// stores its newest value, and its samples in time order.
struct Joined {
  std::vector<core::Update> updates;
  std::vector<std::vector<ex::Sample>> samples;
  std::vector<std::size_t> first_entry;  // the request entry that named it first
};

Joined join(const std::vector<ex::ValidSeries>& valid) {
  Joined out;
  std::unordered_map<core::SeriesView, std::size_t, core::SeriesHash, core::SeriesEqual> seen;
  seen.reserve(valid.size());
  out.updates.reserve(valid.size());
  out.samples.reserve(valid.size());
  for (std::size_t e = 0; e < valid.size(); ++e) {
    const ex::ValidSeries& s = valid[e];
    // Typed gauge in the model: the values are doubles as sent (a `_total`
    // name is a counter only for # TYPE and metadata, see docs/API.md).
    const core::SeriesView view(core::MetricType::gauge, s.name, s.labels);
    auto it = seen.find(view);
    if (it == seen.end()) {
      core::Update u = core::Update::gauge(s.name, 0, s.labels);
      u.series_only = true;
      out.updates.push_back(std::move(u));
      out.samples.emplace_back();
      out.first_entry.push_back(e);
      // The key views into the update just stored (its strings do not move
      // again: the vector was reserved for every entry).
      it = seen.emplace(core::SeriesView(out.updates.back()), out.updates.size() - 1).first;
    }
    auto& samples = out.samples[it->second];
    // validate() has checked the order across entries of one series.
    samples.insert(samples.end(), s.samples.begin(), s.samples.end());
  }
  for (std::size_t i = 0; i < out.updates.size(); ++i)
    out.updates[i].value = out.samples[i].back().value;
  return out;
}

std::string describe(const Joined& joined, std::size_t i) {
  const core::Update& u = joined.updates[i];
  return "series " + std::to_string(joined.first_entry[i]) + " " + u.id + u.labels.to_string();
}

}  // namespace

asio::awaitable<Response> remote_write_in(RequestContext& ctx, const RouteMatch&,
                                          std::string& body) {
  ex::DecodeLimits limits;
  limits.max_uncompressed_bytes = ctx.options.max_body_bytes;
  std::string plain;
  ex::snappy_decompress(body, limits.max_uncompressed_bytes, plain);  // 413 / 400
  body.clear();
  const ex::WriteRequestView request = ex::decode_write_request(plain, limits);  // 400
  const std::vector<ex::ValidSeries> valid = ex::validate(request);              // 400
  Joined joined = join(valid);
  if (ctx.remote_types != nullptr) {
    for (const auto& m : request.metadata) {
      ctx.remote_types->note_metadata(
          m.family_name, m.type == static_cast<std::uint32_t>(ex::MetadataType::counter));
    }
  }

  Response res{http::status::no_content, ctx.request.version()};
  if (joined.updates.empty()) co_return res;

  const std::size_t n = joined.updates.size();
  auto reservation = ctx.index.reserve(joined.updates, /*liveness=*/false);  // 429
  std::vector<std::uint64_t> ids(n);
  std::vector<SampleTimes::Item> items(n);
  for (std::size_t i = 0; i < n; ++i) {
    ids[i] = reservation.id(i);
    items[i] = {ids[i], joined.samples[i].front().timestamp_ms,
                joined.samples[i].back().timestamp_ms};
  }
  SampleTimes::Claim claim;
  if (ctx.sample_times != nullptr) {
    const history::HistoryStore* history = ctx.options.history.get();
    claim = ctx.sample_times->claim(
        items,
        [history](std::uint64_t ref) -> std::optional<std::int64_t> {
          if (history == nullptr) return std::nullopt;
          return history->last_timestamp(ref);
        },
        [&joined](std::size_t i) { return describe(joined, i); });  // 400
  }

  // The points the sinks get, one per sample (built before the updates
  // move into the storage).
  std::size_t total = 0;
  for (const auto& s : joined.samples)
    total += s.size();
  std::vector<core::Point> points;
  std::vector<std::uint64_t> refs;
  std::vector<std::int64_t> times;
  const bool fan_out = ctx.options.fanout && !ctx.options.fanout->empty();
  if (fan_out) {
    points.reserve(total);
    refs.reserve(total);
    times.reserve(total);
    for (std::size_t i = 0; i < n; ++i) {
      const core::Update& u = joined.updates[i];
      for (const ex::Sample& sample : joined.samples[i]) {
        points.push_back(core::Point::gauge(u.id, sample.value, u.labels));
        refs.push_back(ids[i]);
        times.push_back(sample.timestamp_ms);
      }
    }
  }

  // The names' # TYPE (a failed write only leaves a name typed).
  if (ctx.remote_types != nullptr) {
    for (const auto& u : joined.updates)
      ctx.remote_types->note_series(u.id);
  }

  const std::int64_t received_ms = ctx.now_ms();
  storage::Applied applied;
  try {
    applied = co_await await_storage<storage::Applied>([&ctx, &joined, received_ms](auto done) {
      ctx.repo.apply(std::move(joined.updates), received_ms, std::move(done));
    });
  } catch (const core::OutcomeUnknown&) {
    // May be stored: the series count toward the limits, and the times stand.
    reservation.commit(received_ms, /*liveness=*/false);
    claim.keep();
    throw;
  }
  reservation.commit(received_ms, /*liveness=*/false);
  claim.keep();
  if (applied.series.size() != n) throw std::logic_error("storage answered a wrong batch size");
  if (fan_out) {
    for (auto& p : points)
      p.timestamp_ms = received_ms;
    ctx.options.fanout->publish(
        {.received_ms = received_ms, .points = points, .refs = refs, .times = times});
  }
  co_return res;
}

}  // namespace metrics::server
