// The smallest host of the agent: start it, add the host's own metrics,
// shut it down. With no server listening the agent keeps the data and
// shutdown() reports that it could not send it; the host is unaffected.
#include <cstdio>
#include <cstdlib>

#include "metrics/agent/agent.hpp"

int main(int argc, char** argv) {
  using namespace std::chrono_literals;
  metrics::agent::AgentConfig config;
  config.address = argc > 1 ? argv[1] : "127.0.0.1:1";
  config.poll_interval = 50ms;
  config.report_interval = 100ms;
  config.retry_backoff = {10ms};
  config.labels = {{"example", "link-agent"}};  // instance and job are set by default
  metrics::agent::Agent agent(config);
  if (!agent.running()) {
    std::fprintf(stderr, "agent did not start: %s\n", agent.error().c_str());
    return 1;
  }
  agent.set_gauge("ExampleTemperature", 21.5);
  agent.add_counter("ExampleRequests", 3);
  agent.add_counter("ExampleRequests", 1, {{"route", "/api"}});  // a labelled series
  const bool sent = agent.shutdown(500ms);
  std::printf("agent ok: polls=%llu sent=%s\n",
              static_cast<unsigned long long>(agent.stats().polls), sent ? "yes" : "no");
  return 0;
}
