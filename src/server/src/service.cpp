#include "metrics/server/service.hpp"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <atomic>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <chrono>
#include <utility>

#include "await_storage.hpp"
#include "http_metrics.hpp"
#include "live_queryable.hpp"
#include "metrics/core/batch.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/core/gzip.hpp"
#include "metrics/core/json_codec.hpp"
#include "metrics/core/signature.hpp"
#include "metrics/core/text.hpp"
#include "metrics/core/value_format.hpp"
#include "metrics/server/content.hpp"
#include "metrics/server/html.hpp"
#include "metrics/storage/repository.hpp"
#include "metrics/telemetry/process.hpp"
#include "metrics_endpoint.hpp"
#include "remote_write_in.hpp"
#include "ui.hpp"

// GCC 12 reports Asio's coroutine frame allocator as mismatched new/delete
// when a coroutine awaits another one here (a false positive, GCC bug
// 109224; session.hpp does the same).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
#endif

namespace metrics::server {
namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

using detail::await_storage;

// At most one "storage unavailable" line a second: while the database is
// down every request fails at once, and one line each would flood the log.
// Returns false to stay quiet; otherwise how many were left out before.
bool unavailable_log_due(std::uint64_t& left_out) {
  static std::atomic<std::int64_t> last_ms{-1'000'000};
  static std::atomic<std::uint64_t> quiet{0};
  const std::int64_t now = std::chrono::duration_cast<std::chrono::milliseconds>(
                               std::chrono::steady_clock::now().time_since_epoch())
                               .count();
  auto last = last_ms.load();
  if (now - last < 1000 || !last_ms.compare_exchange_strong(last, now)) {
    quiet.fetch_add(1);
    return false;
  }
  left_out = quiet.exchange(0);
  return true;
}

constexpr std::string_view kText = "text/plain; charset=utf-8";
constexpr std::string_view kJson = "application/json";
constexpr std::string_view kHtml = "text/html; charset=utf-8";

// A failure that already knows its HTTP status (401, 413, 415).
class HttpError : public core::Error {
 public:
  HttpError(http::status status, const std::string& what) : core::Error(what), status_(status) {}
  [[nodiscard]] http::status status() const noexcept { return status_; }

 private:
  http::status status_;
};

core::MetricType parse_type_or_throw(std::string_view text) {
  auto type = core::parse_type(text);
  if (!type) {
    throw core::InvalidInput("unknown metric type \"" + std::string(text.substr(0, 64)) +
                             "\": expected gauge or counter");
  }
  return *type;
}

void validate_name_or_throw(std::string_view name) {
  if (auto err = core::validate_name(name)) throw core::InvalidInput(*err);
}

Response make_response(const Request& req, http::status status, std::string_view content_type,
                       std::string body) {
  Response res{status, req.version()};
  res.set(http::field::content_type, content_type);
  res.body() = std::move(body);
  return res;
}

std::string value_text(const core::Point& p) {
  return p.type == core::MetricType::gauge ? core::format_gauge(p.value)
                                           : core::format_counter(p.total);
}

// The update of POST /update/{type}/{name}/{value}. Throws core::InvalidInput.
core::Update parse_text_update(std::string_view type, std::string_view name,
                               std::string_view value) {
  core::Update u;
  u.type = parse_type_or_throw(type);
  validate_name_or_throw(name);
  u.id = std::string(name);
  if (u.type == core::MetricType::gauge) {
    auto v = core::parse_gauge(value);
    if (!v) throw core::InvalidInput("invalid gauge value: expected a finite number");
    u.value = *v;
  } else {
    auto v = core::parse_counter(value);
    if (!v) throw core::InvalidInput("invalid counter value: expected a 64-bit integer");
    u.delta = *v;
  }
  return u;
}

[[noreturn]] void throw_not_found(const core::MetricKey& key) {
  throw core::NotFound("metric not found: " + std::string(core::to_string(key.type)) + " " +
                       key.id);
}

[[noreturn]] void throw_series_not_found(const core::MetricKey& key, const core::Labels& labels) {
  throw core::NotFound("series not found: " + std::string(core::to_string(key.type)) + " " +
                       key.id + labels.to_string());
}

// The answer to a replay: the values of the batch's series now (the
// classic value for an unlabelled update, as answer_point() picks).
asio::awaitable<storage::Applied> current_values(storage::Repository& repo,
                                                 const std::vector<core::Update>& batch) {
  storage::Applied out;
  out.series.reserve(batch.size());
  out.classic.reserve(batch.size());
  for (const core::Update& u : batch) {
    std::optional<core::Point> found;
    if (u.labels.empty()) {
      const core::MetricKey key{u.type, u.id};
      found = co_await await_storage<std::optional<core::Point>>(
          [&repo, &key](auto done) { repo.get_classic(key, std::move(done)); });
    } else {
      const core::SeriesKey key{u.type, u.id, u.labels};
      found = co_await await_storage<std::optional<core::Point>>(
          [&repo, &key](auto done) { repo.get(key, std::move(done)); });
    }
    // Gone since (an expired series): its classic value, under its labels.
    if (!found) {
      const core::MetricKey key{u.type, u.id};
      found = co_await await_storage<std::optional<core::Point>>(
          [&repo, &key](auto done) { repo.get_classic(key, std::move(done)); });
      if (found) found->labels = u.labels;
    }
    if (!found) throw core::StorageUnavailable("the replayed write's values are gone");
    out.classic.push_back(*found);
    out.series.push_back(std::move(*found));
  }
  co_return out;
}

// Applies a merged batch at the clock's time: reserves its series in the
// index (core::LimitExceeded before the storage is asked), then commits
// them once the storage has accepted the batch. A failed apply gives the
// reservation back; one whose outcome is unknown keeps it, since the series
// may now be stored and must count toward the limits.
//
// What a guard was made of (the client's key and the decompressed body).
struct GuardSource {
  std::string_view key;
  std::string_view body;
};

// With a guard (an Idempotency-Key) the storage decides whether the batch
// is applied (storage::Repository::apply_once); a replay answers the
// current values, read back here, and publishes nothing. A key whose stored
// fingerprint differs is asked once more with the fingerprint servers
// before XXH3 wrote (storage::Guard::legacy_of, from `source`), so that the
// retry of a write such a server applied is a replay, not a 422. That
// second look costs a SHA-256 of the body and happens only on a mismatch.
asio::awaitable<storage::Applied> apply(RequestContext& ctx, std::vector<core::Update> merged,
                                        const storage::Guard* guard = nullptr,
                                        bool* replayed = nullptr,
                                        const GuardSource* source = nullptr) {
  const std::size_t n = merged.size();
  auto reservation = ctx.index.reserve(merged);
  const std::int64_t received_ms = ctx.now_ms();
  storage::Applied applied;
  try {
    if (guard == nullptr) {
      applied = co_await await_storage<storage::Applied>([&ctx, &merged, received_ms](auto done) {
        ctx.repo.apply(std::move(merged), received_ms, std::move(done));
      });
    } else {
      auto once = co_await await_storage<storage::OnceApplied>(
          [&ctx, &merged, received_ms, guard](auto done) {
            ctx.repo.apply_once(std::move(merged), received_ms, *guard, std::move(done));
          });
      if (once.outcome == storage::Once::mismatch && source != nullptr) {
        const auto legacy = storage::Guard::legacy_of(source->key, source->body);
        once = co_await await_storage<storage::OnceApplied>(
            [&ctx, &once, received_ms, &legacy](auto done) {
              ctx.repo.apply_once(std::move(once.batch), received_ms, legacy, std::move(done));
            });
      }
      switch (once.outcome) {
        case storage::Once::applied:
          applied = std::move(once.applied);
          break;
        case storage::Once::in_flight:
          reservation.release();
          throw HttpError(http::status::conflict,
                          "a request with this Idempotency-Key is still being applied; retry "
                          "after its answer");
        case storage::Once::mismatch:
          reservation.release();
          throw HttpError(http::status::unprocessable_entity,
                          "this Idempotency-Key was already used with another body");
        case storage::Once::replayed:
          reservation.release();
          if (replayed != nullptr) *replayed = true;
          co_return co_await current_values(ctx.repo, once.batch);
      }
    }
  } catch (const core::OutcomeUnknown&) {
    reservation.commit(received_ms);
    throw;
  }
  reservation.commit(received_ms);
  if (ctx.last_write_ms != nullptr)
    ctx.last_write_ms->store(received_ms, std::memory_order_relaxed);
  if (applied.series.size() != n || applied.classic.size() != n) {
    throw std::logic_error("storage answered a wrong batch size");
  }
  // The fan-out sees the series points only (never the classic values).
  if (const auto& fanout = ctx.options.fanout; fanout && !fanout->empty()) {
    std::vector<std::uint64_t> refs(n);
    for (std::size_t i = 0; i < n; ++i)
      refs[i] = reservation.id(i);
    fanout->publish({.received_ms = received_ms, .points = applied.series, .refs = refs});
  }
  co_return applied;
}

// The answer for update i: the classic value for an unlabelled update (so
// that /update/ and /value/ agree as in Part 1), the series otherwise.
core::Point& answer_point(storage::Applied& applied, std::size_t i) {
  return applied.series[i].labels.empty() ? applied.classic[i] : applied.series[i];
}

// Keys are taken by reference to an object of the awaiting caller (GCC 12
// mishandles temporaries passed by value into a coroutine).
asio::awaitable<std::optional<core::Point>> get(storage::Repository& repo,
                                                const core::SeriesKey& key) {
  co_return co_await await_storage<std::optional<core::Point>>(
      [&repo, &key](auto done) { repo.get(key, std::move(done)); });
}

asio::awaitable<std::optional<core::Point>> get(storage::Repository& repo,
                                                const core::MetricKey& key) {
  co_return co_await await_storage<std::optional<core::Point>>(
      [&repo, &key](auto done) { repo.get_classic(key, std::move(done)); });
}

constexpr std::size_t kMaxIdempotencyKey = 128;
constexpr std::string_view kIdempotencyKeyHeader = "Idempotency-Key";
constexpr std::string_view kReplayedHeader = "Idempotent-Replayed";

// The request's idempotency key (the header, or the envelope's), checked:
// at most 128 bytes, not empty, and the two the same when both are given.
std::optional<std::string> idempotency_key(const Request& req,
                                           const std::optional<std::string>& envelope_key) {
  std::optional<std::string> key;
  if (auto it = req.find(kIdempotencyKeyHeader); it != req.end()) key.emplace(it->value());
  if (envelope_key) {
    if (key && *key != *envelope_key) {
      throw core::InvalidInput(
          "the Idempotency-Key header and the envelope's idempotency_key differ");
    }
    key = envelope_key;
  }
  if (key) {
    if (key->empty()) throw core::InvalidInput("empty idempotency key");
    if (key->size() > kMaxIdempotencyKey) {
      throw core::InvalidInput("idempotency key longer than 128 bytes");
    }
  }
  return key;
}

Response keyed_response(Response res, bool replayed) {
  if (replayed) res.set(kReplayedHeader, "true");
  return res;
}

// ---- Handlers: one per row of the route table, thin over the pure functions above.

asio::awaitable<Response> home(RequestContext& ctx, const RouteMatch&, std::string&) {
  auto all = co_await await_storage<std::vector<core::Point>>(
      [&ctx](auto done) { ctx.repo.list(std::move(done)); });
  co_return make_response(
      ctx.request, http::status::ok, kHtml,
      render_metrics_page(
          all, ctx.now_ms(),
          ctx.last_write_ms != nullptr ? ctx.last_write_ms->load(std::memory_order_relaxed) : 0));
}

asio::awaitable<Response> ping(RequestContext& ctx, const RouteMatch&, std::string&) {
  const auto health = co_await await_storage<storage::Health>(
      [&ctx](auto done) { ctx.repo.health(std::move(done)); });
  if (!health.ok) throw core::StorageUnavailable("storage unavailable: " + health.reason);
  co_return make_response(ctx.request, http::status::ok, kText, "ok\n");
}

// An Idempotency-Key here guards the path's update as it does a JSON body
// (the path is what is compared: the same key with another value is 422).
asio::awaitable<Response> update_text(RequestContext& ctx, const RouteMatch& m, std::string&) {
  std::vector<core::Update> batch{
      parse_text_update(m.param("type"), m.param("name"), m.param("value"))};
  const auto key = idempotency_key(ctx.request, std::nullopt);
  std::optional<storage::Guard> guard;
  std::string what;
  if (key) {
    what = "/update/" + std::string(m.param("type")) + "/" + std::string(m.param("name")) + "/" +
           std::string(m.param("value"));
    guard = storage::Guard::of(*key, what);
  }
  bool replayed = false;
  const GuardSource source{key ? std::string_view(*key) : std::string_view(), what};
  co_await apply(ctx, std::move(batch), guard ? &*guard : nullptr, &replayed,
                 guard ? &source : nullptr);
  co_return keyed_response(make_response(ctx.request, http::status::ok, kText, ""), replayed);
}

asio::awaitable<Response> value_text(RequestContext& ctx, const RouteMatch& m, std::string&) {
  core::MetricKey key{parse_type_or_throw(m.param("type")), std::string(m.param("name"))};
  validate_name_or_throw(key.id);
  auto found = co_await get(ctx.repo, key);
  if (!found) throw_not_found(key);
  co_return make_response(ctx.request, http::status::ok, kText, value_text(*found));
}

asio::awaitable<Response> update_json(RequestContext& ctx, const RouteMatch&, std::string& body) {
  std::vector<core::Update> batch;
  batch.push_back(core::decode_update(body));
  const auto key = idempotency_key(ctx.request, std::nullopt);
  std::optional<storage::Guard> guard;
  if (key) guard = storage::Guard::of(*key, body);
  bool replayed = false;
  const GuardSource source{key ? std::string_view(*key) : std::string_view(), body};
  auto applied = co_await apply(ctx, std::move(batch), guard ? &*guard : nullptr, &replayed,
                                guard ? &source : nullptr);
  co_return keyed_response(make_response(ctx.request, http::status::ok, kJson,
                                         core::encode_point(answer_point(applied, 0))),
                           replayed);
}

asio::awaitable<Response> value_json(RequestContext& ctx, const RouteMatch&, std::string& body) {
  auto query = core::decode_value_query(body);
  if (!query.labels) {
    auto found = co_await get(ctx.repo, query.key);
    if (!found) throw_not_found(query.key);
    co_return make_response(ctx.request, http::status::ok, kJson, core::encode_point(*found));
  }
  const std::int64_t now = ctx.now_ms();
  if (query.key.type == core::MetricType::gauge) {
    // agent_up and agent_last_push_timestamp_seconds of a known (instance,
    // job) are synthesized; they are never stored.
    if (auto live = ctx.index.liveness_point(query.key.id, *query.labels, now,
                                             ctx.options.stale_after.count())) {
      co_return make_response(ctx.request, http::status::ok, kJson, core::encode_point(*live));
    }
  }
  const core::SeriesKey key{query.key.type, query.key.id, *query.labels};
  auto found = co_await get(ctx.repo, key);
  // Past its TTL but not swept yet: already expired for readers.
  const auto ttl = ctx.options.series_ttl.count();
  if (found && ttl > 0 && found->timestamp_ms != 0 && found->timestamp_ms < now - ttl) {
    found.reset();
  }
  if (!found) throw_series_not_found(query.key, key.labels);
  co_return make_response(ctx.request, http::status::ok, kJson, core::encode_point(*found));
}

asio::awaitable<Response> updates_json(RequestContext& ctx, const RouteMatch&, std::string& body) {
  auto decoded = core::decode_updates(body, ctx.options.max_batch_items);
  const auto key = idempotency_key(ctx.request, decoded.idempotency_key);
  auto merged = core::merge_batch_moved(std::move(decoded.updates));
  std::optional<storage::Guard> guard;
  if (key) guard = storage::Guard::of(*key, body);
  bool replayed = false;
  const GuardSource source{key ? std::string_view(*key) : std::string_view(), body};
  std::string out;
  if (merged.empty() && !guard) {
    out = "[]";
  } else if (merged.empty()) {
    // Nothing to apply, but the key is taken all the same (a 422 later
    // for another body).
    co_await apply(ctx, std::move(merged), &*guard, &replayed, &source);
    out = "[]";
  } else {
    const std::size_t n = merged.size();
    auto applied = co_await apply(ctx, std::move(merged), guard ? &*guard : nullptr, &replayed,
                                  guard ? &source : nullptr);
    // Encoded straight from the storage's answer, with room for the labels
    // that labelled answers echo (as core::encode_points would write it).
    std::size_t room = 2;
    for (std::size_t i = 0; i < n; ++i) {
      const auto& p = answer_point(applied, i);
      room += 64 + p.id.size() + p.labels.encoded().size() * 2;
    }
    out.reserve(room);
    out.push_back('[');
    // An envelope's series share their labels: their JSON is written once
    // and reused for each.
    const core::Labels* last_labels = nullptr;
    std::string labels_json;
    for (std::size_t i = 0; i < n; ++i) {
      if (i != 0) out.push_back(',');
      const core::Point& p = answer_point(applied, i);
      if (p.labels.empty()) {
        core::append_json(out, p);
        continue;
      }
      if (last_labels == nullptr || p.labels != *last_labels) {
        labels_json.clear();
        core::append_labels_json(labels_json, p.labels);
        last_labels = &p.labels;
      }
      core::append_json(out, p, labels_json);
    }
    out.push_back(']');
  }
  co_return keyed_response(make_response(ctx.request, http::status::ok, kJson, std::move(out)),
                           replayed);
}

using http::verb;
constexpr auto kJsonErrors = ErrorFormat::json;

// The wire contract (docs/API.md). Rows are matched in order.
const RouteSpec kRoutes[] = {
    {.name = "home", .pattern = "/", .methods = {verb::get}, .handler = home},
    {.name = "ping",
     .pattern = "/ping",
     .methods = {verb::get},
     .handler = ping,
     .access = Access::open},
    // The web UI (ui.hpp): /ui redirects to /ui/, which is index.html.
    {.name = "ui", .pattern = "/ui/", .methods = {verb::get}, .handler = ui_handler},
    {.name = "ui_asset", .pattern = "/ui/{file}", .methods = {verb::get}, .handler = ui_handler},
    {.name = "update_json",
     .pattern = "/update/",
     .methods = {verb::post},
     .handler = update_json,
     .errors = kJsonErrors,
     .body = BodyKind::json,
     .access = Access::write},
    {.name = "updates_json",
     .pattern = "/updates/",
     .methods = {verb::post},
     .handler = updates_json,
     .errors = kJsonErrors,
     .body = BodyKind::json,
     .access = Access::write},
    {.name = "value_json",
     .pattern = "/value/",
     .methods = {verb::post},
     .handler = value_json,
     .errors = kJsonErrors,
     .body = BodyKind::json},
    {.name = "update_text",
     .pattern = "/update/{type}/{name:metric name}/{value:metric value}",
     .methods = {verb::post},
     .handler = update_text,
     .access = Access::write},
    {.name = "value_text",
     .pattern = "/value/{type}/{name:metric name}",
     .methods = {verb::get},
     .handler = value_text},
    {.name = "metrics",
     .pattern = "/metrics",
     .methods = {verb::get},
     .handler = detail::metrics_page},
    {.name = "remote_write",
     .pattern = "/api/v1/write",
     .methods = {verb::post},
     .handler = remote_write_in,
     .body = BodyKind::snappy,
     .access = Access::write},
    // The Prometheus HTTP API (query_api.hpp): parameters are read from the
    // URL and a form body by the handlers themselves, as Prometheus does.
    {.name = "api_query",
     .pattern = "/api/v1/query",
     .methods = {verb::get, verb::post},
     .handler = api_query,
     .errors = kJsonErrors},
    {.name = "api_query_range",
     .pattern = "/api/v1/query_range",
     .methods = {verb::get, verb::post},
     .handler = api_query_range,
     .errors = kJsonErrors},
    {.name = "api_series",
     .pattern = "/api/v1/series",
     .methods = {verb::get, verb::post},
     .handler = api_series,
     .errors = kJsonErrors},
    {.name = "api_labels",
     .pattern = "/api/v1/labels",
     .methods = {verb::get, verb::post},
     .handler = api_labels,
     .errors = kJsonErrors},
    {.name = "api_label_values",
     .pattern = "/api/v1/label/{name:label name}/values",
     .methods = {verb::get},
     .handler = api_label_values,
     .errors = kJsonErrors},
    {.name = "api_metadata",
     .pattern = "/api/v1/metadata",
     .methods = {verb::get},
     .handler = api_metadata,
     .errors = kJsonErrors},
    {.name = "api_buildinfo",
     .pattern = "/api/v1/status/buildinfo",
     .methods = {verb::get},
     .handler = api_buildinfo,
     .errors = kJsonErrors},
    {.name = "api_rules",
     .pattern = "/api/v1/rules",
     .methods = {verb::get},
     .handler = api_rules,
     .errors = kJsonErrors},
    {.name = "api_alerts",
     .pattern = "/api/v1/alerts",
     .methods = {verb::get},
     .handler = api_alerts,
     .errors = kJsonErrors},
};

// What is logged of an exception that became a 500.
std::string describe(std::exception_ptr err) {
  try {
    std::rethrow_exception(err);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception not derived from std::exception";
  }
}

// Remote write 1.0: Content-Encoding snappy (or none: the body is snappy
// all the same) and Content-Type application/x-protobuf (or none).
void check_remote_write_headers(const Request& req) {
  const auto encoding = req[http::field::content_encoding];
  if (!encoding.empty() && !core::iequals(encoding, "snappy")) {
    throw HttpError(http::status::unsupported_media_type,
                    "unsupported Content-Encoding; remote write 1.0 uses snappy");
  }
  auto ct = req[http::field::content_type];
  ct = ct.substr(0, ct.find(';'));
  while (!ct.empty() && ct.back() == ' ')
    ct.remove_suffix(1);
  if (!ct.empty() && !core::iequals(ct, "application/x-protobuf")) {
    throw HttpError(http::status::unsupported_media_type,
                    "Content-Type must be application/x-protobuf (remote write 1.0)");
  }
}

bool is_form_content_type(std::string_view ct) {
  const auto semi = ct.find(';');
  ct = ct.substr(0, semi);
  while (!ct.empty() && ct.back() == ' ')
    ct.remove_suffix(1);
  return core::iequals(ct, "application/x-www-form-urlencoded");
}

}  // namespace

std::span<const RouteSpec> default_routes() noexcept {
  return kRoutes;
}

std::int64_t RequestContext::now_ms() const {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             options.clock->system_now().time_since_epoch())
      .count();
}

Service::Service(storage::Repository& repo, ServiceOptions options,
                 std::span<const RouteSpec> routes)
    : repo_(repo),
      options_(std::move(options)),
      table_(routes),
      index_(std::make_unique<series::SeriesIndex>(options_.limits)),
      sample_times_(std::make_unique<SampleTimes>()) {
  if (!options_.clock) options_.clock = core::real_clock();
  if (!options_.telemetry) options_.telemetry = std::make_shared<telemetry::Registry>();
  http_metrics_ = std::make_unique<detail::HttpMetrics>(*options_.telemetry, table_.routes());
  collectors_ = detail::register_service_collectors(*options_.telemetry, *index_,
                                                    options_.history.get(), repo_);
  collectors_.push_back(telemetry::add_process_collector(*options_.telemetry));
  if (!options_.query) options_.query = std::make_shared<QueryApi>();
  options_.query->instrument(options_.telemetry);
  live_queryable_ = detail::make_live_queryable(*index_, options_.history.get(), options_.clock,
                                                options_.stale_after);
}

// Stops the query API's pool first: its queries read the index.
Service::~Service() {
  options_.query->shutdown();
  if (options_.auth) options_.auth->shutdown();
}

namespace {
std::int64_t clock_ms(const core::Clock& clock) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             clock.system_now().time_since_epoch())
      .count();
}
}  // namespace

bool Service::load_index() noexcept {
  try {
    const auto stored = storage::list_series_sync(repo_);
    // Series from storages that kept no receive time count as written now,
    // so that they expire one TTL after the start, not at the first sweep.
    index_->load(stored, clock_ms(*options_.clock));
    spdlog::info("series index: {} series loaded", stored.size());
    return true;
  } catch (...) {
    try {
      spdlog::warn("series index: cannot load the stored series yet: {}",
                   describe(std::current_exception()));
    } catch (...) {  // NOLINT(bugprone-empty-catch): logging must not make it worse
    }
    return false;
  }
}

std::size_t Service::expire_once() {
  const auto ttl = options_.series_ttl.count();
  if (ttl <= 0) return 0;
  const std::int64_t cutoff = clock_ms(*options_.clock) - ttl;
  const auto keys = storage::expire_sync(repo_, cutoff);
  const std::size_t forgotten = index_->remove(keys, cutoff);
  if (!keys.empty()) {
    spdlog::info("series expiry: {} series not written for {} ms removed ({} left the index)",
                 keys.size(), ttl, forgotten);
  }
  return keys.size();
}

std::vector<history::SeriesSamples> Service::read_history(std::span<const core::SeriesKey> keys,
                                                          std::int64_t start_ms,
                                                          std::int64_t end_ms) const {
  if (!options_.history) return {};
  return server::read_history(*index_, *options_.history, keys, start_ms, end_ms);
}

std::chrono::milliseconds Service::expiry_interval() const noexcept {
  using std::chrono::milliseconds;
  if (options_.series_ttl.count() <= 0) return milliseconds{0};
  return std::max(milliseconds{1}, std::min(options_.series_ttl / 10, milliseconds{60'000}));
}

void Service::check_signature(const RouteSpec& route, const Request& req, bool waived) const {
  if (options_.key.empty()) return;
  auto sig = req[core::kSignatureHeader];
  if (sig.empty()) {
    // Reads need no signature; writes do unless unsigned writes are allowed
    // (or an authenticated user stands in for it, where the web config says so).
    if (route.access != Access::write || options_.allow_unsigned || waived) return;
    throw HttpError(http::status::unauthorized, "missing HashSHA256 signature");
  }
  if (!core::verify_signature(options_.key, req.body(), sig)) {
    throw HttpError(http::status::unauthorized, "wrong HashSHA256 signature");
  }
}

asio::awaitable<bool> Service::authorize(const RouteSpec& route, const Request& req,
                                         std::string_view peer, AuthAnswer& answer) const {
  WebAuth& auth = *options_.auth;
  const auto cfg = auth.config();
  if (route.access == Access::open || !cfg->requires_auth()) co_return false;
  const auto authorization = req[http::field::authorization];
  if (route.access == Access::write) {
    // Writes keep the signature rules; credentials count only where they
    // may stand in for a missing signature.
    if (!cfg->authenticated_writes || options_.key.empty() ||
        !req[core::kSignatureHeader].empty() || authorization.empty()) {
      co_return false;
    }
  }
  const AuthVerdict verdict = co_await auth.authenticate(
      std::string_view(authorization.data(), authorization.size()), peer);
  switch (verdict.kind) {
    case AuthVerdict::Kind::ok:
      co_return true;
    case AuthVerdict::Kind::missing:
      answer.challenge = auth.challenge();
      throw HttpError(http::status::unauthorized, "authentication required");
    case AuthVerdict::Kind::invalid:
      answer.challenge = auth.challenge();
      throw HttpError(http::status::unauthorized, "invalid credentials");
    case AuthVerdict::Kind::throttled:
      answer.retry_after = verdict.retry_after;
      throw HttpError(http::status::too_many_requests,
                      "too many failed authentication attempts from this address; retry later");
  }
  co_return false;
}

asio::awaitable<Response> Service::handle(Request req, std::string_view peer, ClientWatch* client) {
  const auto started = std::chrono::steady_clock::now();
  RouteMatch match;
  Response res;
  std::exception_ptr error;
  AuthAnswer auth_answer;
  try {
    table_.match(req.method(), req.target(), match);
    if (match.route == nullptr) {
      if (match.method_not_allowed()) {
        throw HttpError(
            http::status::method_not_allowed,
            "method " + std::string(req.method_string()) + " not allowed; use " + match.allow);
      }
      throw core::NotFound(match.error);
    }
    if (!match.error.empty()) throw core::InvalidInput(match.error);
    const RouteSpec& route = *match.route;
    bool waived = false;
    if (options_.auth) waived = co_await authorize(route, req, peer, auth_answer);

    std::string body;
    if (req.method() == http::verb::post && route.body == BodyKind::snappy) {
      check_signature(route, req, waived);
      check_remote_write_headers(req);
      body = std::move(req.body());  // the handler inflates it
    } else if (req.method() == http::verb::post) {
      check_signature(route, req, waived);
      switch (parse_content_encoding(req[http::field::content_encoding])) {
        case BodyEncoding::identity:
          body = std::move(req.body());
          break;
        case BodyEncoding::gzip:
          body = core::gzip_decompress(req.body(), options_.max_body_bytes);
          break;
        case BodyEncoding::unsupported:
          throw HttpError(http::status::unsupported_media_type,
                          "unsupported Content-Encoding; use gzip or identity");
      }
    }
    if (route.body == BodyKind::json && !is_json_content_type(req[http::field::content_type])) {
      throw HttpError(http::status::unsupported_media_type,
                      "Content-Type must be application/json");
    }
    if (route.body == BodyKind::form && !body.empty()) {
      if (!is_form_content_type(req[http::field::content_type])) {
        throw HttpError(http::status::unsupported_media_type,
                        "Content-Type must be application/x-www-form-urlencoded");
      }
      if (!match.query.parse(body, route.query)) {
        throw core::InvalidInput("malformed percent-encoding in form body");
      }
    }
    RequestContext ctx{
        repo_, options_, req, *index_, sample_times_.get(), &last_write_ms_, remote_types_.get(),
        client};
    res = co_await route.handler(ctx, match, body);
  } catch (...) {
    error = std::current_exception();
  }
  if (error) res = map_exception(error, match, req);
  if (res.result() == http::status::method_not_allowed) res.set(http::field::allow, match.allow);
  if (!auth_answer.challenge.empty() && res.result() == http::status::unauthorized) {
    res.set(http::field::www_authenticate, auth_answer.challenge);
  }
  if (auth_answer.retry_after && res.result() == http::status::too_many_requests) {
    res.set(http::field::retry_after, std::to_string(auth_answer.retry_after->count()));
  }
  finish(res, req, match.errors);
  http_metrics_->record(match.route, res.result_int(), std::chrono::steady_clock::now() - started);
  co_return res;
}

Response Service::error_response(http::status status, std::string_view message, unsigned version,
                                 ErrorFormat format) const {
  Response res{status, version};
  if (format == ErrorFormat::json) {
    res.set(http::field::content_type, kJson);
    res.body() = core::encode_error(message);
  } else {
    res.set(http::field::content_type, kText);
    res.body() = std::string(message) + "\n";
  }
  return res;
}

Response Service::reject(http::status status, std::string_view message, const Request& req) const {
  const auto format = table_.error_format(req.target());
  Response res = error_response(status, message, req.version() == 0 ? 11 : req.version(), format);
  finish(res, req, format);
  http_metrics_->record(nullptr, res.result_int(), std::chrono::nanoseconds{0});
  return res;
}

Response Service::map_exception(std::exception_ptr err, const RouteMatch& match,
                                const Request& req) const {
  http::status status = http::status::internal_server_error;
  std::string message = "internal error";
  std::optional<std::chrono::seconds> retry_after;
  const bool is_ping = match.route != nullptr && match.route->handler == &ping;
  try {
    std::rethrow_exception(err);
  } catch (const HttpError& e) {
    status = e.status();
    message = e.what();
  } catch (const core::InvalidInput& e) {
    status = http::status::bad_request;
    message = e.what();
  } catch (const core::NotFound& e) {
    status = http::status::not_found;
    message = e.what();
  } catch (const core::LimitExceeded& e) {
    // Not transient: no Retry-After (the client must write fewer series).
    status = http::status::too_many_requests;
    message = e.what();
  } catch (const core::InflateLimitExceeded& e) {
    status = http::status::payload_too_large;
    message = e.what();
  } catch (const core::Overloaded& e) {
    status = http::status::service_unavailable;
    message = e.what();
    retry_after = e.retry_after();
  } catch (const core::OutcomeUnknown& e) {
    // Not 503: that would promise that nothing was stored.
    status = http::status::internal_server_error;
    message = e.what();
    spdlog::warn("storage outcome unknown: {}", e.what());
  } catch (const core::StorageUnavailable& e) {
    // /ping promises 500 when the storage does not answer.
    status = is_ping ? http::status::internal_server_error : http::status::service_unavailable;
    message = e.what();
    if (!is_ping) retry_after = std::chrono::seconds{1};
    if (std::uint64_t left_out = 0; unavailable_log_due(left_out)) {
      spdlog::warn("storage unavailable: {} ({} more such answers since the last line)", e.what(),
                   left_out);
    }
  } catch (...) {
    spdlog::error("{} {}: {}", std::string(req.method_string()), std::string(req.target()),
                  describe(std::current_exception()));
  }
  Response res = error_response(status, message, req.version(), match.errors);
  if (retry_after) res.set(http::field::retry_after, std::to_string(retry_after->count()));
  return res;
}

void Service::finish_unchecked(Response& res, const Request& req) const {
  if (options_.finish_hook) options_.finish_hook(res);
  const auto ct = res[http::field::content_type];
  const bool compressible = ct.starts_with("text/") || ct.starts_with("application/json");
  if (compressible) {
    res.set(http::field::vary, "Accept-Encoding");
    // A handler that sent its body compressed already (the UI's assets) is left alone.
    if (!res.body().empty() && res[http::field::content_encoding].empty() &&
        accepts_gzip(req[http::field::accept_encoding])) {
      res.body() = core::gzip_compress(res.body(), options_.gzip_level);
      res.set(http::field::content_encoding, "gzip");
    }
  }
  if (!options_.key.empty()) {
    res.set(core::kSignatureHeader, core::hmac_sha256_hex(options_.key, res.body()));
  }
  res.prepare_payload();
}

void Service::finish(Response& res, const Request& req, ErrorFormat format) const noexcept {
  try {
    finish_unchecked(res, req);
    return;
  } catch (...) {
    try {
      spdlog::error("{} {}: finishing the answer failed: {}", std::string(req.method_string()),
                    std::string(req.target()), describe(std::current_exception()));
    } catch (...) {  // NOLINT(bugprone-empty-catch): logging must not make it worse
    }
  }
  // A plain, uncompressed 500; signed when signing itself still works.
  try {
    res = error_response(http::status::internal_server_error, "internal error",
                         req.version() == 0 ? 11 : req.version(), format);
    if (!options_.key.empty()) {
      try {
        res.set(core::kSignatureHeader, core::hmac_sha256_hex(options_.key, res.body()));
      } catch (...) {  // NOLINT(bugprone-empty-catch): unsigned beats no answer
      }
    }
    res.prepare_payload();
  } catch (...) {
    // Out of memory: an empty 500 is the last answer possible.
    res.result(http::status::internal_server_error);
    res.body().clear();
    res.content_length(0);
  }
}

}  // namespace metrics::server
