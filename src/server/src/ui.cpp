#include "ui.hpp"

#include <boost/beast/http/field.hpp>
#include <boost/beast/http/status.hpp>
#include <vector>

#include "metrics/core/errors.hpp"
#include "metrics/core/gzip.hpp"
#include "metrics/server/content.hpp"
#include "metrics/server/service.hpp"

namespace metrics::server {
namespace http = boost::beast::http;

namespace {

// Nothing of the UI comes from another host; the policy makes the browser
// refuse it should a change ever try (inline styles set from script are
// CSSOM, which style-src does not govern).
constexpr std::string_view kPolicy =
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'";

std::string_view bytes(const UiAsset& a) noexcept {
  return {reinterpret_cast<const char*>(a.data), a.size};
}

bool compressible(std::string_view type) noexcept {
  return type.starts_with("text/") || type.starts_with("image/svg") ||
         type.starts_with("application/json");
}

// The gzip form of each asset, in table order ("" when not worth sending).
const std::vector<std::string>& gzipped() {
  static const std::vector<std::string> packed = [] {
    std::vector<std::string> out;
    for (const auto& a : ui_assets()) {
      std::string z;
      if (compressible(a.content_type) && a.size > 256) z = core::gzip_compress(bytes(a), 9);
      if (z.size() >= a.size) z.clear();
      out.push_back(std::move(z));
    }
    return out;
  }();
  return packed;
}

// RFC 9110 13.1.2: a list of entity tags (weak comparison) or "*".
bool etag_matches(std::string_view if_none_match, std::string_view etag) noexcept {
  while (!if_none_match.empty()) {
    const auto comma = if_none_match.find(',');
    std::string_view tag = if_none_match.substr(0, comma);
    if_none_match.remove_prefix(comma == std::string_view::npos ? if_none_match.size() : comma + 1);
    while (!tag.empty() && (tag.front() == ' ' || tag.front() == '\t'))
      tag.remove_prefix(1);
    while (!tag.empty() && (tag.back() == ' ' || tag.back() == '\t'))
      tag.remove_suffix(1);
    if (tag == "*") return true;
    if (tag.starts_with("W/")) tag.remove_prefix(2);
    if (tag == etag) return true;
  }
  return false;
}

}  // namespace

std::span<const UiAsset> ui_assets() noexcept {
  return {ui_data::kAssets, ui_data::kAssetCount};
}

const UiAsset* find_ui_asset(std::string_view name) noexcept {
  if (name.empty()) name = "index.html";
  for (const auto& a : ui_assets()) {
    if (name == a.name) return &a;
  }
  return nullptr;
}

boost::asio::awaitable<Response> ui_handler(RequestContext& ctx, const RouteMatch& match,
                                            std::string&) {
  const Request& req = ctx.request;
  std::string_view path = req.target();
  path = path.substr(0, path.find('?'));
  if (path == "/ui") {
    // Relative links in the page resolve against /ui/, so send it there.
    Response res{http::status::permanent_redirect, req.version()};
    res.set(http::field::location, "/ui/");
    res.set(http::field::content_type, "text/plain; charset=utf-8");
    res.body() = "the UI is at /ui/\n";
    co_return res;
  }
  const auto file = match.param("file");
  const UiAsset* asset = find_ui_asset(file);
  if (asset == nullptr) {
    throw core::NotFound("no such file of the UI: /ui/" + std::string(file.substr(0, 128)));
  }
  const auto index = static_cast<std::size_t>(asset - ui_assets().data());
  Response res{http::status::ok, req.version()};
  res.set(http::field::content_type, asset->content_type);
  res.set(http::field::etag, asset->etag);
  res.set(http::field::cache_control, "no-cache");
  res.set("X-Content-Type-Options", "nosniff");
  res.set("Referrer-Policy", "no-referrer");
  res.set("Content-Security-Policy", kPolicy);
  res.set(http::field::vary, "Accept-Encoding");
  if (etag_matches(req[http::field::if_none_match], asset->etag)) {
    res.result(http::status::not_modified);
    co_return res;
  }
  const std::string& z = gzipped()[index];
  if (!z.empty() && accepts_gzip(req[http::field::accept_encoding])) {
    res.set(http::field::content_encoding, "gzip");
    res.body() = z;
  } else {
    res.body() = std::string(bytes(*asset));
  }
  co_return res;
}

}  // namespace metrics::server
