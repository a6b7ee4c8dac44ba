#include "metrics/core/options.hpp"

#include <algorithm>
#include <boost/json.hpp>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "metrics/core/duration.hpp"

namespace metrics::core::options {
namespace {

constexpr std::size_t kMaxConfigFile = std::size_t{1} << 20;

// A value given for one row, from one source, in the order they apply.
struct Given {
  std::size_t row;
  Source source;
  std::string value;
  std::string from;         // "flag -i", "ADDRESS", "config file /p"
  std::string key;          // config key, for file values
  bool empty_list = false;  // a repeatable row given an empty list: clears, adds nothing
};

std::string bare(std::string_view flag) {
  while (!flag.empty() && flag.front() == '-')
    flag.remove_prefix(1);
  return std::string(flag);
}

bool is_config_flag(const Spec& spec, std::string_view name) {
  return std::any_of(spec.config_flags.begin(), spec.config_flags.end(),
                     [&](const std::string& f) { return bare(f) == name; });
}

struct Found {
  std::size_t row;
  bool negated;
};

std::optional<Found> find_flag(const Spec& spec, std::string_view name) {
  for (std::size_t i = 0; i < spec.options.size(); ++i) {
    const auto& o = spec.options[i];
    for (const auto& f : o.flags) {
      if (bare(f) == name) return Found{i, false};
    }
    for (const auto& f : o.negations) {
      if (bare(f) == name) return Found{i, true};
    }
  }
  return std::nullopt;
}

struct Args {
  bool help = false;
  std::optional<std::string> config;  // the last -c
  std::vector<Given> given;
};

Args parse_args(const Spec& spec, std::span<const std::string> args) {
  Args out;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") {
      if (i + 1 < args.size()) {
        throw OptionsError("unexpected argument '" + args[i + 1] + "'");
      }
      break;
    }
    if (arg.size() < 2 || arg.front() != '-' || arg.starts_with("---")) {
      throw OptionsError("unexpected argument '" + arg + "'");
    }
    std::string_view body(arg);
    const bool single_dash = !body.starts_with("--");
    body.remove_prefix(single_dash ? 1 : 2);
    std::string name(body);
    std::optional<std::string> value;
    if (const auto eq = body.find('='); eq != std::string_view::npos) {
      name = std::string(body.substr(0, eq));
      value = std::string(body.substr(eq + 1));
    }
    if (name == "h" || name == "help") {
      out.help = true;
      return out;
    }
    if (is_config_flag(spec, name)) {
      if (!value) {
        if (i + 1 >= args.size()) throw OptionsError("flag -" + name + " needs a value");
        value = args[++i];
      }
      out.config = *value;
      continue;
    }
    auto found = find_flag(spec, name);
    if (!found && single_dash && !value && name.size() > 1) {
      // -n200: a one-letter flag with its value attached.
      if (auto f = find_flag(spec, name.substr(0, 1));
          f && !f->negated && !spec.options[f->row].value.boolean) {
        found = f;
        value = name.substr(1);
        name = name.substr(0, 1);
      }
    }
    if (!found) throw OptionsError("unknown flag -" + name);
    const Option& o = spec.options[found->row];
    if (found->negated) {
      if (value) throw OptionsError("flag -" + name + " takes no value");
      value = "false";
    } else if (o.value.boolean) {
      if (!value) {
        // "-r false" as well as "-r" and "-r=false".
        if (i + 1 < args.size() && core::parse_bool(args[i + 1])) {
          value = args[++i];
        } else {
          value = "true";
        }
      }
    } else if (!value) {
      if (i + 1 >= args.size()) throw OptionsError("flag -" + name + " needs a value");
      value = args[++i];
    }
    out.given.push_back({.row = found->row,
                         .source = Source::flag,
                         .value = *value,
                         .from = std::string("flag ") + (single_dash ? "-" : "--") + name,
                         .key = {}});
  }
  return out;
}

std::string json_text(const boost::json::value& v, const std::string& where) {
  switch (v.kind()) {
    case boost::json::kind::string:
      return std::string(v.get_string());
    case boost::json::kind::bool_:
      return v.get_bool() ? "true" : "false";
    case boost::json::kind::int64:
      return std::to_string(v.get_int64());
    case boost::json::kind::uint64:
      return std::to_string(v.get_uint64());
    case boost::json::kind::double_: {
      char buf[64];
      const auto r = std::to_chars(buf, buf + sizeof buf, v.get_double());
      return std::string(buf, r.ptr);
    }
    default:
      throw OptionsError(where + " must be a string, number or boolean");
  }
}

// The file's values, checked against the table's keys.
std::vector<Given> read_file(const Spec& spec, const std::string& path) {
  const std::string what = "config file " + path;
  std::ifstream in(path, std::ios::binary);
  if (!in) throw OptionsError(what + ": cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  if (text.str().size() > kMaxConfigFile) throw OptionsError(what + ": too large (over 1 MiB)");
  boost::system::error_code ec;
  const boost::json::value doc = boost::json::parse(text.str(), ec);
  if (ec) throw OptionsError(what + ": not valid JSON (" + ec.message() + ")");
  if (!doc.is_object()) throw OptionsError(what + ": expected a JSON object");
  const auto& obj = doc.get_object();
  for (const auto& member : obj) {
    const std::string key(member.key());
    const bool known = std::any_of(spec.options.begin(), spec.options.end(), [&](const Option& o) {
      return std::find(o.keys.begin(), o.keys.end(), key) != o.keys.end();
    });
    if (!known) throw OptionsError(what + ": unknown key \"" + key + "\"");
  }
  std::vector<Given> out;
  for (std::size_t i = 0; i < spec.options.size(); ++i) {
    // When a row has several keys, the first one present is used.
    for (const auto& key : spec.options[i].keys) {
      const auto* v = obj.if_contains(key);
      if (v == nullptr || v->is_null()) continue;
      if (spec.options[i].value.repeatable && v->is_array()) {
        for (const auto& item : v->get_array()) {
          out.push_back({.row = i,
                         .source = Source::file,
                         .value = json_text(item, what + ": an item of key \"" + key + "\""),
                         .from = what,
                         .key = key});
        }
        if (v->get_array().empty()) {
          // An empty array gives the option no items (not its defaults).
          out.push_back({.row = i, .source = Source::file, .value = {}, .from = what, .key = key});
          out.back().empty_list = true;
        }
        break;
      }
      out.push_back({.row = i,
                     .source = Source::file,
                     .value = json_text(*v, what + ": key \"" + key + "\""),
                     .from = what,
                     .key = key});
      break;
    }
  }
  return out;
}

std::string row_name(const Option& o) {
  if (!o.keys.empty()) return o.keys.front();
  std::string name = bare(o.flags.empty() ? o.env : o.flags.back());
  std::replace(name.begin(), name.end(), '-', '_');
  return name;
}

std::string shown(const Option& o) {
  if (o.value.secret) return "<set>";
  return o.value.show ? o.value.show() : "?";
}

}  // namespace

EnvLookup process_env() {
  return [](const std::string& name) -> std::optional<std::string> {
    if (const char* v = std::getenv(name.c_str())) return std::string(v);
    return std::nullopt;
  };
}

EnvLookup no_env() {
  return [](const std::string&) -> std::optional<std::string> { return std::nullopt; };
}

std::string label(const Option& o) {
  std::string out;
  for (const auto& f : o.flags) {
    out += (out.empty() ? "" : ",") + f;
  }
  if (!o.env.empty()) out += (out.empty() ? "" : "/") + o.env;
  if (out.empty() && !o.keys.empty()) out = o.keys.front();
  return out;
}

Result load(const Spec& spec, std::span<const std::string> args, const EnvLookup& env) {
  Result result;
  Args parsed = parse_args(spec, args);
  if (parsed.help) {
    result.help = true;
    return result;
  }
  const auto env_value = [&env](const std::string& name) -> std::optional<std::string> {
    if (name.empty() || !env) return std::nullopt;
    auto v = env(name);
    // An empty variable counts as unset.
    if (v && v->empty()) return std::nullopt;
    return v;
  };

  // The config file, with the same precedence: its variable over its flag.
  if (auto v = env_value(spec.config_env)) {
    result.config_path = *v;
  } else if (parsed.config) {
    result.config_path = *parsed.config;
  }
  std::vector<Given> given;
  if (!result.config_path.empty()) given = read_file(spec, result.config_path);
  given.insert(given.end(), parsed.given.begin(), parsed.given.end());
  for (std::size_t i = 0; i < spec.options.size(); ++i) {
    auto v = env_value(spec.options[i].env);
    if (!v) continue;
    if (!spec.options[i].value.repeatable) {
      given.push_back(
          {.row = i, .source = Source::env, .value = *v, .from = spec.options[i].env, .key = {}});
      continue;
    }
    const auto items = split_list(*v);
    for (const auto& item : items) {
      given.push_back(
          {.row = i, .source = Source::env, .value = item, .from = spec.options[i].env, .key = {}});
    }
    if (items.empty()) {
      given.push_back(
          {.row = i, .source = Source::env, .value = {}, .from = spec.options[i].env, .key = {}});
      given.back().empty_list = true;
    }
  }
  // `given` holds the file's values, then the flags in order, then the
  // environment: applied in that order, the last one wins, and every value
  // given is checked.
  std::vector<const Given*> winner(spec.options.size(), nullptr);
  std::vector<int> last_source(spec.options.size(), -1);
  for (const auto& g : given) {
    const Option& o = spec.options[g.row];
    if (o.value.repeatable && last_source[g.row] != static_cast<int>(g.source)) {
      // A repeatable row keeps the items of its strongest source only, and
      // starts from an empty list (every item of every source is checked).
      if (o.value.clear) o.value.clear();
      last_source[g.row] = static_cast<int>(g.source);
    }
    if (g.empty_list) {
      winner[g.row] = &g;
      continue;
    }
    try {
      o.value.set(g.value);
    } catch (const BadValue& e) {
      const std::string from =
          g.source == Source::file ? g.from + ", key \"" + g.key + "\"" : g.from;
      const std::string value = o.value.secret ? "" : " \"" + g.value + "\"";
      throw OptionsError("invalid value" + value + " for " + label(o) + " (from " + from +
                         "): " + e.what());
    }
    winner[g.row] = &g;
  }
  for (std::size_t i = 0; i < spec.options.size(); ++i) {
    if (winner[i] == nullptr) continue;
    const Option& o = spec.options[i];
    result.origins.push_back({.name = row_name(o),
                              .value = shown(o),
                              .source = winner[i]->source,
                              .from = winner[i]->from});
  }
  return result;
}

std::string help(const Spec& spec) {
  std::string out = "Usage: " + spec.program + " [flags]\n";
  if (!spec.summary.empty()) out += spec.summary + "\n";
  out += "\n";
  constexpr std::size_t kColumn = 30;
  const auto row = [&out](std::string left, const std::string& text,
                          const std::vector<std::string>& notes) {
    left = "  " + left;
    if (left.size() + 2 > kColumn) {
      out += left + "\n" + std::string(kColumn, ' ');
    } else {
      out += left + std::string(kColumn - left.size(), ' ');
    }
    out += text + "\n";
    std::string line;
    for (const auto& n : notes) {
      line += (line.empty() ? "" : "; ") + n;
    }
    if (!line.empty()) out += std::string(kColumn, ' ') + "(" + line + ")\n";
  };
  for (const auto& o : spec.options) {
    std::string left;
    for (const auto& f : o.flags) {
      left += (left.empty() ? "" : ", ") + f;
    }
    for (const auto& f : o.negations) {
      left += (left.empty() ? "" : ", ") + f;
    }
    left += " " + o.value.type;
    std::vector<std::string> notes;
    if (!o.env.empty()) notes.push_back("env " + o.env);
    for (const auto& k : o.keys) {
      notes.push_back("key " + k);
    }
    notes.push_back("default " +
                    (o.value.quote ? "\"" + o.value.default_text + "\"" : o.value.default_text));
    row(left, o.help, notes);
  }
  std::string config_left;
  for (const auto& f : spec.config_flags) {
    config_left += (config_left.empty() ? "" : ", ") + f;
  }
  row(config_left + " path", "JSON config file: an object of the keys above",
      {"env " + spec.config_env});
  row("-h, --help", "print this help and exit", {});
  out +=
      "\nAn environment variable wins over its flag, a flag over the config file, the file\n"
      "over the default; an empty variable counts as unset. Durations are seconds (10)\n"
      "or Go units (500ms, 10s, 1m). Flags: -a value, -a=value, --a value, --a=value.\n";
  return out;
}

std::chrono::nanoseconds parse_duration(std::string_view text) {
  const auto d = core::parse_duration(text);
  if (!d) throw BadValue("expected a duration such as 10, 500ms, 10s or 1m");
  return *d;
}

std::string format_duration(std::chrono::nanoseconds d) {
  using namespace std::chrono;
  const auto ns = d.count();
  if (ns == 0) return "0s";
  const auto fmt = [](auto n, const char* unit) { return std::to_string(n) + unit; };
  if (ns % 1'000'000'000 == 0) {
    const auto s = ns / 1'000'000'000;
    if (s % 3600 == 0) return fmt(s / 3600, "h");
    if (s % 60 == 0) return fmt(s / 60, "m");
    if (s > 60) return fmt(s / 60, "m") + fmt(s % 60, "s");
    return fmt(s, "s");
  }
  if (ns % 1'000'000 == 0) return fmt(ns / 1'000'000, "ms");
  if (ns % 1'000 == 0) return fmt(ns / 1'000, "us");
  return fmt(ns, "ns");
}

bool parse_bool(std::string_view text) {
  const auto b = core::parse_bool(text);
  if (!b) throw BadValue("expected true or false");
  return *b;
}

std::uint64_t parse_uint(std::string_view text, std::uint64_t min, std::uint64_t max) {
  std::uint64_t out = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() || out < min ||
      out > max) {
    throw BadValue("expected a whole number from " + std::to_string(min) + " to " +
                   std::to_string(max));
  }
  return out;
}

double parse_number(std::string_view text, double min, double max) {
  double out = 0;
  const auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  if (text.empty() || ec != std::errc{} || ptr != text.data() + text.size() ||
      !std::isfinite(out) || out < min || out > max) {
    std::ostringstream msg;
    msg << "expected a number from " << min << " to " << max;
    throw BadValue(msg.str());
  }
  return out;
}

Value text(std::string& target, std::function<void(std::string_view)> check, std::string type) {
  return {.type = std::move(type),
          .default_text = target,
          .quote = true,
          .boolean = false,
          .secret = false,
          .set =
              [&target, check = std::move(check)](std::string_view v) {
                if (check) check(v);
                target = std::string(v);
              },
          .show = [&target] { return target.empty() ? std::string("\"\"") : target; }};
}

Value secret(std::string& target, std::string type) {
  Value v = text(target, nullptr, std::move(type));
  v.secret = true;
  return v;
}

Value choice(std::string& target, std::vector<std::string> choices) {
  std::string type;
  for (const auto& c : choices) {
    type += (type.empty() ? "" : "|") + c;
  }
  auto check = [choices, type](std::string_view v) {
    if (std::find(choices.begin(), choices.end(), v) == choices.end()) {
      throw BadValue("expected one of " + type);
    }
  };
  Value v = text(target, std::move(check), type);
  v.quote = false;
  return v;
}

Value boolean(bool& target) {
  return {.type = "bool",
          .default_text = target ? "true" : "false",
          .quote = false,
          .boolean = true,
          .secret = false,
          .set = [&target](std::string_view v) { target = parse_bool(v); },
          .show = [&target] { return std::string(target ? "true" : "false"); }};
}

std::vector<std::string> split_list(std::string_view text) {
  std::vector<std::string> out;
  while (!text.empty()) {
    const auto comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view{} : text.substr(comma + 1);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t'))
      item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t'))
      item.remove_suffix(1);
    if (!item.empty()) out.emplace_back(item);
  }
  return out;
}

Value list(std::vector<std::string>& target, std::function<void(std::string_view)> check,
           std::string type) {
  const auto show = [&target] {
    std::string out;
    for (const auto& item : target) {
      out += (out.empty() ? "" : ",") + item;
    }
    return out.empty() ? std::string("\"\"") : out;
  };
  std::string defaults;
  for (const auto& item : target) {
    defaults += (defaults.empty() ? "" : ",") + item;
  }
  return {.type = std::move(type) + ", repeatable",
          .default_text = defaults,
          .quote = true,
          .boolean = false,
          .secret = false,
          .repeatable = true,
          .clear = [&target] { target.clear(); },
          .set =
              [&target, check = std::move(check)](std::string_view v) {
                if (check) check(v);
                target.emplace_back(v);
              },
          .show = show};
}

Value number(double& target, double min, double max) {
  const auto show = [&target] {
    std::ostringstream out;
    out << target;
    return out.str();
  };
  return {.type = "number",
          .default_text = show(),
          .quote = false,
          .boolean = false,
          .secret = false,
          .set = [&target, min, max](std::string_view v) { target = parse_number(v, min, max); },
          .show = show};
}

}  // namespace metrics::core::options
