// metrics-agent: samples its own process and the machine and reports to a
// metrics server. Flags, environment and config file as in API.md.
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/agent/agent.hpp"
#include "metrics/agent/config.hpp"

namespace {

constexpr auto kShutdownTimeout = std::chrono::seconds{5};

spdlog::level::level_enum to_spdlog(metrics::agent::LogLevel level) {
  switch (level) {
    case metrics::agent::LogLevel::debug:
      return spdlog::level::debug;
    case metrics::agent::LogLevel::info:
      return spdlog::level::info;
    case metrics::agent::LogLevel::warn:
      return spdlog::level::warn;
    case metrics::agent::LogLevel::error:
      return spdlog::level::err;
  }
  return spdlog::level::info;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string_view> args(argv + 1, argv + argc);
  auto parsed = metrics::agent::load_config(
      args, [](const char* name) { return static_cast<const char*>(std::getenv(name)); });
  if (parsed.help) {
    std::fputs(metrics::agent::usage(argv[0]).c_str(), stdout);
    return 0;
  }
  if (!parsed.error.empty()) {
    std::fprintf(stderr, "metrics-agent: %s\n", parsed.error.c_str());
    return 2;
  }

  auto logger = spdlog::stderr_color_mt("metrics-agent");
  // The server's format: RFC 3339 UTC with milliseconds, level, message.
  logger->set_formatter(std::make_unique<spdlog::pattern_formatter>(
      "%Y-%m-%dT%H:%M:%S.%eZ %l %v", spdlog::pattern_time_type::utc));
  parsed.config.log = [logger](metrics::agent::LogLevel level, std::string_view message) {
    logger->log(to_spdlog(level), "{}", message);
  };

  // Blocked before the agent starts, so that its threads inherit the mask
  // and the signals reach sigwait below.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGINT);
  sigaddset(&stop_signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  for (const auto& line : parsed.origins) {
    logger->info("config: {}", line);
  }
  const auto& c = parsed.config;
  logger->info(
      "reporting to {} every {} ms ({} mode), sampling every {} ms, {} request(s) in flight{}",
      c.address, c.report_interval.count(), metrics::agent::to_string(c.send_mode),
      c.poll_interval.count(), c.rate_limit, c.key.empty() ? "" : ", signed");
  metrics::agent::Agent agent(std::move(parsed.config));
  if (!agent.running()) {
    logger->error("cannot start: {}", agent.error());
    return 1;
  }
  {
    std::string identity;
    for (const auto& l : agent.identity())
      identity += (identity.empty() ? "" : ",") + l.name + "=" + l.value;
    logger->info("identity: {}", identity);
  }
  int signal = 0;
  sigwait(&stop_signals, &signal);
  logger->info("signal {}: sending what is left", signal);
  const bool sent = agent.shutdown(kShutdownTimeout);
  const auto stats = agent.stats();
  if (sent) {
    logger->info("stopped; {} samples, {} requests acknowledged", stats.polls, stats.requests_ok);
  } else {
    logger->warn("stopped; {} metrics could not be sent", stats.pending);
  }
  return 0;
}
