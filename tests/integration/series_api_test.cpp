// Series with labels (API.md Part 2, "Series: instances and labels") over
// real loopback sockets, against an in-process server on each storage:
// memory, file (synchronous mode) and PostgreSQL (a fresh schema; only when
// METRICS_TEST_PG_DSN is set, and never skipped in CI). The server's clock
// is a ManualClock, so liveness and expiry are tested without sleeping.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <libpq-fe.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <random>

#include "metrics/core/clock.hpp"
#include "metrics/storage/file_repository.hpp"
#include "metrics/storage/postgres_repository.hpp"
#include "test_support.hpp"

namespace metrics::testing {
namespace {

using ::testing::HasSubstr;
using namespace std::chrono_literals;

std::string pg_dsn() {
  const char* dsn = std::getenv("METRICS_TEST_PG_DSN");
  return dsn != nullptr ? dsn : "";
}

// One storage of one test, removed afterwards.
class StorageUnderTest {
 public:
  explicit StorageUnderTest(std::string kind) : kind_(std::move(kind)) {
    std::random_device rd;
    tag_ = std::to_string(::getpid()) + "_" + std::to_string(rd());
    if (kind_ == "file") dir_ = std::filesystem::temp_directory_path() / ("metrics-series-" + tag_);
  }
  ~StorageUnderTest() {
    if (!dir_.empty()) std::filesystem::remove_all(dir_);
    if (kind_ == "postgres" && opened_) {
      PGconn* conn = PQconnectdb(pg_dsn().c_str());
      if (PQstatus(conn) == CONNECTION_OK) {
        PQclear(PQexec(conn, ("DROP SCHEMA IF EXISTS " + schema() + " CASCADE").c_str()));
      }
      PQfinish(conn);
    }
  }
  StorageUnderTest(const StorageUnderTest&) = delete;
  StorageUnderTest& operator=(const StorageUnderTest&) = delete;

  [[nodiscard]] bool available() const { return kind_ != "postgres" || !pg_dsn().empty(); }

  // A new repository over the same data (the second one sees what the first
  // stored, as a restarted server would).
  std::shared_ptr<storage::Repository> open() {
    opened_ = true;
    if (kind_ == "file") {
      storage::FileOptions o;
      o.path = dir_ / "db.json";
      o.store_interval = 0ms;
      return std::make_shared<storage::FileRepository>(std::move(o));
    }
    if (kind_ == "postgres") {
      storage::PostgresOptions o;
      o.dsn = pg_dsn();
      o.schema = schema();
      return std::make_shared<storage::PostgresRepository>(std::move(o));
    }
    if (!memory_) memory_ = std::make_shared<storage::MemoryRepository>();
    return memory_;
  }

 private:
  [[nodiscard]] std::string schema() const { return "metrics_series_" + tag_; }

  std::string kind_;
  std::string tag_;
  std::filesystem::path dir_;
  std::shared_ptr<storage::Repository> memory_;
  bool opened_ = false;
};

class SeriesApi : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (!storage_.available()) {
      if (std::getenv("CI") != nullptr) GTEST_FAIL() << "METRICS_TEST_PG_DSN unset in CI";
      GTEST_SKIP() << "METRICS_TEST_PG_DSN is not set";
    }
    start(TestServer::default_config());
  }

  void start(server::ServerConfig config) {
    client_.reset();
    server_.reset();
    if (repo_ && GetParam() != "memory") repo_->close();
    repo_.reset();
    repo_ = storage_.open();
    server::ServerHooks hooks;
    hooks.clock = clock_;
    server_ = std::make_unique<TestServer>(std::move(config), repo_, hooks);
    client_ = std::make_unique<Client>(server_->port());
  }

  void TearDown() override {
    client_.reset();
    if (server_) server_->stop();
    server_.reset();
    if (repo_) repo_->close();
    repo_.reset();
  }

  Response post(std::string target, std::string body) {
    return client_->post_json(std::move(target), std::move(body));
  }
  unsigned status(std::string target, std::string body) {
    return post(std::move(target), std::move(body)).result_int();
  }
  [[nodiscard]] std::int64_t now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               clock_->system_now().time_since_epoch())
        .count();
  }

  StorageUnderTest storage_{GetParam()};
  std::shared_ptr<core::ManualClock> clock_ = std::make_shared<core::ManualClock>();
  std::shared_ptr<storage::Repository> repo_;
  std::unique_ptr<TestServer> server_;
  std::unique_ptr<Client> client_;
};

// Every label rule of the contract, in every place labels can be given.
TEST_P(SeriesApi, LabelRulesAre400NamingTheLabelAndStoreNothing) {
  std::string many;
  for (int i = 0; i < 33; ++i)
    many += (i != 0 ? "," : "") + ("\"l" + std::to_string(i) + "\":\"v\"");
  const std::string long_name(129, 'n');
  struct Case {
    std::string labels;
    std::string named;
  };
  const std::vector<Case> cases{
      {R"({"bad-name":"v"})", R"(label \"bad-name\")"},
      {R"({"bad.name":"v"})", R"(label \"bad.name\")"},
      {R"({"1abc":"v"})", R"(label \"1abc\")"},
      {R"({"__reserved":"v"})", R"(label \"__reserved\")"},
      {"{\"" + long_name + "\":\"v\"}", "longer than 128 bytes"},
      {"{\"big\":\"" + std::string(1025, 'v') + "\"}", R"(label \"big\")"},
      {"{" + many + "}", "too many labels"},
      {R"({"num":1})", R"(label \"num\")"},
      {R"({"obj":{"a":"b"}})", R"(label \"obj\")"},
      {R"({"dup":"a","dup":"b"})", R"(label \"dup\")"},
      // Invalid UTF-8 cannot be written inside a JSON string: the body is
      // not JSON, and the message says so.
      {"{\"utf\":\"\xC3\x28\"}", "UTF-8"},
  };
  for (const auto& c : cases) {
    const std::vector<std::pair<std::string, std::string>> requests{
        {"/update/", R"({"id":"m","type":"counter","delta":1,"labels":)" + c.labels + "}"},
        {"/updates/", R"([{"id":"m","type":"counter","delta":1},)"
                      R"({"id":"m","type":"counter","delta":1,"labels":)" +
                          c.labels + "}]"},
        {"/updates/",
         R"({"labels":)" + c.labels + R"(,"metrics":[{"id":"m","type":"counter","delta":1}]})"},
        {"/updates/", R"({"labels":{"job":"a"},"metrics":[{"id":"m","type":"counter","delta":1,)"
                      R"("labels":)" +
                          c.labels + "}]}"},
        {"/value/", R"({"id":"m","type":"counter","labels":)" + c.labels + "}"},
    };
    for (const auto& [target, body] : requests) {
      auto res = post(target, body);
      EXPECT_EQ(res.result_int(), 400) << target << " " << c.named;
      EXPECT_THAT(res.body(), HasSubstr(c.named)) << target;
      EXPECT_THAT(res.body(), ::testing::StartsWith(R"({"error":)"));
    }
  }
  // Nothing was stored: neither the classic value nor any series.
  EXPECT_EQ(status("/value/", R"({"id":"m","type":"counter"})"), 404U);
  EXPECT_EQ(status("/value/", R"({"id":"m","type":"counter","labels":{}})"), 404U);
  EXPECT_EQ(status("/value/", R"({"id":"m","type":"counter","labels":{"job":"a"}})"), 404U);
  EXPECT_EQ(client_->get("/value/counter/m").result_int(), 404);
  EXPECT_TRUE(storage::list_series_sync(*repo_).empty());
  EXPECT_EQ(server_->server().index().size(), 0U);
  // The limits of the contract themselves are accepted.
  const std::string name128(128, 'n');
  EXPECT_EQ(status("/update/", R"({"id":"m","type":"counter","delta":1,"labels":{")" + name128 +
                                   R"(":")" + std::string(1024, 'v') + R"("}})"),
            200);
}

TEST_P(SeriesApi, EnvelopeMergesLabelsAndAnswersEchoThem) {
  auto res = post("/updates/", R"({"labels":{"instance":"h:1","job":"agent","dc":"x"},"metrics":[
      {"id":"PollCount","type":"counter","delta":2},
      {"id":"PollCount","type":"counter","delta":3},
      {"id":"Alloc","type":"gauge","value":1.5,"labels":{"dc":"","job":"other"}},
      {"id":"Alloc","type":"gauge","value":2.5}]})");
  ASSERT_EQ(res.result_int(), 200) << res.body();
  EXPECT_EQ(
      res.body(),
      R"([{"id":"PollCount","type":"counter","delta":5,"labels":{"dc":"x","instance":"h:1","job":"agent"}},)"
      R"({"id":"Alloc","type":"gauge","value":1.5,"labels":{"instance":"h:1","job":"other"}},)"
      R"({"id":"Alloc","type":"gauge","value":2.5,"labels":{"dc":"x","instance":"h:1","job":"agent"}}])");
  // Each series reads back on its own, labels in any order.
  EXPECT_EQ(
      post("/value/", R"({"id":"Alloc","type":"gauge","labels":{"job":"other","instance":"h:1"}})")
          .body(),
      R"({"id":"Alloc","type":"gauge","value":1.5,"labels":{"instance":"h:1","job":"other"}})");
  EXPECT_EQ(status("/value/", R"({"id":"Alloc","type":"gauge","labels":{"instance":"h:1"}})"),
            404U);
  // The classic value took the last write of the batch.
  EXPECT_EQ(client_->get("/value/gauge/Alloc").body(), "2.5");
  EXPECT_EQ(client_->get("/value/counter/PollCount").body(), "5");
  // A labelled /update/ answers its series.
  EXPECT_EQ(
      post("/update/", R"({"id":"PollCount","type":"counter","delta":1,)"
                       R"("labels":{"instance":"h:1","job":"agent","dc":"x"}})")
          .body(),
      R"({"id":"PollCount","type":"counter","delta":6,"labels":{"dc":"x","instance":"h:1","job":"agent"}})");
  EXPECT_EQ(server_->server().index().size(), 3U);
}

TEST_P(SeriesApi, ClassicValueSumsAcrossInstances) {
  ASSERT_EQ(status("/updates/", R"({"labels":{"instance":"a"},"metrics":[
      {"id":"c","type":"counter","delta":5},{"id":"g","type":"gauge","value":1}]})"),
            200);
  ASSERT_EQ(status("/updates/", R"({"labels":{"instance":"b"},"metrics":[
      {"id":"c","type":"counter","delta":7},{"id":"g","type":"gauge","value":2}]})"),
            200);
  EXPECT_EQ(client_->get("/value/counter/c").body(), "12");
  EXPECT_EQ(client_->get("/value/gauge/g").body(), "2");
  EXPECT_EQ(post("/value/", R"({"id":"c","type":"counter"})").body(),
            R"({"id":"c","type":"counter","delta":12})");
  EXPECT_EQ(post("/value/", R"({"id":"c","type":"counter","labels":{"instance":"a"}})").body(),
            R"({"id":"c","type":"counter","delta":5,"labels":{"instance":"a"}})");
  // An unlabelled write: its answer is Part 1's (the classic total), its
  // series holds unlabelled writes only.
  EXPECT_EQ(post("/update/", R"({"id":"c","type":"counter","delta":1})").body(),
            R"({"id":"c","type":"counter","delta":13})");
  EXPECT_EQ(post("/updates/", R"([{"id":"c","type":"counter","delta":1}])").body(),
            R"([{"id":"c","type":"counter","delta":14}])");
  EXPECT_EQ(post("/value/", R"({"id":"c","type":"counter","labels":{}})").body(),
            R"({"id":"c","type":"counter","delta":2})");
  EXPECT_EQ(client_->post("/update/counter/c/1").result_int(), 200);
  EXPECT_EQ(client_->get("/value/counter/c").body(), "15");
  // The classic table lists each type and name once.
  const auto page = client_->get("/").body();
  EXPECT_THAT(page, HasSubstr("2 metrics"));
  EXPECT_THAT(page, HasSubstr(">15<"));
}

TEST_P(SeriesApi, SeriesLimitsAre429AndStoreNothing) {
  auto config = TestServer::default_config();
  config.max_series = 3;
  config.max_series_per_instance = 2;
  start(config);
  ASSERT_EQ(status("/updates/", R"({"labels":{"instance":"a"},"metrics":[
      {"id":"x","type":"gauge","value":1},{"id":"y","type":"gauge","value":1}]})"),
            200);
  // A third series of instance a: the per-instance limit.
  auto res = post("/updates/", R"({"labels":{"instance":"a"},"metrics":[
      {"id":"x","type":"gauge","value":9},{"id":"z","type":"gauge","value":9}]})");
  EXPECT_EQ(res.result_int(), 429);
  EXPECT_THAT(res.body(), HasSubstr("--max-series-per-instance limit of 2"));
  EXPECT_EQ(post("/value/", R"({"id":"x","type":"gauge","labels":{"instance":"a"}})").body(),
            R"({"id":"x","type":"gauge","value":1,"labels":{"instance":"a"}})");
  EXPECT_EQ(client_->get("/value/gauge/x").body(), "1");  // not even the classic value
  EXPECT_EQ(client_->get("/value/gauge/z").result_int(), 404);
  // Two more series in all: the total limit.
  res = post("/updates/",
             R"([{"id":"p","type":"gauge","value":1},{"id":"q","type":"gauge","value":1}])");
  EXPECT_EQ(res.result_int(), 429);
  EXPECT_THAT(res.body(), HasSubstr("--max-series limit of 3"));
  EXPECT_EQ(client_->get("/value/gauge/p").result_int(), 404);
  EXPECT_EQ(client_->post("/update/gauge/p/1").result_int(), 200);
  EXPECT_EQ(client_->post("/update/gauge/q/1").result_int(), 429);
  EXPECT_EQ(storage::list_series_sync(*repo_).size(), 3U);
  // Existing series stay writable at the limits.
  EXPECT_EQ(status("/updates/", R"({"labels":{"instance":"a"},"metrics":[
      {"id":"x","type":"gauge","value":3},{"id":"y","type":"gauge","value":3}]})"),
            200);
  // After a restart the stored series still count.
  start(config);
  EXPECT_EQ(server_->server().index().size(), 3U);
  EXPECT_EQ(client_->post("/update/gauge/q/1").result_int(), 429);
  EXPECT_EQ(client_->post("/update/gauge/p/2").result_int(), 200);
}

TEST_P(SeriesApi, LivenessPerInstanceAndJob) {
  ASSERT_EQ(status("/updates/", R"({"labels":{"instance":"h:1","job":"agent"},"metrics":[
      {"id":"a","type":"gauge","value":1}]})"),
            200);
  ASSERT_EQ(
      status("/update/", R"({"id":"a","type":"gauge","value":1,"labels":{"instance":"h:2"}})"),
      200);
  const auto pushed = now_ms();
  const std::string up =
      R"({"id":"agent_up","type":"gauge","labels":{"instance":"h:1","job":"agent"}})";
  EXPECT_EQ(
      post("/value/", up).body(),
      R"({"id":"agent_up","type":"gauge","value":1,"labels":{"instance":"h:1","job":"agent"}})");
  EXPECT_EQ(post("/value/", R"({"id":"agent_last_push_timestamp_seconds","type":"gauge",)"
                            R"("labels":{"instance":"h:1","job":"agent"}})")
                .body(),
            R"({"id":"agent_last_push_timestamp_seconds","type":"gauge","value":)" +
                std::to_string(pushed / 1000) + R"(,"labels":{"instance":"h:1","job":"agent"}})");
  // An instance without a job has job="".
  EXPECT_EQ(status("/value/", R"({"id":"agent_up","type":"gauge","labels":{"instance":"h:2"}})"),
            200);
  EXPECT_EQ(status("/value/", R"({"id":"agent_up","type":"gauge","labels":{"instance":"h:9"}})"),
            404);
  clock_->advance(59s);
  EXPECT_THAT(post("/value/", up).body(), HasSubstr(R"("value":1,)"));
  clock_->advance(1s);
  EXPECT_THAT(post("/value/", up).body(), HasSubstr(R"("value":0,)"));
  // An empty envelope writes nothing, so it is no push; a write is.
  ASSERT_EQ(status("/updates/", R"({"labels":{"instance":"h:1","job":"agent"},"metrics":[]})"),
            200);
  EXPECT_THAT(post("/value/", up).body(), HasSubstr(R"("value":0,)"));
  ASSERT_EQ(status("/updates/", R"({"labels":{"instance":"h:1","job":"agent"},"metrics":[
      {"id":"a","type":"gauge","value":2}]})"),
            200);
  EXPECT_THAT(post("/value/", up).body(), HasSubstr(R"("value":1,)"));
  // Liveness series are neither stored nor counted.
  EXPECT_EQ(storage::list_series_sync(*repo_).size(), 2U);
  EXPECT_EQ(server_->server().index().size(), 2U);
  const auto live = server_->server().index().liveness(now_ms(), 60'000);
  ASSERT_EQ(live.size(), 2U);
  EXPECT_EQ(live[0].instance, "h:1");
  EXPECT_TRUE(live[0].up);
  EXPECT_EQ(live[1].job, "");
  EXPECT_FALSE(live[1].up);
}

TEST_P(SeriesApi, ExpiredSeriesLeaveAndClassicValuesStay) {
  auto config = TestServer::default_config();
  config.series_ttl = 1h;
  start(config);
  // The sweep waits on the server's clock.
  const auto first = clock_->await_waiter();
  ASSERT_TRUE(first);
  ASSERT_EQ(status("/update/", R"({"id":"old","type":"counter","delta":4,"labels":{"job":"a"}})"),
            200);
  clock_->advance(30min);
  // A sweep at +30 min: nothing is old enough yet.
  ASSERT_TRUE(clock_->await_waiter(clock_->steady_now()));
  EXPECT_EQ(storage::list_series_sync(*repo_).size(), 1U);
  ASSERT_EQ(status("/update/", R"({"id":"new","type":"counter","delta":1,"labels":{"job":"a"}})"),
            200);
  clock_->advance(31min);
  // Past its TTL: not readable (whether or not the sweep has run yet).
  EXPECT_EQ(status("/value/", R"({"id":"old","type":"counter","labels":{"job":"a"}})"), 404U);
  // The sweep at +61 min has run once the thread waits again.
  ASSERT_TRUE(clock_->await_waiter(clock_->steady_now()));
  const auto series = storage::list_series_sync(*repo_);
  ASSERT_EQ(series.size(), 1U);
  EXPECT_EQ(series[0].id, "new");
  EXPECT_EQ(server_->server().index().size(), 1U);
  EXPECT_EQ(status("/value/", R"({"id":"old","type":"counter","labels":{"job":"a"}})"), 404U);
  EXPECT_EQ(status("/value/", R"({"id":"new","type":"counter","labels":{"job":"a"}})"), 200U);
  EXPECT_EQ(client_->get("/value/counter/old").body(), "4");
  // Written again: a new series from zero; the classic value goes on.
  EXPECT_EQ(
      post("/update/", R"({"id":"old","type":"counter","delta":1,"labels":{"job":"a"}})").body(),
      R"({"id":"old","type":"counter","delta":1,"labels":{"job":"a"}})");
  EXPECT_EQ(client_->get("/value/counter/old").body(), "5");
}

std::string storage_name(const ::testing::TestParamInfo<std::string>& info) {
  return info.param;
}

INSTANTIATE_TEST_SUITE_P(Storages, SeriesApi, ::testing::Values("memory", "file", "postgres"),
                         storage_name);

}  // namespace
}  // namespace metrics::testing
