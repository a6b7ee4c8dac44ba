// Hooks between the server's parts and its own metrics (GET /metrics,
// `Service::telemetry()`): what a component registers so that its state
// shows in the exposition.
//
//   auto hook = server::add_sink_collector(service.telemetry(), "history", history_sink);
//
// Thread-safety: the collectors run on the scraping thread and read only
// thread-safe state.
#pragma once

#include <memory>
#include <string>

#include "metrics/server/ingest.hpp"
#include "metrics/telemetry/registry.hpp"

namespace metrics::server {

// metrics_server_ingest_queue_batches{sink}, and the counters
// metrics_server_ingest_accepted_batches_total, _dropped_batches_total and
// _dropped_points_total{sink} of a QueuedSink (the history's, the remote
// write's, ...): several sinks share the families, one label value each.
[[nodiscard]] telemetry::Registration add_sink_collector(telemetry::Registry& registry,
                                                         std::string sink,
                                                         std::shared_ptr<const QueuedSink> queue);

}  // namespace metrics::server
