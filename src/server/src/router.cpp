#include "metrics/server/router.hpp"

#include <array>
#include <vector>

namespace metrics::server {
namespace http = boost::beast::http;

namespace {

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Splits "/a/b/c" into {"a","b","c"}; a trailing '/' yields a trailing "".
std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> parts;
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  for (;;) {
    auto slash = path.find('/');
    parts.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

Route not_found(std::string message) {
  Route r;
  r.error = std::move(message);
  return r;
}

Route make(Endpoint e, http::verb method, http::verb allowed, std::string_view allow) {
  Route r;
  r.endpoint = e;
  if (method != allowed) r.allow = std::string(allow);
  return r;
}

}  // namespace

bool is_json_endpoint(Endpoint e) noexcept {
  return e == Endpoint::update_json || e == Endpoint::value_json || e == Endpoint::updates_json;
}

bool percent_decode(std::string_view in, std::string& out) {
  out.clear();
  out.reserve(in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c != '%') {
      out.push_back(c);
      continue;
    }
    if (i + 2 >= in.size()) return false;
    int hi = hex_value(in[i + 1]);
    int lo = hex_value(in[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

Route route(http::verb method, std::string_view target) {
  if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
  if (target.empty() || target.front() != '/') return not_found("unknown path");

  if (target == "/") return make(Endpoint::home, method, http::verb::get, "GET");
  if (target == "/ping") return make(Endpoint::ping, method, http::verb::get, "GET");
  if (target == "/update/" || target == "/update") {
    return make(Endpoint::update_json, method, http::verb::post, "POST");
  }
  if (target == "/updates/" || target == "/updates") {
    return make(Endpoint::updates_json, method, http::verb::post, "POST");
  }
  if (target == "/value/" || target == "/value") {
    return make(Endpoint::value_json, method, http::verb::post, "POST");
  }

  auto parts = split_path(target);
  const bool is_update = parts[0] == "update";
  if (!is_update && parts[0] != "value") return not_found("unknown path");

  // /update/{type}/{name}/{value} or /value/{type}/{name}
  const std::size_t want = is_update ? 4 : 3;
  if (parts.size() < 3 || parts[2].empty()) return not_found("missing metric name");
  if (is_update && (parts.size() < 4 || parts[3].empty())) return not_found("missing metric value");
  if (parts.size() > want) return not_found("unknown path");

  Route r = is_update ? make(Endpoint::update_text, method, http::verb::post, "POST")
                      : make(Endpoint::value_text, method, http::verb::get, "GET");
  if (!percent_decode(parts[1], r.type) || !percent_decode(parts[2], r.name) ||
      (is_update && !percent_decode(parts[3], r.value))) {
    r.error = "malformed percent-encoding in path";
  }
  return r;
}

}  // namespace metrics::server
