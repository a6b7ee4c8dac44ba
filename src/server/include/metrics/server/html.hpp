// The HTML page at GET /: every classic value (type and name, labels
// aside), sorted, names escaped. Pure.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "metrics/core/metric.hpp"

namespace metrics::server {

void append_html_escaped(std::string& out, std::string_view text);
// now_ms: the page's time; last_write_ms: this server's last accepted
// write (0: none since it started). Each value also shows as an operator
// reads it (bytes in KiB/MiB/GiB, counts grouped, fractions in percent).
[[nodiscard]] std::string render_metrics_page(std::span<const core::Point> sorted_metrics,
                                              std::int64_t now_ms = 0,
                                              std::int64_t last_write_ms = 0);

}  // namespace metrics::server
