#include "http_metrics.hpp"

#include <string_view>

namespace metrics::server::detail {

std::string endpoint_label(std::string_view pattern) {
  std::string out;
  out.reserve(pattern.size());
  bool in_param = false;
  bool skipping = false;
  for (const char c : pattern) {
    if (c == '{') {
      in_param = true;
    } else if (c == '}') {
      in_param = false;
      skipping = false;
    } else if (c == ':' && in_param) {
      skipping = true;
      continue;
    }
    if (!skipping) out.push_back(c);
  }
  return out;
}

HttpMetrics::HttpMetrics(telemetry::Registry& registry, std::span<const RouteSpec> routes)
    : routes_(routes),
      requests_(&registry.counter("metrics_server_requests_total",
                                  "HTTP requests answered, by route pattern and status code.",
                                  {"endpoint", "code"})),
      latency_(&registry.histogram(
          "metrics_server_request_duration_seconds",
          "Time from a fully read request to its finished answer, by route pattern.", {"endpoint"},
          telemetry::latency_buckets())) {
  per_route_.reserve(routes.size() + 1);
  for (const RouteSpec& r : routes) {
    per_route_.push_back(std::make_unique<PerRoute>());
    per_route_.back()->endpoint = endpoint_label(r.pattern);
  }
  per_route_.push_back(std::make_unique<PerRoute>());
  per_route_.back()->endpoint = "other";
}

void HttpMetrics::record(const RouteSpec* route, unsigned code,
                         std::chrono::nanoseconds took) noexcept {
  std::size_t i = routes_.size();
  if (route != nullptr && route >= routes_.data() && route < routes_.data() + routes_.size()) {
    i = static_cast<std::size_t>(route - routes_.data());
  }
  PerRoute& r = *per_route_[i];
  const std::size_t slot = code >= 100 && code <= 599 ? code - 99 : 0;
  try {
    telemetry::Counter* c = r.by_code[slot].load(std::memory_order_acquire);
    if (c == nullptr) {
      // Two threads may both get here: with() returns the same child.
      c = &requests_->with({r.endpoint, std::to_string(slot == 0 ? 0 : code)});
      r.by_code[slot].store(c, std::memory_order_release);
    }
    c->inc();
    telemetry::Histogram* h = r.latency.load(std::memory_order_acquire);
    if (h == nullptr) {
      h = &latency_->with({r.endpoint});
      r.latency.store(h, std::memory_order_release);
    }
    h->observe(std::chrono::duration<double>(took).count());
  } catch (...) {  // NOLINT(bugprone-empty-catch): out of memory on a first use; not counted
  }
}

}  // namespace metrics::server::detail
