// The request → response function of the server: routing, signature check,
// body decoding, the endpoints of the wire contract, answer compression and
// signing, and the one place where errors become HTTP statuses.
//
//   server::Service service(repo, {.key = "secret"});
//   http::response<http::string_body> res = co_await service.handle(std::move(req));
//
// Knows nothing of sockets: the session feeds it parsed requests.
// Thread-safe: one Service serves every connection on every thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstddef>
#include <exception>
#include <string>

#include "metrics/server/router.hpp"
#include "metrics/storage/repository.hpp"

namespace metrics::server {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

struct ServiceOptions {
  std::string key;  // empty: no signing
  std::size_t max_body_bytes = 8u << 20;
  std::size_t max_batch_items = 100'000;
  int gzip_level = 1;
};

class Service {
 public:
  Service(storage::Repository& repo, ServiceOptions options);

  // Never throws: every failure becomes an error response.
  boost::asio::awaitable<Response> handle(Request req);

  // A finished error answer for failures outside a fully read request (a
  // header block or body that is too large, a broken request): `req` holds
  // whatever of the header was read.
  [[nodiscard]] Response reject(boost::beast::http::status status, std::string_view message,
                                const Request& req) const;

 private:
  [[nodiscard]] Response error_response(boost::beast::http::status status, std::string_view message,
                                        unsigned version, bool json) const;
  boost::asio::awaitable<Response> dispatch(const Route& route, Request& req, std::string& body);
  [[nodiscard]] Response map_exception(std::exception_ptr err, Endpoint endpoint,
                                       const Request& req) const;
  void finish(Response& res, const Request& req) const;

  storage::Repository& repo_;
  ServiceOptions options_;
};

}  // namespace metrics::server
