// The web UI's files (ui/ and the vendored uPlot), embedded into the binary
// at build time by cmake/EmbedAssets.cmake, and the handler that serves
// them at /ui/ with their content type, an ETag (304 on If-None-Match),
// Cache-Control: no-cache (always revalidated, so an upgrade shows at once)
// and gzip when the client accepts it (compressed once, on first use).
//
// Thread-safe: the table is immutable; the gzip cache is built once under
// a function-local static's lock.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "metrics/server/router.hpp"

namespace metrics::server {

struct RequestContext;

struct UiAsset {
  const char* name;          // "app.js": the path under /ui/
  const char* content_type;  // "text/javascript; charset=utf-8"
  const char* etag;          // "\"<20 hex digits of its SHA-256>\""
  const unsigned char* data;
  std::size_t size;
};

namespace ui_data {
extern const UiAsset kAssets[];
extern const std::size_t kAssetCount;
}  // namespace ui_data

[[nodiscard]] std::span<const UiAsset> ui_assets() noexcept;
// Null when no asset has that name; "" is index.html.
[[nodiscard]] const UiAsset* find_ui_asset(std::string_view name) noexcept;

// GET /ui, /ui/ and /ui/{file}.
boost::asio::awaitable<Response> ui_handler(RequestContext& ctx, const RouteMatch& match,
                                            std::string& body);

}  // namespace metrics::server
