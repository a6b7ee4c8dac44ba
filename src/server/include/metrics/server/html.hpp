// The HTML page at GET /: every classic value (type and name, labels
// aside), sorted, names escaped. Pure.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "metrics/core/metric.hpp"

namespace metrics::server {

void append_html_escaped(std::string& out, std::string_view text);
[[nodiscard]] std::string render_metrics_page(std::span<const core::Point> sorted_metrics);

}  // namespace metrics::server
