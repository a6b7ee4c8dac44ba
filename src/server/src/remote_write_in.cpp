#include "remote_write_in.hpp"

#include <algorithm>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <cstdint>
#include <exception>
#include <memory>
#include <span>
#include <stdexcept>
#include <string_view>
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

// The series of the request after its entries are joined: the update that
// stores each one's newest value, and its samples in time order. The
// samples of all series are in one vector, series after series, so that a
// request of many series costs no allocation per series.
struct Joined {
  std::vector<core::Update> updates;
  std::vector<ex::Sample> samples;
  std::vector<std::size_t> begin;        // series i: samples [begin[i], begin[i + 1])
  std::vector<std::size_t> first_entry;  // the request entry that named it first

  [[nodiscard]] std::span<const ex::Sample> of(std::size_t i) const {
    return {samples.data() + begin[i], samples.data() + begin[i + 1]};
  }
};

Joined join(const std::vector<ex::ValidSeries>& valid) {
  Joined out;
  const std::size_t entries = valid.size();
  out.updates.reserve(entries);
  out.first_entry.reserve(entries);
  // Entry -> series, through an open-addressing table of series indexes
  // (a senders sends each series once a request, mostly: one probe each).
  constexpr auto kEmpty = static_cast<std::uint32_t>(-1);
  std::size_t capacity = 16;
  while (capacity < 2 * entries)
    capacity *= 2;
  std::vector<std::uint32_t> slots(capacity, kEmpty);
  std::vector<std::size_t> hashes;
  hashes.reserve(entries);
  std::vector<std::uint32_t> series_of(entries);
  std::vector<std::size_t> count;
  count.reserve(entries);
  for (std::size_t e = 0; e < entries; ++e) {
    const ex::ValidSeries& s = valid[e];
    // Typed gauge in the model: the values are doubles as sent (a `_total`
    // name is a counter only for # TYPE and metadata, see docs/API.md).
    const core::SeriesView view(core::MetricType::gauge, s.name, s.labels);
    const std::size_t hash = core::SeriesHash{}(view);
    std::size_t pos = hash & (capacity - 1);
    while (slots[pos] != kEmpty &&
           !(hashes[slots[pos]] == hash &&
             core::SeriesEqual{}(core::SeriesView(out.updates[slots[pos]]), view))) {
      pos = (pos + 1) & (capacity - 1);
    }
    if (slots[pos] == kEmpty) {
      core::Update u = core::Update::gauge(s.name, 0, s.labels);
      u.series_only = true;
      slots[pos] = static_cast<std::uint32_t>(out.updates.size());
      out.updates.push_back(std::move(u));
      hashes.push_back(hash);
      out.first_entry.push_back(e);
      count.push_back(0);
    }
    series_of[e] = slots[pos];
    count[slots[pos]] += s.samples.size();
  }
  const std::size_t n = out.updates.size();
  out.begin.resize(n + 1);
  for (std::size_t i = 0; i < n; ++i)
    out.begin[i + 1] = out.begin[i] + count[i];
  out.samples.resize(out.begin[n]);
  // validate() has checked the order across entries of one series, so
  // appending entry after entry keeps each series in time order.
  std::vector<std::size_t> cursor(out.begin.begin(), out.begin.end() - 1);
  for (std::size_t e = 0; e < entries; ++e) {
    auto& at = cursor[series_of[e]];
    std::copy(valid[e].samples.begin(), valid[e].samples.end(),
              out.samples.begin() + static_cast<std::ptrdiff_t>(at));
    at += valid[e].samples.size();
  }
  for (std::size_t i = 0; i < n; ++i)
    out.updates[i].value = out.of(i).back().value;
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
    items[i] = {ids[i], joined.of(i).front().timestamp_ms, joined.of(i).back().timestamp_ms};
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
  const std::size_t total = joined.samples.size();
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
      for (const ex::Sample& sample : joined.of(i)) {
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
