// The server with --rules: a bad rule file stops the start with
// file:line: reason (exit 2); SIGHUP reloads, and a bad file then keeps the
// old rules (the server keeps running and logs why).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <iterator>

#include "process_support.hpp"

namespace {

namespace fs = std::filesystem;
using metrics::testing::ServerProcess;

std::string read(const fs::path& p) {
  std::ifstream f(p);
  return std::string(std::istreambuf_iterator<char>(f), {});
}

struct TempDir {
  TempDir() {
    char tmpl[] = "/tmp/rules-process-XXXXXX";
    path = mkdtemp(tmpl);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  fs::path path;
};

// The server's log is written asynchronously: poll for a line.
bool wait_for_text(const std::string& path, const std::string& text) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds{10};
  while (std::chrono::steady_clock::now() < deadline) {
    if (read(path).find(text) != std::string::npos) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{20});
  }
  return false;
}

constexpr const char* kGood =
    "groups:\n  - name: g\n    rules:\n      - alert: Down\n        expr: agent_up == 0\n";

TEST(RulesProcess, BadRuleFileStopsTheStartWithFileLineAndReason) {
  TempDir dir;
  std::ofstream(dir.path / "bad.yml")
      << "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: sum(up\n";
  const auto log = (dir.path / "server.log").string();
  ServerProcess server({"--rules", (dir.path / "*.yml").string()}, log);
  const auto status = server.wait_exit(std::chrono::seconds{15});
  ASSERT_TRUE(status.has_value()) << "the server kept running";
  EXPECT_TRUE(WIFEXITED(*status));
  EXPECT_EQ(WEXITSTATUS(*status), 2);
  const std::string text = read(log);
  EXPECT_NE(text.find((dir.path / "bad.yml").string() +
                      ":5: group \"g\", rule 1, \"A\": could not parse expression"),
            std::string::npos)
      << text;
}

TEST(RulesProcess, SighupReloadsAndABadFileKeepsTheOldRules) {
  TempDir dir;
  const auto rules = dir.path / "rules.yml";
  std::ofstream(rules) << kGood;
  const auto log = (dir.path / "server.log").string();
  ServerProcess server({"--rules", rules.string(), "--log-level", "info"}, log);
  ASSERT_TRUE(server.wait_ready()) << read(log);
  EXPECT_TRUE(wait_for_text(log, "rules: 1 rules in 1 groups")) << read(log);
  std::ofstream(rules, std::ios::trunc) << "groups:\n  - name: g\n    bogus: 1\n";
  kill(server.pid(), SIGHUP);
  EXPECT_TRUE(
      wait_for_text(log, "rules: reload failed, keeping the old rules: " + rules.string() + ":3:"))
      << read(log);
  EXPECT_TRUE(server.wait_ready());
  std::ofstream(rules, std::ios::trunc) << kGood << "      - record: r\n        expr: up\n";
  kill(server.pid(), SIGHUP);
  EXPECT_TRUE(wait_for_text(log, "rules: reloaded 2 rules in 1 groups")) << read(log);
}

}  // namespace
