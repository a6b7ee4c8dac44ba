#include "metrics/server/config.hpp"

#include <algorithm>
#include <filesystem>
#include <system_error>

#include "metrics/core/options.hpp"

namespace metrics::server {
namespace {

namespace opt = core::options;
using std::chrono::milliseconds;

void check_http_url(std::string_view v) {
  if (!v.starts_with("http://") && !v.starts_with("https://"))
    throw opt::BadValue("expected an http:// or https:// URL");
}

void check_address(std::string_view v) {
  const auto colon = v.rfind(':');
  if (colon == std::string_view::npos) throw opt::BadValue("expected host:port");
  (void)opt::parse_uint(v.substr(colon + 1), 0, 65535);
}

// A byte size (parse_byte_size) stored in a size_t.
opt::Value byte_size(std::size_t& target) {
  return {.type = "bytes",
          .default_text = std::to_string(target),
          .quote = false,
          .set = [&target](std::string_view v) { target = parse_byte_size(v); },
          .show = [&target] { return std::to_string(target); }};
}

// A remote-write destination: an http:// or https:// URL.
void check_remote_url(std::string_view v) {
  if (!v.starts_with("http://") && !v.starts_with("https://")) {
    throw opt::BadValue("expected an http:// or https:// URL");
  }
}

// A request header "Name: value" (a token name, no line breaks).
void check_header(std::string_view v) {
  const auto colon = v.find(':');
  if (colon == std::string_view::npos || colon == 0) throw opt::BadValue("expected 'Name: value'");
  for (const char ch : v.substr(0, colon)) {
    const bool token = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
                       (ch >= '0' && ch <= '9') ||
                       std::string_view("!#$%&'*+-.^_`|~").find(ch) != std::string_view::npos;
    if (!token) throw opt::BadValue("the header name must be a token (letters, digits, -)");
  }
  if (v.find_first_of("\r\n") != std::string_view::npos) {
    throw opt::BadValue("a header must not hold a line break");
  }
}

// The server's options: one row each.
opt::Spec spec(ServerConfig& c) {
  auto dsn = opt::text(c.storage.database_dsn, nullptr, "dsn");
  dsn.show = [&c] {
    const auto& v = c.storage.database_dsn;
    return v.empty() ? std::string("\"\"") : storage::redact_dsn(v);
  };
  auto read_timeout = opt::duration(c.read_timeout, std::chrono::nanoseconds{1});
  // Header values may be tokens: the start-up log shows their names only.
  auto remote_headers = opt::list(c.remote_write_headers, check_header, "header");
  remote_headers.show = [&c] {
    std::string out;
    for (const auto& h : c.remote_write_headers)
      out += (out.empty() ? "" : ",") + h.substr(0, h.find(':')) + ": <set>";
    return out.empty() ? std::string("\"\"") : out;
  };
  return {
      .program = "metrics-server",
      .summary = "Stores gauges and counters pushed over HTTP.",
      .options =
          {
              {.flags = {"-a"},
               .env = "ADDRESS",
               .keys = {"address"},
               .help = "host:port to listen on (:8080 for every interface)",
               .value = opt::text(c.address, check_address, "host:port")},
              {.flags = {"-d"},
               .env = "DATABASE_DSN",
               .keys = {"database_dsn"},
               .help = "PostgreSQL connection string; when set, PostgreSQL is the storage",
               .value = dsn},
              {.flags = {"-f"},
               .env = "FILE_STORAGE_PATH",
               .keys = {"store_file", "file_storage_path"},
               .help = "snapshot file of the in-memory storage; empty (-f \"\") disables it",
               .value = opt::text(c.storage.file_path, nullptr, "path")},
              {.flags = {"-i"},
               .env = "STORE_INTERVAL",
               .keys = {"store_interval"},
               .help = "how often the file is written; 0 makes every update durable before the "
                       "answer",
               .value = opt::duration(c.storage.store_interval)},
              {.flags = {"-r"},
               .env = "RESTORE",
               .keys = {"restore"},
               .help = "load the file at start",
               .value = opt::boolean(c.storage.restore)},
              {.flags = {"-k"},
               .env = "KEY",
               .keys = {"key"},
               .help = "signing key (HMAC-SHA256 of bodies)",
               .value = opt::secret(c.key)},
              {.flags = {"--allow-unsigned"},
               .env = "ALLOW_UNSIGNED",
               .keys = {"allow_unsigned"},
               .help = "with a key: accept writes without HashSHA256 (wrong ones are still "
                       "refused)",
               .value = opt::boolean(c.allow_unsigned)},
              {.flags = {"--tls-cert"},
               .env = "TLS_CERT",
               .keys = {"tls_cert"},
               .help = "PEM certificate chain; with --tls-key the server speaks HTTPS only",
               .value = opt::text(c.tls_cert, nullptr, "path")},
              {.flags = {"--tls-key"},
               .env = "TLS_KEY",
               .keys = {"tls_key"},
               .help = "PEM private key of --tls-cert",
               .value = opt::text(c.tls_key, nullptr, "path")},
              {.flags = {"--log-level"},
               .env = "LOG_LEVEL",
               .keys = {"log_level"},
               .help = "least severe level logged",
               .value = opt::choice(
                   c.log_level, {"trace", "debug", "info", "warn", "error", "critical", "off"})},
              {.flags = {"--access-log"},
               .keys = {"access_log"},
               .help = "log every request (at info level)",
               .value = opt::boolean(c.access_log)},
              {.flags = {"--threads"},
               .keys = {"threads"},
               .help = "I/O threads; 0 means one per core",
               .value = opt::whole(c.threads, 0, 256)},
              {.flags = {"--max-body-bytes"},
               .keys = {"max_body_bytes"},
               .help = "largest request body, before and after decompression",
               .value = opt::whole(c.max_body_bytes, 1024, std::uint64_t{1} << 30)},
              {.flags = {"--max-header-bytes"},
               .keys = {"max_header_bytes"},
               .help = "largest request header block",
               .value = opt::whole(c.max_header_bytes, 512, std::uint64_t{1} << 20)},
              {.flags = {"--max-batch"},
               .keys = {"max_batch"},
               .help = "most metrics in one batch",
               .value = opt::whole(c.max_batch_items, 1, 10'000'000)},
              {.flags = {"--max-connections"},
               .keys = {"max_connections"},
               .help = "most connections open at once",
               .value = opt::whole(c.max_connections, 1, 10'000'000)},
              {.flags = {"--read-timeout"},
               .keys = {"read_timeout"},
               .help = "deadline for reading one request, and for an idle kept-alive "
                       "connection",
               .value = read_timeout},
              {.flags = {"--shutdown-timeout"},
               .keys = {"shutdown_timeout"},
               .help = "how long graceful shutdown waits for requests in flight",
               .value = opt::duration(c.shutdown_timeout)},
              {.flags = {"--stale-after"},
               .env = "STALE_AFTER",
               .keys = {"stale_after"},
               .help = "agent_up of an (instance, job) is 0 once its last push is this old",
               .value = opt::duration(c.stale_after, std::chrono::nanoseconds{1})},
              {.flags = {"--series-ttl"},
               .env = "SERIES_TTL",
               .keys = {"series_ttl"},
               .help = "a series not written for this long expires (its classic value stays); "
                       "0 keeps series forever",
               .value = opt::duration(c.series_ttl)},
              {.flags = {"--max-series"},
               .env = "MAX_SERIES",
               .keys = {"max_series"},
               .help = "most live series; a write creating more is refused with 429 (0: no "
                       "limit)",
               .value = opt::whole(c.max_series, 0, std::uint64_t{1} << 40)},
              {.flags = {"--max-series-per-instance"},
               .env = "MAX_SERIES_PER_INSTANCE",
               .keys = {"max_series_per_instance"},
               .help = "most live series with one value of the instance label; past it 429 "
                       "(0: no limit)",
               .value = opt::whole(c.max_series_per_instance, 0, std::uint64_t{1} << 40)},
              {.flags = {"--idempotency-window"},
               .env = "IDEMPOTENCY_WINDOW",
               .keys = {"idempotency_window"},
               .help = "how long an applied Idempotency-Key is recognised; a key older than "
                       "this is a new write",
               .value = opt::duration(c.storage.idempotency.window, std::chrono::nanoseconds{1})},
              {.flags = {"--idempotency-max-keys"},
               .env = "IDEMPOTENCY_MAX_KEYS",
               .keys = {"idempotency_max_keys"},
               .help = "most idempotency keys kept; past it the oldest are forgotten first",
               .value = opt::whole(c.storage.idempotency.max_keys, 1, std::uint64_t{1} << 32)},
              {.flags = {"--retention"},
               .env = "RETENTION",
               .keys = {"retention"},
               .help = "how long history samples are kept; 0 keeps them (within "
                       "--history-max-bytes)",
               .value = opt::duration(c.retention)},
              {.flags = {"--history-max-bytes"},
               .env = "HISTORY_MAX_BYTES",
               .keys = {"history_max_bytes"},
               .help = "memory the history may hold (bytes, or with KiB, MiB, GiB); past it the "
                       "oldest chunks go; 0: no cap",
               .value = byte_size(c.history_max_bytes)},
              {.flags = {"--history-dir"},
               .env = "HISTORY_DIR",
               .keys = {"history_dir"},
               .help = "folder the history is written to and reloaded from (locked while the "
                       "server runs); empty (--history-dir \"\") keeps it in memory only",
               .value = opt::text(c.history_dir, nullptr, "path")},
              {.flags = {"--history"},
               .negations = {"--no-history"},
               .env = "HISTORY",
               .keys = {"history"},
               .help = "keep the history of every series; --no-history keeps current values "
                       "only (no history dir, no range reads)",
               .value = opt::boolean(c.history)},
              {.flags = {"--remote-write-url"},
               .env = "REMOTE_WRITE_URL",
               .keys = {"remote_write_url"},
               .help = "send every sample to this remote-write 1.0 receiver (Prometheus, "
                       "VictoriaMetrics, Mimir ...); repeatable, REMOTE_WRITE_URL=a,b",
               .value = opt::list(c.remote_write_urls, check_remote_url, "url")},
              {.flags = {"--remote-write-header"},
               .env = "REMOTE_WRITE_HEADER",
               .keys = {"remote_write_header"},
               .help = "'Name: value' header of every remote-write request (a token, "
                       "X-Scope-OrgID); repeatable",
               .value = remote_headers},
              {.flags = {"--remote-write-queue"},
               .env = "REMOTE_WRITE_QUEUE",
               .keys = {"remote_write_queue"},
               .help = "samples each remote-write destination holds waiting; past it batches are "
                       "dropped and later sent from the history",
               .value = opt::whole(c.remote_write_queue, 1, std::uint64_t{1} << 30)},
              // Alerting (docs/ALERTING.md).
              {.flags = {"--rules"},
               .env = "RULES",
               .keys = {"rules"},
               .help = "rule file or glob in Prometheus's format (repeatable); a bad file stops "
                       "the start, SIGHUP reloads",
               .value = opt::list(c.rules, nullptr, "path")},
              {.flags = {"--evaluation-interval"},
               .env = "EVALUATION_INTERVAL",
               .keys = {"evaluation_interval"},
               .help = "how often rule groups without their own interval are evaluated",
               .value = opt::duration(c.evaluation_interval, std::chrono::milliseconds{1})},
              {.flags = {"--alertmanager-url"},
               .env = "ALERTMANAGER_URL",
               .keys = {"alertmanager_url"},
               .help = "Alertmanager base URL (repeatable); alerts go to <url>/api/v2/alerts",
               .value = opt::list(c.alertmanager_urls, check_http_url, "url")},
              {.flags = {"--alert-webhook"},
               .env = "ALERT_WEBHOOK",
               .keys = {"alert_webhook"},
               .help = "URL that gets Alertmanager's webhook payload (version 4) directly "
                       "(repeatable)",
               .value = opt::list(c.alert_webhooks, check_http_url, "url")},
              {.flags = {"--external-url"},
               .env = "EXTERNAL_URL",
               .keys = {"external_url"},
               .help = "this server's URL as users reach it, for alerts' generatorURL",
               .value = opt::text(c.external_url, nullptr, "url")},
              {.flags = {"--resend-delay"},
               .env = "RESEND_DELAY",
               .keys = {"resend_delay"},
               .help = "firing alerts are re-sent to Alertmanager and webhooks this often",
               .value = opt::duration(c.resend_delay, std::chrono::milliseconds{1})},
              {.flags = {"--for-outage-tolerance"},
               .env = "FOR_OUTAGE_TOLERANCE",
               .keys = {"for_outage_tolerance"},
               .help = "alert states saved longer ago than this are not restored at start",
               .value = opt::duration(c.for_outage_tolerance)},
              {.flags = {"--query-timeout"},
               .env = "QUERY_TIMEOUT",
               .keys = {"query_timeout"},
               .help = "longest a query of /api/v1/query or query_range may run (a smaller "
                       "timeout parameter wins); past it: 503 timeout",
               .value = opt::duration(c.query_timeout, std::chrono::milliseconds{1})},
              {.flags = {"--query-lookback-delta"},
               .env = "QUERY_LOOKBACK_DELTA",
               .keys = {"query_lookback_delta"},
               .help = "how far back an instant selector looks for a sample (PromQL staleness)",
               .value = opt::duration(c.query_lookback_delta, std::chrono::milliseconds{1})},
              {.flags = {"--query-max-samples"},
               .env = "QUERY_MAX_SAMPLES",
               .keys = {"query_max_samples"},
               .help = "most samples a query may hold at once; past it: 422 execution",
               .value = opt::whole(c.query_max_samples, 1, std::uint64_t{1} << 40)},
              {.flags = {"--query-max-concurrency"},
               .env = "QUERY_MAX_CONCURRENCY",
               .keys = {"query_max_concurrency"},
               .help = "queries evaluated at once (their own threads); more wait, up to the "
                       "timeout",
               .value = opt::whole(c.query_max_concurrency, 1, 1024)},
          },
  };
}

}  // namespace

std::uint64_t parse_byte_size(std::string_view text) {
  std::size_t digits = 0;
  while (digits < text.size() && text[digits] >= '0' && text[digits] <= '9')
    ++digits;
  if (digits == 0) throw opt::BadValue("expected a size such as 536870912, 64KiB, 512MiB or 1GiB");
  const std::string_view unit = text.substr(digits);
  unsigned shift = 0;
  if (unit.empty() || unit == "B") {
    shift = 0;
  } else if (unit == "K" || unit == "KiB") {
    shift = 10;
  } else if (unit == "M" || unit == "MiB") {
    shift = 20;
  } else if (unit == "G" || unit == "GiB") {
    shift = 30;
  } else {
    throw opt::BadValue("unknown unit \"" + std::string(unit) +
                        "\": expected B, KiB, MiB or GiB (binary units)");
  }
  const std::uint64_t limit = std::uint64_t{1} << 50;
  const std::uint64_t n = opt::parse_uint(text.substr(0, digits), 0, limit >> shift);
  return n << shift;
}

EnvLookup process_env() {
  return opt::process_env();
}

LoadResult load_server_config(const std::vector<std::string>& args, const EnvLookup& env) {
  LoadResult result;
  const auto table = spec(result.config);
  opt::Result loaded;
  try {
    loaded = opt::load(table, args, env);
  } catch (const opt::OptionsError& e) {
    throw ConfigError(e.what());
  }
  if (loaded.help) {
    result.help_requested = true;
    result.help = opt::help(table);
    result.config = ServerConfig{};
    return result;
  }
  for (const auto& o : loaded.origins) {
    result.origins.push_back(o.text());
  }
  if (result.config.tls_cert.empty() != result.config.tls_key.empty()) {
    throw ConfigError(
        "--tls-cert/TLS_CERT and --tls-key/TLS_KEY go together: set both for HTTPS, or neither");
  }
  return result;
}

std::optional<std::string> restore_warning(const ServerConfig& config) {
  const auto& s = config.storage;
  if (s.restore || !s.database_dsn.empty() || s.file_path.empty()) return std::nullopt;
  std::error_code ec;
  if (!std::filesystem::exists(s.file_path, ec)) return std::nullopt;
  // With -i 0 the storage starts from a fresh snapshot at once.
  return "restore is off (-r/RESTORE): the existing file " + s.file_path + " is not loaded and " +
         (s.store_interval.count() == 0 ? "is replaced now, at start"
                                        : "will be replaced at the next write");
}

}  // namespace metrics::server
