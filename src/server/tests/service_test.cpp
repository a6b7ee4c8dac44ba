// Every handler of the route table, driven through Service::handle with a
// fake Repository: no sockets, no threads.
#include "metrics/server/service.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <vector>

#include "metrics/core/errors.hpp"
#include "metrics/core/gzip.hpp"
#include "metrics/core/signature.hpp"
#include "metrics/history/store.hpp"
#include "metrics/query/matcher.hpp"
#include "test_repository.hpp"

namespace metrics::server {
namespace {
namespace http = boost::beast::http;
using testing::FakeRepository;
using ::testing::HasSubstr;
using testing::LogCapture;
using testing::make_request;
using testing::run;

constexpr std::string_view kJson = "application/json";

class ServiceTest : public ::testing::Test {
 protected:
  FakeRepository repo_;
  Service service_{repo_, {}};

  Response send(http::verb method, std::string target, std::string body = {},
                std::string content_type = {}) {
    return run(service_,
               make_request(method, std::move(target), std::move(body), std::move(content_type)));
  }
};

TEST_F(ServiceTest, EveryRowOfTheTableHasAHandler) {
  std::vector<std::string_view> names;
  for (const auto& r : default_routes()) {
    EXPECT_NE(r.handler, nullptr) << r.name;
    names.push_back(r.name);
  }
  EXPECT_THAT(names, ::testing::IsSupersetOf({"home", "ping", "update_json", "updates_json",
                                              "value_json", "update_text", "value_text", "metrics",
                                              "ui", "ui_asset", "remote_write"}));
  // The Prometheus HTTP API (query_api.hpp).
  EXPECT_THAT(names, ::testing::IsSupersetOf({"api_query", "api_query_range", "api_series",
                                              "api_labels", "api_label_values", "api_metadata",
                                              "api_buildinfo", "api_rules", "api_alerts"}));
}

TEST_F(ServiceTest, Home) {
  repo_.put(core::Point::gauge("<b>", 1.5));
  auto res = send(http::verb::get, "/");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_type], "text/html; charset=utf-8");
  EXPECT_THAT(res.body(), HasSubstr("&lt;b&gt;"));
  EXPECT_EQ(repo_.lists, 1);
}

TEST_F(ServiceTest, Ping) {
  auto res = send(http::verb::get, "/ping");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "ok\n");
  EXPECT_EQ(repo_.pings, 1);
  repo_.fail = [] { throw core::StorageUnavailable("down"); };
  EXPECT_EQ(send(http::verb::get, "/ping").result_int(), 500);  // the contract: 500, not 503
}

TEST_F(ServiceTest, UpdateText) {
  auto res = send(http::verb::post, "/update/counter/c/5");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "");
  ASSERT_EQ(repo_.applied.size(), 1u);
  EXPECT_EQ(repo_.applied[0][0].id, "c");
  EXPECT_EQ(repo_.applied[0][0].delta, 5);
  EXPECT_EQ(send(http::verb::post, "/update/gauge/g/nope").result_int(), 400);
  EXPECT_EQ(send(http::verb::post, "/update/meter/g/1").result_int(), 400);
  EXPECT_EQ(repo_.applied.size(), 1u);  // bad input stores nothing
}

TEST_F(ServiceTest, ValueTextNamesTheMissingMetric) {
  repo_.put(core::Point::gauge("Alloc", 2.5));
  auto res = send(http::verb::get, "/value/gauge/Alloc");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "2.5");
  res = send(http::verb::get, "/value/counter/Alloc");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_EQ(res.body(), "metric not found: counter Alloc\n");
}

TEST_F(ServiceTest, UpdateJson) {
  auto res = send(http::verb::post, "/update/", R"({"id":"c","type":"counter","delta":2})",
                  "application/json");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_type], kJson);
  EXPECT_EQ(res.body(), R"({"id":"c","type":"counter","delta":2})");
  res = send(http::verb::post, "/update/", R"({"id":"c"})", "application/json");
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_THAT(res.body(), ::testing::StartsWith(R"({"error":)"));
  EXPECT_EQ(send(http::verb::post, "/update/", "{}", "text/plain").result_int(), 415);
  EXPECT_EQ(repo_.applied.size(), 1u);
}

TEST_F(ServiceTest, ValueJsonNamesTheMissingMetric) {
  repo_.put(core::Point::counter("PollCount", 7));
  auto res = send(http::verb::post, "/value/", R"({"id":"PollCount","type":"counter"})");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"id":"PollCount","type":"counter","delta":7})");
  res = send(http::verb::post, "/value/", R"({"id":"Alloc","type":"gauge"})");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_EQ(res[http::field::content_type], kJson);
  EXPECT_EQ(res.body(), R"({"error":"metric not found: gauge Alloc"})");
}

TEST_F(ServiceTest, UpdatesJson) {
  auto res =
      send(http::verb::post, "/updates/",
           R"([{"id":"c","type":"counter","delta":1},{"id":"c","type":"counter","delta":2}])");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"([{"id":"c","type":"counter","delta":3}])");
  ASSERT_EQ(repo_.applied.size(), 1u);
  EXPECT_EQ(repo_.applied[0].size(), 1u);  // merged before it reaches the storage
  res = send(http::verb::post, "/updates/", "[]");
  EXPECT_EQ(res.body(), "[]");
  EXPECT_EQ(repo_.applied.size(), 1u);  // an empty batch asks nothing of the storage
}

TEST_F(ServiceTest, MethodNotAllowedTakesAllowAndFormatFromTheTable) {
  auto res = send(http::verb::get, "/updates/");
  EXPECT_EQ(res.result_int(), 405);
  EXPECT_EQ(res[http::field::allow], "POST");
  EXPECT_EQ(res[http::field::content_type], kJson);
  res = send(http::verb::post, "/ping");
  EXPECT_EQ(res.result_int(), 405);
  EXPECT_EQ(res[http::field::allow], "GET");
  EXPECT_EQ(res.body(), "method POST not allowed; use GET\n");
}

TEST_F(ServiceTest, NonStdExceptionFromTheRepositoryIsA500AndLogged) {
  LogCapture log;
  repo_.fail = [] { throw 42; };
  for (auto [target, body] : {std::pair{"/updates/", R"([{"id":"a","type":"gauge","value":1}])"},
                              std::pair{"/value/", R"({"id":"a","type":"gauge"})"}}) {
    auto res = send(http::verb::post, target, body);
    EXPECT_EQ(res.result_int(), 500) << target;
    EXPECT_EQ(res.body(), R"({"error":"internal error"})") << target;
  }
  auto res = send(http::verb::get, "/value/gauge/a");
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), "internal error\n");
  EXPECT_THAT(log.text(), HasSubstr("error GET /value/gauge/a: an exception not derived from"));
  // And the next request is served as usual.
  repo_.fail = nullptr;
  EXPECT_EQ(send(http::verb::get, "/ping").result_int(), 200);
}

TEST_F(ServiceTest, AsynchronousNonStdFailureIsA500) {
  struct Throws : FakeRepository {
    void ping(storage::Callback<bool> done) override { done(std::make_exception_ptr(42), false); }
  } repo;
  Service service(repo, {});
  auto res = run(service, make_request(http::verb::get, "/ping"));
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), "internal error\n");
}

TEST(ServiceFinish, AFailureWhileFinishingIsASigned500AndLogged) {
  FakeRepository repo;
  int calls = 0;
  Service service(repo, {.key = "k", .finish_hook = [&](const Response& res) {
                           ++calls;
                           if (res.result() == http::status::ok && calls == 1) {
                             throw std::runtime_error("deflate broke");
                           }
                         }});
  LogCapture log;
  auto req = make_request(http::verb::get, "/ping");
  req.set(http::field::accept_encoding, "gzip");
  auto res = run(service, req);
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), "internal error\n");
  EXPECT_EQ(res[http::field::content_encoding], "");
  EXPECT_EQ(res[http::field::content_length], std::to_string(res.body().size()));
  EXPECT_EQ(res[core::kSignatureHeader], core::hmac_sha256_hex("k", res.body()));
  EXPECT_THAT(log.text(), HasSubstr("GET /ping: finishing the answer failed: deflate broke"));
  res = run(service, req);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(core::gzip_decompress(res.body(), 100), "ok\n");
}

TEST(ServiceFinish, ANonStdFailureWhileFinishingIsA500) {
  FakeRepository repo;
  Service service(repo, {.key = "", .finish_hook = [](const Response&) { throw 7; }});
  auto res = run(service, make_request(http::verb::post, "/updates/", "[]"));
  EXPECT_EQ(res.result_int(), 500);
  EXPECT_EQ(res.body(), R"({"error":"internal error"})");
}

// ---- Series (docs/API.md "Series: instances and labels").

class SeriesService : public ::testing::Test {
 protected:
  std::shared_ptr<core::ManualClock> clock_ = std::make_shared<core::ManualClock>();
  FakeRepository repo_;
  std::unique_ptr<Service> service_;

  void SetUp() override { make({}); }
  void make(series::Limits limits, std::chrono::milliseconds ttl = std::chrono::hours{24}) {
    service_ = std::make_unique<Service>(
        repo_, ServiceOptions{.clock = clock_, .limits = limits, .series_ttl = ttl});
  }
  [[nodiscard]] std::int64_t now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               clock_->system_now().time_since_epoch())
        .count();
  }
  Response post(std::string target, std::string body) {
    return run(*service_, make_request(http::verb::post, std::move(target), std::move(body)));
  }
};

TEST_F(SeriesService, LabelledUpdateAnswersTheSeriesAtTheClocksTime) {
  auto res = post("/update/", R"({"id":"c","type":"counter","delta":2,"labels":{"job":"a"}})");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"id":"c","type":"counter","delta":2,"labels":{"job":"a"}})");
  ASSERT_EQ(repo_.received.size(), 1U);
  EXPECT_EQ(repo_.received[0], now_ms());
  EXPECT_EQ(repo_.applied[0][0].labels, core::Labels::make({{"job", "a"}}));
}

TEST_F(SeriesService, UnlabelledAnswersCarryTheClassicValue) {
  EXPECT_EQ(
      post("/update/", R"({"id":"c","type":"counter","delta":5,"labels":{"instance":"a"}})").body(),
      R"({"id":"c","type":"counter","delta":5,"labels":{"instance":"a"}})");
  // The classic value has seen the labelled write too: Part 1's answer.
  EXPECT_EQ(post("/update/", R"({"id":"c","type":"counter","delta":1})").body(),
            R"({"id":"c","type":"counter","delta":6})");
  EXPECT_EQ(post("/updates/", R"([{"id":"c","type":"counter","delta":1}])").body(),
            R"([{"id":"c","type":"counter","delta":7}])");
  EXPECT_EQ(post("/value/", R"({"id":"c","type":"counter"})").body(),
            R"({"id":"c","type":"counter","delta":7})");
  EXPECT_EQ(run(*service_, make_request(http::verb::get, "/value/counter/c")).body(), "7");
  // The series with no labels holds unlabelled writes only.
  EXPECT_EQ(post("/value/", R"({"id":"c","type":"counter","labels":{}})").body(),
            R"({"id":"c","type":"counter","delta":2})");
}

TEST_F(SeriesService, EnvelopeLabelsMergeAndAnswersEchoThem) {
  auto res = post("/updates/", R"({"labels":{"instance":"h:1","job":"agent"},"metrics":[
      {"id":"c","type":"counter","delta":1},
      {"id":"c","type":"counter","delta":2},
      {"id":"g","type":"gauge","value":1.5,"labels":{"job":"","zone":"b"}},
      {"id":"g","type":"gauge","value":2.5,"labels":{"instance":"other"}}]})");
  EXPECT_EQ(res.result_int(), 200) << res.body();
  EXPECT_EQ(
      res.body(),
      R"([{"id":"c","type":"counter","delta":3,"labels":{"instance":"h:1","job":"agent"}},)"
      R"({"id":"g","type":"gauge","value":1.5,"labels":{"instance":"h:1","zone":"b"}},)"
      R"({"id":"g","type":"gauge","value":2.5,"labels":{"instance":"other","job":"agent"}}])");
  ASSERT_EQ(repo_.applied.size(), 1U);
  EXPECT_EQ(repo_.applied[0].size(), 3U);  // merged per series
  EXPECT_EQ(service_->index().size(), 3U);
}

TEST_F(SeriesService, LabelErrorsAre400NamingTheLabelAndStoreNothing) {
  const std::string big_name(129, 'a');
  const std::string big_value(1025, 'v');
  std::string many;
  for (int i = 0; i < 33; ++i)
    many += (i != 0 ? "," : "") + ("\"l" + std::to_string(i) + "\":\"v\"");
  const std::vector<std::pair<std::string, std::string>> cases{
      {R"({"bad-name":"v"})", "bad-name"},
      {R"({"1x":"v"})", "1x"},
      {R"({"__name__":"v"})", "__name__"},
      {"{\"" + big_name + "\":\"v\"}", big_name.substr(0, 20)},
      {"{\"big\":\"" + big_value + "\"}", "big"},
      // Invalid UTF-8 cannot be written in a JSON string: the body is not
      // JSON, so the message names the encoding, not the label.
      {"{\"utf\":\"\xff\xfe\"}", "UTF-8"},
      {R"({"utf":"\ud800"})", "malformed JSON"},
      {"{" + many + "}", "labels"},
      {R"({"num":1})", "num"},
      {R"({"dup":"a","dup":"b"})", "dup"},
  };
  for (const auto& [labels, named] : cases) {
    for (const auto& [target, body] : std::vector<std::pair<std::string, std::string>>{
             {"/update/", R"({"id":"m","type":"gauge","value":1,"labels":)" + labels + "}"},
             {"/updates/", R"([{"id":"m","type":"gauge","value":1,"labels":)" + labels + "}]"},
             {"/updates/",
              R"({"labels":)" + labels + R"(,"metrics":[{"id":"m","type":"gauge","value":1}]})"},
             {"/value/", R"({"id":"m","type":"gauge","labels":)" + labels + "}"}}) {
      auto res = post(target, body);
      EXPECT_EQ(res.result_int(), 400) << target << " " << labels.substr(0, 60);
      EXPECT_THAT(res.body(), HasSubstr(named)) << target;
    }
  }
  EXPECT_TRUE(repo_.applied.empty());
  EXPECT_EQ(service_->index().size(), 0U);
}

TEST_F(SeriesService, ValueWithLabelsReadsTheSeries) {
  auto res = post("/value/", R"({"id":"g","type":"gauge","labels":{"job":"a"}})");
  EXPECT_EQ(res.result_int(), 404);
  EXPECT_EQ(res.body(), R"({"error":"series not found: gauge g{job=\"a\"}"})");
  post("/update/", R"({"id":"g","type":"gauge","value":3,"labels":{"job":"a"}})");
  post("/update/", R"({"id":"g","type":"gauge","value":4,"labels":{"job":"b"}})");
  res = post("/value/", R"({"id":"g","type":"gauge","labels":{"job":"a"}})");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"({"id":"g","type":"gauge","value":3,"labels":{"job":"a"}})");
  EXPECT_EQ(post("/value/", R"({"id":"g","type":"gauge"})").body(),
            R"({"id":"g","type":"gauge","value":4})");
  // No unlabelled write yet: the series with no labels does not exist.
  EXPECT_EQ(post("/value/", R"({"id":"g","type":"gauge","labels":{}})").result_int(), 404);
}

TEST_F(SeriesService, MaxSeriesIs429AndStoresNothing) {
  make({.max_series = 2, .max_series_per_instance = 0});
  EXPECT_EQ(post("/updates/", R"([{"id":"a","type":"gauge","value":1}])").result_int(), 200);
  auto res = post("/updates/", R"([{"id":"a","type":"gauge","value":2},
                                   {"id":"b","type":"gauge","value":1},
                                   {"id":"c","type":"gauge","value":1}])");
  EXPECT_EQ(res.result_int(), 429);
  EXPECT_THAT(res.body(), HasSubstr("--max-series limit of 2"));
  EXPECT_EQ(res[http::field::retry_after], "");
  EXPECT_EQ(repo_.applied.size(), 1U);
  EXPECT_EQ(post("/value/", R"({"id":"a","type":"gauge"})").body(),
            R"({"id":"a","type":"gauge","value":1})");
  EXPECT_EQ(post("/update/gauge/b/1", "").result_int(), 200);
  EXPECT_EQ(post("/update/gauge/c/1", "").result_int(), 429);
  EXPECT_EQ(post("/update/gauge/a/1", "").result_int(), 200);  // existing series stay writable
}

TEST_F(SeriesService, MaxSeriesPerInstanceIs429NamingIt) {
  make({.max_series = 0, .max_series_per_instance = 1});
  EXPECT_EQ(post("/updates/",
                 R"({"labels":{"instance":"x"},"metrics":[{"id":"a","type":"gauge","value":1}]})")
                .result_int(),
            200);
  auto res = post("/updates/",
                  R"({"labels":{"instance":"x"},"metrics":[{"id":"b","type":"gauge","value":1}]})");
  EXPECT_EQ(res.result_int(), 429);
  EXPECT_THAT(res.body(), HasSubstr("--max-series-per-instance limit of 1"));
  EXPECT_EQ(post("/updates/",
                 R"({"labels":{"instance":"y"},"metrics":[{"id":"b","type":"gauge","value":1}]})")
                .result_int(),
            200);
  EXPECT_EQ(repo_.applied.size(), 2U);
}

TEST_F(SeriesService, AFailedApplyGivesTheReservationBack) {
  make({.max_series = 1, .max_series_per_instance = 0});
  repo_.fail = [] { throw core::StorageUnavailable("down"); };
  EXPECT_EQ(post("/update/gauge/a/1", "").result_int(), 503);
  repo_.fail = nullptr;
  EXPECT_EQ(service_->index().size(), 0U);
  EXPECT_EQ(post("/update/gauge/b/1", "").result_int(), 200);
  // Overflow refused by the storage: also nothing left behind.
  make({.max_series = 3, .max_series_per_instance = 0});
  EXPECT_TRUE(service_->load_index());
  EXPECT_EQ(post("/update/counter/c/9223372036854775807", "").result_int(), 200);
  EXPECT_EQ(post("/updates/",
                 R"([{"id":"n","type":"counter","delta":1},{"id":"c","type":"counter","delta":1}])")
                .result_int(),
            400);
  EXPECT_EQ(service_->index().size(), 2U);  // b and c
}

TEST_F(SeriesService, AnUnknownOutcomeKeepsTheReservation) {
  make({.max_series = 1, .max_series_per_instance = 0});
  repo_.fail = [] { throw core::OutcomeUnknown("commit lost"); };
  EXPECT_EQ(post("/update/gauge/a/1", "").result_int(), 500);
  repo_.fail = nullptr;
  // The series may exist now: it counts.
  EXPECT_EQ(service_->index().size(), 1U);
  EXPECT_EQ(post("/update/gauge/b/1", "").result_int(), 429);
  EXPECT_EQ(post("/update/gauge/a/2", "").result_int(), 200);
}

TEST_F(SeriesService, LoadIndexCountsStoredSeries) {
  auto p = core::Point::gauge("old", 1, core::Labels::make({{"instance", "h"}, {"job", "j"}}));
  p.timestamp_ms = now_ms() - 10'000;
  repo_.put(p);
  make({.max_series = 1, .max_series_per_instance = 0});
  EXPECT_TRUE(service_->load_index());
  EXPECT_EQ(service_->index().size(), 1U);
  EXPECT_EQ(post("/update/gauge/new/1", "").result_int(), 429);
  // Liveness comes back from the stored timestamps.
  auto res = post("/value/", R"({"id":"agent_last_push_timestamp_seconds","type":"gauge",
                                "labels":{"instance":"h","job":"j"}})");
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_THAT(res.body(), HasSubstr(std::to_string((now_ms() - 10'000) / 1000)));
  repo_.fail = [] { throw core::StorageUnavailable("down"); };
  LogCapture log;
  EXPECT_FALSE(service_->load_index());
  EXPECT_THAT(log.text(), HasSubstr("cannot load the stored series yet: down"));
}

TEST_F(SeriesService, LivenessIsSynthesizedPerInstanceAndJob) {
  post(
      "/updates/",
      R"({"labels":{"instance":"h:1","job":"agent"},"metrics":[{"id":"a","type":"gauge","value":1}]})");
  post("/update/", R"({"id":"a","type":"gauge","value":1,"labels":{"instance":"h:2"}})");
  const std::string up =
      R"({"id":"agent_up","type":"gauge","labels":{"instance":"h:1","job":"agent"}})";
  EXPECT_EQ(
      post("/value/", up).body(),
      R"({"id":"agent_up","type":"gauge","value":1,"labels":{"instance":"h:1","job":"agent"}})");
  EXPECT_EQ(
      post(
          "/value/",
          R"({"id":"agent_last_push_timestamp_seconds","type":"gauge","labels":{"instance":"h:1","job":"agent"}})")
          .body(),
      R"({"id":"agent_last_push_timestamp_seconds","type":"gauge","value":)" +
          std::to_string(now_ms() / 1000) + R"(,"labels":{"instance":"h:1","job":"agent"}})");
  // Instance without job: job="".
  EXPECT_EQ(post("/value/", R"({"id":"agent_up","type":"gauge","labels":{"instance":"h:2"}})")
                .result_int(),
            200);
  EXPECT_EQ(
      post("/value/", R"({"id":"agent_up","type":"gauge","labels":{"instance":"h:2","job":""}})")
          .result_int(),
      200);
  EXPECT_EQ(post("/value/", R"({"id":"agent_up","type":"gauge","labels":{"instance":"h:3"}})")
                .result_int(),
            404);
  clock_->advance(std::chrono::seconds{59});
  EXPECT_THAT(post("/value/", up).body(), HasSubstr(R"("value":1)"));
  clock_->advance(std::chrono::seconds{1});
  EXPECT_THAT(post("/value/", up).body(), HasSubstr(R"("value":0)"));
  // Not stored, not counted.
  EXPECT_EQ(service_->index().size(), 2U);
  EXPECT_EQ(repo_.series_size(), 2U);
  const auto all = service_->index().liveness(now_ms(), 60'000);
  ASSERT_EQ(all.size(), 2U);
  EXPECT_EQ(all[1].instance, "h:2");
  EXPECT_EQ(all[1].job, "");
}

TEST_F(SeriesService, ExpiredSeriesAre404AndClassicValuesStay) {
  make({}, std::chrono::hours{1});
  EXPECT_EQ(service_->expiry_interval(), std::chrono::minutes{1});
  post("/update/", R"({"id":"g","type":"gauge","value":3,"labels":{"job":"a"}})");
  clock_->advance(std::chrono::minutes{30});
  post("/update/", R"({"id":"h","type":"gauge","value":4,"labels":{"job":"a"}})");
  clock_->advance(std::chrono::minutes{31});
  // Past the TTL: 404 at once, before any sweep.
  EXPECT_EQ(post("/value/", R"({"id":"g","type":"gauge","labels":{"job":"a"}})").result_int(), 404);
  LogCapture log;
  EXPECT_EQ(service_->expire_once(), 1U);
  ASSERT_EQ(repo_.expiries.size(), 1U);
  EXPECT_EQ(repo_.expiries[0], now_ms() - 3'600'000);
  EXPECT_THAT(log.text(), HasSubstr("series expiry: 1 series"));
  EXPECT_EQ(service_->index().size(), 1U);
  EXPECT_EQ(post("/value/", R"({"id":"h","type":"gauge","labels":{"job":"a"}})").result_int(), 200);
  EXPECT_EQ(post("/value/", R"({"id":"g","type":"gauge"})").body(),
            R"({"id":"g","type":"gauge","value":3})");
  EXPECT_EQ(service_->expire_once(), 0U);
}

TEST(SeriesServiceOptions, ExpiryInterval) {
  FakeRepository repo;
  EXPECT_EQ(Service(repo, {}).expiry_interval(), std::chrono::minutes{1});
  EXPECT_EQ(Service(repo, {.series_ttl = std::chrono::seconds{10}}).expiry_interval(),
            std::chrono::seconds{1});
  EXPECT_EQ(Service(repo, {.series_ttl = std::chrono::milliseconds{0}}).expiry_interval(),
            std::chrono::milliseconds{0});
  Service forever(repo, {.series_ttl = std::chrono::milliseconds{0}});
  EXPECT_EQ(forever.expire_once(), 0U);
  EXPECT_TRUE(repo.expiries.empty());
}

// Rule evaluation reads through the service's live queryable: an instant
// selector takes each series' newest sample off its open chunk, a range
// selector every sample in range.
TEST(ServiceLiveQueryable, InstantSelectorsReadOnlyTheNewestSample) {
  FakeRepository repo;
  auto clock = std::make_shared<core::ManualClock>();
  history::HistoryOptions history_options;
  history_options.retention = std::chrono::milliseconds{0};
  auto store = std::make_shared<history::HistoryStore>(history_options);
  Service service(repo, {.clock = clock, .history = store});
  const std::int64_t now =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock->system_now().time_since_epoch())
          .count();
  const core::SeriesKey key{core::MetricType::gauge, "g", core::Labels::make({{"job", "a"}})};
  for (std::int64_t i = 0; i < 5; ++i)
    ASSERT_TRUE(store->append(1, key, now - 4'000 + i * 1'000, static_cast<double>(i)));
  const auto matchers = std::vector<query::Matcher>{
      query::Matcher::make(query::MatchType::equal, std::string(query::kMetricName), "g")};
  const auto& q = service.live_queryable();
  const auto newest = q.select_newest(matchers, now - 300'000, now);
  ASSERT_EQ(newest.size(), 1U);
  ASSERT_EQ(newest[0].samples.size(), 1U);
  EXPECT_EQ(newest[0].samples[0].t, now);
  EXPECT_EQ(newest[0].samples[0].v, 4.0);
  const auto all = q.select(matchers, now - 300'000, now);
  ASSERT_EQ(all.size(), 1U);
  EXPECT_EQ(all[0].samples.size(), 5U);
}

// ---- Signing (docs/API.md "Signing").

class SignedService : public ::testing::Test {
 protected:
  FakeRepository repo_;

  Request signed_request(std::string target, std::string body, std::string_view key) {
    auto req = make_request(http::verb::post, std::move(target), std::move(body));
    if (!key.empty()) req.set(core::kSignatureHeader, core::hmac_sha256_hex(key, req.body()));
    return req;
  }
};

TEST_F(SignedService, ReadsNeedNoSignature) {
  Service service(repo_, {.key = "secret"});
  repo_.put(core::Point::gauge("g", 1));
  auto res = run(service, signed_request("/value/", R"({"id":"g","type":"gauge"})", ""));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[core::kSignatureHeader], core::hmac_sha256_hex("secret", res.body()));
  res = run(service, signed_request("/value/", R"({"id":"x","type":"gauge"})", ""));
  EXPECT_EQ(res.result_int(), 404);
  // A wrong signature is a wrong signature, on a read too.
  res = run(service, signed_request("/value/", R"({"id":"g","type":"gauge"})", "wrong"));
  EXPECT_EQ(res.result_int(), 401);
  EXPECT_EQ(res.body(), R"({"error":"wrong HashSHA256 signature"})");
}

TEST_F(SignedService, WritesNeedOneUnlessUnsignedIsAllowed) {
  const std::string body = R"([{"id":"c","type":"counter","delta":1}])";
  Service strict(repo_, {.key = "secret"});
  EXPECT_EQ(run(strict, signed_request("/updates/", body, "")).result_int(), 401);
  EXPECT_EQ(run(strict, make_request(http::verb::post, "/update/counter/c/1")).result_int(), 401);
  EXPECT_TRUE(repo_.applied.empty());

  Service lax(repo_, {.key = "secret", .allow_unsigned = true});
  EXPECT_EQ(run(lax, signed_request("/updates/", body, "")).result_int(), 200);
  EXPECT_EQ(run(lax, make_request(http::verb::post, "/update/counter/c/1")).result_int(), 200);
  EXPECT_EQ(repo_.applied.size(), 2u);
  auto res = run(lax, signed_request("/updates/", body, "wrong"));
  EXPECT_EQ(res.result_int(), 401);
  EXPECT_EQ(repo_.applied.size(), 2u);
  EXPECT_EQ(run(lax, signed_request("/updates/", body, "secret")).result_int(), 200);
}

// ---- A table of another shape: a form body and query parameters, as the
// Prometheus API will need.

boost::asio::awaitable<Response> echo_params(RequestContext& ctx, const RouteMatch& m,
                                             std::string&) {
  std::string out;
  for (auto v : m.query.all("match[]")) {
    out += v;
    out += ';';
  }
  out += m.query.get("time").value_or("-");
  Response res{http::status::ok, ctx.request.version()};
  res.set(http::field::content_type, "text/plain");
  res.body() = out;
  co_return res;
}

constexpr RouteSpec kFormRoutes[] = {{.name = "series",
                                      .pattern = "/api/v1/series",
                                      .methods = {http::verb::get, http::verb::post},
                                      .handler = echo_params,
                                      .errors = ErrorFormat::json,
                                      .body = BodyKind::form,
                                      .query = {"match[]", "time"}}};

TEST(ServiceForm, QueryAndFormParametersReachTheHandler) {
  FakeRepository repo;
  Service service(repo, {}, kFormRoutes);
  auto res = run(service, make_request(http::verb::get, "/api/v1/series?match[]=a&match%5B%5D=b"));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), "a;b;-");
  res = run(service, make_request(http::verb::post, "/api/v1/series?match[]=q",
                                  "match[]=up%7Bx%3D%22y%22%7D&time=12+3",
                                  "application/x-www-form-urlencoded"));
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), R"(q;up{x="y"};12 3)");
  res = run(service, make_request(http::verb::post, "/api/v1/series", "match[]=a", "text/plain"));
  EXPECT_EQ(res.result_int(), 415);
  EXPECT_THAT(res.body(), ::testing::StartsWith(R"({"error":)"));
  res = run(service, make_request(http::verb::post, "/api/v1/series", "time=%",
                                  "application/x-www-form-urlencoded"));
  EXPECT_EQ(res.result_int(), 400);
  res = run(service, make_request(http::verb::delete_, "/api/v1/series"));
  EXPECT_EQ(res.result_int(), 405);
  EXPECT_EQ(res[http::field::allow], "GET, POST");
}

// ---- reject(): the answer to a request that could not be read in full.

TEST(ServiceReject, UsesTheEndpointsErrorFormat) {
  FakeRepository repo;
  Service service(repo, {});
  Request partial;
  partial.method(http::verb::post);
  partial.target("/updates/");
  auto res = service.reject(http::status::payload_too_large, "too big", partial);
  EXPECT_EQ(res[http::field::content_type], kJson);
  EXPECT_EQ(res.body(), R"({"error":"too big"})");
  partial.target("/update/gauge/a/1");
  res = service.reject(http::status::payload_too_large, "too big", partial);
  EXPECT_EQ(res.body(), "too big\n");
}

}  // namespace
}  // namespace metrics::server
