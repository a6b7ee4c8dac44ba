// POST /api/v1/write: Prometheus remote write 1.0 in (API.md Part 2,
// "Prometheus exposition and remote write"; docs/API.md).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <string>

#include "metrics/server/router.hpp"

namespace metrics::server {

struct RequestContext;

// The snappy-compressed protobuf WriteRequest in `body` (raw: the route's
// BodyKind::snappy). Every sample becomes a sample of its series (name from
// __name__, the other labels), at its own timestamp, in the history; the
// newest of each series becomes its current value (series only: the
// classic value is left alone, and no (instance, job) liveness is touched).
// The whole request is checked before anything is stored: broken snappy,
// malformed protobuf, label rules, order within the request and against
// what each series already holds are a 400 that says why (core::InvalidInput);
// a new series past a limit is a 429 (core::LimitExceeded). Answers 204.
boost::asio::awaitable<Response> remote_write_in(RequestContext& ctx, const RouteMatch& match,
                                                 std::string& body);

}  // namespace metrics::server
