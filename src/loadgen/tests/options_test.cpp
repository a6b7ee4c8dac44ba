#include "metrics/loadgen/options.hpp"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace metrics::loadgen {
namespace {

core::options::EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    if (auto it = vars.find(name); it != vars.end()) return it->second;
    return std::nullopt;
  };
}

TEST(Options, Defaults) {
  const auto p = parse_options({});
  EXPECT_EQ(p.options.port, 8080);
  EXPECT_EQ(p.options.agents, 200u);
  EXPECT_EQ(p.options.workload.batch_size, 29u);
  EXPECT_EQ(p.options.workload.mode, Mode::batch);
  EXPECT_TRUE(p.options.verify);
  EXPECT_TRUE(p.options.honour_retry_after);
  EXPECT_FALSE(p.options.workload.run_id.empty());
  EXPECT_TRUE(valid_run_id(p.options.workload.run_id));
}

TEST(Options, Credentials) {
  const auto p = parse_options({"--basic-auth", "flag:pw", "--bearer-token", "t1"},
                               env_of({{"LOADGEN_BASIC_AUTH", "env:pw"}}));
  EXPECT_EQ(p.options.basic_auth, "env:pw");  // environment over flag
  EXPECT_EQ(p.options.bearer_token, "t1");
  for (const auto& line : p.origins)
    EXPECT_EQ(line.find("pw"), std::string::npos) << line;
  EXPECT_THROW((void)parse_options({"--basic-auth", "no-colon"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--bearer-token", "a\r\nX: y"}), OptionsError);
}

TEST(Options, IdempotencyKeys) {
  EXPECT_FALSE(parse_options({}).options.workload.idempotency_keys);
  EXPECT_TRUE(parse_options({"--idempotency-keys"}).options.workload.idempotency_keys);
  EXPECT_TRUE(parse_options({}, env_of({{"LOADGEN_IDEMPOTENCY_KEYS", "true"}}))
                  .options.workload.idempotency_keys);
  EXPECT_NE(parse_options({"--help"}).help.find("--idempotency-keys"), std::string::npos);
}

TEST(Options, Flags) {
  const auto p = parse_options({"--address",
                                "localhost:9090",
                                "--agents",
                                "10000",
                                "--duration",
                                "1m",
                                "--requests",
                                "500",
                                "--batch-size",
                                "5",
                                "--gzip",
                                "--mode",
                                "text",
                                "--rate",
                                "2.5",
                                "-k",
                                "secret",
                                "--run-id",
                                "r1_",
                                "--no-verify",
                                "--server-pid",
                                "123",
                                "--json",
                                "--connect-timeout",
                                "500ms",
                                "--threads",
                                "2"});
  const Options& o = p.options;
  EXPECT_EQ(o.host, "127.0.0.1");
  EXPECT_EQ(o.host_header, "localhost:9090");
  EXPECT_EQ(o.port, 9090);
  EXPECT_EQ(o.agents, 10000u);
  EXPECT_EQ(o.duration, std::chrono::minutes{1});
  EXPECT_EQ(o.requests, 500u);
  EXPECT_EQ(o.workload.batch_size, 5u);
  EXPECT_TRUE(o.gzip);
  EXPECT_EQ(o.workload.mode, Mode::text);
  EXPECT_DOUBLE_EQ(o.rate, 2.5);
  EXPECT_EQ(o.key, "secret");
  EXPECT_EQ(o.workload.run_id, "r1_");
  EXPECT_FALSE(o.verify);
  EXPECT_EQ(o.server_pid, 123);
  EXPECT_TRUE(o.json);
  EXPECT_EQ(o.connect_timeout, std::chrono::milliseconds{500});
  EXPECT_EQ(o.threads, 2u);
}

TEST(Options, LabelsAreOnByDefaultAndCanBeTurnedOff) {
  EXPECT_TRUE(parse_options({}).options.workload.labels);
  EXPECT_TRUE(parse_options({}).options.workload.labelled());
  EXPECT_FALSE(parse_options({"--no-labels"}).options.workload.labelled());
  EXPECT_FALSE(parse_options({}, env_of({{"LOADGEN_LABELS", "false"}})).options.workload.labels);
  // The environment wins over the flag, as for every option.
  EXPECT_TRUE(
      parse_options({"--no-labels"}, env_of({{"LOADGEN_LABELS", "true"}})).options.workload.labels);
  // Text mode cannot carry labels: it stays unlabelled whatever the option says.
  EXPECT_FALSE(parse_options({"-m", "text"}).options.workload.labelled());
}

TEST(Options, RetryAfterCanBeIgnored) {
  EXPECT_FALSE(parse_options({"--no-retry-after"}).options.honour_retry_after);
  EXPECT_TRUE(parse_options({"--retry-after"}).options.honour_retry_after);
}

TEST(Options, EmptyRunIdIsAllowed) {
  EXPECT_EQ(parse_options({"--run-id", ""}).options.workload.run_id, "");
}

TEST(Options, RejectsWhatWouldMisbehave) {
  EXPECT_THROW((void)parse_options({"--address", "10.0.0.1:80"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--address", "example.com:80"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--address", "127.0.0.1"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--address", "127.0.0.1:0"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--agents", "0"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--duration", "forever"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--duration", "0"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--mode", "grpc"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--run-id", "a/b"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--threads", "3"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--rate", "-1"}), OptionsError);
  EXPECT_THROW((void)parse_options({"--unknown"}), OptionsError);
}

std::string write_file(const std::string& name, const std::string& text) {
  const auto path = std::filesystem::temp_directory_path() /
                    ("loadgen-" + std::to_string(::getpid()) + "-" + name);
  std::ofstream(path) << text;
  return path.string();
}

TEST(Options, EnvBeatsFlagBeatsFileBeatsDefault) {
  const std::string file = write_file(
      "precedence.json", R"({"agents": 7, "duration": "3s", "mode": "json", "gzip": true})");
  const auto p = parse_options({"-n", "5", "-d", "2s", "--config", file},
                               env_of({{"LOADGEN_AGENTS", "9"}, {"LOADGEN_KEY", "envkey"}}));
  const Options& o = p.options;
  EXPECT_EQ(o.agents, 9U);                         // environment over flag
  EXPECT_EQ(o.duration, std::chrono::seconds{2});  // flag over file
  EXPECT_EQ(o.workload.mode, Mode::json);          // file over default
  EXPECT_TRUE(o.gzip);                             // file over default
  EXPECT_EQ(o.key, "envkey");
  EXPECT_EQ(o.workload.batch_size, 29U);  // default
  const std::vector<std::string> expected{
      "agents=9 (from LOADGEN_AGENTS)",
      "duration=2s (from flag -d)",
      "gzip=true (from config file " + file + ")",
      "mode=json (from config file " + file + ")",
      "key=<set> (from LOADGEN_KEY)",
  };
  EXPECT_EQ(p.origins, expected);
  std::filesystem::remove(file);
}

TEST(Options, ServerAndAgentVariablesAreNotTheGenerators) {
  const auto p =
      parse_options({"-a", "127.0.0.1:9000"}, env_of({{"ADDRESS", "127.0.0.1:1"}, {"KEY", "k"}}));
  EXPECT_EQ(p.options.port, 9000);
  EXPECT_EQ(p.options.key, "");
}

TEST(Options, EmptyVariableCountsAsUnset) {
  const auto p =
      parse_options({"--agents", "3"}, env_of({{"LOADGEN_AGENTS", ""}, {"LOADGEN_CONFIG", ""}}));
  EXPECT_EQ(p.options.agents, 3U);
}

TEST(Options, UnknownConfigKeyAndBadValuesNameTheOption) {
  const std::string file = write_file("unknown.json", R"({"agent": 7})");
  try {
    (void)parse_options({"-c", file});
    ADD_FAILURE() << "no error";
  } catch (const OptionsError& e) {
    EXPECT_NE(std::string(e.what()).find("unknown key \"agent\""), std::string::npos) << e.what();
  }
  std::filesystem::remove(file);
  try {
    (void)parse_options({}, env_of({{"LOADGEN_THREADS", "3"}}));
    ADD_FAILURE() << "no error";
  } catch (const OptionsError& e) {
    EXPECT_NE(std::string(e.what()).find("-t,--threads/LOADGEN_THREADS (from LOADGEN_THREADS)"),
              std::string::npos)
        << e.what();
  }
}

TEST(Options, HelpShowsEachTypeAndDefault) {
  const auto p = parse_options({"--help"});
  ASSERT_TRUE(p.help_requested);
  const auto has = [&](const std::string& s) { return p.help.find(s) != std::string::npos; };
  EXPECT_TRUE(has("-n, --agents uint")) << p.help;
  EXPECT_TRUE(has("env LOADGEN_AGENTS; key agents; default 200")) << p.help;
  EXPECT_TRUE(has("-d, --duration duration")) << p.help;
  EXPECT_TRUE(has("default 10s")) << p.help;
  EXPECT_TRUE(has("--gzip, --no-gzip bool")) << p.help;
  EXPECT_TRUE(has("--labels, --no-labels bool")) << p.help;
  EXPECT_TRUE(has("env LOADGEN_LABELS; key labels; default true")) << p.help;
  EXPECT_TRUE(has("-r, --rate number")) << p.help;
  EXPECT_TRUE(has("default \"127.0.0.1:8080\"")) << p.help;
  EXPECT_TRUE(has("env LOADGEN_CONFIG")) << p.help;
}

}  // namespace
}  // namespace metrics::loadgen
