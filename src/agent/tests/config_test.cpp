#include "metrics/agent/config.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "preload_config.hpp"

namespace metrics::agent {
namespace {

using namespace std::chrono_literals;

struct Env {
  std::map<std::string, std::string> vars;
  EnvLookup lookup() const {
    return [this](const char* name) -> const char* {
      const auto it = vars.find(name);
      return it == vars.end() ? nullptr : it->second.c_str();
    };
  }
};

ConfigResult load(std::vector<std::string_view> args, const Env& env = {}) {
  return load_config(args, env.lookup());
}

std::string write_file(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + name;
  std::ofstream(path) << text;
  return path;
}

TEST(ConfigTest, Defaults) {
  const auto r = load({});
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.config.address, "localhost:8080");
  EXPECT_EQ(r.config.poll_interval, 2s);
  EXPECT_EQ(r.config.report_interval, 10s);
  EXPECT_EQ(r.config.key, "");
  EXPECT_EQ(r.config.rate_limit, 1U);
}

TEST(ConfigTest, FlagForms) {
  const auto r = load({"-a=127.0.0.1:9", "-p", "500ms", "--r=3", "--k", "s3cret", "-l", "4"});
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.config.address, "127.0.0.1:9");
  EXPECT_EQ(r.config.poll_interval, 500ms);
  EXPECT_EQ(r.config.report_interval, 3s);
  EXPECT_EQ(r.config.key, "s3cret");
  EXPECT_EQ(r.config.rate_limit, 4U);
}

TEST(ConfigTest, CredentialsFromFlagsAndEnvironmentAreNeverShown) {
  Env env;
  env.vars = {{"BASIC_AUTH", "env-user:env-pw"}};
  const auto r = load({"--basic-auth", "flag-user:pw", "--bearer-token", "tok"}, env);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.config.basic_auth, "env-user:env-pw");  // environment over flag
  EXPECT_EQ(r.config.bearer_token, "tok");
  for (const auto& line : r.origins) {
    EXPECT_EQ(line.find("pw"), std::string::npos) << line;
    EXPECT_EQ(line.find("tok "), std::string::npos) << line;
  }
}

TEST(ConfigTest, EnvBeatsFlagBeatsFileBeatsDefault) {
  const std::string path = write_file(
      "agent_precedence.json",
      R"({"address":"file:1","poll_interval":"4s","report_interval":20,"key":"fk","rate_limit":3})");
  Env env;
  env.vars = {{"ADDRESS", "env:2"}, {"KEY", "ek"}, {"CONFIG", path}};
  const auto r = load({"-a", "flag:3", "-k", "flagkey", "-p", "5"}, env);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.config.address, "env:2");            // environment over flag
  EXPECT_EQ(r.config.key, "ek");                   // environment over flag
  EXPECT_EQ(r.config.poll_interval, 5s);           // flag over file
  EXPECT_EQ(r.config.report_interval, 20s);        // file over default
  EXPECT_EQ(r.config.rate_limit, 3U);              // file over default
  EXPECT_EQ(r.config.send_mode, SendMode::batch);  // default
  const std::vector<std::string> expected{
      "address=env:2 (from ADDRESS)",
      "poll_interval=5s (from flag -p)",
      "report_interval=20s (from config file " + path + ")",
      "key=<set> (from KEY)",
      "rate_limit=3 (from config file " + path + ")",
  };
  EXPECT_EQ(r.origins, expected);
}

TEST(ConfigTest, ConfigVariableBeatsConfigFlag) {
  const std::string a = write_file("agent_a.json", R"({"address":"a:1"})");
  const std::string b = write_file("agent_b.json", R"({"address":"b:1"})");
  Env env;
  env.vars = {{"CONFIG", a}};
  EXPECT_EQ(load({"-c", b}, env).config.address, "a:1");
  EXPECT_EQ(load({"--config", b}).config.address, "b:1");
  EXPECT_EQ(load({"-c=" + std::string(b)}).config.address, "b:1");
  EXPECT_EQ(load({}, env).config.address, "a:1");
}

TEST(ConfigTest, SendMode) {
  EXPECT_EQ(load({}).config.send_mode, SendMode::batch);
  EXPECT_EQ(load({"--send-mode", "json"}).config.send_mode, SendMode::json);
  EXPECT_EQ(load({"-send-mode=text"}).config.send_mode, SendMode::text);
  Env env;
  env.vars = {{"SEND_MODE", "text"}};
  EXPECT_EQ(load({"--send-mode", "json"}, env).config.send_mode, SendMode::text);
  EXPECT_EQ(load({"-c", write_file("agent_mode.json", R"({"send_mode":"json"})")}).config.send_mode,
            SendMode::json);
  const auto bad = load({"--send-mode", "grpc"});
  EXPECT_NE(bad.error.find("--send-mode/SEND_MODE"), std::string::npos) << bad.error;
  EXPECT_NE(bad.error.find("batch|json|text"), std::string::npos) << bad.error;
}

TEST(ConfigTest, EmptyEnvironmentVariablesCountAsUnset) {
  Env env;
  env.vars = {{"ADDRESS", ""}, {"RATE_LIMIT", ""}};
  const auto r = load({}, env);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.config.address, "localhost:8080");
}

TEST(ConfigTest, ServerVariablesAreIgnored) {
  Env env;
  env.vars = {{"DATABASE_DSN", "postgres://x"},
              {"STORE_INTERVAL", "junk"},
              {"FILE_STORAGE_PATH", "/x"},
              {"RESTORE", "maybe"}};
  EXPECT_EQ(load({}, env).error, "");
}

TEST(ConfigTest, ErrorsNameTheOption) {
  const std::map<std::string, std::vector<std::string_view>> cases{
      {"-x", {"-x", "1"}}, {"-p", {"-p", "abc"}},
      {"-r", {"-r", "0"}}, {"-l", {"-l", "0"}},
      {"-l", {"-l=two"}},  {"-a", {"-a", "localhost"}},
      {"-k", {"-k"}},      {"unexpected argument", {"extra"}},
  };
  for (const auto& [needle, args] : cases) {
    const auto r = load(args);
    EXPECT_NE(r.error.find(needle), std::string::npos) << needle << ": " << r.error;
  }
  Env env;
  env.vars = {{"POLL_INTERVAL", "-1s"}};
  EXPECT_NE(load({}, env).error.find("POLL_INTERVAL"), std::string::npos);
  env.vars = {{"RATE_LIMIT", "-3"}};
  EXPECT_NE(load({}, env).error.find("RATE_LIMIT"), std::string::npos);
}

TEST(ConfigTest, FileErrorsNameTheKey) {
  EXPECT_NE(load({"-c", write_file("agent_bad1.json", R"({"poll_interval":"soon"})")})
                .error.find("poll_interval"),
            std::string::npos);
  EXPECT_NE(load({"-c", write_file("agent_bad2.json", R"({"address":5})")}).error.find("address"),
            std::string::npos);
  EXPECT_NE(load({"-c", write_file("agent_bad3.json", "{not json")}).error.find("not valid JSON"),
            std::string::npos);
  EXPECT_NE(load({"-c", "/nonexistent/agent.json"}).error.find("cannot be read"),
            std::string::npos);
}

TEST(ConfigTest, UnknownFileKeysAreErrorsNamingThem) {
  // crypto_key (the original's encryption key file) is not the signing key:
  // it must not pass silently either.
  const auto r =
      load({"-c", write_file("agent_unknown.json", R"({"crypto_key":"/path/key.pem"})")});
  EXPECT_NE(r.error.find("unknown key \"crypto_key\""), std::string::npos) << r.error;
  EXPECT_EQ(r.config.key, "");
  const auto server_key =
      load({"-c", write_file("agent_unknown2.json", R"({"store_interval":"1s"})")});
  EXPECT_NE(server_key.error.find("store_interval"), std::string::npos) << server_key.error;
}

TEST(ConfigTest, FromEnvironmentOnly) {
  Env env;
  env.vars = {{"ADDRESS", "127.0.0.1:1234"}, {"REPORT_INTERVAL", "250ms"}, {"KEY", "k"}};
  const auto r = load_config_from_env(env.lookup());
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.config.address, "127.0.0.1:1234");
  EXPECT_EQ(r.config.report_interval, 250ms);
  EXPECT_EQ(r.config.key, "k");
}

TEST(ConfigTest, IdentityOptions) {
  auto r = load({});
  EXPECT_EQ(r.config.instance, "");  // <hostname>:<pid>, filled in at start
  EXPECT_EQ(r.config.job, "");       // the program's name
  EXPECT_TRUE(r.config.labels.empty());
  r = load({"--instance", "web-1", "--job=api", "--label", "env=prod", "--label=zone=a,rack=r7"});
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.config.instance, "web-1");
  EXPECT_EQ(r.config.job, "api");
  // Repeated flags add up; one value may carry a list.
  EXPECT_EQ(r.config.labels, (std::vector<Label>{{"env", "prod"}, {"zone", "a"}, {"rack", "r7"}}));
  EXPECT_NE(std::find(r.origins.begin(), r.origins.end(),
                      "labels=env=prod,zone=a,rack=r7 (from flag --label)"),
            r.origins.end());
  // The environment's list replaces the flags'.
  Env env;
  env.vars = {{"INSTANCE", "h:9"}, {"JOB", "batch"}, {"LABELS", "env=dev,team=core"}};
  r = load({"--instance", "web-1", "--label", "env=prod", "--label", "x=1"}, env);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.config.instance, "h:9");
  EXPECT_EQ(r.config.job, "batch");
  EXPECT_EQ(r.config.labels, (std::vector<Label>{{"env", "dev"}, {"team", "core"}}));
}

TEST(ConfigTest, LabelsFromTheFileAreReplacedByFlags) {
  const auto path = write_file("labels.json", R"({"labels": "env=file,a=1", "job": "j"})");
  auto r = load({"-c", path});
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.config.labels, (std::vector<Label>{{"env", "file"}, {"a", "1"}}));
  EXPECT_EQ(r.config.job, "j");
  r = load({"-c", path, "--label", "env=flag"});
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.config.labels, (std::vector<Label>{{"env", "flag"}}));
}

TEST(ConfigTest, BadLabelsStopTheStartNamingTheLabel) {
  auto r = load({"--label", "9lives=x"});
  EXPECT_NE(r.error.find("9lives"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("--label"), std::string::npos) << r.error;
  r = load({"--label", "__reserved=x"});
  EXPECT_NE(r.error.find("__reserved"), std::string::npos) << r.error;
  r = load({"--label", "novalue"});
  EXPECT_NE(r.error.find("expected name=value"), std::string::npos) << r.error;
  Env env;
  env.vars = {{"LABELS", "ok=1,bad-name=2"}};
  r = load({}, env);
  EXPECT_NE(r.error.find("bad-name"), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("LABELS"), std::string::npos) << r.error;
  // instance and job have options of their own.
  r = load({"--label", "instance=x"});
  EXPECT_NE(r.error.find("\"instance\""), std::string::npos) << r.error;
  EXPECT_NE(r.error.find("--instance"), std::string::npos) << r.error;
  r = load({"--label", "a=1", "--label", "a=2"});
  EXPECT_NE(r.error.find("\"a\" is given twice"), std::string::npos) << r.error;
  r = load({"--instance", std::string(1025, 'x')});
  EXPECT_NE(r.error.find("--instance"), std::string::npos) << r.error;
}

TEST(ConfigTest, HelpShowsEachTypeAndDefault) {
  EXPECT_TRUE(load({"-h"}).help);
  EXPECT_TRUE(load({"--help"}).help);
  const std::string u = usage("metrics-agent");
  const auto has = [&](const std::string& s) { return u.find(s) != std::string::npos; };
  EXPECT_TRUE(has("Usage: metrics-agent")) << u;
  EXPECT_TRUE(has("-p duration")) << u;
  EXPECT_TRUE(has("env POLL_INTERVAL; key poll_interval; default 2s")) << u;
  EXPECT_TRUE(has("env REPORT_INTERVAL; key report_interval; default 10s")) << u;
  EXPECT_TRUE(has("-l uint")) << u;
  EXPECT_TRUE(has("env RATE_LIMIT; key rate_limit; default 1")) << u;
  EXPECT_TRUE(has("--send-mode batch|json|text")) << u;
  EXPECT_TRUE(has("env SEND_MODE; key send_mode; default batch")) << u;
  EXPECT_TRUE(has("env ADDRESS; key address; default \"localhost:8080\"")) << u;
}

}  // namespace
}  // namespace metrics::agent

namespace metrics::agent {
namespace {

using namespace std::chrono_literals;

detail::PreloadConfigResult load_preload(std::map<std::string, std::string> vars) {
  const EnvLookup env = [&vars](const char* name) -> const char* {
    const auto it = vars.find(name);
    return it == vars.end() ? nullptr : it->second.c_str();
  };
  return detail::load_preload_config(env);
}

TEST(PreloadConfigTest, Defaults) {
  const auto r = load_preload({});
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.config.exit_timeout, 200ms);
  EXPECT_TRUE(r.config.children);
  EXPECT_TRUE(r.config.exclude.empty());
  EXPECT_FALSE(detail::excluded(r.config, "timeout"));
}

TEST(PreloadConfigTest, FromTheEnvironment) {
  const auto r = load_preload({{"METRICS_AGENT_EXIT_TIMEOUT", "50ms"},
                               {"METRICS_AGENT_CHILDREN", "0"},
                               {"METRICS_AGENT_EXCLUDE", "timeout, nice,,"}});
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.config.exit_timeout, 50ms);
  EXPECT_FALSE(r.config.children);
  EXPECT_EQ(r.config.exclude, (std::vector<std::string>{"timeout", "nice"}));
  EXPECT_TRUE(detail::excluded(r.config, "nice"));
  EXPECT_FALSE(detail::excluded(r.config, "nic"));
  EXPECT_TRUE(load_preload({{"METRICS_AGENT_CHILDREN", "true"}}).config.children);
  // Zero: the exit sends nothing.
  EXPECT_EQ(load_preload({{"METRICS_AGENT_EXIT_TIMEOUT", "0"}}).config.exit_timeout, 0ms);
}

TEST(PreloadConfigTest, ErrorsNameTheVariable) {
  EXPECT_NE(load_preload({{"METRICS_AGENT_EXIT_TIMEOUT", "soon"}})
                .error.find("METRICS_AGENT_EXIT_TIMEOUT"),
            std::string::npos);
  EXPECT_NE(
      load_preload({{"METRICS_AGENT_CHILDREN", "maybe"}}).error.find("METRICS_AGENT_CHILDREN"),
      std::string::npos);
  const auto path = load_preload({{"METRICS_AGENT_EXCLUDE", "/usr/bin/timeout"}});
  EXPECT_NE(path.error.find("METRICS_AGENT_EXCLUDE"), std::string::npos);
  EXPECT_NE(path.error.find("not a path"), std::string::npos);
}

}  // namespace
}  // namespace metrics::agent
