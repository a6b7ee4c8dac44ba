// One options layer for every program: a table of option rows (flag names,
// environment variable, config-file keys, type, default, help, validator)
// and one loader that applies them with one precedence rule:
//
//   environment  >  flag  >  config file  >  default
//
// A new option is one row:
//
//   std::vector<options::Option> rows(ServerConfig& c) {
//     return {{.flags = {"-a"}, .env = "ADDRESS", .keys = {"address"},
//              .help = "host:port to listen on", .value = options::text(c.address, check)},
//             {.flags = {"-i"}, .env = "STORE_INTERVAL", .keys = {"store_interval"},
//              .help = "...", .value = options::duration(c.store_interval)}};
//   }
//   ServerConfig c;
//   auto r = options::load({.program = "metrics-server", .options = rows(c)}, args, env);
//   // throws options::OptionsError("invalid value \"x\" for -i/STORE_INTERVAL (from flag -i):
//   ...") for (const auto& o : r.origins) log(o.text());   // "store_interval=0s (from flag -i)"
//
// The same rules in every program: Go flag syntax (-a value, -a=value,
// --a value, --a=value; a boolean flag alone means true; "--" ends the
// flags; positional arguments are errors); an empty environment variable
// counts as unset; the config file (-c/--config or its variable, the same
// precedence) is a JSON object whose every key must be known; every value
// given, from any source, is validated, and a bad one names the option.
// Values of secret rows are never shown (in the origins nor in errors).
//
// Pure apart from reading the config file; thread-safe on distinct tables.
#pragma once

#include <chrono>
#include <concepts>
#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace metrics::core::options {

// A whole loading error; what() names the option and the source.
class OptionsError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Thrown by a Value's set() for a value it refuses; what() says what was
// expected ("expected a duration such as 10, 500ms, 10s or 1m").
class BadValue : public std::invalid_argument {
 public:
  using std::invalid_argument::invalid_argument;
};

// How a row reads and shows its value.
struct Value {
  std::string type{};          // in --help: "string", "bool", "duration", "host:port", ...
  std::string default_text{};  // in --help; quoted there when `quote` is true
  bool quote = true;
  bool boolean = false;  // the flag alone means true
  bool secret = false;   // never shown: "<set>"
  // A repeatable row (list()): each flag adds one item, the environment and
  // the config file give a list; the source that wins replaces the whole
  // list (env > flags > file), `clear` empties it first.
  bool repeatable = false;
  std::function<void()> clear{};
  std::function<void(std::string_view)> set{};  // validates and stores; throws BadValue
  std::function<std::string()> show{};          // the stored value, for the start-up log
};

struct Option {
  std::vector<std::string> flags{};      // "-a", "--address"; the first is the name in messages
  std::vector<std::string> negations{};  // "--no-gzip": sets a boolean row to false
  std::string env{};                     // empty: no environment variable
  std::vector<std::string> keys{};       // config-file keys; the first is the name in the log
  std::string help{};
  Value value{};
};

struct Spec {
  std::string program{};  // "metrics-server"
  std::string summary{};  // one line for --help
  std::vector<Option> options{};
  // The config-file option itself (a path; not a row).
  std::vector<std::string> config_flags{"-c", "--config"};
  std::string config_env = "CONFIG";
};

enum class Source : std::uint8_t { file, flag, env };

// Where an option that is not at its default got its value.
struct Origin {
  std::string name;   // the first config key: "store_interval"
  std::string value;  // as stored; "<set>" for a secret
  Source source = Source::flag;
  std::string from;  // "ADDRESS", "flag -i", "config file /etc/metrics.json"
  [[nodiscard]] std::string text() const { return name + "=" + value + " (from " + from + ")"; }
};

struct Result {
  bool help = false;  // -h/--help/-help: print help(spec) and exit 0
  std::string config_path;
  std::vector<Origin> origins;  // in table order
};

// The value of an environment variable, nullopt when unset.
using EnvLookup = std::function<std::optional<std::string>(const std::string&)>;
[[nodiscard]] EnvLookup process_env();
// No environment at all.
[[nodiscard]] EnvLookup no_env();

// args excludes the program name. Throws OptionsError. When help is
// requested nothing is applied.
Result load(const Spec& spec, std::span<const std::string> args, const EnvLookup& env);

// Usage: every row with its type, default, environment variable and key.
[[nodiscard]] std::string help(const Spec& spec);

// How messages name a row: its flags and variable, "-t,--threads/THREADS".
[[nodiscard]] std::string label(const Option& option);

// --- Value builders for the rows -------------------------------------------

// Any text; `check` may throw BadValue.
[[nodiscard]] Value text(std::string& target, std::function<void(std::string_view)> check = nullptr,
                         std::string type = "string");
// Text that is never shown (keys, passwords).
[[nodiscard]] Value secret(std::string& target, std::string type = "string");
// One of `choices`.
[[nodiscard]] Value choice(std::string& target, std::vector<std::string> choices);
[[nodiscard]] Value boolean(bool& target);

// Go-style duration text ("10" is seconds); "0s", "500ms", "2m30s".
[[nodiscard]] std::string format_duration(std::chrono::nanoseconds d);
[[nodiscard]] std::chrono::nanoseconds parse_duration(std::string_view text);  // throws BadValue
[[nodiscard]] bool parse_bool(std::string_view text);                          // throws BadValue
[[nodiscard]] std::uint64_t parse_uint(std::string_view text, std::uint64_t min,
                                       std::uint64_t max);  // throws BadValue
[[nodiscard]] double parse_number(std::string_view text, double min,
                                  double max);  // throws BadValue

// A duration of at least `min` stored in any std::chrono::duration.
template <typename Rep, typename Period>
[[nodiscard]] Value duration(std::chrono::duration<Rep, Period>& target,
                             std::chrono::nanoseconds min = std::chrono::nanoseconds::zero()) {
  using Target = std::chrono::duration<Rep, Period>;
  return {
      .type = "duration",
      .default_text = format_duration(target),
      .quote = false,
      .set =
          [&target, min](std::string_view v) {
            const auto d = parse_duration(v);
            if (d < min) {
              throw BadValue(min.count() == 1 ? "must be more than 0"
                                              : "must be at least " + format_duration(min));
            }
            if (d < std::chrono::duration_cast<std::chrono::nanoseconds>(Target{1}) &&
                d.count() > 0) {
              throw BadValue(
                  "must be at least " +
                  format_duration(std::chrono::duration_cast<std::chrono::nanoseconds>(Target{1})));
            }
            target = std::chrono::duration_cast<Target>(d);
          },
      .show = [&target] { return format_duration(target); }};
}

// A whole number from min to max stored in any unsigned or signed integer.
template <std::integral T>
[[nodiscard]] Value whole(T& target, std::uint64_t min, std::uint64_t max) {
  return {.type = "uint",
          .default_text = std::to_string(target),
          .quote = false,
          .set = [&target, min,
                  max](std::string_view v) { target = static_cast<T>(parse_uint(v, min, max)); },
          .show = [&target] { return std::to_string(target); }};
}

// A decimal number from min to max.
[[nodiscard]] Value number(double& target, double min, double max);

// A repeatable text option: `--rules a.yml --rules b.yml`, RULES="a.yml,b.yml"
// (comma-separated, spaces around items trimmed, empty items dropped), or a
// config-file array ["a.yml", "b.yml"] (a string there is one item). `check`
// validates each item and may throw BadValue. The defaults in `target` stay
// until some source gives the option.
[[nodiscard]] Value list(std::vector<std::string>& target,
                         std::function<void(std::string_view)> check = nullptr,
                         std::string type = "string");

// Splits "a, b,,c" into {"a", "b", "c"}.
[[nodiscard]] std::vector<std::string> split_list(std::string_view text);

}  // namespace metrics::core::options
