#include "metrics/agent/config.hpp"

#include <optional>

#include "http_sender.hpp"
#include "metrics/core/labels.hpp"
#include "metrics/core/options.hpp"
#include "preload_config.hpp"

namespace metrics::agent {
namespace {

namespace opt = core::options;

opt::Value send_mode(SendMode& target) {
  return {.type = "batch|json|text",
          .default_text = std::string(to_string(target)),
          .quote = false,
          .boolean = false,
          .secret = false,
          .set =
              [&target](std::string_view v) {
                if (!parse_send_mode(v, target)) {
                  throw opt::BadValue("expected one of batch|json|text");
                }
              },
          .show = [&target] { return std::string(to_string(target)); }};
}

// A label value checked against the contract (instance, job).
std::function<void(std::string_view)> label_value(std::string name) {
  return [name = std::move(name)](std::string_view v) {
    if (auto why = core::validate_label_value(name, v)) throw opt::BadValue(*why);
  };
}

// "name=value[,name=value...]" into labels, each checked; throws BadValue.
std::vector<Label> parse_labels(std::string_view v) {
  std::vector<Label> out;
  while (!v.empty()) {
    const std::size_t comma = v.find(',');
    const std::string_view item = v.substr(0, comma);
    v.remove_prefix(comma == std::string_view::npos ? v.size() : comma + 1);
    if (item.empty()) continue;
    const std::size_t eq = item.find('=');
    if (eq == std::string_view::npos) {
      throw opt::BadValue("'" + std::string(item) + "': expected name=value");
    }
    Label l{std::string(item.substr(0, eq)), std::string(item.substr(eq + 1))};
    if (auto why = core::validate_label_name(l.name)) throw opt::BadValue(*why);
    if (auto why = core::validate_label_value(l.name, l.value)) throw opt::BadValue(*why);
    out.push_back(std::move(l));
  }
  return out;
}

// The agent's options: one row each.
opt::Spec spec(AgentConfig& c, std::string_view program, std::vector<std::string>& labels) {
  const auto interval = [](std::chrono::milliseconds& target) {
    return opt::duration(target, std::chrono::nanoseconds{1});
  };
  return {
      .program = std::string(program),
      .summary = "Samples this process and the machine and reports them to a metrics server.",
      .options =
          {
              {.flags = {"-a"},
               .env = "ADDRESS",
               .keys = {"address"},
               .help = "server host:port, or an http:// or https:// URL",
               .value = opt::text(
                   c.address,
                   [](std::string_view v) {
                     if (std::string why; !detail::updates_url(v, &why)) throw opt::BadValue(why);
                   },
                   "host:port|URL")},
              {.flags = {"-p"},
               .env = "POLL_INTERVAL",
               .keys = {"poll_interval"},
               .help = "how often metrics are sampled",
               .value = interval(c.poll_interval)},
              {.flags = {"-r"},
               .env = "REPORT_INTERVAL",
               .keys = {"report_interval"},
               .help = "how often samples are sent",
               .value = interval(c.report_interval)},
              {.flags = {"-k"},
               .env = "KEY",
               .keys = {"key"},
               .help = "signing key (HMAC-SHA256 of bodies)",
               .value = opt::secret(c.key)},
              {.flags = {"-l"},
               .env = "RATE_LIMIT",
               .keys = {"rate_limit"},
               .help = "most requests in flight at once",
               .value = opt::whole(c.rate_limit, 1, 64)},
              {.flags = {"--ca-file"},
               .env = "CA_FILE",
               .keys = {"ca_file"},
               .help = "CA certificates (PEM) to trust for https://; empty: the system store",
               .value = opt::text(c.ca_file, nullptr, "path")},
              {.flags = {"--basic-auth"},
               .env = "BASIC_AUTH",
               .keys = {"basic_auth"},
               .help = "user:password sent as HTTP Basic (for a proxy in front of the server, "
                       "or its --web-config)",
               .value = opt::secret(c.basic_auth, "user:password")},
              {.flags = {"--bearer-token"},
               .env = "BEARER_TOKEN",
               .keys = {"bearer_token"},
               .help = "token sent as Authorization: Bearer (wins over --basic-auth)",
               .value = opt::secret(c.bearer_token, "token")},
              {.flags = {"--send-mode"},
               .env = "SEND_MODE",
               .keys = {"send_mode"},
               .help = "batch: POST /updates/; json: one POST /update/ per metric; text: "
                       "POST /update/{type}/{name}/{value}",
               .value = send_mode(c.send_mode)},
              {.flags = {"--instance"},
               .env = "INSTANCE",
               .keys = {"instance"},
               .help = "the instance label sent with every report; empty: <hostname>:<pid>",
               .value = opt::text(c.instance, label_value("instance"))},
              {.flags = {"--job"},
               .env = "JOB",
               .keys = {"job"},
               .help = "the job label sent with every report; empty: the program's name",
               .value = opt::text(c.job, label_value("job"))},
              {.flags = {"--label"},
               .env = "LABELS",
               .keys = {"labels"},
               .help = "an extra label name=value sent with every report; repeatable; the "
                       "environment and the file take name=value,name2=value2",
               .value = opt::list(
                   labels, [](std::string_view v) { (void)parse_labels(v); }, "name=value")},
          },
  };
}

opt::EnvLookup adapt(const EnvLookup& env) {
  return [&env](const std::string& name) -> std::optional<std::string> {
    if (!env) return std::nullopt;
    const char* v = env(name.c_str());
    if (v == nullptr) return std::nullopt;
    return std::string(v);
  };
}

ConfigResult guarded(std::span<const std::string_view> args, const EnvLookup& env) noexcept {
  ConfigResult result;
  try {
    const std::vector<std::string> owned(args.begin(), args.end());
    std::vector<std::string> labels;
    const auto table = spec(result.config, "metrics-agent", labels);
    auto loaded = opt::load(table, owned, adapt(env));
    if (loaded.help) {
      result = ConfigResult{};
      result.help = true;
      return result;
    }
    for (const auto& item : labels) {
      auto parsed = parse_labels(item);
      result.config.labels.insert(result.config.labels.end(), parsed.begin(), parsed.end());
    }
    for (const auto& o : loaded.origins)
      result.origins.push_back(o.text());
    if (std::string why = validate(result.config); !why.empty()) result.error = std::move(why);
    return result;
  } catch (const opt::OptionsError& e) {
    ConfigResult r;
    r.error = e.what();
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

namespace detail {
namespace {

// A comma-separated list of program names; blanks around names are dropped.
opt::Value names(std::vector<std::string>& target) {
  return {.type = "name,name,...",
          .default_text = "",
          .quote = true,
          .boolean = false,
          .secret = false,
          .set =
              [&target](std::string_view v) {
                std::vector<std::string> out;
                while (!v.empty()) {
                  const std::size_t comma = v.find(',');
                  std::string_view item = v.substr(0, comma);
                  v.remove_prefix(comma == std::string_view::npos ? v.size() : comma + 1);
                  while (!item.empty() && item.front() == ' ')
                    item.remove_prefix(1);
                  while (!item.empty() && item.back() == ' ')
                    item.remove_suffix(1);
                  if (item.empty()) continue;
                  if (item.find('/') != std::string_view::npos) {
                    throw opt::BadValue("'" + std::string(item) + "': a program name, not a path");
                  }
                  out.emplace_back(item);
                }
                target = std::move(out);
              },
          .show =
              [&target] {
                std::string out;
                for (const auto& n : target)
                  out += (out.empty() ? "" : ",") + n;
                return out;
              }};
}

}  // namespace

bool excluded(const PreloadConfig& config, std::string_view program) noexcept {
  for (const auto& name : config.exclude) {
    if (name == program) return true;
  }
  return false;
}

PreloadConfigResult load_preload_config(const EnvLookup& env) noexcept {
  PreloadConfigResult result;
  try {
    PreloadConfig& c = result.config;
    opt::Spec table{
        .program = "libmetrics-agent-preload.so",
        .summary = "The preload library's own settings (environment only).",
        .options =
            {
                {.env = "METRICS_AGENT_EXIT_TIMEOUT",
                 .help = "the most the program's exit waits for the last report",
                 .value = opt::duration(c.exit_timeout)},
                {.env = "METRICS_AGENT_CHILDREN",
                 .help = "programs the host executes report too (false: removed from LD_PRELOAD)",
                 .value = opt::boolean(c.children)},
                {.env = "METRICS_AGENT_EXCLUDE",
                 .help = "comma-separated program names that report nothing of their own",
                 .value = names(c.exclude)},
            },
        .config_flags = {},
        .config_env = {},
    };
    (void)opt::load(table, {}, adapt(env));
  } catch (const std::exception& e) {
    result = PreloadConfigResult{};
    result.error = e.what();
  } catch (...) {
    result = PreloadConfigResult{};
    result.error = "configuration: unexpected error";
  }
  return result;
}

}  // namespace detail

std::string usage(std::string_view program) {
  AgentConfig defaults;
  std::vector<std::string> labels;
  return opt::help(spec(defaults, program, labels));
}

}  // namespace metrics::agent
