// Server configuration from flags, environment and a JSON config file, one
// table of rows over core/options.hpp, with the precedence of the wire
// contract: environment > flag > file > default.
//
//   auto loaded = server::load_server_config(args, server::process_env());
//   // throws server::ConfigError("invalid value \"x\" for -i/STORE_INTERVAL (from flag -i): ...")
//   for (const auto& line : loaded.origins) spdlog::info("config: {}", line);
//
// Thread-safe (pure functions over their inputs).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/storage/config.hpp"

namespace metrics::server {

struct ServerConfig {
  std::string address = "localhost:8080";
  storage::StorageConfig storage{.database_dsn = "",
                                 .file_path = "/tmp/metrics-db.json",
                                 .store_interval = std::chrono::seconds{300},
                                 .restore = true,
                                 .idempotency = {}};
  std::string key;
  // Accept writes without HashSHA256 (a wrong signature is still refused).
  bool allow_unsigned = false;
  // PEM certificate chain and private key; both set: the server speaks HTTPS.
  std::string tls_cert;
  std::string tls_key;

  // Options of this implementation beyond the original's.
  std::string log_level = "info";
  bool access_log = true;
  unsigned threads = 0;  // 0: one I/O thread per core
  std::size_t max_body_bytes = 8u << 20;
  std::size_t max_header_bytes = 16u << 10;
  std::size_t max_batch_items = 100'000;
  std::size_t max_connections = 20'000;
  std::chrono::milliseconds read_timeout{std::chrono::seconds{30}};
  std::chrono::milliseconds shutdown_timeout{std::chrono::seconds{10}};

  // Series (API.md Part 2).
  // agent_up is 1 while an (instance, job)'s last push is younger.
  std::chrono::milliseconds stale_after{std::chrono::minutes{1}};
  // A series not written for this long expires; 0 keeps series forever.
  std::chrono::milliseconds series_ttl{std::chrono::hours{24}};
  // Most live series in all, and per value of the instance label; 0: no limit.
  std::uint64_t max_series = 1'000'000;
  std::uint64_t max_series_per_instance = 10'000;
  // History (API.md Part 2, "History"): samples older than this go (0 keeps
  // them within the memory cap).
  std::chrono::milliseconds retention{std::chrono::hours{24}};
  // Accounted bytes the history may hold; past it the oldest chunks go (0:
  // no cap).
  std::size_t history_max_bytes = std::size_t{512} << 20;
  // Written there and reloaded at start (locked while the server runs);
  // empty: memory only.
  std::string history_dir = "/tmp/metrics-history";
  // --no-history: keep no history at all (current values only; range reads
  // and queries over time find nothing). For measuring what history costs.
  bool history = true;
  // Remote write out (API.md Part 2): every sample goes to each of these
  // remote-write 1.0 URLs, with these extra "Name: value" headers.
  std::vector<std::string> remote_write_urls;
  std::vector<std::string> remote_write_headers;
  // Samples each destination's queue holds; past it batches are dropped
  // (and later sent from the history).
  std::size_t remote_write_queue = 100'000;

  // Alerting (API.md Part 2, "Alerting"; docs/ALERTING.md).
  std::vector<std::string> rules;  // files or globs
  std::chrono::milliseconds evaluation_interval{std::chrono::seconds{15}};
  std::vector<std::string> alertmanager_urls;
  std::vector<std::string> alert_webhooks;
  std::string external_url;
  std::chrono::milliseconds resend_delay{std::chrono::minutes{1}};
  std::chrono::milliseconds for_outage_tolerance{std::chrono::hours{1}};
  // The Prometheus HTTP API (API.md Part 2, "Query API").
  std::chrono::milliseconds query_timeout{std::chrono::minutes{2}};
  std::chrono::milliseconds query_lookback_delta{std::chrono::minutes{5}};
  std::size_t query_max_samples = 50'000'000;
  unsigned query_max_concurrency = 20;
};

// "536870912", "512MiB", "64KiB", "1GiB" (also "B", "K"/"KiB", "M"/"MiB",
// "G"/"GiB", binary units) -> bytes. Throws core::options::BadValue.
[[nodiscard]] std::uint64_t parse_byte_size(std::string_view text);

// A bad option; what() names the option and says what was wrong.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Returns the value of an environment variable, nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
[[nodiscard]] EnvLookup process_env();

struct LoadResult {
  ServerConfig config;
  bool help_requested = false;
  std::string help;  // usage text when help_requested
  // "address=localhost:9090 (from ADDRESS)" for every option not at its
  // default, in table order; keys and DSN passwords are never shown.
  std::vector<std::string> origins;
};

// args excludes the program name. Throws ConfigError.
[[nodiscard]] LoadResult load_server_config(const std::vector<std::string>& args,
                                            const EnvLookup& env);

// The start-up warning for a snapshot file that restore is off for (it will
// be replaced at the next write); nullopt when there is nothing to warn of.
[[nodiscard]] std::optional<std::string> restore_warning(const ServerConfig& config);

}  // namespace metrics::server
