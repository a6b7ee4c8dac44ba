#include "metrics_endpoint.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <boost/beast/http/field.hpp>
#include <chrono>
#include <exception>
#include <future>
#include <memory>
#include <utility>

#include "metrics/core/errors.hpp"
#include "metrics/server/query_api.hpp"
#include "metrics/server/telemetry.hpp"

namespace metrics::server::detail {
namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

// repo.list_series() on the calling (pool) thread: waits for the storage,
// which may complete on a thread of its own, checking `cancel` (the server
// stopping) every 100 ms. The completion owns the shared state, so one that
// comes after a cancel finds it alive.
std::vector<core::Point> list_series_blocking(storage::Repository& repo,
                                              const std::atomic<bool>& cancel) {
  using Points = std::vector<core::Point>;
  auto promise = std::make_shared<std::promise<Points>>();
  std::future<Points> done = promise->get_future();
  repo.list_series([promise](std::exception_ptr err, Points value) {
    if (err) {
      promise->set_exception(err);
    } else {
      promise->set_value(std::move(value));
    }
  });
  while (done.wait_for(std::chrono::milliseconds(100)) != std::future_status::ready) {
    if (cancel.load()) throw core::StorageUnavailable("the server is shutting down");
  }
  return done.get();
}

// The # HELP of a stored or liveness series' family (promtool and
// Prometheus's metadata want one).
std::string_view series_help(std::string_view name, core::MetricType type) {
  if (name == series::kAgentUp) {
    return "1 while the last push of this instance and job is younger than --stale-after, else 0.";
  }
  if (name == series::kAgentLastPush) {
    return "Receive time of the last accepted push of this instance and job, in seconds since "
           "the epoch.";
  }
  return type == core::MetricType::counter ? "A counter pushed to this server (its stored total)."
                                           : "A gauge pushed to this server.";
}

bool same_series(const core::Point& a, const core::Point& b) {
  return a.id == b.id && a.labels == b.labels;
}

}  // namespace

std::string render_exposition(std::vector<core::Point> series, std::vector<core::Point> liveness,
                              const telemetry::Registry::Rendered& own, ExpositionStats* stats,
                              const RemoteTypes* remote_types) {
  std::size_t shadowed = 0;
  std::string mapped;
  const auto is_own = [&](const std::string& id) {
    const std::string* name = &id;
    if (!exposition::is_valid_metric_name(id)) {
      mapped = exposition::map_metric_name(id);
      name = &mapped;
    }
    return std::binary_search(own.names.begin(), own.names.end(), *name);
  };
  const auto is_liveness = [&](const core::Point& p) {
    if (p.id != series::kAgentUp && p.id != series::kAgentLastPush) return false;
    return std::any_of(liveness.begin(), liveness.end(),
                       [&p](const core::Point& l) { return same_series(l, p); });
  };
  std::erase_if(series, [&](const core::Point& p) {
    const bool drop = is_own(p.id) || is_liveness(p);
    shadowed += drop ? 1 : 0;
    return drop;
  });
  for (auto& l : liveness) {
    if (!is_own(l.id)) series.push_back(std::move(l));
  }
  std::string out;
  out.reserve(series.size() * 64 + own.text.size());
  exposition::TextOptions text_options;
  text_options.help = series_help;
  if (remote_types != nullptr) {
    text_options.family_type = [remote_types](std::string_view name, core::MetricType type) {
      return type == core::MetricType::gauge && remote_types->counter(name)
                 ? core::MetricType::counter
                 : type;
    };
  }
  const auto text = exposition::write_points(series, out, text_options);
  out += own.text;
  if (stats != nullptr) *stats = {.text = text, .shadowed = shadowed};
  return out;
}

namespace {

// The whole body of GET /metrics: lists the stored series, then renders them
// with the liveness series and the registry's own metrics.
std::string metrics_body(RequestContext& ctx, const std::atomic<bool>& cancel) {
  std::vector<core::Point> series = list_series_blocking(ctx.repo, cancel);
  const std::int64_t now = ctx.now_ms();
  // Past their TTL but not swept yet: already expired for readers.
  if (const auto ttl = ctx.options.series_ttl.count(); ttl > 0) {
    std::erase_if(series, [&](const core::Point& p) {
      return p.timestamp_ms != 0 && p.timestamp_ms < now - ttl;
    });
  }
  auto liveness = ctx.index.liveness_points(now, ctx.options.stale_after.count());
  telemetry::Registry& registry = *ctx.options.telemetry;
  const auto own = registry.render();
  ExpositionStats stats;
  std::string body =
      render_exposition(std::move(series), std::move(liveness), own, &stats, ctx.remote_types);
  if (const std::size_t left_out = stats.text.dropped + stats.shadowed; left_out != 0) {
    registry
        .counter("metrics_server_exposition_dropped_series_total",
                 "Stored series left out of /metrics: their exposed name clashes with another "
                 "series' or one of the server's own metrics.")
        .with({})
        .inc(left_out);
  }
  return body;
}

}  // namespace

// Listing, sorting and rendering every series takes most of a second at
// 300,000 series: done on an I/O thread it would stall every connection of
// that thread for as long. It runs on the query API's pool (it counts as a
// query against --query-max-concurrency), or inline when there is none.
asio::awaitable<Response> metrics_page(RequestContext& ctx, const RouteMatch&, std::string&) {
  Response res{http::status::ok, ctx.request.version()};
  res.set(http::field::content_type, exposition::kTextContentType);
  if (ctx.options.query == nullptr) {
    const std::atomic<bool> never{false};
    res.body() = metrics_body(ctx, never);
    co_return res;
  }
  // An exception of the job is carried back and rethrown here, so that the
  // Service answers it in this row's error format, as it would inline.
  std::exception_ptr failure;
  QueryApi::Outcome out =
      co_await ctx.options.query->run([&ctx, &failure](const std::atomic<bool>& cancel) {
        try {
          return QueryApi::Outcome{http::status::ok, metrics_body(ctx, cancel)};
        } catch (...) {
          failure = std::current_exception();
          return QueryApi::Outcome{http::status::internal_server_error, {}};
        }
      });
  if (failure) std::rethrow_exception(failure);
  if (out.status != http::status::ok) {
    // The pool refused it (too many queries waiting, or shutting down): the
    // query API's JSON error, with its status.
    res.result(out.status);
    res.set(http::field::content_type, "application/json");
  }
  res.body() = std::move(out.body);
  co_return res;
}

std::vector<telemetry::Registration> register_service_collectors(telemetry::Registry& registry,
                                                                 series::SeriesIndex& index,
                                                                 history::HistoryStore* history,
                                                                 storage::Repository& repo) {
  std::vector<telemetry::Registration> out;
  using telemetry::Type;
  out.push_back(registry.add_collector([&repo](telemetry::Writer& w) {
    const storage::StorageStats s = repo.stats();
    w.family("metrics_server_storage_queue_depth", Type::gauge,
             "Requests waiting for the storage's writer (0 for storages that write inline).");
    w.sample({}, static_cast<double>(s.queue_depth));
    w.family("metrics_server_storage_queue_capacity", Type::gauge,
             "Requests the storage queue holds at most; past it a write is answered 503.");
    w.sample({}, static_cast<double>(s.queue_capacity));
    w.family("metrics_server_storage_group_commits_total", Type::counter,
             "Groups of writes the storage made durable with one operation (fdatasync, COMMIT).");
    w.sample_integer({}, s.group_commits);
    w.family("metrics_server_storage_group_commit_batches_total", Type::counter,
             "Write batches in those groups (divided by the groups: the mean group size).");
    w.sample_integer({}, s.grouped_batches);
  }));
  // Idempotency keys (API.md Part 2, "Exactly-once writes").
  out.push_back(registry.add_collector([&repo](telemetry::Writer& w) {
    const storage::KeyStoreStats s = repo.keys().stats();
    const storage::KeyStoreOptions o = repo.keys().options();
    w.family("metrics_server_idempotency_keys", Type::gauge,
             "Idempotency keys held (applied within the window, or not swept yet).");
    w.sample({}, static_cast<double>(s.keys));
    w.family("metrics_server_idempotency_keys_in_flight", Type::gauge,
             "Idempotency keys whose first request is still being applied.");
    w.sample({}, static_cast<double>(s.in_flight));
    w.family("metrics_server_idempotency_max_keys", Type::gauge,
             "Most idempotency keys held (--idempotency-max-keys).");
    w.sample({}, static_cast<double>(o.max_keys));
    w.family("metrics_server_idempotency_evictions_total", Type::counter,
             "Idempotency keys forgotten, by reason: max_keys (the oldest, to stay within "
             "--idempotency-max-keys) or window (older than --idempotency-window).");
    const telemetry::Label by_max_keys[] = {{"reason", "max_keys"}};
    const telemetry::Label by_window[] = {{"reason", "window"}};
    w.sample_integer(by_max_keys, s.evicted);
    w.sample_integer(by_window, s.expired);
    w.family("metrics_server_idempotency_replays_total", Type::counter,
             "Requests whose idempotency key was already applied (answered 200, nothing "
             "changed).");
    w.sample_integer({}, s.replayed);
    w.family("metrics_server_idempotency_conflicts_total", Type::counter,
             "Requests refused for their idempotency key (409 in flight, 422 another body).");
    w.sample_integer({}, s.conflicts);
  }));
  out.push_back(registry.add_collector([&index](telemetry::Writer& w) {
    w.family("metrics_server_series", Type::gauge,
             "Live series in the series index (liveness series not counted).");
    w.sample({}, static_cast<double>(index.size()));
    const auto& limits = index.limits();
    w.family("metrics_server_series_limit", Type::gauge,
             "The --max-series and --max-series-per-instance limits (0: none).");
    w.sample({{"limit", "max_series"}}, static_cast<double>(limits.max_series));
    w.sample({{"limit", "max_series_per_instance"}},
             static_cast<double>(limits.max_series_per_instance));
  }));
  if (history != nullptr) {
    out.push_back(registry.add_collector([history](telemetry::Writer& w) {
      const history::HistoryStats s = history->stats();
      auto gauge = [&w](std::string_view name, std::string_view help, double v) {
        w.family(name, Type::gauge, help);
        w.sample({}, v);
      };
      auto counter = [&w](std::string_view name, std::string_view help, std::uint64_t v) {
        w.family(name, Type::counter, help);
        w.sample_integer({}, v);
      };
      gauge("metrics_server_history_bytes",
            "Heap bytes the history holds (its memory cap counts these).",
            static_cast<double>(s.bytes));
      gauge("metrics_server_history_payload_bytes", "Encoded chunk bytes of the history.",
            static_cast<double>(s.payload_bytes));
      gauge("metrics_server_history_series", "Series with samples in the history.",
            static_cast<double>(s.series));
      gauge("metrics_server_history_samples", "Samples held in the history.",
            static_cast<double>(s.samples));
      gauge("metrics_server_history_chunks", "Closed chunks held in the history.",
            static_cast<double>(s.closed_chunks));
      counter("metrics_server_history_dropped_chunks_total",
              "Chunks dropped, oldest first, to stay within --history-max-bytes.",
              s.evicted_chunks);
      counter("metrics_server_history_dropped_samples_total",
              "Samples dropped to stay within --history-max-bytes.", s.evicted_samples);
      counter("metrics_server_history_dropped_bytes_total",
              "Bytes dropped to stay within --history-max-bytes.", s.evicted_bytes);
      counter("metrics_server_history_expired_chunks_total",
              "Chunks removed for being older than --retention.", s.expired_chunks);
      counter("metrics_server_history_expired_samples_total",
              "Samples removed for being older than --retention.", s.expired_samples);
    }));
  }
  return out;
}

}  // namespace metrics::server::detail

namespace metrics::server {

telemetry::Registration add_sink_collector(telemetry::Registry& registry, std::string sink,
                                           std::shared_ptr<const QueuedSink> queue) {
  return registry.add_collector(
      [sink = std::move(sink), queue = std::move(queue)](telemetry::Writer& w) {
        using telemetry::Type;
        const QueuedSinkStats s = queue->stats();
        const std::array<telemetry::Label, 1> labels{{{"sink", sink}}};
        w.family("metrics_server_ingest_queue_batches", Type::gauge,
                 "Write batches waiting in an ingest sink's queue.");
        w.sample(labels, static_cast<double>(s.queued));
        w.family("metrics_server_ingest_accepted_batches_total", Type::counter,
                 "Write batches an ingest sink took into its queue.");
        w.sample_integer(labels, s.accepted_batches);
        w.family("metrics_server_ingest_dropped_batches_total", Type::counter,
                 "Write batches an ingest sink dropped because its queue was full.");
        w.sample_integer(labels, s.dropped_batches);
        w.family("metrics_server_ingest_dropped_points_total", Type::counter,
                 "Series points in the dropped batches.");
        w.sample_integer(labels, s.dropped_points);
      });
}

}  // namespace metrics::server
