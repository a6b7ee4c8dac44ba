// The route table of the server: each endpoint is one row (path pattern,
// methods, error format, body kind, whether it writes, query parameters) and
// one handler function. Matching is pure: no I/O, no storage; unit-tested on
// its own.
//
//   RouteTable table(default_routes());            // the wire contract's endpoints
//   RouteMatch m;
//   table.match(http::verb::post, "/update/gauge/Alloc/1.5", m);
//   // m.route->name == "update_text", m.param("name") == "Alloc"
//
// Patterns: literal segments and `{param}` segments; `{param:label}` is a
// parameter that must be present and non-empty (404 "missing <label>"
// otherwise). A pattern ending in '/' also matches without the slash.
// A path that matches a row but not its method is a 405 whose Allow lists
// the methods of every row that matches the path.
//
// Thread-safe: a RouteTable is immutable after construction.
#pragma once

#include <array>
#include <boost/asio/awaitable.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <optional>
#include <ostream>  // boost/core string_view needs it before Beast headers
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace metrics::server {

using Request = boost::beast::http::request<boost::beast::http::string_body>;
using Response = boost::beast::http::response<boost::beast::http::string_body>;

// What an error answer of the endpoint looks like.
enum class ErrorFormat { text, json };

// What the endpoint does with a request body.
enum class BodyKind {
  none,    // ignored (still decoded and size-checked)
  json,    // a JSON document: Content-Type must be absent or JSON (415)
  form,    // application/x-www-form-urlencoded: its fields join the query parameters
  snappy,  // remote write 1.0: Content-Encoding snappy (or none), Content-Type absent or
           // application/x-protobuf (415); the handler gets the raw body and inflates it
};

// A write needs a valid signature when a key is configured (unless unsigned
// writes are allowed); a read is checked only when it carries one. A read
// needs a user or token when the web config sets any (web_auth.hpp); an
// open endpoint (the health check) never does.
enum class Access { read, write, open };

// Query-string (or form) parameters, percent-decoded, '+' as a space, in
// order; repeated keys are kept (`match[]=a&match[]=b`).
class QueryParams {
 public:
  // Parses "a=1&b=%20x&c"; only `keys` are kept (all when empty). False on a
  // malformed escape (what was parsed before stays).
  bool parse(std::string_view query, std::span<const std::string_view> keys = {});
  [[nodiscard]] std::optional<std::string_view> get(std::string_view key) const;
  [[nodiscard]] std::vector<std::string_view> all(std::string_view key) const;
  [[nodiscard]] bool empty() const noexcept { return items_.empty(); }
  [[nodiscard]] std::size_t size() const noexcept { return items_.size(); }
  void clear() noexcept { items_.clear(); }

 private:
  std::vector<std::pair<std::string, std::string>> items_;
};

struct RouteSpec;

// The result of matching a request against the table.
struct RouteMatch {
  const RouteSpec* route = nullptr;  // null: no row matches the path (or method, see allow)
  // Path parameters, percent-decoded, in pattern order.
  static constexpr std::size_t kMaxParams = 4;
  std::array<std::string_view, kMaxParams> param_names{};
  std::array<std::string, kMaxParams> param_values{};
  std::size_t params = 0;
  QueryParams query;  // only the row's declared parameters (and form fields)
  // Why the path did not match (404 body) or is malformed (400 body).
  std::string error;
  // Set when the path is known but the method is not allowed: the Allow value.
  std::string allow;
  // The error format when `route` is null but the path is known (405).
  ErrorFormat errors = ErrorFormat::text;

  [[nodiscard]] bool method_not_allowed() const noexcept { return !allow.empty(); }
  [[nodiscard]] std::string_view param(std::string_view name) const noexcept;
  void reset();
};

struct RequestContext;

// (request context, route match, body) -> reply. Throws for errors; the
// Service maps exceptions to statuses in the row's error format.
using Handler = boost::asio::awaitable<Response> (*)(RequestContext& ctx, const RouteMatch& match,
                                                     std::string& body);

struct RouteSpec {
  std::string_view name{};     // for tests and logs
  std::string_view pattern{};  // "/update/{type}/{name:metric name}/{value:metric value}"
  std::array<boost::beast::http::verb, 3> methods{};  // unused slots: verb::unknown
  Handler handler = nullptr;
  ErrorFormat errors = ErrorFormat::text;
  BodyKind body = BodyKind::none;
  Access access = Access::read;
  std::array<std::string_view, 6> query{};  // declared query parameters; unused: empty
};

class RouteTable {
 public:
  // Rows are matched in order; the first row whose path and method match wins.
  // Throws std::invalid_argument on a malformed pattern.
  explicit RouteTable(std::span<const RouteSpec> routes);

  // Fills `out` (reset first). Allocates nothing for a matched path without
  // query parameters beyond the decoded path parameters.
  void match(boost::beast::http::verb method, std::string_view target, RouteMatch& out) const;

  // The error format of whatever row matches the path, any method (for
  // answers to requests that could not be read in full).
  [[nodiscard]] ErrorFormat error_format(std::string_view target) const;

  [[nodiscard]] std::span<const RouteSpec> routes() const noexcept { return routes_; }

 private:
  struct Segment {
    std::string_view literal;  // when !is_param
    std::string_view name;     // when is_param
    std::string_view label;    // non-empty: required
    bool is_param = false;
  };
  struct Compiled {
    const RouteSpec* spec;
    std::vector<Segment> segments;
    bool optional_trailing_slash = false;
    bool root = false;
    std::string_view head;  // the first segment when literal: a quick reject
  };
  enum class Outcome { match, missing, no };
  static Outcome match_path(const Compiled& c, std::string_view path, RouteMatch* out,
                            std::string_view* missing);

  std::span<const RouteSpec> routes_;
  std::vector<Compiled> compiled_;
};

// Decodes %XX escapes; false on a malformed escape. '+' is kept as is (a
// path, not a form).
[[nodiscard]] bool percent_decode(std::string_view in, std::string& out);

}  // namespace metrics::server
