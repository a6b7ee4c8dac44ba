#include "metrics/loadgen/options.hpp"

#include <unistd.h>

#include <charconv>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>

#include "metrics/core/authorization.hpp"

namespace metrics::loadgen {
namespace {

namespace opt = core::options;

// host:port where host must be loopback: the generator is a weapon against
// whatever it points at, and this project only ever aims it at itself.
void parse_address(std::string_view text, Options& o) {
  const auto colon = text.rfind(':');
  if (colon == std::string_view::npos) throw opt::BadValue("expected host:port");
  const std::string host(text.substr(0, colon));
  const std::string port(text.substr(colon + 1));
  if (host != "127.0.0.1" && host != "localhost")
    throw opt::BadValue("only 127.0.0.1 (or localhost) is allowed, got \"" + host + "\"");
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || p != port.data() + port.size() || value == 0 || value > 65535)
    throw opt::BadValue("bad port \"" + port + "\"");
  o.host = "127.0.0.1";
  o.port = static_cast<std::uint16_t>(value);
  o.host_header = std::string(text);
}

constexpr auto kPositive = std::chrono::nanoseconds{1};

opt::Spec spec(Options& o, std::optional<std::string>& run_id) {
  opt::Value address{.type = "host:port",
                     .default_text = o.host_header,
                     .quote = true,
                     .boolean = false,
                     .secret = false,
                     .set = [&o](std::string_view v) { parse_address(v, o); },
                     .show = [&o] { return o.host_header; }};
  opt::Value mode{.type = "batch|json|text",
                  .default_text = "batch",
                  .quote = false,
                  .boolean = false,
                  .secret = false,
                  .set =
                      [&o](std::string_view v) {
                        const auto m = parse_mode(v);
                        if (!m) throw opt::BadValue("expected one of batch|json|text");
                        o.workload.mode = *m;
                      },
                  .show =
                      [&o] {
                        switch (o.workload.mode) {
                          case Mode::batch:
                            return std::string("batch");
                          case Mode::json:
                            return std::string("json");
                          case Mode::text:
                            return std::string("text");
                        }
                        return std::string("?");
                      }};
  opt::Value run{.type = "string",
                 .default_text = "unique per run",
                 .quote = false,
                 .boolean = false,
                 .secret = false,
                 .set =
                     [&run_id](std::string_view v) {
                       if (!valid_run_id(v)) throw opt::BadValue("up to 64 of [A-Za-z0-9_.-]");
                       run_id = std::string(v);
                     },
                 .show = [&run_id] { return run_id && !run_id->empty() ? *run_id : "\"\""; }};
  return {
      .program = "metrics-loadgen",
      .summary =
          "Simulates N agents pushing to a metrics-server on 127.0.0.1, then checks that "
          "the server\nholds exactly what it acknowledged.",
      .options =
          {
              {.flags = {"-a", "--address"},
               .env = "LOADGEN_ADDRESS",
               .keys = {"address"},
               .help = "server host:port (loopback only)",
               .value = address},
              {.flags = {"-n", "--agents"},
               .env = "LOADGEN_AGENTS",
               .keys = {"agents"},
               .help = "simulated agents, one connection each",
               .value = opt::whole(o.agents, 1, 1'000'000)},
              {.flags = {"-d", "--duration"},
               .env = "LOADGEN_DURATION",
               .keys = {"duration"},
               .help = "how long the load lasts (always bounds the run)",
               .value = opt::duration(o.duration, kPositive)},
              {.flags = {"--requests"},
               .env = "LOADGEN_REQUESTS",
               .keys = {"requests"},
               .help = "stop after this many requests over all agents (0: duration only)",
               .value = opt::whole(o.requests, 0, UINT64_MAX)},
              {.flags = {"-b", "--batch-size"},
               .env = "LOADGEN_BATCH_SIZE",
               .keys = {"batch_size"},
               .help = "metrics per agent: a counter, the shared hot counter, the rest gauges",
               .value = opt::whole(o.workload.batch_size, 1, 10'000)},
              {.flags = {"--gzip"},
               .negations = {"--no-gzip"},
               .env = "LOADGEN_GZIP",
               .keys = {"gzip"},
               .help = "gzip request bodies",
               .value = opt::boolean(o.gzip)},
              {.flags = {"-m", "--mode"},
               .env = "LOADGEN_MODE",
               .keys = {"mode"},
               .help = "batch: POST /updates/; json: POST /update/; text: "
                       "POST /update/{type}/{name}/{value}",
               .value = mode},
              {.flags = {"--labels"},
               .negations = {"--no-labels"},
               .env = "LOADGEN_LABELS",
               .keys = {"labels"},
               .help = "each agent sends its own instance (loadgen-<N>) and job labels, in an "
                       "envelope in batch mode, all agents sharing the names; --no-labels: "
                       "unlabelled arrays with per-agent names (text mode is always unlabelled)",
               .value = opt::boolean(o.workload.labels)},
              {.flags = {"-r", "--rate"},
               .env = "LOADGEN_RATE",
               .keys = {"rate"},
               .help = "requests per second per agent; 0: as fast as answered",
               .value = opt::number(o.rate, 0, 1e6)},
              {.flags = {"-k", "--key"},
               .env = "LOADGEN_KEY",
               .keys = {"key"},
               .help = "sign requests with HMAC-SHA256 (HashSHA256 header)",
               .value = opt::secret(o.key)},
              {.flags = {"--basic-auth"},
               .env = "LOADGEN_BASIC_AUTH",
               .keys = {"basic_auth"},
               .help = "user:password sent as HTTP Basic on every request (a proxy in front, or "
                       "the server's --web-config)",
               .value = opt::secret(o.basic_auth, "user:password")},
              {.flags = {"--bearer-token"},
               .env = "LOADGEN_BEARER_TOKEN",
               .keys = {"bearer_token"},
               .help = "token sent as Authorization: Bearer on every request (wins over "
                       "--basic-auth)",
               .value = opt::secret(o.bearer_token, "token")},
              {.flags = {"--run-id"},
               .env = "LOADGEN_RUN_ID",
               .keys = {"run_id"},
               .help = "prefix of every metric name",
               .value = run},
              {.flags = {"--verify"},
               .negations = {"--no-verify"},
               .env = "LOADGEN_VERIFY",
               .keys = {"verify"},
               .help = "read everything back and check it at the end",
               .value = opt::boolean(o.verify)},
              {.flags = {"--retry-after"},
               .negations = {"--no-retry-after"},
               .env = "LOADGEN_RETRY_AFTER",
               .keys = {"retry_after"},
               .help = "after a 503/429 with Retry-After, wait that long before the next request",
               .value = opt::boolean(o.honour_retry_after)},
              {.flags = {"--idempotency-keys"},
               .env = "LOADGEN_IDEMPOTENCY_KEYS",
               .keys = {"idempotency_keys"},
               .help = "send an Idempotency-Key with every request and resend every request in "
                       "doubt with it until answered, so that nothing stays in doubt",
               .value = opt::boolean(o.workload.idempotency_keys)},
              {.flags = {"--strict"},
               .env = "LOADGEN_STRICT",
               .keys = {"strict"},
               .help = "also fail when any request got an error or no answer",
               .value = opt::boolean(o.strict)},
              {.flags = {"--server-pid"},
               .env = "LOADGEN_SERVER_PID",
               .keys = {"server_pid"},
               .help = "report this process's memory (VmRSS); 0: none",
               .value = opt::whole(o.server_pid, 0, INT32_MAX)},
              {.flags = {"--json"},
               .env = "LOADGEN_JSON",
               .keys = {"json"},
               .help = "print the report as JSON",
               .value = opt::boolean(o.json)},
              {.flags = {"--connect-timeout"},
               .env = "LOADGEN_CONNECT_TIMEOUT",
               .keys = {"connect_timeout"},
               .help = "per connection attempt",
               .value = opt::duration(o.connect_timeout, kPositive)},
              {.flags = {"--request-timeout"},
               .env = "LOADGEN_REQUEST_TIMEOUT",
               .keys = {"request_timeout"},
               .help = "per request; then it is in doubt",
               .value = opt::duration(o.request_timeout, kPositive)},
              {.flags = {"-t", "--threads"},
               .env = "LOADGEN_THREADS",
               .keys = {"threads"},
               .help = "generator threads",
               .value = opt::whole(o.threads, 1, 2)},
              {.flags = {"--connect-concurrency"},
               .env = "LOADGEN_CONNECT_CONCURRENCY",
               .keys = {"connect_concurrency"},
               .help = "connection attempts in progress at once",
               .value = opt::whole(o.connect_concurrency, 1, UINT32_MAX)},
          },
      .config_flags = {"-c", "--config"},
      .config_env = "LOADGEN_CONFIG",
  };
}

}  // namespace

std::string default_run_id() {
  const auto now = std::chrono::system_clock::now().time_since_epoch();
  const auto ms = static_cast<unsigned long long>(
      std::chrono::duration_cast<std::chrono::milliseconds>(now).count());
  char buf[48];
  std::snprintf(buf, sizeof buf, "lg%llx%x_", ms & 0xffffffffULL,
                static_cast<unsigned>(::getpid()) & 0xffffU);
  return buf;
}

ParsedOptions parse_options(const std::vector<std::string>& args, const opt::EnvLookup& env) {
  ParsedOptions result;
  Options& o = result.options;
  std::optional<std::string> run_id;
  const auto table = spec(o, run_id);
  opt::Result loaded;
  try {
    loaded = opt::load(table, args, env);
  } catch (const opt::OptionsError& e) {
    throw OptionsError(e.what());
  }
  if (loaded.help) {
    result.help_requested = true;
    result.help = opt::help(table);
    return result;
  }
  for (const auto& origin : loaded.origins) {
    result.origins.push_back(origin.text());
  }
  o.workload.run_id = run_id ? *run_id : default_run_id();
  try {
    core::check_credentials(o.basic_auth, o.bearer_token);
  } catch (const std::invalid_argument& e) {
    throw OptionsError(std::string("invalid --basic-auth/--bearer-token: ") + e.what());
  }
  return result;
}

}  // namespace metrics::loadgen
