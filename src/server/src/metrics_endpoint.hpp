// GET /metrics (API.md Part 2, "Prometheus exposition"): every live series
// in the text format 0.0.4 with its labels and # TYPE, the liveness series,
// then the server's own metrics (the telemetry registry). And the
// collectors through which the service's parts (the series index, the
// history, the storage) show in that registry.
//
// Thread-safety: the handler runs on any I/O thread and does its work on the
// query API's pool; everything it reads is thread-safe.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <span>
#include <string>
#include <vector>

#include "metrics/core/metric.hpp"
#include "metrics/exposition/text_format.hpp"
#include "metrics/history/store.hpp"
#include "metrics/series/index.hpp"
#include "metrics/server/service.hpp"
#include "metrics/storage/repository.hpp"
#include "metrics/telemetry/registry.hpp"

namespace metrics::server::detail {

struct ExpositionStats {
  exposition::TextStats text;
  // Stored series left out because their exposed name is one of the
  // server's own metrics, or a liveness series with the same labels.
  std::size_t shadowed = 0;
};

// The body of GET /metrics. `series` are the live stored series (sorted or
// not), `liveness` the synthesized ones (they win over a stored series of
// the same name and labels), `own` what the registry rendered (its names
// win over stored series that would be exposed under them). A gauge family
// that `remote_types` calls a counter is typed counter (its values print as
// the doubles they are).
[[nodiscard]] std::string render_exposition(std::vector<core::Point> series,
                                            std::vector<core::Point> liveness,
                                            const telemetry::Registry::Rendered& own,
                                            ExpositionStats* stats = nullptr,
                                            const RemoteTypes* remote_types = nullptr);

boost::asio::awaitable<Response> metrics_page(RequestContext& ctx, const RouteMatch& match,
                                              std::string& body);

// The collectors of the index (live series), the history and the storage;
// they stay registered as long as the returned registrations.
[[nodiscard]] std::vector<telemetry::Registration> register_service_collectors(
    telemetry::Registry& registry, series::SeriesIndex& index, history::HistoryStore* history,
    storage::Repository& repo);

}  // namespace metrics::server::detail
