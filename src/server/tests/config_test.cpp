#include "metrics/server/config.hpp"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

namespace metrics::server {
namespace {

using namespace std::chrono_literals;

EnvLookup env_of(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    if (auto it = vars.find(name); it != vars.end()) return it->second;
    return std::nullopt;
  };
}

class TempFile {
 public:
  explicit TempFile(const std::string& content)
      : path_(std::filesystem::temp_directory_path() /
              ("metrics-config-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++) +
               ".json")) {
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  [[nodiscard]] std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

TEST(Config, Defaults) {
  auto cfg = load_server_config({}, env_of({})).config;
  EXPECT_EQ(cfg.address, "localhost:8080");
  EXPECT_EQ(cfg.storage.file_path, "/tmp/metrics-db.json");
  EXPECT_EQ(cfg.storage.store_interval, 300s);
  EXPECT_TRUE(cfg.storage.restore);
  EXPECT_EQ(cfg.storage.database_dsn, "");
  EXPECT_EQ(cfg.key, "");
}

TEST(Config, FlagBeatsEnvBeatsFileBeatsDefault) {
  TempFile file(R"({"address": "file:1", "store_interval": "7s", "restore": false,
                    "store_file": "/file/path", "key": "filekey"})");
  auto cfg = load_server_config({"-a", "flag:3", "-c", file.path()},
                                env_of({{"ADDRESS", "env:2"}, {"STORE_INTERVAL", "5"}}))
                 .config;
  EXPECT_EQ(cfg.address, "flag:3");
  EXPECT_EQ(cfg.storage.store_interval, 5s);
  EXPECT_FALSE(cfg.storage.restore);
  EXPECT_EQ(cfg.storage.file_path, "/file/path");
  EXPECT_EQ(cfg.key, "filekey");
}

TEST(Config, ConfigPathFromEnvironment) {
  TempFile file(R"({"store_interval": 0, "database_dsn": "postgres://x"})");
  auto cfg = load_server_config({}, env_of({{"CONFIG", file.path()}})).config;
  EXPECT_EQ(cfg.storage.store_interval, 0s);
  EXPECT_EQ(cfg.storage.database_dsn, "postgres://x");
}

TEST(Config, GoStyleFlagForms) {
  auto cfg =
      load_server_config({"-a=:9000", "-r=false", "-i", "500ms", "--k=secret"}, env_of({})).config;
  EXPECT_EQ(cfg.address, ":9000");
  EXPECT_FALSE(cfg.storage.restore);
  EXPECT_EQ(cfg.storage.store_interval, 500ms);
  EXPECT_EQ(cfg.key, "secret");
  EXPECT_TRUE(load_server_config({"-r"}, env_of({{"RESTORE", "false"}})).config.storage.restore);
}

TEST(Config, EmptyEnvironmentValueDisablesFile) {
  auto cfg = load_server_config({}, env_of({{"FILE_STORAGE_PATH", ""}})).config;
  EXPECT_EQ(cfg.storage.file_path, "");
}

TEST(Config, BadValuesNameTheOption) {
  auto message = [](std::vector<std::string> args, std::map<std::string, std::string> env) {
    try {
      (void)load_server_config(args, env_of(std::move(env)));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({"-i", "soon"}, {}).find("STORE_INTERVAL"), std::string::npos);
  EXPECT_NE(message({}, {{"RESTORE", "maybe"}}).find("RESTORE"), std::string::npos);
  EXPECT_NE(message({"-a", "nohost"}, {}).find("ADDRESS"), std::string::npos);
  EXPECT_NE(message({"-a", "h:99999"}, {}).find("ADDRESS"), std::string::npos);
  EXPECT_NE(message({"-x", "1"}, {}).find("-x"), std::string::npos);
  EXPECT_NE(message({"stray"}, {}).find("stray"), std::string::npos);
  EXPECT_NE(message({"--log-level", "loud"}, {}).find("--log-level"), std::string::npos);
  EXPECT_NE(message({"-c", "/nonexistent/metrics.json"}, {}).find("/nonexistent/metrics.json"),
            std::string::npos);
  TempFile bad_json("{not json");
  EXPECT_NE(message({"-c", bad_json.path()}, {}).find("not valid JSON"), std::string::npos);
  TempFile unknown_key(R"({"adress": "x:1"})");
  EXPECT_NE(message({"-c", unknown_key.path()}, {}).find("adress"), std::string::npos);
}

TEST(Config, TlsFilesFromFlagsEnvironmentAndFile) {
  auto cfg = load_server_config({"--tls-cert", "/c.pem", "--tls-key=/k.pem"}, env_of({})).config;
  EXPECT_EQ(cfg.tls_cert, "/c.pem");
  EXPECT_EQ(cfg.tls_key, "/k.pem");
  cfg = load_server_config({}, env_of({{"TLS_CERT", "/e.pem"}, {"TLS_KEY", "/ek.pem"}})).config;
  EXPECT_EQ(cfg.tls_cert, "/e.pem");
  EXPECT_EQ(cfg.tls_key, "/ek.pem");
  TempFile file(R"({"tls_cert": "/f.pem", "tls_key": "/fk.pem"})");
  cfg = load_server_config({"-c", file.path()}, env_of({})).config;
  EXPECT_EQ(cfg.tls_cert, "/f.pem");
  EXPECT_EQ(cfg.tls_key, "/fk.pem");
  EXPECT_THROW((void)load_server_config({"--tls-key", "/k.pem"}, env_of({})), ConfigError);
}

TEST(Config, HelpIsOffered) {
  auto r = load_server_config({"-h"}, env_of({}));
  EXPECT_TRUE(r.help_requested);
  EXPECT_NE(r.help.find("STORE_INTERVAL"), std::string::npos);
}

}  // namespace
}  // namespace metrics::server

namespace metrics::server {
namespace {

TEST(Config, AllowUnsignedIsOffByDefaultAndSetByFlagOrEnvironment) {
  EXPECT_FALSE(load_server_config({}, env_of({})).config.allow_unsigned);
  EXPECT_TRUE(load_server_config({"--allow-unsigned"}, env_of({})).config.allow_unsigned);
  EXPECT_TRUE(load_server_config({}, env_of({{"ALLOW_UNSIGNED", "true"}})).config.allow_unsigned);
  EXPECT_THROW((void)load_server_config({}, env_of({{"ALLOW_UNSIGNED", "maybe"}})), ConfigError);
}

}  // namespace
}  // namespace metrics::server
