// metrics-loadgen: parses options, runs the load, prints the report; the
// exit status says whether the server held exactly what it acknowledged.
#include <cstdio>
#include <exception>
#include <string>
#include <vector>

#include "metrics/loadgen/options.hpp"
#include "metrics/loadgen/runner.hpp"

int main(int argc, char** argv) {
  using namespace metrics::loadgen;
  Options options;
  try {
    auto parsed = parse_options({argv + 1, argv + argc}, metrics::core::options::process_env());
    if (parsed.help_requested) {
      std::fputs(parsed.help.c_str(), stdout);
      return 0;
    }
    for (const auto& line : parsed.origins) {
      std::fprintf(stderr, "metrics-loadgen: config: %s\n", line.c_str());
    }
    options = std::move(parsed.options);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "metrics-loadgen: %s\n", e.what());
    return 2;
  }
  try {
    const Report report = run(options);
    const std::string text = options.json ? format_json(report) : format_text(report);
    std::fputs(text.c_str(), stdout);
    return report.exit_code();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "metrics-loadgen: %s\n", e.what());
    return 3;
  }
}
