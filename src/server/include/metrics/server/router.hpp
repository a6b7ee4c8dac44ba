// Maps a request method and target to an endpoint of the wire contract.
// Pure: no I/O, no storage; unit-tested on its own.
//
//   auto r = server::route(http::verb::post, "/update/gauge/Alloc/1.5");
//   // r.endpoint == Endpoint::update_text, r.type == "gauge", r.name == "Alloc", r.value == "1.5"
//
// Thread-safe.
#pragma once

#include <boost/beast/http/verb.hpp>
#include <ostream>  // boost/core string_view needs it before Beast headers
#include <string>
#include <string_view>

namespace metrics::server {

enum class Endpoint {
  not_found,    // unknown or incomplete path
  home,         // GET /
  ping,         // GET /ping
  update_text,  // POST /update/{type}/{name}/{value}
  value_text,   // GET /value/{type}/{name}
  update_json,  // POST /update/
  value_json,   // POST /value/
  updates_json  // POST /updates/
};

// True for the endpoints whose errors are JSON.
[[nodiscard]] bool is_json_endpoint(Endpoint e) noexcept;

struct Route {
  Endpoint endpoint = Endpoint::not_found;
  // Path segments, percent-decoded (text endpoints only; not yet validated).
  std::string type;
  std::string name;
  std::string value;
  // Why the path did not match (for the 404 body) or why the method is wrong.
  std::string error;
  // Set when the path is known but the method is not allowed: the Allow value.
  std::string allow;

  [[nodiscard]] bool method_not_allowed() const noexcept { return !allow.empty(); }
};

// Decodes %XX escapes; false on a malformed escape. '+' is kept as is (a
// path, not a form).
[[nodiscard]] bool percent_decode(std::string_view in, std::string& out);

// The query string (after '?') is ignored.
[[nodiscard]] Route route(boost::beast::http::verb method, std::string_view target);

}  // namespace metrics::server
