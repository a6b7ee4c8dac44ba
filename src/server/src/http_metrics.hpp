// Request counts and latencies of the Service (API.md Part 2, self-
// monitoring): metrics_server_requests_total{endpoint,code} and
// metrics_server_request_duration_seconds{endpoint}, where `endpoint` is
// the route's pattern ("/update/{type}/{name}/{value}"), never the raw
// path, and "other" for paths no route matches and for requests that could
// not be read.
//
//   detail::HttpMetrics http(registry, routes);
//   http.record(match.route, 200, took);   // lock-free after the first time
//
// The counter of an (endpoint, code) and the histogram of an endpoint are
// made on their first request and then reached through atomic pointers:
// record() takes no lock and allocates nothing after that.
//
// Thread-safety: record() may be called from any number of threads at once.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "metrics/server/router.hpp"
#include "metrics/telemetry/registry.hpp"

namespace metrics::server::detail {

// "/update/{type}/{name:metric name}" -> "/update/{type}/{name}".
[[nodiscard]] std::string endpoint_label(std::string_view pattern);

class HttpMetrics {
 public:
  HttpMetrics(telemetry::Registry& registry, std::span<const RouteSpec> routes);

  // `route` is null, or a row of the span given to the constructor.
  void record(const RouteSpec* route, unsigned code, std::chrono::nanoseconds took) noexcept;

 private:
  struct PerRoute {
    std::string endpoint;
    std::atomic<telemetry::Histogram*> latency{nullptr};
    // Codes 100..599; anything else counts as 0 ("0" in the label).
    std::array<std::atomic<telemetry::Counter*>, 501> by_code{};
  };

  std::span<const RouteSpec> routes_;
  std::vector<std::unique_ptr<PerRoute>> per_route_;  // routes_.size() + 1 ("other")
  telemetry::CounterFamily* requests_;
  telemetry::HistogramFamily* latency_;
};

}  // namespace metrics::server::detail
