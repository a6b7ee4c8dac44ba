#include "metrics/server/config.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

#include "metrics/core/options.hpp"

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

TEST(Config, EnvBeatsFlagBeatsFileBeatsDefault) {
  TempFile file(R"({"address": "file:1", "store_interval": "7s", "restore": false,
                    "store_file": "/file/path", "key": "filekey", "max_batch": 10})");
  auto loaded = load_server_config({"-a", "flag:3", "-i", "9", "-k", "flagkey", "-c", file.path()},
                                   env_of({{"ADDRESS", "env:2"}, {"KEY", "envkey"}}));
  const auto& cfg = loaded.config;
  EXPECT_EQ(cfg.address, "env:2");                 // environment over flag
  EXPECT_EQ(cfg.key, "envkey");                    // environment over flag
  EXPECT_EQ(cfg.storage.store_interval, 9s);       // flag over file
  EXPECT_FALSE(cfg.storage.restore);               // file over default
  EXPECT_EQ(cfg.storage.file_path, "/file/path");  // file over default
  EXPECT_EQ(cfg.max_batch_items, 10U);
  EXPECT_EQ(cfg.max_connections, 20'000U);  // default
  EXPECT_EQ(cfg.storage.database_dsn, "");
}

TEST(Config, StartupLinesSayWhereEachValueCameFrom) {
  TempFile file(R"({"restore": false, "database_dsn": "postgres://u:hunter2@db/m"})");
  auto loaded = load_server_config({"-i", "0", "-k", "flagkey", "-c", file.path()},
                                   env_of({{"ADDRESS", "localhost:9090"}, {"KEY", "envkey"}}));
  const std::vector<std::string> expected{
      "address=localhost:9090 (from ADDRESS)",
      "database_dsn=postgres://u:***@db/m (from config file " + file.path() + ")",
      "store_interval=0s (from flag -i)",
      "restore=false (from config file " + file.path() + ")",
      "key=<set> (from KEY)",
  };
  EXPECT_EQ(loaded.origins, expected);
  for (const auto& line : loaded.origins) {
    EXPECT_EQ(line.find("envkey"), std::string::npos) << line;
    EXPECT_EQ(line.find("hunter2"), std::string::npos) << line;
  }
}

TEST(Config, ConfigVariableBeatsConfigFlag) {
  TempFile from_env(R"({"address": "envfile:1"})");
  TempFile from_flag(R"({"address": "flagfile:1"})");
  EXPECT_EQ(load_server_config({"-c", from_flag.path()}, env_of({{"CONFIG", from_env.path()}}))
                .config.address,
            "envfile:1");
  EXPECT_EQ(load_server_config({"--config", from_flag.path()}, env_of({})).config.address,
            "flagfile:1");
}

TEST(Config, AllowUnsigned) {
  EXPECT_FALSE(load_server_config({}, env_of({})).config.allow_unsigned);
  EXPECT_TRUE(load_server_config({"--allow-unsigned"}, env_of({})).config.allow_unsigned);
  EXPECT_FALSE(load_server_config({"--allow-unsigned"}, env_of({{"ALLOW_UNSIGNED", "false"}}))
                   .config.allow_unsigned);
  TempFile file(R"({"allow_unsigned": true})");
  EXPECT_TRUE(load_server_config({"-c", file.path()}, env_of({})).config.allow_unsigned);
}

TEST(Config, HistoryOptions) {
  auto cfg = load_server_config({}, env_of({})).config;
  EXPECT_EQ(cfg.retention, std::chrono::hours{24});
  EXPECT_EQ(cfg.history_max_bytes, std::size_t{512} << 20);
  EXPECT_EQ(cfg.history_dir, "/tmp/metrics-history");
  cfg = load_server_config(
            {"--retention", "2h", "--history-max-bytes", "64KiB", "--history-dir", ""}, env_of({}))
            .config;
  EXPECT_EQ(cfg.retention, std::chrono::hours{2});
  EXPECT_EQ(cfg.history_max_bytes, 65536U);
  EXPECT_EQ(cfg.history_dir, "");
  cfg = load_server_config(
            {},
            env_of({{"RETENTION", "0"}, {"HISTORY_MAX_BYTES", "1GiB"}, {"HISTORY_DIR", "/tmp/h"}}))
            .config;
  EXPECT_EQ(cfg.retention, std::chrono::milliseconds{0});
  EXPECT_EQ(cfg.history_max_bytes, std::size_t{1} << 30);
  EXPECT_EQ(cfg.history_dir, "/tmp/h");
  try {
    (void)load_server_config({"--history-max-bytes", "12XB"}, env_of({}));
    ADD_FAILURE() << "12XB accepted";
  } catch (const ConfigError& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr("--history-max-bytes"));
    EXPECT_THAT(e.what(), ::testing::HasSubstr("unknown unit"));
  }
}

// Remote write out: repeatable URL and header rows (the environment's
// comma-separated list wins whole), a queue size, and header values that
// the start-up lines never show.
TEST(Config, RemoteWriteOptions) {
  auto cfg = load_server_config({}, env_of({})).config;
  EXPECT_TRUE(cfg.remote_write_urls.empty());
  EXPECT_TRUE(cfg.remote_write_headers.empty());
  EXPECT_EQ(cfg.remote_write_queue, 100'000U);
  auto loaded = load_server_config(
      {"--remote-write-url", "http://a:9090/api/v1/write", "--remote-write-url",
       "https://b/api/v1/push", "--remote-write-header", "Authorization: Bearer s3cret",
       "--remote-write-header", "X-Scope-OrgID: team-a", "--remote-write-queue", "500"},
      env_of({}));
  EXPECT_EQ(loaded.config.remote_write_urls,
            (std::vector<std::string>{"http://a:9090/api/v1/write", "https://b/api/v1/push"}));
  EXPECT_EQ(loaded.config.remote_write_headers,
            (std::vector<std::string>{"Authorization: Bearer s3cret", "X-Scope-OrgID: team-a"}));
  EXPECT_EQ(loaded.config.remote_write_queue, 500U);
  for (const auto& line : loaded.origins)
    EXPECT_EQ(line.find("s3cret"), std::string::npos) << line;
  cfg = load_server_config(
            {"--remote-write-url", "http://flag/"},
            env_of({{"REMOTE_WRITE_URL", "http://e1/w, http://e2/w"}, {"REMOTE_WRITE_QUEUE", "7"}}))
            .config;
  EXPECT_EQ(cfg.remote_write_urls, (std::vector<std::string>{"http://e1/w", "http://e2/w"}));
  EXPECT_EQ(cfg.remote_write_queue, 7U);
  for (const auto& bad :
       std::vector<std::vector<std::string>>{{"--remote-write-url", "vm:8428/api/v1/write"},
                                             {"--remote-write-header", "no colon"},
                                             {"--remote-write-header", "Bad Name: x"},
                                             {"--remote-write-queue", "0"}}) {
    EXPECT_THROW((void)load_server_config(bad, env_of({})), ConfigError) << bad[0] << " " << bad[1];
  }
}

TEST(Config, ByteSizes) {
  EXPECT_EQ(parse_byte_size("0"), 0U);
  EXPECT_EQ(parse_byte_size("536870912"), 536870912U);
  EXPECT_EQ(parse_byte_size("512B"), 512U);
  EXPECT_EQ(parse_byte_size("3K"), 3072U);
  EXPECT_EQ(parse_byte_size("512MiB"), std::uint64_t{512} << 20);
  EXPECT_EQ(parse_byte_size("2G"), std::uint64_t{2} << 30);
  EXPECT_THROW((void)parse_byte_size(""), core::options::BadValue);
  EXPECT_THROW((void)parse_byte_size("MiB"), core::options::BadValue);
  EXPECT_THROW((void)parse_byte_size("-1"), core::options::BadValue);
  EXPECT_THROW((void)parse_byte_size("1.5GiB"), core::options::BadValue);
  EXPECT_THROW((void)parse_byte_size("99999999999GiB"), core::options::BadValue);
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
  // A bare boolean flag means true; the environment still wins over it.
  EXPECT_TRUE(load_server_config({"-r"}, env_of({})).config.storage.restore);
  EXPECT_FALSE(load_server_config({"-r"}, env_of({{"RESTORE", "false"}})).config.storage.restore);
  EXPECT_FALSE(load_server_config({"-r", "false"}, env_of({})).config.storage.restore);
}

TEST(Config, EmptyEnvironmentValueCountsAsUnset) {
  auto cfg =
      load_server_config({"-a", "flag:1"}, env_of({{"FILE_STORAGE_PATH", ""}, {"ADDRESS", ""}}))
          .config;
  EXPECT_EQ(cfg.storage.file_path, "/tmp/metrics-db.json");
  EXPECT_EQ(cfg.address, "flag:1");
  // An empty flag or key still disables the file.
  EXPECT_EQ(load_server_config({"-f", ""}, env_of({})).config.storage.file_path, "");
  TempFile file(R"({"store_file": ""})");
  EXPECT_EQ(load_server_config({"-c", file.path()}, env_of({})).config.storage.file_path, "");
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
  EXPECT_NE(message({"-i", "soon"}, {}).find("-i/STORE_INTERVAL (from flag -i)"),
            std::string::npos);
  EXPECT_NE(message({"-k", "x"}, {{"RESTORE", "maybe"}}).find("-r/RESTORE (from RESTORE)"),
            std::string::npos);
  EXPECT_EQ(message({"--threads", "x"}, {{"KEY", "sekrit"}}).find("sekrit"), std::string::npos);
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

TEST(Config, HelpShowsEachTypeAndDefault) {
  auto r = load_server_config({"-h"}, env_of({}));
  EXPECT_TRUE(r.help_requested);
  const auto has = [&](const std::string& s) { return r.help.find(s) != std::string::npos; };
  EXPECT_TRUE(has("-a host:port")) << r.help;
  EXPECT_TRUE(has("env ADDRESS; key address; default \"localhost:8080\"")) << r.help;
  EXPECT_TRUE(has("-i duration")) << r.help;
  EXPECT_TRUE(has("env STORE_INTERVAL; key store_interval; default 5m")) << r.help;
  EXPECT_TRUE(has("-r bool")) << r.help;
  EXPECT_TRUE(has("env RESTORE; key restore; default true")) << r.help;
  EXPECT_TRUE(has("--threads uint")) << r.help;
  EXPECT_TRUE(has("--log-level trace|debug|info|warn|error|critical|off")) << r.help;
  EXPECT_TRUE(has("--allow-unsigned bool")) << r.help;
  EXPECT_TRUE(has("key store_file; key file_storage_path; default \"/tmp/metrics-db.json\""))
      << r.help;
  EXPECT_FALSE(has("TEXT")) << r.help;
  EXPECT_TRUE(load_server_config({"--help"}, env_of({})).help_requested);
}

TEST(Config, RestoreOffWarnsAboutAnExistingSnapshot) {
  TempFile snapshot("[]");
  ServerConfig cfg;
  cfg.storage.file_path = snapshot.path();
  EXPECT_EQ(restore_warning(cfg), std::nullopt);  // restore on: loaded, nothing to say
  cfg.storage.restore = false;
  const auto warning = restore_warning(cfg);
  ASSERT_TRUE(warning.has_value());
  EXPECT_NE(warning->find(snapshot.path()), std::string::npos) << *warning;
  EXPECT_NE(warning->find("replaced at the next write"), std::string::npos) << *warning;
  cfg.storage.store_interval = std::chrono::seconds{0};
  EXPECT_NE(restore_warning(cfg)->find("replaced now"), std::string::npos);
  cfg.storage.file_path = snapshot.path() + ".missing";
  EXPECT_EQ(restore_warning(cfg), std::nullopt);  // nothing to lose
  cfg.storage.file_path = snapshot.path();
  cfg.storage.database_dsn = "postgres://x";
  EXPECT_EQ(restore_warning(cfg), std::nullopt);  // the file is not the storage
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

namespace metrics::server {
namespace {

// The series options of API.md Part 2: one row each, with flag, environment
// and config key.
TEST(Config, SeriesOptions) {
  const auto defaults = load_server_config({}, env_of({})).config;
  EXPECT_EQ(defaults.stale_after, std::chrono::minutes{1});
  EXPECT_EQ(defaults.series_ttl, std::chrono::hours{24});
  EXPECT_EQ(defaults.max_series, 1'000'000U);
  EXPECT_EQ(defaults.max_series_per_instance, 10'000U);

  auto flags = load_server_config({"--stale-after", "30s", "--series-ttl", "1h30m", "--max-series",
                                   "5", "--max-series-per-instance", "2"},
                                  env_of({}))
                   .config;
  EXPECT_EQ(flags.stale_after, std::chrono::seconds{30});
  EXPECT_EQ(flags.series_ttl, std::chrono::minutes{90});
  EXPECT_EQ(flags.max_series, 5U);
  EXPECT_EQ(flags.max_series_per_instance, 2U);

  auto env = load_server_config({"--max-series", "5"}, env_of({{"STALE_AFTER", "2m"},
                                                               {"SERIES_TTL", "0"},
                                                               {"MAX_SERIES", "7"},
                                                               {"MAX_SERIES_PER_INSTANCE", "0"}}))
                 .config;
  EXPECT_EQ(env.stale_after, std::chrono::minutes{2});
  EXPECT_EQ(env.series_ttl, std::chrono::milliseconds{0});  // keeps forever
  EXPECT_EQ(env.max_series, 7U);                            // environment over flag
  EXPECT_EQ(env.max_series_per_instance, 0U);               // no limit

  TempFile file(R"({"stale_after": "10s", "series_ttl": "48h", "max_series": 9,
                    "max_series_per_instance": 3})");
  auto from_file = load_server_config({"-c", file.path()}, env_of({})).config;
  EXPECT_EQ(from_file.stale_after, std::chrono::seconds{10});
  EXPECT_EQ(from_file.series_ttl, std::chrono::hours{48});
  EXPECT_EQ(from_file.max_series, 9U);
  EXPECT_EQ(from_file.max_series_per_instance, 3U);
}

TEST(Config, BadSeriesOptionsNameTheOption) {
  auto message = [](std::vector<std::string> args, std::map<std::string, std::string> env) {
    try {
      (void)load_server_config(args, env_of(std::move(env)));
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message({"--stale-after", "0"}, {}).find("--stale-after/STALE_AFTER"),
            std::string::npos);
  EXPECT_NE(message({}, {{"SERIES_TTL", "soon"}}).find("SERIES_TTL"), std::string::npos);
  EXPECT_NE(message({"--max-series", "-1"}, {}).find("--max-series/MAX_SERIES"), std::string::npos);
  EXPECT_NE(message({"--max-series-per-instance", "x"}, {}).find("MAX_SERIES_PER_INSTANCE"),
            std::string::npos);
  const auto help = load_server_config({"--help"}, env_of({})).help;
  for (const char* flag :
       {"--stale-after", "--series-ttl", "--max-series", "--max-series-per-instance"}) {
    EXPECT_NE(help.find(flag), std::string::npos) << flag;
  }
}

}  // namespace
}  // namespace metrics::server
