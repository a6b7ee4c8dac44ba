// The Prometheus HTTP API's JSON for query results: the `data` object
// ({"resultType":"vector","result":[...]}) and the whole error body.
//
//   std::string body = "{\"status\":\"success\",\"data\":" + query::encode_data(r) + "}";
//
// Pure functions: thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "metrics/query/error.hpp"
#include "metrics/query/value.hpp"

namespace metrics::query {

[[nodiscard]] std::string encode_data(const Result& result);
// A label set as a JSON object ({"__name__":"up","job":"api"}), the
// elements of /api/v1/series.
void append_labels(std::string& out, const LabelSet& labels);
// A JSON string with Prometheus's escapes (HTML-safe, as encoding/json).
void append_json_string(std::string& out, std::string_view s);
// {"status":"error","errorType":"bad_data","error":"..."}
[[nodiscard]] std::string encode_error(const QueryError& error);

}  // namespace metrics::query
