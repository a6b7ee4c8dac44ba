// The Prometheus HTTP API's JSON for query results: the `data` object
// ({"resultType":"vector","result":[...]}) and the whole error body.
//
//   std::string body = "{\"status\":\"success\",\"data\":" + query::encode_data(r) + "}";
//
// Pure functions: thread-safe.
#pragma once

#include <string>

#include "metrics/query/error.hpp"
#include "metrics/query/value.hpp"

namespace metrics::query {

[[nodiscard]] std::string encode_data(const Result& result);
// {"status":"error","errorType":"bad_data","error":"..."}
[[nodiscard]] std::string encode_error(const QueryError& error);

}  // namespace metrics::query
