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
// Knows nothing of sockets: the session feeds it parsed requests.
// Thread-safe: one Service serves every connection on every thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/status.hpp>
#include <cstddef>
#include <exception>
#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "metrics/server/router.hpp"
#include "metrics/storage/repository.hpp"

namespace metrics::server {

struct ServiceOptions {
  std::string key{};  // empty: no signing
  std::size_t max_body_bytes = 8u << 20;
  std::size_t max_batch_items = 100'000;
  int gzip_level = 1;
  // With a key: accept writes that carry no signature (a wrong one is still 401).
  bool allow_unsigned = false;
  // Tests only: called on every answer before it is compressed and signed;
  // may throw to simulate a failure there.
  std::function<void(const Response&)> finish_hook{};
};

// What a handler gets besides the route match and the decoded body.
struct RequestContext {
  storage::Repository& repo;
  const ServiceOptions& options;
  const Request& request;
};

// The endpoints of the wire contract (docs/API.md).
[[nodiscard]] std::span<const RouteSpec> default_routes() noexcept;

class Service {
 public:
  Service(storage::Repository& repo, ServiceOptions options,
          std::span<const RouteSpec> routes = default_routes());

  // Never throws: every failure becomes an error response (a 500 with a body
  // for anything unexpected, including non-std exceptions and failures while
  // compressing or signing the answer).
  boost::asio::awaitable<Response> handle(Request req);

  // A finished error answer for failures outside a fully read request (a
  // header block or body that is too large, a broken request): `req` holds
  // whatever of the header was read, in the error format of its endpoint.
  [[nodiscard]] Response reject(boost::beast::http::status status, std::string_view message,
                                const Request& req) const;

  [[nodiscard]] const RouteTable& routes() const noexcept { return table_; }

 private:
  [[nodiscard]] Response error_response(boost::beast::http::status status, std::string_view message,
                                        unsigned version, ErrorFormat format) const;
  void check_signature(const RouteSpec& route, const Request& req) const;
  [[nodiscard]] Response map_exception(std::exception_ptr err, const RouteMatch& match,
                                       const Request& req) const;
  // Compresses and signs; on failure replaces the answer with a plain 500.
  void finish(Response& res, const Request& req, ErrorFormat format) const noexcept;
  void finish_unchecked(Response& res, const Request& req) const;

  storage::Repository& repo_;
  ServiceOptions options_;
  RouteTable table_;
};

}  // namespace metrics::server
