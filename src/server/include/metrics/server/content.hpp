// Header helpers for content negotiation: Accept-Encoding with q-values,
// Content-Type checks, Content-Encoding of request bodies. Pure.
//
// Thread-safe.
#pragma once

#include <string_view>

namespace metrics::server {

// True when an Accept-Encoding value allows gzip (an explicit "gzip" or "*"
// with q > 0; "gzip;q=0" forbids it even when "*" allows).
[[nodiscard]] bool accepts_gzip(std::string_view accept_encoding) noexcept;

// True when the Content-Type is absent (empty) or JSON: application/json or
// application/<anything>+json, parameters such as charset ignored.
[[nodiscard]] bool is_json_content_type(std::string_view content_type) noexcept;

enum class BodyEncoding { identity, gzip, unsupported };

// Parses a request's Content-Encoding ("", "identity", "gzip", "x-gzip").
[[nodiscard]] BodyEncoding parse_content_encoding(std::string_view value) noexcept;

}  // namespace metrics::server
