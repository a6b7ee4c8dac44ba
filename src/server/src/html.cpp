#include "metrics/server/html.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <string_view>

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

namespace {

// Names of the agent's metric set (docs/AGENT.md) whose values are bytes.
bool is_bytes(std::string_view name) {
  static constexpr std::array<std::string_view, 22> kBytes{
      "Alloc",      "BuckHashSys",  "FreeMemory", "GCSys",         "HeapAlloc", "HeapIdle",
      "HeapInuse",  "HeapReleased", "HeapSys",    "MCacheInuse",   "MCacheSys", "MSpanInuse",
      "MSpanSys",   "NextGC",       "OtherSys",   "StackInuse",    "StackSys",  "Sys",
      "TotalAlloc", "TotalMemory",  "ProcessRSS", "ProcessPeakRSS"};
  if (std::find(kBytes.begin(), kBytes.end(), name) != kBytes.end()) return true;
  for (std::string_view prefix : {"Glibc", "Jemalloc", "Tcmalloc", "Mimalloc"}) {
    if (name.starts_with(prefix) && !name.ends_with("Count") && !name.ends_with("Arenas"))
      return true;
  }
  return name.ends_with("Memory") || name.ends_with("Bytes") || name.ends_with("_bytes");
}

// 1234567 -> "1,234,567".
std::string grouped(std::int64_t v) {
  const std::uint64_t magnitude =
      v < 0 ? std::uint64_t{0} - static_cast<std::uint64_t>(v) : static_cast<std::uint64_t>(v);
  const std::string digits = std::to_string(magnitude);
  std::string out;
  const std::size_t n = digits.size();
  for (std::size_t i = 0; i < n; ++i) {
    out.push_back(digits[i]);
    if ((n - i - 1) % 3 == 0 && i + 1 < n) out.push_back(',');
  }
  return v < 0 ? "-" + out : out;
}

std::string fixed(double v, int decimals) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  return buf;
}

// The value as an operator reads it: bytes in KiB/MiB/GiB, counts with
// thousands separators, fractions in percent; empty when the raw value
// says it all.
std::string readable(const core::Point& m) {
  if (m.type == core::MetricType::counter) return m.total >= 10'000 ? grouped(m.total) : "";
  const double v = m.value;
  if (!std::isfinite(v)) return "";
  if (is_bytes(m.id)) {
    static constexpr std::array<std::string_view, 5> kUnits{"B", "KiB", "MiB", "GiB", "TiB"};
    double x = std::fabs(v);
    std::size_t u = 0;
    while (x >= 1024 && u + 1 < kUnits.size()) {
      x /= 1024;
      ++u;
    }
    return (v < 0 ? "-" : "") + (u == 0 ? fixed(x, 0) : fixed(x, x < 10 ? 2 : 1)) + " " +
           std::string(kUnits[u]);
  }
  if (m.id.ends_with("Fraction")) return fixed(v * 100, 2) + " %";
  if (std::fabs(v) >= 10'000 && std::fabs(v) < 9e15 && v == std::floor(v))
    return grouped(static_cast<std::int64_t>(v));
  return "";
}

// "2026-12-02 16:45:03 UTC".
std::string utc(std::int64_t ms) {
  const std::time_t t = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
  return buf;
}

}  // namespace

std::string render_metrics_page(std::span<const core::Point> sorted_metrics, std::int64_t now_ms,
                                std::int64_t last_write_ms) {
  std::string out;
  out.reserve(1024 + sorted_metrics.size() * 128);
  out +=
      "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"refresh\" content=\"10\">\n"
      "<title>Metrics</title>\n<style>\n"
      "body{font-family:system-ui,sans-serif;margin:2em;color:#222}\n"
      "table{border-collapse:collapse}\n"
      "th,td{padding:.25em .75em;border-bottom:1px solid #ddd;text-align:left}\n"
      "td.value,td.readable{font-family:ui-monospace,monospace;text-align:right}\n"
      "td.readable{color:#555}\n"
      "nav{float:right}\n"
      "</style>\n</head>\n<body>\n"
      "<nav><a href=\"/ui/\">Web UI: instances, charts, queries, alerts</a></nav>\n"
      "<h1>Metrics</h1>\n<p>";
  out += std::to_string(sorted_metrics.size());
  out += sorted_metrics.size() == 1 ? " metric" : " metrics";
  if (last_write_ms > 0) {
    out += " &middot; last write <time datetime=\"";
    out += std::to_string(last_write_ms);
    out += "\">";
    out += utc(last_write_ms);
    out += "</time>";
  } else if (now_ms > 0) {
    out += " &middot; no write since this server started";
  }
  out +=
      "</p>\n<table>\n<thead><tr><th>Name</th><th>Type</th><th>Value</th><th>Readable</th></tr>"
      "</thead>\n<tbody>\n";
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
    out += "</td><td class=\"readable\">";
    out += readable(m);
    out += "</td></tr>\n";
  }
  out += "</tbody>\n</table>\n</body>\n</html>\n";
  return out;
}

}  // namespace metrics::server
