// The metrics-agent configuration from flags, environment and a JSON file,
// as API.md specifies: -a ADDRESS, -p POLL_INTERVAL, -r REPORT_INTERVAL,
// -k KEY, -l RATE_LIMIT, --ca-file CA_FILE, --send-mode SEND_MODE,
// -c CONFIG; the environment wins over the flag, the flag over the file, the
// file over the default. An empty variable counts as unset; an unknown key
// in the file is an error.
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
#include <vector>

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
  // "address=localhost:9090 (from ADDRESS)" for every option not at its
  // default, for the start-up log; the key is shown as <set>.
  std::vector<std::string> origins;
};

// args excludes the program name. Go flag syntax: -a value, -a=value,
// --a value, --a=value; "--" ends the flags; positional arguments are errors.
[[nodiscard]] ConfigResult load_config(std::span<const std::string_view> args,
                                       const EnvLookup& env) noexcept;

// Only the environment (and CONFIG's file): how the preload library is set up.
[[nodiscard]] ConfigResult load_config_from_env(const EnvLookup& env) noexcept;

[[nodiscard]] std::string usage(std::string_view program);

}  // namespace metrics::agent
