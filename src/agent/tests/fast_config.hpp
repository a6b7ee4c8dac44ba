// An agent configuration for tests against a FakeServer: polls and reports
// every few milliseconds and retries at once, so that a test sees several
// reports and retries in well under a second.
#pragma once

#include <chrono>

#include "fake_server.hpp"
#include "metrics/agent/agent.hpp"

namespace metrics::agent::testing {

inline AgentConfig fast_config(const FakeServer& server) {
  using namespace std::chrono_literals;
  AgentConfig c;
  c.address = server.address();
  c.poll_interval = 10ms;
  c.report_interval = 30ms;
  c.request_timeout = 3s;
  c.retry_backoff = {5ms, 5ms, 5ms};
  return c;
}

}  // namespace metrics::agent::testing
