#include "metrics/server/service.hpp"

#include <spdlog/spdlog.h>

#include <atomic>
#include <boost/asio/associated_executor.hpp>
#include <boost/asio/async_result.hpp>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/http/field.hpp>
#include <chrono>

#include "metrics/core/batch.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/core/gzip.hpp"
#include "metrics/core/json_codec.hpp"
#include "metrics/core/signature.hpp"
#include "metrics/core/value_format.hpp"
#include "metrics/server/content.hpp"
#include "metrics/server/html.hpp"

namespace metrics::server {
namespace asio = boost::asio;
namespace http = boost::beast::http;

namespace {

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

// Awaits a Repository call, resuming the coroutine on its own executor
// whichever thread the storage completes on.
template <class T, class Start>
asio::awaitable<T> await_storage(Start start) {
  co_return co_await asio::async_initiate<decltype(asio::use_awaitable),
                                          void(std::exception_ptr, T)>(
      [start = std::move(start)](auto handler) mutable {
        auto executor = asio::get_associated_executor(handler);
        // Asio handlers are move-only; storage callbacks are std::function.
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        start([shared, executor](std::exception_ptr err, T value) {
          asio::dispatch(executor, [shared, err, value = std::move(value)]() mutable {
            (*shared)(err, std::move(value));
          });
        });
      },
      asio::use_awaitable);
}

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

std::string value_text(const core::Metric& m) {
  return m.type == core::MetricType::gauge ? core::format_gauge(m.value)
                                           : core::format_counter(m.delta);
}

}  // namespace

Service::Service(storage::Repository& repo, ServiceOptions options)
    : repo_(repo), options_(std::move(options)) {}

asio::awaitable<Response> Service::handle(Request req) {
  Route route = server::route(req.method(), req.target());
  Response res;
  std::exception_ptr error;
  try {
    if (route.endpoint == Endpoint::not_found) {
      throw core::NotFound(route.error);
    }
    if (route.method_not_allowed()) {
      throw HttpError(
          http::status::method_not_allowed,
          "method " + std::string(req.method_string()) + " not allowed; use " + route.allow);
    }
    if (!route.error.empty()) throw core::InvalidInput(route.error);

    std::string body;
    if (req.method() == http::verb::post) {
      if (!options_.key.empty()) {
        auto sig = req[core::kSignatureHeader];
        if (sig.empty())
          throw HttpError(http::status::unauthorized, "missing HashSHA256 signature");
        if (!core::verify_signature(options_.key, req.body(), sig)) {
          throw HttpError(http::status::unauthorized, "wrong HashSHA256 signature");
        }
      }
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
    if (is_json_endpoint(route.endpoint) && !is_json_content_type(req[http::field::content_type])) {
      throw HttpError(http::status::unsupported_media_type,
                      "Content-Type must be application/json");
    }
    res = co_await dispatch(route, req, body);
  } catch (...) {
    error = std::current_exception();
  }
  if (error) res = map_exception(error, route.endpoint, req);
  if (res.result() == http::status::method_not_allowed) res.set(http::field::allow, route.allow);
  finish(res, req);
  co_return res;
}

asio::awaitable<Response> Service::dispatch(const Route& route, Request& req, std::string& body) {
  switch (route.endpoint) {
    case Endpoint::home: {
      auto all = co_await await_storage<std::vector<core::Metric>>(
          [this](auto done) { repo_.list(std::move(done)); });
      co_return make_response(req, http::status::ok, kHtml, render_metrics_page(all));
    }
    case Endpoint::ping: {
      const auto health = co_await await_storage<storage::Health>(
          [this](auto done) { repo_.health(std::move(done)); });
      if (!health.ok) throw core::StorageUnavailable("storage unavailable: " + health.reason);
      co_return make_response(req, http::status::ok, kText, "ok\n");
    }
    case Endpoint::update_text: {
      core::Metric m;
      m.type = parse_type_or_throw(route.type);
      validate_name_or_throw(route.name);
      m.id = route.name;
      if (m.type == core::MetricType::gauge) {
        auto v = core::parse_gauge(route.value);
        if (!v) throw core::InvalidInput("invalid gauge value: expected a finite number");
        m.value = *v;
      } else {
        auto v = core::parse_counter(route.value);
        if (!v) throw core::InvalidInput("invalid counter value: expected a 64-bit integer");
        m.delta = *v;
      }
      std::vector<core::Metric> batch{std::move(m)};
      co_await await_storage<std::vector<core::Metric>>(
          [this, &batch](auto done) { repo_.apply(std::move(batch), std::move(done)); });
      co_return make_response(req, http::status::ok, kText, "");
    }
    case Endpoint::value_text: {
      core::MetricKey key{parse_type_or_throw(route.type), route.name};
      validate_name_or_throw(key.id);
      auto found = co_await await_storage<std::optional<core::Metric>>(
          [this, &key](auto done) { repo_.get(key, std::move(done)); });
      if (!found) throw core::NotFound("metric not found");
      co_return make_response(req, http::status::ok, kText, value_text(*found));
    }
    case Endpoint::update_json: {
      std::vector<core::Metric> batch{core::decode_metric(body)};
      auto stored = co_await await_storage<std::vector<core::Metric>>(
          [this, &batch](auto done) { repo_.apply(std::move(batch), std::move(done)); });
      if (stored.size() != 1) throw std::logic_error("storage answered a wrong batch size");
      co_return make_response(req, http::status::ok, kJson, core::encode_metric(stored.front()));
    }
    case Endpoint::value_json: {
      auto key = core::decode_key(body);
      auto found = co_await await_storage<std::optional<core::Metric>>(
          [this, &key](auto done) { repo_.get(key, std::move(done)); });
      if (!found) throw core::NotFound("metric not found");
      co_return make_response(req, http::status::ok, kJson, core::encode_metric(*found));
    }
    case Endpoint::updates_json: {
      auto merged = core::merge_batch(core::decode_batch(body, options_.max_batch_items));
      std::vector<core::Metric> stored;
      if (!merged.empty()) {
        stored = co_await await_storage<std::vector<core::Metric>>(
            [this, &merged](auto done) { repo_.apply(std::move(merged), std::move(done)); });
      }
      co_return make_response(req, http::status::ok, kJson, core::encode_batch(stored));
    }
    case Endpoint::not_found:
      break;
  }
  throw core::NotFound("unknown path");
}

Response Service::error_response(http::status status, std::string_view message, unsigned version,
                                 bool json) const {
  Response res{status, version};
  if (json) {
    res.set(http::field::content_type, kJson);
    res.body() = core::encode_error(message);
  } else {
    res.set(http::field::content_type, kText);
    res.body() = std::string(message) + "\n";
  }
  return res;
}

Response Service::reject(http::status status, std::string_view message, const Request& req) const {
  const bool json = is_json_endpoint(server::route(req.method(), req.target()).endpoint);
  Response res = error_response(status, message, req.version() == 0 ? 11 : req.version(), json);
  finish(res, req);
  return res;
}

Response Service::map_exception(std::exception_ptr err, Endpoint endpoint,
                                const Request& req) const {
  http::status status = http::status::internal_server_error;
  std::string message = "internal error";
  std::optional<std::chrono::seconds> retry_after;
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
    status = endpoint == Endpoint::ping ? http::status::internal_server_error
                                        : http::status::service_unavailable;
    message = e.what();
    if (endpoint != Endpoint::ping) retry_after = std::chrono::seconds{1};
    if (std::uint64_t left_out = 0; unavailable_log_due(left_out)) {
      spdlog::warn("storage unavailable: {} ({} more such answers since the last line)", e.what(),
                   left_out);
    }
  } catch (const std::exception& e) {
    spdlog::error("{} {}: {}", std::string(req.method_string()), std::string(req.target()),
                  e.what());
  }
  Response res = error_response(status, message, req.version(), is_json_endpoint(endpoint));
  if (retry_after) res.set(http::field::retry_after, std::to_string(retry_after->count()));
  return res;
}

void Service::finish(Response& res, const Request& req) const {
  const auto ct = res[http::field::content_type];
  const bool compressible = ct.starts_with("text/") || ct.starts_with("application/json");
  if (compressible) {
    res.set(http::field::vary, "Accept-Encoding");
    if (!res.body().empty() && accepts_gzip(req[http::field::accept_encoding])) {
      res.body() = core::gzip_compress(res.body(), options_.gzip_level);
      res.set(http::field::content_encoding, "gzip");
    }
  }
  if (!options_.key.empty()) {
    res.set(core::kSignatureHeader, core::hmac_sha256_hex(options_.key, res.body()));
  }
  res.prepare_payload();
}

}  // namespace metrics::server
