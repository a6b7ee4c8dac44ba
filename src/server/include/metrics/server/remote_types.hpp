// The # TYPE of names written by remote write in (POST /api/v1/write), for
// GET /metrics and /api/v1/metadata. Such series are gauges in the model
// (their values are doubles as sent); API.md Part 2 types a name ending in
// `_total` as a counter for # TYPE and metadata only, and so does this for
// a name that the request's metadata (prompb MetricMetadata) calls a
// counter, following Prometheus, where the sender's metadata is the type:
// metadata naming another type wins over the suffix. A counter's metadata
// family may be named with or without `_total` (the text format keeps the
// suffix in the family name, OpenMetrics drops it): both names count.
//
//   RemoteTypes types;
//   types.note_series("http_requests_total");
//   types.counter("http_requests_total");  // true
//
// Held in memory: after a restart a name is a gauge again until it is
// remote-written anew. Bounded by the series limit (one entry per name
// written) plus the metadata entries' names.
//
// Thread-safe: every member may be called from any number of threads.
#pragma once

#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>

namespace metrics::server {

class RemoteTypes {
 public:
  // A name remote write in stored a series of.
  void note_series(std::string_view name) {
    std::lock_guard lock(mu_);
    if (names_.find(std::string(name)) == names_.end()) names_.emplace(name);
  }
  // A metadata entry of a request; `is_counter`: its type is COUNTER.
  void note_metadata(std::string_view family, bool is_counter) {
    std::lock_guard lock(mu_);
    by_metadata_[std::string(family)] = is_counter;
    if (is_counter && !ends_with_total(family)) by_metadata_[std::string(family) + "_total"] = true;
  }
  // Whether `name` is remote-written and typed counter.
  [[nodiscard]] bool counter(std::string_view name) const {
    std::lock_guard lock(mu_);
    const std::string key(name);
    if (names_.find(key) == names_.end()) return false;
    if (const auto it = by_metadata_.find(key); it != by_metadata_.end()) return it->second;
    return ends_with_total(name);
  }

 private:
  static bool ends_with_total(std::string_view name) noexcept {
    return name.size() > 6 && name.substr(name.size() - 6) == "_total";
  }
  mutable std::mutex mu_;
  std::unordered_set<std::string> names_;
  std::unordered_map<std::string, bool> by_metadata_;
};

}  // namespace metrics::server
