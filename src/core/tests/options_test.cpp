#include "metrics/core/options.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>

namespace metrics::core::options {
namespace {

using namespace std::chrono_literals;
using ::testing::HasSubstr;
using ::testing::Not;

struct Config {
  std::string address = "localhost:8080";
  std::chrono::milliseconds interval{300'000};
  bool restore = true;
  bool gzip = false;
  std::string key;
  unsigned threads = 0;
};

Spec spec_of(Config& c) {
  return {.program = "prog",
          .summary = "a test program",
          .options = {
              {.flags = {"-a", "--address"},
               .env = "ADDRESS",
               .keys = {"address"},
               .help = "where",
               .value = text(
                   c.address,
                   [](std::string_view v) {
                     if (v.find(':') == std::string_view::npos) {
                       throw BadValue("expected host:port");
                     }
                   },
                   "host:port")},
              {.flags = {"-i"},
               .env = "STORE_INTERVAL",
               .keys = {"store_interval", "interval"},
               .help = "how often",
               .value = duration(c.interval)},
              {.flags = {"-r"},
               .env = "RESTORE",
               .keys = {"restore"},
               .help = "load",
               .value = boolean(c.restore)},
              {.flags = {"--gzip"},
               .negations = {"--no-gzip"},
               .keys = {"gzip"},
               .help = "compress",
               .value = boolean(c.gzip)},
              {.flags = {"-k"},
               .env = "KEY",
               .keys = {"key"},
               .help = "signing key",
               .value = secret(c.key)},
              {.flags = {"-t", "--threads"},
               .env = "THREADS",
               .keys = {"threads"},
               .help = "threads",
               .value = whole(c.threads, 0, 8)},
          }};
}

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
              ("metrics-options-" + std::to_string(::getpid()) + "-" + std::to_string(counter_++) +
               ".json")) {
    std::ofstream(path_) << content;
  }
  ~TempFile() { std::filesystem::remove(path_); }
  [[nodiscard]] std::string path() const { return path_.string(); }

 private:
  static inline int counter_ = 0;
  std::filesystem::path path_;
};

struct Loaded {
  Config config;
  Result result;
};

Loaded run(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  Loaded out;
  out.result = load(spec_of(out.config), args, env_of(std::move(env)));
  return out;
}

std::string error_of(std::vector<std::string> args, std::map<std::string, std::string> env = {}) {
  try {
    (void)run(std::move(args), std::move(env));
  } catch (const OptionsError& e) {
    return e.what();
  }
  return "no error";
}

TEST(Options, DefaultsStayWithoutAnySource) {
  const auto r = run({});
  EXPECT_EQ(r.config.address, "localhost:8080");
  EXPECT_EQ(r.config.interval, 300s);
  EXPECT_TRUE(r.config.restore);
  EXPECT_TRUE(r.result.origins.empty());
}

TEST(Options, EnvironmentBeatsFlagBeatsFileBeatsDefault) {
  TempFile file(R"({"address": "file:1", "store_interval": "7s", "restore": false, "threads": 3})");
  const auto r = run({"-a", "flag:2", "-i", "5", "-c", file.path()}, {{"ADDRESS", "env:3"}});
  EXPECT_EQ(r.config.address, "env:3");  // env over flag
  EXPECT_EQ(r.config.interval, 5s);      // flag over file
  EXPECT_FALSE(r.config.restore);        // file over default
  EXPECT_EQ(r.config.threads, 3U);
  EXPECT_EQ(r.config.gzip, false);  // default
  ASSERT_EQ(r.result.origins.size(), 4U);
  EXPECT_EQ(r.result.origins[0].text(), "address=env:3 (from ADDRESS)");
  EXPECT_EQ(r.result.origins[1].text(), "store_interval=5s (from flag -i)");
  EXPECT_EQ(r.result.origins[2].text(), "restore=false (from config file " + file.path() + ")");
  EXPECT_EQ(r.result.origins[2].source, Source::file);
}

TEST(Options, ConfigPathFollowsTheSameRule) {
  TempFile from_env(R"({"address": "envfile:1"})");
  TempFile from_flag(R"({"address": "flagfile:1"})");
  EXPECT_EQ(run({"-c", from_flag.path()}, {{"CONFIG", from_env.path()}}).config.address,
            "envfile:1");
  EXPECT_EQ(run({"--config=" + from_flag.path()}).config.address, "flagfile:1");
  EXPECT_EQ(run({"-c", from_flag.path()}, {{"CONFIG", ""}}).config.address, "flagfile:1");
}

TEST(Options, EmptyEnvironmentVariableCountsAsUnset) {
  const auto r = run({"-a", "flag:2"}, {{"ADDRESS", ""}, {"STORE_INTERVAL", ""}});
  EXPECT_EQ(r.config.address, "flag:2");
  EXPECT_EQ(r.config.interval, 300s);
}

TEST(Options, UnknownConfigKeyIsAnErrorNamingIt) {
  TempFile file(R"({"adress": "x:1"})");
  const auto e = error_of({"-c", file.path()});
  EXPECT_THAT(e, HasSubstr("unknown key \"adress\""));
  EXPECT_THAT(e, HasSubstr(file.path()));
}

TEST(Options, SecondKeyOfARowWorksAndTheFirstWins) {
  TempFile second(R"({"interval": 9})");
  EXPECT_EQ(run({"-c", second.path()}).config.interval, 9s);
  TempFile both(R"({"interval": 9, "store_interval": "1m"})");
  EXPECT_EQ(run({"-c", both.path()}).config.interval, 1min);
}

TEST(Options, GoFlagForms) {
  auto r = run({"-a=h:1", "--i", "500ms", "-r=false", "--threads=2"});
  EXPECT_EQ(r.config.address, "h:1");
  EXPECT_EQ(r.config.interval, 500ms);
  EXPECT_FALSE(r.config.restore);
  EXPECT_EQ(r.config.threads, 2U);
  EXPECT_FALSE(run({"-r", "false"}).config.restore);
  EXPECT_TRUE(run({"-r"}).config.restore);
  EXPECT_TRUE(run({"--gzip"}).config.gzip);
  EXPECT_FALSE(run({"--gzip", "--no-gzip"}).config.gzip);
  EXPECT_EQ(run({"-t2"}).config.threads, 2U);
  EXPECT_EQ(run({"-address", "x:1", "-a", "y:2"}).config.address, "y:2");  // last wins
  EXPECT_EQ(run({"-i", "1m"}).config.interval, 60s);
  EXPECT_TRUE(run({"-help"}).result.help);
  EXPECT_TRUE(run({"--help"}).result.help);
}

TEST(Options, MalformedValuesNameFlagAndVariable) {
  EXPECT_THAT(error_of({"-i", "soon"}), HasSubstr("-i/STORE_INTERVAL (from flag -i)"));
  EXPECT_THAT(error_of({}, {{"RESTORE", "maybe"}}), HasSubstr("-r/RESTORE (from RESTORE)"));
  TempFile file(R"({"store_interval": "soon"})");
  EXPECT_THAT(error_of({"-c", file.path()}), HasSubstr("key \"store_interval\""));
  // A bad value is an error even where a higher source overrides it.
  EXPECT_THAT(error_of({"-c", file.path(), "-i", "1"}), HasSubstr("store_interval"));
  EXPECT_THAT(error_of({"-t", "9"}), HasSubstr("from 0 to 8"));
  EXPECT_THAT(error_of({"-x"}), HasSubstr("unknown flag -x"));
  EXPECT_THAT(error_of({"stray"}), HasSubstr("stray"));
  EXPECT_THAT(error_of({"-a"}), HasSubstr("-a needs a value"));
  EXPECT_THAT(error_of({"--", "x"}), HasSubstr("'x'"));
  TempFile nested(R"({"address": {"x": 1}})");
  EXPECT_THAT(error_of({"-c", nested.path()}), HasSubstr("\"address\" must be a string"));
  EXPECT_THAT(error_of({"-c", "/nonexistent/x.json"}), HasSubstr("/nonexistent/x.json"));
}

TEST(Options, SecretsAreNeverShown) {
  const auto r = run({"-k", "flag-secret"}, {{"KEY", "env-secret"}});
  EXPECT_EQ(r.config.key, "env-secret");
  ASSERT_EQ(r.result.origins.size(), 1U);
  EXPECT_EQ(r.result.origins[0].text(), "key=<set> (from KEY)");
}

TEST(Options, HelpShowsTypeDefaultVariableAndKey) {
  Config c;
  const std::string h = help(spec_of(c));
  EXPECT_THAT(h, HasSubstr("-a, --address host:port"));
  EXPECT_THAT(h, HasSubstr("env ADDRESS; key address; default \"localhost:8080\""));
  EXPECT_THAT(h, HasSubstr("-i duration"));
  EXPECT_THAT(h, HasSubstr("key store_interval; key interval; default 5m"));
  EXPECT_THAT(h, HasSubstr("-r bool"));
  EXPECT_THAT(h, HasSubstr("--gzip, --no-gzip bool"));
  EXPECT_THAT(h, HasSubstr("-t, --threads uint"));
  EXPECT_THAT(h, HasSubstr("env CONFIG"));
  EXPECT_THAT(h, Not(HasSubstr("TEXT")));
}

TEST(Options, DurationsFormatLikeGo) {
  EXPECT_EQ(format_duration(0s), "0s");
  EXPECT_EQ(format_duration(500ms), "500ms");
  EXPECT_EQ(format_duration(10s), "10s");
  EXPECT_EQ(format_duration(90s), "1m30s");
  EXPECT_EQ(format_duration(300s), "5m");
  EXPECT_EQ(format_duration(2h), "2h");
  EXPECT_EQ(format_duration(1500us), "1500us");
}

// --- repeatable rows ------------------------------------------------------

struct ListConfig {
  std::vector<std::string> urls{"http://default:1"};
};

Spec list_spec(ListConfig& c) {
  return {.program = "prog",
          .options = {{.flags = {"--url"},
                       .env = "URL",
                       .keys = {"url"},
                       .help = "where to send",
                       .value = list(c.urls, [](std::string_view v) {
                         if (!v.starts_with("http")) throw BadValue("expected a URL");
                       })}}};
}

std::vector<std::string> urls_of(std::vector<std::string> args,
                                 std::map<std::string, std::string> env = {}) {
  ListConfig c;
  (void)load(list_spec(c), args, env_of(std::move(env)));
  return c.urls;
}

TEST(OptionsList, DefaultStaysUntilGiven) {
  EXPECT_EQ(urls_of({}), std::vector<std::string>{"http://default:1"});
}

TEST(OptionsList, EachFlagAddsOneItemInOrder) {
  EXPECT_EQ(urls_of({"--url", "http://a", "--url=http://b"}),
            (std::vector<std::string>{"http://a", "http://b"}));
}

TEST(OptionsList, EnvironmentIsACommaSeparatedListThatReplacesTheFlags) {
  EXPECT_EQ(urls_of({"--url", "http://flag"}, {{"URL", " http://a , ,http://b"}}),
            (std::vector<std::string>{"http://a", "http://b"}));
}

TEST(OptionsList, ConfigFileArrayLosesToFlags) {
  TempFile file(R"({"url": ["http://f1", "http://f2"]})");
  EXPECT_EQ(urls_of({"-c", file.path()}), (std::vector<std::string>{"http://f1", "http://f2"}));
  EXPECT_EQ(urls_of({"-c", file.path(), "--url", "http://flag"}),
            std::vector<std::string>{"http://flag"});
  TempFile one(R"({"url": "http://only"})");
  EXPECT_EQ(urls_of({"-c", one.path()}), std::vector<std::string>{"http://only"});
  TempFile none(R"({"url": []})");
  EXPECT_TRUE(urls_of({"-c", none.path()}).empty());
}

TEST(OptionsList, EveryItemIsCheckedAndABadOneIsNamed) {
  ListConfig c;
  try {
    (void)load(list_spec(c), std::vector<std::string>{"--url", "http://a", "--url", "ftp://b"},
               no_env());
    FAIL() << "no error";
  } catch (const OptionsError& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("\"ftp://b\""));
    EXPECT_THAT(std::string(e.what()), HasSubstr("--url/URL"));
  }
  // A bad item of a weaker source is checked too.
  try {
    (void)load(list_spec(c), std::vector<std::string>{"--url", "bad"},
               env_of({{"URL", "http://ok"}}));
    FAIL() << "no error";
  } catch (const OptionsError& e) {
    EXPECT_THAT(std::string(e.what()), HasSubstr("\"bad\""));
  }
}

TEST(OptionsList, OriginShowsTheWholeList) {
  ListConfig c;
  const auto r = load(list_spec(c),
                      std::vector<std::string>{"--url", "http://a", "--url", "http://b"}, no_env());
  ASSERT_EQ(r.origins.size(), 1U);
  EXPECT_EQ(r.origins[0].text(), "url=http://a,http://b (from flag --url)");
  EXPECT_THAT(help(list_spec(c)), HasSubstr("repeatable"));
}

}  // namespace
}  // namespace metrics::core::options
