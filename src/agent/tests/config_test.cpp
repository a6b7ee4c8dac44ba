#include "metrics/agent/config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <string>
#include <vector>

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

TEST(ConfigTest, FlagBeatsEnvBeatsFileBeatsDefault) {
  const std::string path = write_file(
      "agent_precedence.json",
      R"({"address":"file:1","poll_interval":"4s","report_interval":20,"key":"fk","rate_limit":3})");
  Env env;
  env.vars = {{"ADDRESS", "env:2"}, {"POLL_INTERVAL", "5"}, {"CONFIG", path}};
  const auto r = load({"-a", "flag:3"}, env);
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.config.address, "flag:3");
  EXPECT_EQ(r.config.poll_interval, 5s);
  EXPECT_EQ(r.config.report_interval, 20s);
  EXPECT_EQ(r.config.key, "fk");
  EXPECT_EQ(r.config.rate_limit, 3U);
}

TEST(ConfigTest, ConfigFlagBeatsConfigEnv) {
  const std::string a = write_file("agent_a.json", R"({"address":"a:1"})");
  const std::string b = write_file("agent_b.json", R"({"address":"b:1"})");
  Env env;
  env.vars = {{"CONFIG", a}};
  EXPECT_EQ(load({"-c", b}, env).config.address, "b:1");
  EXPECT_EQ(load({"--config", b}, env).config.address, "b:1");
  EXPECT_EQ(load({}, env).config.address, "a:1");
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
  EXPECT_NE(load({"-c", write_file("agent_bad3.json", "{not json")}).error.find("invalid JSON"),
            std::string::npos);
  EXPECT_NE(load({"-c", "/nonexistent/agent.json"}).error.find("cannot be read"),
            std::string::npos);
}

TEST(ConfigTest, FileIgnoresUnknownKeysAndCryptoKeyIsNotAKey) {
  const auto r =
      load({"-c", write_file("agent_unknown.json",
                             R"({"crypto_key":"/path/key.pem","store_interval":"1s"})")});
  ASSERT_EQ(r.error, "");
  EXPECT_EQ(r.config.key, "");
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

TEST(ConfigTest, Help) {
  EXPECT_TRUE(load({"-h"}).help);
  EXPECT_TRUE(load({"--help"}).help);
  EXPECT_NE(usage("metrics-agent").find("RATE_LIMIT"), std::string::npos);
}

TEST(ConfigTest, SendMode) {
  EXPECT_EQ(load({}).config.send_mode, SendMode::batch);
  EXPECT_EQ(load({"--send-mode", "json"}).config.send_mode, SendMode::json);
  EXPECT_EQ(load({"--send-mode=text"}).config.send_mode, SendMode::text);
  Env env;
  env.vars = {{"SEND_MODE", "text"}};
  EXPECT_EQ(load({}, env).config.send_mode, SendMode::text);
  EXPECT_EQ(load({"-c", write_file("agent_mode.json", R"({"send_mode":"json"})")}).config.send_mode,
            SendMode::json);
  const auto bad = load({"--send-mode", "Batch"});
  EXPECT_NE(bad.error.find("send-mode"), std::string::npos) << bad.error;
  EXPECT_NE(bad.error.find("batch, json or text"), std::string::npos) << bad.error;
  env.vars = {{"SEND_MODE", "xml"}};
  EXPECT_NE(load({}, env).error.find("SEND_MODE"), std::string::npos);
}

}  // namespace
}  // namespace metrics::agent
