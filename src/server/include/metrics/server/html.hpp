// The HTML page at GET /: every stored metric, sorted, names escaped. Pure.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "metrics/core/metric.hpp"

namespace metrics::server {

void append_html_escaped(std::string& out, std::string_view text);
[[nodiscard]] std::string render_metrics_page(std::span<const core::Metric> sorted_metrics);

}  // namespace metrics::server
