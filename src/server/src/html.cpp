#include "metrics/server/html.hpp"

#include "metrics/core/value_format.hpp"

namespace metrics::server {

void append_html_escaped(std::string& out, std::string_view text) {
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out.push_back(c);
    }
  }
}

std::string render_metrics_page(std::span<const core::Point> sorted_metrics) {
  std::string out;
  out.reserve(1024 + sorted_metrics.size() * 96);
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"refresh\" content=\"10\">\n"
      "<title>Metrics</title>\n<style>\n"
      "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\n"
      "table{border-collapse:collapse}\n"
      "th,td{padding:.25em .75em;border-bottom:1px solid #ddd;text-align:left}\n"
      "td.value{font-family:ui-monospace,monospace;text-align:right}\n"
      "nav{float:right}\n"
      "</style>\n</head>\n<body>\n"
      "<nav><a href=\"/ui/\">Web UI: instances, charts, queries, alerts</a></nav>\n"
      "<h1>Metrics</h1>\n<p>";
  out += std::to_string(sorted_metrics.size());
  out += sorted_metrics.size() == 1 ? " metric" : " metrics";
  out +=
      "</p>\n<table>\n<thead><tr><th>Name</th><th>Type</th><th>Value</th></tr></thead>\n<tbody>\n";
  for (const auto& m : sorted_metrics) {
    out += "<tr><td>";
    append_html_escaped(out, m.id);
    out += "</td><td>";
    out += core::to_string(m.type);
    out += "</td><td class=\"value\">";
    if (m.type == core::MetricType::gauge) {
      core::append_gauge(out, m.value);
    } else {
      core::append_counter(out, m.total);
    }
    out += "</td></tr>\n";
  }
  out += "</tbody>\n</table>\n</body>\n</html>\n";
  return out;
}

}  // namespace metrics::server
