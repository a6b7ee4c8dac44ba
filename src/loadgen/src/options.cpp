#include "metrics/loadgen/options.hpp"

#include <unistd.h>

#include <CLI/CLI.hpp>
#include <charconv>
#include <cmath>
#include <cstdio>

#include "metrics/core/duration.hpp"

namespace metrics::loadgen {
namespace {

std::chrono::nanoseconds duration_of(const std::string& flag, const std::string& text) {
  auto d = core::parse_duration(text);
  if (!d) throw OptionsError(flag + ": not a duration: \"" + text + "\" (use 10, 500ms, 1m)");
  return *d;
}

// host:port where host must be loopback: the generator is a weapon against
// whatever it points at, and this project only ever aims it at itself.
void parse_address(const std::string& text, Options& o) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos)
    throw OptionsError("--address: expected host:port, got \"" + text + "\"");
  const std::string host = text.substr(0, colon);
  const std::string port = text.substr(colon + 1);
  if (host != "127.0.0.1" && host != "localhost")
    throw OptionsError("--address: only 127.0.0.1 (or localhost) is allowed, got \"" + host + "\"");
  unsigned value = 0;
  auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), value);
  if (ec != std::errc{} || p != port.data() + port.size() || value == 0 || value > 65535)
    throw OptionsError("--address: bad port \"" + port + "\"");
  o.host = "127.0.0.1";
  o.port = static_cast<std::uint16_t>(value);
  o.host_header = text;
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

ParsedOptions parse_options(const std::vector<std::string>& args) {
  CLI::App app{
      "metrics-loadgen: simulates N agents pushing to a metrics-server on 127.0.0.1, "
      "then checks that the server holds exactly what it acknowledged",
      "metrics-loadgen"};
  app.set_help_flag("-h,--help", "print this help and exit");
  app.allow_extras(false);

  Options o;
  std::string address = "127.0.0.1:8080";
  std::string duration = "10s";
  std::string mode = "batch";
  std::string connect_timeout = "5s";
  std::string request_timeout = "10s";
  std::optional<std::string> run_id;
  std::size_t batch_size = 29;

  app.add_option("-a,--address", address, "server host:port (loopback only)")
      ->capture_default_str();
  app.add_option("-n,--agents", o.agents, "simulated agents, one connection each")
      ->capture_default_str();
  app.add_option("-d,--duration", duration, "how long the load lasts (always bounds the run)")
      ->capture_default_str();
  app.add_option("--requests", o.requests,
                 "stop after this many requests over all agents (0: duration only)")
      ->capture_default_str();
  app.add_option("-b,--batch-size", batch_size,
                 "metrics per agent: a counter, the shared hot counter, the rest gauges")
      ->capture_default_str();
  app.add_flag("--gzip,!--no-gzip", o.gzip, "gzip request bodies");
  app.add_option(
         "-m,--mode", mode,
         "batch: POST /updates/; json: POST /update/; text: POST /update/{type}/{name}/{value}")
      ->capture_default_str();
  app.add_option("-r,--rate", o.rate, "requests per second per agent; 0: as fast as answered")
      ->capture_default_str();
  app.add_option("-k,--key", o.key, "sign requests with HMAC-SHA256 (HashSHA256 header)");
  app.add_option("--run-id", run_id, "prefix of every metric name (default: unique per run)");
  app.add_flag("--verify,!--no-verify", o.verify, "read everything back and check it at the end")
      ->capture_default_str();
  app.add_flag("--retry-after,!--no-retry-after", o.honour_retry_after,
               "after a 503/429 with Retry-After, wait that long before the next request")
      ->capture_default_str();
  app.add_flag("--strict", o.strict, "also fail when any request got an error or no answer");
  app.add_option("--server-pid", o.server_pid, "report this process's memory (VmRSS)");
  app.add_flag("--json", o.json, "print the report as JSON");
  app.add_option("--connect-timeout", connect_timeout, "per connection attempt")
      ->capture_default_str();
  app.add_option("--request-timeout", request_timeout, "per request; then it is in doubt")
      ->capture_default_str();
  app.add_option("-t,--threads", o.threads, "generator threads (1 or 2)")->capture_default_str();
  app.add_option("--connect-concurrency", o.connect_concurrency,
                 "connection attempts in progress at once")
      ->capture_default_str();

  ParsedOptions result;
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    result.help_requested = true;
    result.help = app.help();
    return result;
  } catch (const CLI::ParseError& e) {
    throw OptionsError(e.what());
  }

  parse_address(address, o);
  o.duration = duration_of("--duration", duration);
  o.connect_timeout = duration_of("--connect-timeout", connect_timeout);
  o.request_timeout = duration_of("--request-timeout", request_timeout);
  if (o.duration.count() == 0) throw OptionsError("--duration: must be more than 0");
  if (o.connect_timeout.count() == 0) throw OptionsError("--connect-timeout: must be more than 0");
  if (o.request_timeout.count() == 0) throw OptionsError("--request-timeout: must be more than 0");
  if (o.agents == 0 || o.agents > 1'000'000) throw OptionsError("--agents: 1 to 1000000");
  if (batch_size == 0 || batch_size > 10'000) throw OptionsError("--batch-size: 1 to 10000");
  if (!(o.rate >= 0) || !std::isfinite(o.rate) || o.rate > 1e6)
    throw OptionsError("--rate: 0 (closed loop) to 1000000 per agent");
  if (o.threads < 1 || o.threads > 2) throw OptionsError("--threads: 1 or 2");
  if (o.connect_concurrency == 0) throw OptionsError("--connect-concurrency: at least 1");
  if (o.server_pid < 0) throw OptionsError("--server-pid: a process id");
  auto parsed_mode = parse_mode(mode);
  if (!parsed_mode) throw OptionsError("--mode: batch, json or text, got \"" + mode + "\"");
  o.workload.mode = *parsed_mode;
  o.workload.batch_size = batch_size;
  o.workload.run_id = run_id ? *run_id : default_run_id();
  if (!valid_run_id(o.workload.run_id)) throw OptionsError("--run-id: up to 64 of [A-Za-z0-9_.-]");
  result.options = std::move(o);
  return result;
}

}  // namespace metrics::loadgen
