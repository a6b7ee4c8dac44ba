// JSON form of metrics: {"id": "...", "type": "gauge"|"counter", "delta": int64, "value": double}.
//
// Decoding validates everything the wire contract asks for and throws
// core::InvalidInput with a client-facing message on the first problem:
// malformed JSON or UTF-8, nesting deeper than kMaxJsonDepth, a missing or
// invalid id, an unknown type, a counter without an integer delta, a gauge
// without a finite numeric value. Unknown fields are ignored.
//
//   auto batch = core::decode_batch(body);        // throws InvalidInput
//   std::string out = core::encode_batch(stored);
//
// Thread-safe: each thread uses its own parser.
#pragma once

#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/core/metric.hpp"

namespace metrics::core {

inline constexpr std::size_t kMaxJsonDepth = 64;

// One metric object (for POST /update/).
[[nodiscard]] Metric decode_metric(std::string_view json);
// A metric identity {"id": ..., "type": ...} (for POST /value/); other fields ignored.
[[nodiscard]] MetricKey decode_key(std::string_view json);
// An array of metric objects (for POST /updates/), in order, unmerged.
// More than max_items elements is InvalidInput.
[[nodiscard]] std::vector<Metric> decode_batch(std::string_view json,
                                               std::size_t max_items = 100'000);

// A gauge carries "value" and no "delta"; a counter "delta" and no "value".
void append_json(std::string& out, const Metric& metric);
[[nodiscard]] std::string encode_metric(const Metric& metric);
[[nodiscard]] std::string encode_batch(std::span<const Metric> metrics);
// {"error":"<message>"} with the message JSON-escaped.
[[nodiscard]] std::string encode_error(std::string_view message);
// Appends s as a JSON string literal (with quotes), escaping as needed.
void append_json_string(std::string& out, std::string_view s);

}  // namespace metrics::core
