#include "metrics/server/config.hpp"

#include <CLI/CLI.hpp>
#include <boost/json.hpp>
#include <charconv>
#include <cstdlib>
#include <fstream>
#include <map>
#include <sstream>

#include "metrics/core/duration.hpp"

namespace metrics::server {
namespace {

using Setter = std::function<void(ServerConfig&, const std::string&)>;

struct Option {
  std::string flag;  // "-a" or "--log-level"
  std::string env;   // "" when the option has no environment variable
  std::vector<std::string> file_keys;
  std::string help;
  bool is_bool = false;
  Setter set;
};

[[noreturn]] void fail(const std::string& what) {
  throw std::invalid_argument(what);
}

std::chrono::milliseconds to_duration(const std::string& v) {
  auto d = core::parse_duration(v);
  if (!d) fail("expected a duration such as 10, 500ms, 10s or 1m");
  return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
}

bool to_bool(const std::string& v) {
  auto b = core::parse_bool(v);
  if (!b) fail("expected true or false");
  return *b;
}

std::uint64_t to_uint(const std::string& v, std::uint64_t min, std::uint64_t max) {
  std::uint64_t out = 0;
  auto [ptr, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  if (ec != std::errc{} || ptr != v.data() + v.size() || out < min || out > max) {
    fail("expected a whole number from " + std::to_string(min) + " to " + std::to_string(max));
  }
  return out;
}

void check_address(const std::string& v) {
  auto colon = v.rfind(':');
  if (colon == std::string::npos) fail("expected host:port");
  (void)to_uint(v.substr(colon + 1), 0, 65535);
}

std::vector<Option> options() {
  return {
      {"-a",
       "ADDRESS",
       {"address"},
       "host:port to listen on",
       false,
       [](ServerConfig& c, const std::string& v) {
         check_address(v);
         c.address = v;
       }},
      {"-d",
       "DATABASE_DSN",
       {"database_dsn"},
       "PostgreSQL connection string; when set, PostgreSQL is the storage",
       false,
       [](ServerConfig& c, const std::string& v) { c.storage.database_dsn = v; }},
      {"-f",
       "FILE_STORAGE_PATH",
       {"store_file", "file_storage_path"},
       "snapshot file of the in-memory storage; empty disables it",
       false,
       [](ServerConfig& c, const std::string& v) { c.storage.file_path = v; }},
      {"-i",
       "STORE_INTERVAL",
       {"store_interval"},
       "how often the file is written; 0 makes every update durable before the answer",
       false,
       [](ServerConfig& c, const std::string& v) { c.storage.store_interval = to_duration(v); }},
      {"-r",
       "RESTORE",
       {"restore"},
       "load the file at start",
       true,
       [](ServerConfig& c, const std::string& v) { c.storage.restore = to_bool(v); }},
      {"-k",
       "KEY",
       {"key"},
       "signing key (HMAC-SHA256 of bodies)",
       false,
       [](ServerConfig& c, const std::string& v) { c.key = v; }},
      {"--allow-unsigned",
       "ALLOW_UNSIGNED",
       {"allow_unsigned"},
       "with a key, accept writes without a signature (a wrong one is still refused)",
       true,
       [](ServerConfig& c, const std::string& v) { c.allow_unsigned = to_bool(v); }},
      {"--tls-cert",
       "TLS_CERT",
       {"tls_cert"},
       "PEM certificate chain; with --tls-key the server speaks HTTPS only",
       false,
       [](ServerConfig& c, const std::string& v) { c.tls_cert = v; }},
      {"--tls-key",
       "TLS_KEY",
       {"tls_key"},
       "PEM private key of --tls-cert",
       false,
       [](ServerConfig& c, const std::string& v) { c.tls_key = v; }},
      {"--log-level",
       "LOG_LEVEL",
       {"log_level"},
       "trace, debug, info, warn, error, critical or off",
       false,
       [](ServerConfig& c, const std::string& v) {
         static const std::vector<std::string> levels{"trace", "debug",    "info", "warn",
                                                      "error", "critical", "off"};
         if (std::find(levels.begin(), levels.end(), v) == levels.end()) {
           fail("expected one of trace, debug, info, warn, error, critical, off");
         }
         c.log_level = v;
       }},
      {"--access-log",
       "",
       {"access_log"},
       "log every request (at info level)",
       true,
       [](ServerConfig& c, const std::string& v) { c.access_log = to_bool(v); }},
      {"--threads",
       "",
       {"threads"},
       "I/O threads; 0 means one per core",
       false,
       [](ServerConfig& c, const std::string& v) {
         c.threads = static_cast<unsigned>(to_uint(v, 0, 256));
       }},
      {"--max-body-bytes",
       "",
       {"max_body_bytes"},
       "largest request body, before and after decompression",
       false,
       [](ServerConfig& c, const std::string& v) {
         c.max_body_bytes = to_uint(v, 1024, std::uint64_t{1} << 30);
       }},
      {"--max-header-bytes",
       "",
       {"max_header_bytes"},
       "largest request header block",
       false,
       [](ServerConfig& c, const std::string& v) {
         c.max_header_bytes = to_uint(v, 512, std::uint64_t{1} << 20);
       }},
      {"--max-batch",
       "",
       {"max_batch"},
       "most metrics in one batch",
       false,
       [](ServerConfig& c, const std::string& v) {
         c.max_batch_items = to_uint(v, 1, 10'000'000);
       }},
      {"--max-connections",
       "",
       {"max_connections"},
       "most connections open at once",
       false,
       [](ServerConfig& c, const std::string& v) {
         c.max_connections = to_uint(v, 1, 10'000'000);
       }},
      {"--read-timeout",
       "",
       {"read_timeout"},
       "deadline for reading one request, and for an idle kept-alive connection",
       false,
       [](ServerConfig& c, const std::string& v) {
         c.read_timeout = to_duration(v);
         if (c.read_timeout.count() <= 0) fail("must be positive");
       }},
      {"--shutdown-timeout",
       "",
       {"shutdown_timeout"},
       "how long graceful shutdown waits for requests in flight",
       false,
       [](ServerConfig& c, const std::string& v) { c.shutdown_timeout = to_duration(v); }},
  };
}

std::string option_name(const Option& o) {
  return o.env.empty() ? o.flag : o.flag + "/" + o.env;
}

// Go's flag package accepts -x=value and --x; CLI11 wants -x value.
std::vector<std::string> normalize_go_flags(const std::vector<std::string>& args) {
  std::vector<std::string> out;
  for (const auto& a : args) {
    std::string arg = a;
    if (arg.size() >= 3 && arg[0] == '-' && arg[1] == '-' && arg[2] != '-' &&
        (arg.size() == 3 || arg[3] == '=')) {
      arg.erase(0, 1);  // --a[=v] -> -a[=v]
    }
    if (arg.size() >= 3 && arg[0] == '-' && arg[1] != '-' && arg[2] == '=') {
      out.push_back(arg.substr(0, 2));
      out.push_back(arg.substr(3));
    } else if (arg.size() > 2 && arg[0] == '-' && arg[1] == '-' &&
               arg.find('=') != std::string::npos) {
      auto eq = arg.find('=');
      out.push_back(arg.substr(0, eq));
      out.push_back(arg.substr(eq + 1));
    } else {
      out.push_back(arg);
    }
  }
  return out;
}

std::string json_scalar_to_text(const boost::json::value& v, const std::string& key) {
  switch (v.kind()) {
    case boost::json::kind::string:
      return std::string(v.get_string());
    case boost::json::kind::bool_:
      return v.get_bool() ? "true" : "false";
    case boost::json::kind::int64:
      return std::to_string(v.get_int64());
    case boost::json::kind::uint64:
      return std::to_string(v.get_uint64());
    default:
      throw ConfigError("config file: \"" + key + "\" must be a string, number or boolean");
  }
}

std::map<std::string, std::string> read_config_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("config file " + path + ": cannot be opened");
  std::stringstream ss;
  ss << in.rdbuf();
  boost::system::error_code ec;
  auto doc = boost::json::parse(ss.str(), ec);
  if (ec) throw ConfigError("config file " + path + ": not valid JSON (" + ec.message() + ")");
  if (!doc.is_object()) throw ConfigError("config file " + path + ": expected a JSON object");
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : doc.get_object()) {
    out[std::string(k)] = json_scalar_to_text(v, std::string(k));
  }
  return out;
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
  };
}

LoadResult load_server_config(const std::vector<std::string>& raw_args, const EnvLookup& env) {
  const auto opts = options();
  CLI::App app{"metrics-server: stores gauges and counters pushed over HTTP", "metrics-server"};
  app.set_help_flag("-h,--help", "print this help and exit");
  app.allow_extras(false);

  std::map<std::string, std::string> flag_values;
  std::map<std::string, CLI::Option*> flag_opts;
  for (const auto& o : opts) {
    std::string help = o.help + (o.env.empty() ? "" : " [env " + o.env + "]");
    auto* opt = app.add_option(o.flag, flag_values[o.flag], help);
    if (o.is_bool) opt->expected(0, 1);
    flag_opts[o.flag] = opt;
  }
  std::string config_path;
  auto* config_opt = app.add_option("-c,--config", config_path, "JSON config file [env CONFIG]");

  LoadResult result;
  auto args = normalize_go_flags(raw_args);
  std::vector<std::string> reversed(args.rbegin(), args.rend());
  try {
    app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    result.help_requested = true;
    result.help = app.help();
    return result;
  } catch (const CLI::ParseError& e) {
    throw ConfigError(std::string("command line: ") + e.what());
  }

  if (config_opt->count() == 0) {
    if (auto v = env("CONFIG"); v && !v->empty()) config_path = *v;
  }
  std::map<std::string, std::string> file;
  if (!config_path.empty()) file = read_config_file(config_path);

  // Every key of the file must be known: a typo must not pass silently.
  for (const auto& [key, value] : file) {
    bool known = false;
    for (const auto& o : opts) {
      known = known || std::find(o.file_keys.begin(), o.file_keys.end(), key) != o.file_keys.end();
    }
    if (!known)
      throw ConfigError("config file " + config_path + ": unknown option \"" + key + "\"");
  }

  for (const auto& o : opts) {
    std::optional<std::string> value;
    std::string source;
    if (flag_opts[o.flag]->count() > 0) {
      value = flag_values[o.flag];
      if (o.is_bool && value->empty()) value = "true";
      source = "flag " + o.flag;
    } else if (!o.env.empty() && (value = env(o.env))) {
      source = "environment " + o.env;
    } else {
      for (const auto& k : o.file_keys) {
        if (auto it = file.find(k); it != file.end()) {
          value = it->second;
          source = "config file key \"" + k + "\"";
          break;
        }
      }
    }
    if (!value) continue;
    try {
      o.set(result.config, *value);
    } catch (const std::invalid_argument& e) {
      throw ConfigError("invalid value \"" + *value + "\" for " + option_name(o) + " (from " +
                        source + "): " + e.what());
    }
  }
  if (result.config.tls_cert.empty() != result.config.tls_key.empty()) {
    throw ConfigError(
        "--tls-cert/TLS_CERT and --tls-key/TLS_KEY go together: set both for HTTPS, or neither");
  }
  if (result.config.storage.store_interval.count() < 0) {
    throw ConfigError("-i/STORE_INTERVAL must not be negative");
  }
  return result;
}

}  // namespace metrics::server
