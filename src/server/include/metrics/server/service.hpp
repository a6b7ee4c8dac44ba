// The request → response function of the server: routing through the route
// table, signature check, body decoding, the endpoints of the wire contract,
// answer compression and signing, and the one place where errors become HTTP
// statuses.
//
//   server::Service service(repo, {.key = "secret"});
//   http::response<http::string_body> res = co_await service.handle(std::move(req));
//
// Adding an endpoint: one row in default_routes() (service.cpp) and one
// handler function.
//
// Every write goes through the series index (series::SeriesIndex): limits
// are checked there before the storage is asked, and the storage's receive
// time (the clock's) becomes the series' last write and the liveness of its
// (instance, job).
//
// Knows nothing of sockets: the session feeds it parsed requests.
// Thread-safe: one Service serves every connection on every thread.
#pragma once

#include <atomic>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/status.hpp>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/core/clock.hpp"
#include "metrics/history/store.hpp"
#include "metrics/query/queryable.hpp"
#include "metrics/series/index.hpp"
#include "metrics/server/ingest.hpp"
#include "metrics/server/query_api.hpp"
#include "metrics/server/remote_types.hpp"
#include "metrics/server/router.hpp"
#include "metrics/server/sample_times.hpp"
#include "metrics/server/web_auth.hpp"
#include "metrics/storage/repository.hpp"
#include "metrics/telemetry/registry.hpp"

namespace metrics::server {
namespace detail {
class HttpMetrics;
}

struct ServiceOptions {
  std::string key{};  // empty: no signing
  std::size_t max_body_bytes = 8u << 20;
  std::size_t max_batch_items = 100'000;
  int gzip_level = 1;
  // With a key: accept writes that carry no signature (a wrong one is still 401).
  bool allow_unsigned = false;
  // Receive times of writes, liveness and expiry (a ManualClock in tests).
  std::shared_ptr<core::Clock> clock = core::real_clock();
  // --max-series, --max-series-per-instance.
  series::Limits limits{};
  // --stale-after: agent_up is 1 while the last push is younger.
  std::chrono::milliseconds stale_after{std::chrono::minutes{1}};
  // --series-ttl: a series not written for this long expires; 0 keeps forever.
  std::chrono::milliseconds series_ttl{std::chrono::hours{24}};
  // After every successful write: its series points go to these sinks
  // (ingest.hpp). Null or empty: no fan-out.
  std::shared_ptr<const IngestFanout> fanout{};
  // The history the sinks write and range reads read (null: none).
  std::shared_ptr<history::HistoryStore> history{};
  // The server's own metrics (GET /metrics): request counts and latencies,
  // the index, the history, the storage and whatever other components
  // register. Null: the service makes its own (see Service::telemetry()).
  std::shared_ptr<telemetry::Registry> telemetry{};
  // The Prometheus HTTP API's engine, limits and pool (query_api.hpp); null:
  // the service makes one with the defaults.
  std::shared_ptr<QueryApi> query{};
  // Who may read (--web-config, --web-tokens); null or without users and
  // tokens: anyone. Writes keep the signature rules; with the token file's
  // authenticated_writes a valid user or token stands in for a missing
  // signature.
  std::shared_ptr<WebAuth> auth{};
  // Tests only: called on every answer before it is compressed and signed;
  // may throw to simulate a failure there.
  std::function<void(const Response&)> finish_hook{};
};

// Whether the client of a request has gone (closed or reset its
// connection), for work worth stopping then: a query whose answer nobody
// will read. The connection makes one per request; a handler that wants it
// calls watch(), which starts watching (once) and returns the flag, true
// once the peer is gone.
class ClientWatch {
 public:
  virtual ~ClientWatch() = default;
  virtual std::shared_ptr<const std::atomic<bool>> watch() = 0;
};

// What a handler gets besides the route match and the decoded body.
struct RequestContext {
  storage::Repository& repo;
  const ServiceOptions& options;
  const Request& request;
  series::SeriesIndex& index;
  // The newest sample time of each remote-written series (POST /api/v1/write).
  SampleTimes* sample_times = nullptr;
  // The time of this server's last accepted write (GET / shows it).
  std::atomic<std::int64_t>* last_write_ms = nullptr;
  // The # TYPE of remote-written names (/metrics, /api/v1/metadata).
  RemoteTypes* remote_types = nullptr;
  // The connection's watch on its client (null: nothing watches, as for a
  // request handled without a socket).
  ClientWatch* client = nullptr;

  // The server's clock as milliseconds since the Unix epoch.
  [[nodiscard]] std::int64_t now_ms() const;
};

// The endpoints of the wire contract (docs/API.md).
[[nodiscard]] std::span<const RouteSpec> default_routes() noexcept;

class Service {
 public:
  Service(storage::Repository& repo, ServiceOptions options,
          std::span<const RouteSpec> routes = default_routes());
  // Stops the query API's pool first: its queries read the index.
  ~Service();
  Service(const Service&) = delete;
  Service& operator=(const Service&) = delete;

  // Never throws: every failure becomes an error response (a 500 with a body
  // for anything unexpected, including non-std exceptions and failures while
  // compressing or signing the answer).
  // `peer` is the client's address (the failure throttle's key; may be
  // empty); `client`, the connection's watch on it (queries stop when it
  // reports the client gone; may be null).
  boost::asio::awaitable<Response> handle(Request req, std::string_view peer = {},
                                          ClientWatch* client = nullptr);

  // A finished error answer for failures outside a fully read request (a
  // header block or body that is too large, a broken request): `req` holds
  // whatever of the header was read, in the error format of its endpoint.
  [[nodiscard]] Response reject(boost::beast::http::status status, std::string_view message,
                                const Request& req) const;

  [[nodiscard]] const RouteTable& routes() const noexcept { return table_; }

  // The live series index (for /metrics, /api/v1/series and history).
  [[nodiscard]] series::SeriesIndex& index() noexcept { return *index_; }
  [[nodiscard]] const ServiceOptions& options() const noexcept { return options_; }
  // The registry GET /metrics renders: components add their families or
  // collectors here (alert evaluations, notifications, remote write).
  [[nodiscard]] telemetry::Registry& telemetry() const noexcept { return *options_.telemetry; }
  // The history store (null when the service has none): the query
  // engine's range reads go through read_history(index(), *history(), ...).
  [[nodiscard]] history::HistoryStore* history() const noexcept { return options_.history.get(); }
  // The samples of the given live series in [start_ms, end_ms] (empty
  // without a history), in `keys` order.
  [[nodiscard]] std::vector<history::SeriesSamples> read_history(
      std::span<const core::SeriesKey> keys, std::int64_t start_ms, std::int64_t end_ms) const;

  // The PromQL view of the history at the server's time of each select()
  // (the liveness series end at that time): what rule evaluation reads.
  // Lives as long as the service.
  [[nodiscard]] const query::Queryable& live_queryable() const noexcept { return *live_queryable_; }

  // Stores samples of series named by their labels (`__name__` and the
  // rest) at their own timestamps, as remote write in does: series-only
  // gauges (no classic value, no liveness), each series' newest value its
  // current one, and every sample into the history through the fan-out.
  // Blocking (waits for the storage); for rule output (recording rules,
  // ALERTS, ALERTS_FOR_STATE). Throws core::InvalidInput for a label set
  // that breaks the rules, core::LimitExceeded past the series limits, and
  // what the storage throws.
  struct SeriesSample {
    std::vector<core::Label> labels;  // with __name__
    std::int64_t t_ms = 0;
    double v = 0;
  };
  void write_series_samples(std::span<const SeriesSample> samples);

  // Fills the index from repo.list_series() (blocking). False, with a
  // warning logged, when the storage does not answer; calling it again
  // later adds what is missing (it is idempotent).
  bool load_index() noexcept;

  // One expiry sweep (blocking): repo.expire(now - series_ttl), then the
  // expired keys leave the index; logs the count when there were any.
  // Returns how many series the storage expired; 0 with series_ttl 0.
  // Throws what the storage throws.
  std::size_t expire_once();

  // How often expire_once() is due: min(series_ttl / 10, 1 min), at least
  // 1 ms; zero when series never expire.
  [[nodiscard]] std::chrono::milliseconds expiry_interval() const noexcept;

 private:
  [[nodiscard]] Response error_response(boost::beast::http::status status, std::string_view message,
                                        unsigned version, ErrorFormat format) const;
  // `waived`: a valid user or token stands in for a missing signature.
  void check_signature(const RouteSpec& route, const Request& req, bool waived) const;
  // What a refused authentication adds to the answer.
  struct AuthAnswer {
    std::string challenge;  // WWW-Authenticate of a 401
    std::optional<std::chrono::seconds> retry_after;
  };
  // Throws HttpError 401/429 when the route needs credentials that the
  // request lacks; true when valid credentials stand in for a signature.
  boost::asio::awaitable<bool> authorize(const RouteSpec& route, const Request& req,
                                         std::string_view peer, AuthAnswer& answer) const;
  [[nodiscard]] Response map_exception(std::exception_ptr err, const RouteMatch& match,
                                       const Request& req) const;
  // Compresses and signs; on failure replaces the answer with a plain 500.
  void finish(Response& res, const Request& req, ErrorFormat format) const noexcept;
  void finish_unchecked(Response& res, const Request& req) const;

  storage::Repository& repo_;
  ServiceOptions options_;
  RouteTable table_;
  std::unique_ptr<series::SeriesIndex> index_;
  std::unique_ptr<detail::HttpMetrics> http_metrics_;
  std::vector<telemetry::Registration> collectors_;
  std::unique_ptr<SampleTimes> sample_times_;
  std::unique_ptr<RemoteTypes> remote_types_ = std::make_unique<RemoteTypes>();
  std::unique_ptr<query::Queryable> live_queryable_;
  std::atomic<std::int64_t> last_write_ms_{0};
};

}  // namespace metrics::server
