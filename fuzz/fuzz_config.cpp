// Fuzzes the server configuration: flags, environment and config file.
// Only server::ConfigError may escape load_server_config, and the start-up
// lines it returns never show the key.
//
// Input: lines. "NAME=value" lines before a line "--" form the environment
// (when NAME is upper case), other lines are arguments; everything after a
// line "--file--" is written to a config file, which an argument or value
// "@FILE" names. Inputs naming any other path (a '/' anywhere) are skipped,
// so that the target never reads /dev/zero or a FIFO.
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "fuzz_check.hpp"
#include "metrics/server/config.hpp"

namespace {

const std::string& config_file() {
  static const std::string path = [] {
    std::string templ = (std::filesystem::temp_directory_path() / "fuzz_config_XXXXXX").string();
    FUZZ_CHECK(::mkdtemp(templ.data()) != nullptr);
    remove_at_exit(templ);
    return templ + "/config.json";
  }();
  return path;
}

std::string substitute(std::string s) {
  for (auto at = s.find("@FILE"); at != std::string::npos; at = s.find("@FILE", at)) {
    s.replace(at, 5, config_file());
    at += config_file().size();
  }
  return s;
}

bool is_env_name(std::string_view s) {
  if (s.empty()) return false;
  for (const char c : s) {
    if (!((c >= 'A' && c <= 'Z') || c == '_')) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace server = metrics::server;
  std::string_view input(reinterpret_cast<const char*>(data), size);
  std::string_view file_text;
  if (auto at = input.find("\n--file--\n"); at != std::string_view::npos) {
    file_text = input.substr(at + 10);
    input = input.substr(0, at);
  }
  if (input.find('/') != std::string_view::npos) return 0;

  std::vector<std::string> args;
  std::map<std::string, std::string> env;
  std::size_t start = 0;
  while (start <= input.size()) {
    auto end = input.find('\n', start);
    if (end == std::string_view::npos) end = input.size();
    const auto line = input.substr(start, end - start);
    const auto eq = line.find('=');
    if (eq != std::string_view::npos && is_env_name(line.substr(0, eq))) {
      env[std::string(line.substr(0, eq))] = substitute(std::string(line.substr(eq + 1)));
    } else if (!line.empty() || end < input.size()) {
      args.push_back(substitute(std::string(line)));
    }
    start = end + 1;
  }
  {
    std::ofstream out(config_file(), std::ios::binary | std::ios::trunc);
    out.write(file_text.data(), static_cast<std::streamsize>(file_text.size()));
  }
  const server::EnvLookup lookup = [&env](const std::string& name) -> std::optional<std::string> {
    if (auto it = env.find(name); it != env.end()) return it->second;
    return std::nullopt;
  };
  try {
    const auto loaded = server::load_server_config(args, lookup);
    if (!loaded.help_requested) {
      const auto& c = loaded.config;
      FUZZ_CHECK(c.read_timeout.count() > 0);
      FUZZ_CHECK(c.storage.store_interval.count() >= 0);
      // The start-up lines never show the signing key.
      for (const auto& line : loaded.origins) {
        if (line.starts_with("key=")) FUZZ_CHECK(line.starts_with("key=<set> (from "));
        FUZZ_CHECK(line.find(" (from ") != std::string::npos);
      }
    } else {
      FUZZ_CHECK(loaded.help.find("STORE_INTERVAL") != std::string::npos);
    }
  } catch (const server::ConfigError&) {
  }
  return 0;
}
