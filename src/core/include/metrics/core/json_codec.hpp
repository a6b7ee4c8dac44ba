// JSON form of metrics: {"id": "...", "type": "gauge"|"counter", "delta": int64, "value": double,
// "labels": {...}}, and the envelope of POST /updates/.
//
// Decoding validates everything the wire contract asks for and throws
// core::InvalidInput with a client-facing message on the first problem:
// malformed JSON or UTF-8, nesting deeper than kMaxJsonDepth, a missing or
// invalid id, an unknown type, a counter without an integer delta, a gauge
// without a finite numeric value. Unknown fields are ignored.
//
//   auto batch = core::decode_updates(body);      // throws InvalidInput
//   std::string out = core::encode_points(stored);
//
// Thread-safe: each thread uses its own parser.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/core/metric.hpp"

namespace metrics::core {

inline constexpr std::size_t kMaxJsonDepth = 64;

// One metric object (for POST /update/), with its optional "labels"
// ({"name": "value", ...}; an empty value means absent).
[[nodiscard]] Update decode_update(std::string_view json);

// What POST /value/ asks for: {"id": ..., "type": ...} reads the classic
// value; with "labels" (even {}) the series with exactly those labels.
struct ValueQuery {
  MetricKey key;
  std::optional<Labels> labels;
};
[[nodiscard]] ValueQuery decode_value_query(std::string_view json);

// The body of POST /updates/: an array of metric objects, or an envelope
// {"labels": {...}, "metrics": [...]} whose labels apply to every metric (a
// metric's own labels add to them and win on a clash; an empty value removes
// the envelope's label). In order, unmerged; more than max_items metrics is
// InvalidInput.
struct DecodedBatch {
  std::vector<Update> updates;
  // The envelope's labels (empty for an array).
  Labels labels;
  bool envelope = false;
  // The envelope's "idempotency_key" (a string), when it has one.
  std::optional<std::string> idempotency_key;
};
[[nodiscard]] DecodedBatch decode_updates(std::string_view json, std::size_t max_items = 100'000);

// A gauge carries "value" and no "delta"; a counter "delta" (a Point's
// total, an Update's delta) and no "value"; "labels" follows when there
// are any, so an unlabelled metric encodes exactly as in Part 1.
void append_json(std::string& out, const Point& point);
void append_json(std::string& out, const Update& update);
// The point with labels_json (what append_labels_json wrote for its labels;
// empty: none) as its "labels": a batch whose points share their labels
// encodes them once.
void append_json(std::string& out, const Point& point, std::string_view labels_json);
// {"name":"value",...}
void append_labels_json(std::string& out, const Labels& labels);
[[nodiscard]] std::string encode_point(const Point& point);
[[nodiscard]] std::string encode_points(std::span<const Point> points);
[[nodiscard]] std::string encode_update(const Update& update);
[[nodiscard]] std::string encode_updates(std::span<const Update> updates);
// {"labels":{...},"metrics":[...]}: what the agent sends to POST /updates/.
[[nodiscard]] std::string encode_envelope(const Labels& labels, std::span<const Update> updates);
// {"error":"<message>"} with the message JSON-escaped.
[[nodiscard]] std::string encode_error(std::string_view message);
// Appends s as a JSON string literal (with quotes), escaping as needed.
void append_json_string(std::string& out, std::string_view s);

}  // namespace metrics::core
