// The Prometheus HTTP API of the server (API.md Part 2, "Query API";
// docs/QUERY.md "HTTP API"): /api/v1/query, query_range, series, labels,
// label values, metadata, status/buildinfo, rules and alerts, with
// Prometheus 2.42's parameters, JSON shapes, errorTypes and status codes.
//
//   auto api = std::make_shared<server::QueryApi>(server::QueryApiOptions{});
//   ServiceOptions{.query = api, ...};             // the route table's rows call it
//   api->set_rules_source([] { return std::string(R"({"groups":[]})"); });
//
// Queries run on the QueryApi's own pool of max_concurrency threads (never on
// an I/O thread; a query waiting there past its deadline is a timeout, and
// more than max_queued waiting ones are refused with 503 at once). The
// answer travels back to the connection's executor inside the completion
// handler (asio::post), so no state is shared between the worker and the
// connection. shutdown() cancels running queries and joins the pool.
//
// Thread-safe: every member may be called from any thread; set_*_source()
// before the server serves.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/status.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <string_view>

#include "metrics/query/engine.hpp"
#include "metrics/server/router.hpp"
#include "metrics/telemetry/registry.hpp"

namespace boost::asio {
class thread_pool;
}

namespace metrics::server {

struct RequestContext;

struct QueryApiOptions {
  // --query-timeout: a query's deadline (a smaller `timeout` parameter wins).
  std::chrono::milliseconds timeout{std::chrono::minutes{2}};
  // --query-lookback-delta.
  std::chrono::milliseconds lookback_delta{std::chrono::minutes{5}};
  // --query-max-samples.
  std::size_t max_samples = 50'000'000;
  // --query-max-concurrency: queries evaluated at once (the pool's threads).
  unsigned max_concurrency = 20;
  // Queries that may wait for a thread; one more is refused (503).
  std::size_t max_queued = 1000;
};

// What the API's parameters parse to, as Prometheus's web/api/v1 does.
namespace promapi {

// A parameter error; what() is the message after `invalid parameter "x": `.
class ParamError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// parseTime: a unix time in (float) seconds, rounded to milliseconds as
// Prometheus does, or RFC 3339 with up to nanoseconds, or Prometheus's own
// minimum and maximum time strings. Milliseconds since the epoch.
[[nodiscard]] std::int64_t parse_time(std::string_view text);
// parseDuration: (float) seconds or a Prometheus duration (1h30m); nanoseconds.
[[nodiscard]] std::int64_t parse_duration_ns(std::string_view text);
// Go's strconv.ParseFloat(s, 64) syntax (decimal, hex with p exponent, Inf,
// Infinity, NaN; no spaces); false when Go would refuse it.
[[nodiscard]] bool parse_go_float(std::string_view text, double& out);

// Prometheus's minTime and maxTime (the defaults of start and end).
inline constexpr std::int64_t kMinTimeMs = -9223309901257974000LL;
inline constexpr std::int64_t kMaxTimeMs = 9223309901257974999LL;

}  // namespace promapi

class QueryApi {
 public:
  explicit QueryApi(QueryApiOptions options = {});
  ~QueryApi();  // shutdown()
  QueryApi(const QueryApi&) = delete;
  QueryApi& operator=(const QueryApi&) = delete;

  // The `data` of /api/v1/rules and /api/v1/alerts (the alerting engine's);
  // default: {"groups":[]} and {"alerts":[]}.
  using DataSource = std::function<std::string(const QueryParams& params)>;
  void set_rules_source(DataSource source);
  void set_alerts_source(DataSource source);

  // Cancels running queries, answers waiting ones "canceled" and joins the
  // pool. Idempotent.
  void shutdown() noexcept;

  [[nodiscard]] const QueryApiOptions& options() const noexcept { return options_; }
  [[nodiscard]] const query::Engine& engine() const noexcept { return engine_; }

  struct Outcome {
    boost::beast::http::status status = boost::beast::http::status::ok;
    std::string body;
  };
  using Job = std::function<Outcome(const std::atomic<bool>& cancel)>;
  // Runs job on the pool and resumes the caller on its own executor with
  // the outcome.
  boost::asio::awaitable<Outcome> run(Job job);

  [[nodiscard]] std::string rules_data(const QueryParams& params) const;
  [[nodiscard]] std::string alerts_data(const QueryParams& params) const;

  // The phases of a query, as Prometheus's
  // prometheus_engine_query_duration_seconds{slice} names them (plus the
  // JSON encoding of the answer, which Prometheus does not time).
  enum class Endpoint : std::uint8_t { query, query_range };
  enum class Slice : std::uint8_t { queue_time, prepare_time, inner_eval, result_encode };
  static constexpr std::size_t kEndpoints = 2;
  static constexpr std::size_t kSlices = 4;
  // Registers metrics_server_query_duration_seconds{endpoint, slice} (a
  // histogram in seconds) in `registry` and keeps it alive; the Service
  // calls it before it serves. Until then observe() does nothing.
  void instrument(std::shared_ptr<telemetry::Registry> registry);
  void observe(Endpoint endpoint, Slice slice, double seconds) const noexcept;

 private:
  QueryApiOptions options_;
  query::Engine engine_;
  std::atomic<bool> stopping_{false};
  std::atomic<std::size_t> in_flight_{0};
  // Made at the first query; posts to it and shutdown() hold pool_mu_.
  std::mutex pool_mu_;
  std::unique_ptr<boost::asio::thread_pool> pool_;
  bool stopped_ = false;
  mutable std::mutex sources_mu_;
  DataSource rules_;
  DataSource alerts_;
  std::shared_ptr<telemetry::Registry> telemetry_;
  std::array<std::atomic<telemetry::Histogram*>, kEndpoints * kSlices> durations_{};
};

// The handlers of the route table's /api/v1 rows (service.cpp).
boost::asio::awaitable<Response> api_query(RequestContext& ctx, const RouteMatch& m,
                                           std::string& body);
boost::asio::awaitable<Response> api_query_range(RequestContext& ctx, const RouteMatch& m,
                                                 std::string& body);
boost::asio::awaitable<Response> api_series(RequestContext& ctx, const RouteMatch& m,
                                            std::string& body);
boost::asio::awaitable<Response> api_labels(RequestContext& ctx, const RouteMatch& m,
                                            std::string& body);
boost::asio::awaitable<Response> api_label_values(RequestContext& ctx, const RouteMatch& m,
                                                  std::string& body);
boost::asio::awaitable<Response> api_metadata(RequestContext& ctx, const RouteMatch& m,
                                              std::string& body);
boost::asio::awaitable<Response> api_buildinfo(RequestContext& ctx, const RouteMatch& m,
                                               std::string& body);
boost::asio::awaitable<Response> api_rules(RequestContext& ctx, const RouteMatch& m,
                                           std::string& body);
boost::asio::awaitable<Response> api_alerts(RequestContext& ctx, const RouteMatch& m,
                                            std::string& body);

}  // namespace metrics::server
