// The preload library's own settings, read from the environment beside the
// agent's (config.hpp): how long the program's exit may wait for the last
// report, and whether programs the host executes get the agent too.
//
//   const auto r = metrics::agent::detail::load_preload_config(env);
//   if (!r.error.empty()) { /* one line on stderr, run without the agent */ }
//
// Pure; thread-safe.
#pragma once

#include <chrono>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/agent/config.hpp"

namespace metrics::agent::detail {

struct PreloadConfig {
  // METRICS_AGENT_EXIT_TIMEOUT: the most the agent may delay the program's
  // exit (connect and send of the last report). Short by default: a program
  // whose server is away must still exit at once, as it would without us.
  std::chrono::milliseconds exit_timeout{200};
  // METRICS_AGENT_CHILDREN: true keeps this library in LD_PRELOAD, so that
  // the programs the host executes (what `nice`, `env`, `timeout`, a shell
  // shim run) report as their own instances; false removes it at start.
  bool children = true;
  // METRICS_AGENT_EXCLUDE: program names (argv[0]'s base name) that do not
  // start an agent of their own, e.g. "timeout": a wrapper that forks the
  // program and waits for it would otherwise report as an instance of its
  // own. They keep the library in LD_PRELOAD, so their children still report.
  std::vector<std::string> exclude;
};

// True when `program` (a base name) is one of config.exclude.
[[nodiscard]] bool excluded(const PreloadConfig& config, std::string_view program) noexcept;

struct PreloadConfigResult {
  PreloadConfig config;
  std::string error;  // empty on success; otherwise names the variable
};

[[nodiscard]] PreloadConfigResult load_preload_config(const EnvLookup& env) noexcept;

}  // namespace metrics::agent::detail
