// What the agent sends, as bytes and URLs: the server's address turned into
// URLs, the gzip'd batch body, and the single-metric forms of the json and
// text sending modes. The sending itself is metrics::outbound's.
//
// Pure functions; thread-safe.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

#include "metrics/core/metric.hpp"

namespace metrics::agent::detail {

// The server's base URL ("http://host:port" or the given http(s):// URL
// without trailing '/') for "host:port" or an http(s):// URL; nullopt with
// *error set when the address cannot be used.
[[nodiscard]] std::optional<std::string> base_url(std::string_view address,
                                                  std::string* error = nullptr);
// base_url + "/updates/".
[[nodiscard]] std::optional<std::string> updates_url(std::string_view address,
                                                     std::string* error = nullptr);

// The request body as sent: the JSON array, gzip'd.
[[nodiscard]] std::string encode_body(std::span<const core::Metric> batch);

// The single-metric request bodies and paths of the json and text modes:
// the metric's JSON object gzip'd, and "/update/{type}/{name}/{value}" with
// the name percent-encoded.
[[nodiscard]] std::string encode_metric_body(const core::Metric& metric);
[[nodiscard]] std::string text_update_path(const core::Metric& metric);

}  // namespace metrics::agent::detail
