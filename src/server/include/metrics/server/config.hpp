// Server configuration from flags, environment and a JSON config file, with
// the precedence of the wire contract: flag > environment > file > default.
//
//   auto cfg = server::load_server_config(args, server::process_env());
//   // throws server::ConfigError("invalid value \"x\" for -i/STORE_INTERVAL: ...")
//
// Thread-safe (pure functions over their inputs).
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "metrics/storage/factory.hpp"

namespace metrics::server {

struct ServerConfig {
  std::string address = "localhost:8080";
  storage::StorageConfig storage{.database_dsn = "",
                                 .file_path = "/tmp/metrics-db.json",
                                 .store_interval = std::chrono::seconds{300},
                                 .restore = true};
  std::string key;
  // With a key: accept writes that carry no signature (a wrong one is still refused).
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
};

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
};

// args excludes the program name. Throws ConfigError.
[[nodiscard]] LoadResult load_server_config(const std::vector<std::string>& args,
                                            const EnvLookup& env);

}  // namespace metrics::server
