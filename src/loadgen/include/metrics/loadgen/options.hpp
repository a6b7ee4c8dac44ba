// The load generator's settings: flags, LOADGEN_* environment variables and
// a JSON config file (-c / LOADGEN_CONFIG), one table over core/options.hpp
// with the same rules as the server and the agent (environment over flag
// over file over default). Its variables carry a prefix so that it never
// picks up the ADDRESS or KEY meant for a server started beside it.
//
//   auto parsed = parse_options(args, core::options::process_env());   // throws OptionsError
//   if (parsed.help_requested) { print(parsed.help); }
//
// Plain values; parse_options is thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

#include "metrics/core/options.hpp"
#include "metrics/loadgen/request_builder.hpp"

namespace metrics::loadgen {

struct Options {
  std::string host = "127.0.0.1";  // always loopback
  std::uint16_t port = 8080;
  std::string host_header = "127.0.0.1:8080";
  std::uint32_t agents = 200;
  std::chrono::nanoseconds duration = std::chrono::seconds{10};
  std::uint64_t requests = 0;  // total over all agents; 0: only the duration bounds the run
  Workload workload;
  bool gzip = false;
  double rate = 0;  // requests per second per agent; 0: closed loop
  std::string key;
  // Credentials for a server or proxy that wants them (--basic-auth
  // user:password, --bearer-token); sent on writes and reads.
  std::string basic_auth;
  std::string bearer_token;
  bool verify = true;
  bool strict = false;
  // After a 503 or 429 with Retry-After, the agent waits that long before
  // its next request, as the real agent does.
  bool honour_retry_after = true;  // also fail on any error answer or transport failure
  int server_pid = 0;              // 0: do not read the server's memory
  bool json = false;
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds{5};
  std::chrono::nanoseconds request_timeout = std::chrono::seconds{10};
  unsigned threads = 1;
  unsigned connect_concurrency = 256;
};

class OptionsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct ParsedOptions {
  Options options;
  bool help_requested = false;
  std::string help;
  // "agents=10 (from flag --agents)" for every option not at its default.
  std::vector<std::string> origins;
};

// args: argv without the program name; env: the environment (no
// environment at all when omitted).
[[nodiscard]] ParsedOptions parse_options(
    const std::vector<std::string>& args,
    const core::options::EnvLookup& env = core::options::no_env());

// A run id derived from the clock and the process id, e.g. "lg5f3a1c2_".
[[nodiscard]] std::string default_run_id();

}  // namespace metrics::loadgen
