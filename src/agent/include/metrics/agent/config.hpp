// The metrics-agent configuration from flags, environment and a JSON file,
// as API.md specifies: -a ADDRESS, -p POLL_INTERVAL, -r REPORT_INTERVAL,
// -k KEY, -l RATE_LIMIT, -c CONFIG; a flag wins over the environment, the
// environment over the file, the file over the default.
//
//   auto parsed = metrics::agent::load_config(args, [](const char* n) { return std::getenv(n); });
//   if (!parsed.error.empty()) { std::cerr << parsed.error << '\n'; return 2; }
//
// Pure apart from reading the config file; thread-safe.
#pragma once

#include <functional>
#include <span>
#include <string>
#include <string_view>

#include "metrics/agent/agent.hpp"

namespace metrics::agent {

// Returns the variable's value or nullptr (std::getenv in production).
using EnvLookup = std::function<const char*(const char*)>;

struct ConfigResult {
  AgentConfig config;
  // Empty on success; otherwise one line naming the option that is wrong.
  std::string error;
  // -h / --help was given: print usage() and exit 0.
  bool help = false;
};

// args excludes the program name. Go flag syntax: -a value, -a=value,
// --a value, --a=value; "--" ends the flags; positional arguments are errors.
[[nodiscard]] ConfigResult load_config(std::span<const std::string_view> args,
                                       const EnvLookup& env) noexcept;

// Only the environment (and CONFIG's file): how the preload library is set up.
[[nodiscard]] ConfigResult load_config_from_env(const EnvLookup& env) noexcept;

[[nodiscard]] std::string usage(std::string_view program);

}  // namespace metrics::agent
