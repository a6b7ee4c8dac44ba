#include "metrics/agent/config.hpp"

#include <boost/json.hpp>
#include <charconv>
#include <fstream>
#include <optional>
#include <sstream>

#include "http_sender.hpp"
#include "metrics/core/duration.hpp"

namespace metrics::agent {
namespace {

// The agent's options, each with its flag, variable and file key.
enum class Option { address, poll, report, key, rate, ca_file, send_mode, config };

struct OptionName {
  Option option;
  std::string_view flag;
  std::string_view env;
  std::string_view file_key;
};

constexpr OptionName kOptions[] = {
    {Option::address, "a", "ADDRESS", "address"},
    {Option::poll, "p", "POLL_INTERVAL", "poll_interval"},
    {Option::report, "r", "REPORT_INTERVAL", "report_interval"},
    {Option::key, "k", "KEY", "key"},
    {Option::rate, "l", "RATE_LIMIT", "rate_limit"},
    {Option::ca_file, "ca-file", "CA_FILE", "ca_file"},
    {Option::send_mode, "send-mode", "SEND_MODE", "send_mode"},
    {Option::config, "c", "CONFIG", ""},
};

struct ParseError {
  std::string message;
};

std::chrono::milliseconds parse_interval(std::string_view text, const std::string& where) {
  const auto d = core::parse_duration(text);
  if (!d) {
    throw ParseError{where + ": invalid duration '" + std::string(text) +
                     "' (use seconds like 10, or 500ms, 2s, 1m)"};
  }
  if (*d <= std::chrono::nanoseconds::zero()) throw ParseError{where + ": must be positive"};
  if (*d < std::chrono::milliseconds{1}) throw ParseError{where + ": must be at least 1ms"};
  return std::chrono::duration_cast<std::chrono::milliseconds>(*d);
}

unsigned parse_rate(std::string_view text, const std::string& where) {
  long long v = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size()) {
    throw ParseError{where + ": invalid number '" + std::string(text) + "'"};
  }
  if (v < 1) throw ParseError{where + ": must be at least 1"};
  if (v > 64) throw ParseError{where + ": at most 64 requests in flight"};
  return static_cast<unsigned>(v);
}

void apply(AgentConfig& config, Option option, std::string_view value, const std::string& where) {
  switch (option) {
    case Option::address:
      if (std::string why; !detail::updates_url(value, &why)) {
        throw ParseError{where + ": '" + std::string(value) + "' " + why};
      }
      config.address = std::string(value);
      break;
    case Option::poll:
      config.poll_interval = parse_interval(value, where);
      break;
    case Option::report:
      config.report_interval = parse_interval(value, where);
      break;
    case Option::key:
      config.key = std::string(value);
      break;
    case Option::rate:
      config.rate_limit = parse_rate(value, where);
      break;
    case Option::ca_file:
      config.ca_file = std::string(value);
      break;
    case Option::send_mode:
      if (!parse_send_mode(value, config.send_mode)) {
        throw ParseError{where + ": '" + std::string(value) + "' is not batch, json or text"};
      }
      break;
    case Option::config:
      break;
  }
}

std::string json_scalar(const boost::json::value& v, const std::string& where, bool allow_number) {
  if (v.is_string()) return std::string(v.get_string());
  if (allow_number && v.is_int64()) return std::to_string(v.get_int64());
  if (allow_number && v.is_uint64()) return std::to_string(v.get_uint64());
  if (allow_number && v.is_double()) {
    // Whole and fractional seconds alike: "1.5" parses as a Go duration.
    std::ostringstream out;
    out << v.get_double();
    return out.str();
  }
  throw ParseError{where +
                   (allow_number ? ": must be a string or a number" : ": must be a string")};
}

void apply_file(AgentConfig& config, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ParseError{"config file '" + path + "': cannot be read"};
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > (1 << 20)) throw ParseError{"config file '" + path + "': too large"};
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(text.str(), ec);
  if (ec) throw ParseError{"config file '" + path + "': invalid JSON (" + ec.message() + ")"};
  if (!doc.is_object()) throw ParseError{"config file '" + path + "': must be a JSON object"};
  for (const auto& opt : kOptions) {
    if (opt.file_key.empty()) continue;
    const auto* v = doc.get_object().if_contains(opt.file_key);
    if (v == nullptr || v->is_null()) continue;
    const std::string where = "config file '" + path + "': " + std::string(opt.file_key);
    const bool numeric =
        opt.option == Option::poll || opt.option == Option::report || opt.option == Option::rate;
    apply(config, opt.option, json_scalar(*v, where, numeric), where);
  }
}

const char* env_value(const EnvLookup& env, std::string_view name) {
  if (!env) return nullptr;
  const char* v = env(std::string(name).c_str());
  // An empty variable counts as unset, as in the Go original's env parsing.
  return v != nullptr && *v != '\0' ? v : nullptr;
}

const OptionName* find_flag(std::string_view name) {
  if (name == "config") name = "c";
  for (const auto& opt : kOptions) {
    if (opt.flag == name) return &opt;
  }
  return nullptr;
}

ConfigResult load(std::span<const std::string_view> args, const EnvLookup& env) {
  ConfigResult result;
  struct FlagValue {
    Option option;
    std::string_view flag;
    std::string_view value;
  };
  std::vector<FlagValue> flags;
  for (std::size_t i = 0; i < args.size(); ++i) {
    std::string_view arg = args[i];
    if (arg == "--") {
      if (i + 1 < args.size()) {
        throw ParseError{"unexpected argument '" + std::string(args[i + 1]) + "'"};
      }
      break;
    }
    if (arg.size() < 2 || arg.front() != '-') {
      throw ParseError{"unexpected argument '" + std::string(arg) + "'"};
    }
    arg.remove_prefix(arg.starts_with("--") ? 2 : 1);
    std::string_view name = arg;
    std::optional<std::string_view> value;
    if (const std::size_t eq = arg.find('='); eq != std::string_view::npos) {
      name = arg.substr(0, eq);
      value = arg.substr(eq + 1);
    }
    if (name == "h" || name == "help") {
      result.help = true;
      return result;
    }
    const OptionName* opt = find_flag(name);
    if (opt == nullptr) throw ParseError{"unknown flag -" + std::string(name)};
    if (!value) {
      if (i + 1 >= args.size()) throw ParseError{"flag -" + std::string(name) + " needs a value"};
      value = args[++i];
    }
    flags.push_back({opt->option, opt->flag, *value});
  }

  // The config file: -c wins over CONFIG.
  std::optional<std::string> config_path;
  if (const char* v = env_value(env, "CONFIG")) config_path = v;
  for (const auto& f : flags) {
    if (f.option == Option::config) {
      if (f.value.empty()) throw ParseError{"flag -c: must not be empty"};
      config_path = std::string(f.value);
    }
  }
  if (config_path) apply_file(result.config, *config_path);
  for (const auto& opt : kOptions) {
    if (opt.option == Option::config) continue;
    if (const char* v = env_value(env, opt.env)) {
      apply(result.config, opt.option, v, "environment " + std::string(opt.env));
    }
  }
  for (const auto& f : flags) {
    apply(result.config, f.option, f.value, "flag -" + std::string(f.flag));
  }
  if (std::string why = validate(result.config); !why.empty()) result.error = std::move(why);
  return result;
}

ConfigResult guarded(std::span<const std::string_view> args, const EnvLookup& env) noexcept {
  try {
    return load(args, env);
  } catch (const ParseError& e) {
    ConfigResult r;
    r.error = e.message;
    return r;
  } catch (const std::exception& e) {
    ConfigResult r;
    r.error = std::string("configuration: ") + e.what();
    return r;
  } catch (...) {
    ConfigResult r;
    r.error = "configuration: unexpected error";
    return r;
  }
}

}  // namespace

ConfigResult load_config(std::span<const std::string_view> args, const EnvLookup& env) noexcept {
  return guarded(args, env);
}

ConfigResult load_config_from_env(const EnvLookup& env) noexcept {
  return guarded({}, env);
}

std::string usage(std::string_view program) {
  return "Usage: " + std::string(program) +
         " [flags]\n"
         "  -a ADDRESS          server host:port or http(s):// URL (env ADDRESS, default "
         "localhost:8080)\n"
         "  -p POLL_INTERVAL    how often metrics are sampled (env POLL_INTERVAL, default 2)\n"
         "  -r REPORT_INTERVAL  how often samples are sent (env REPORT_INTERVAL, default 10)\n"
         "  -k KEY              signing key (env KEY, default none)\n"
         "  -l RATE_LIMIT       most requests in flight (env RATE_LIMIT, default 1)\n"
         "  --ca-file PATH      CA certificates (PEM) to trust for https:// (env CA_FILE,\n"
         "                      default: the system store)\n"
         "  --send-mode MODE    batch (POST /updates/), json (one POST /update/ per metric)\n"
         "                      or text (POST /update/{type}/{name}/{value}) (env SEND_MODE,\n"
         "                      default batch)\n"
         "  -c CONFIG           JSON config file (env CONFIG)\n"
         "Durations: seconds (10) or Go units (500ms, 2s, 1m). A flag wins over the "
         "environment,\nthe environment over the config file, the file over the default.\n";
}

}  // namespace metrics::agent
