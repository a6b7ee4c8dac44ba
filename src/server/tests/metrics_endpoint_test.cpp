// GET /metrics through Service::handle with a fake Repository, and the
// pure rendering beneath it.
#include "metrics_endpoint.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "http_metrics.hpp"
#include "metrics/core/gzip.hpp"
#include "metrics/server/service.hpp"
#include "test_repository.hpp"

namespace metrics::server {
namespace {
namespace http = boost::beast::http;
using testing::FakeRepository;
using ::testing::HasSubstr;
using testing::make_request;
using ::testing::Not;
using testing::run;

class MetricsEndpoint : public ::testing::Test {
 protected:
  std::shared_ptr<core::ManualClock> clock_ = std::make_shared<core::ManualClock>();
  FakeRepository repo_;
  Service service_{repo_, ServiceOptions{.clock = clock_, .series_ttl = std::chrono::hours{1}}};

  Response post(std::string target, std::string body) {
    return run(service_, make_request(http::verb::post, std::move(target), std::move(body)));
  }
  Response scrape(std::string accept_encoding = {}) {
    auto req = make_request(http::verb::get, "/metrics");
    if (!accept_encoding.empty()) req.set(http::field::accept_encoding, accept_encoding);
    return run(service_, std::move(req));
  }
};

TEST_F(MetricsEndpoint, ExposesEverySeriesWithItsLabelsTypeAndTheLivenessSeries) {
  ASSERT_EQ(post("/updates/", R"({"labels":{"instance":"h:1","job":"agent"},"metrics":[
      {"id":"Alloc","type":"gauge","value":1.5},
      {"id":"requests_total","type":"counter","delta":7,"labels":{"path":"a\"b\\c\nd"}},
      {"id":"my.metric-name","type":"gauge","value":-2},
      {"id":"1st","type":"gauge","value":1e-7}]})")
                .result_int(),
            200);
  ASSERT_EQ(post("/update/counter/requests_total/5", "").result_int(), 200);
  const auto res = scrape();
  ASSERT_EQ(res.result_int(), 200);
  EXPECT_EQ(res[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  const std::string& b = res.body();
  EXPECT_THAT(b, HasSubstr("# HELP Alloc A gauge pushed to this server.\n"
                           "# TYPE Alloc gauge\nAlloc{instance=\"h:1\",job=\"agent\"} 1.5\n"));
  // Counters: the stored total, no _total added; the unlabelled series is
  // its own sample (the classic aggregate never shows).
  EXPECT_THAT(b,
              HasSubstr("# TYPE requests_total counter\n"
                        "requests_total 5\n"
                        "requests_total{instance=\"h:1\",job=\"agent\",path=\"a\\\"b\\\\c\\nd\"} "
                        "7\n"));
  EXPECT_THAT(b, HasSubstr("# TYPE _1st gauge\n_1st{instance=\"h:1\",job=\"agent\"} 1e-07\n"));
  EXPECT_THAT(b, HasSubstr("# TYPE my_metric_name gauge\n"
                           "my_metric_name{instance=\"h:1\",job=\"agent\"} -2\n"));
  EXPECT_THAT(b, HasSubstr("# TYPE agent_up gauge\nagent_up{instance=\"h:1\",job=\"agent\"} 1\n"));
  EXPECT_THAT(b, HasSubstr("agent_last_push_timestamp_seconds{instance=\"h:1\",job=\"agent\"} "));
  EXPECT_THAT(b, HasSubstr("\nmetrics_server_series 5\n"));
  EXPECT_THAT(b, HasSubstr("# TYPE process_open_fds gauge\n"));
  EXPECT_THAT(b, HasSubstr("\nmetrics_server_storage_queue_depth 0\n"));
  // Requests by route pattern and code; the scrape itself counts from the next one.
  EXPECT_THAT(b,
              HasSubstr("metrics_server_requests_total{endpoint=\"/updates/\",code=\"200\"} 1\n"));
  EXPECT_THAT(b, HasSubstr("metrics_server_requests_total{endpoint=\"/update/{type}/{name}/"
                           "{value}\",code=\"200\"} 1\n"));
  EXPECT_THAT(b, HasSubstr("metrics_server_request_duration_seconds_count{endpoint=\"/updates/\"} "
                           "1\n"));
  EXPECT_THAT(b, Not(HasSubstr("endpoint=\"/metrics\"")));
  EXPECT_THAT(scrape().body(),
              HasSubstr("metrics_server_requests_total{endpoint=\"/metrics\",code=\"200\"} 1\n"));
}

TEST_F(MetricsEndpoint, UnmatchedPathsCountAsOtherNeverByRawPath) {
  EXPECT_EQ(run(service_, make_request(http::verb::get, "/no/such/path")).result_int(), 404);
  EXPECT_EQ(run(service_, make_request(http::verb::get, "/value/gauge/nope")).result_int(), 404);
  const std::string b = scrape().body();
  EXPECT_THAT(b, HasSubstr("metrics_server_requests_total{endpoint=\"other\",code=\"404\"} 1\n"));
  EXPECT_THAT(b, HasSubstr("metrics_server_requests_total{endpoint=\"/value/{type}/{name}\","
                           "code=\"404\"} 1\n"));
  EXPECT_THAT(b, Not(HasSubstr("/no/such/path")));
}

TEST_F(MetricsEndpoint, RequestsThatCouldNotBeReadCountAsOther) {
  const auto req = make_request(http::verb::post, "/updates/");
  EXPECT_EQ(service_.reject(http::status::payload_too_large, "too big", req).result_int(), 413);
  EXPECT_THAT(scrape().body(),
              HasSubstr("metrics_server_requests_total{endpoint=\"other\",code=\"413\"} 1\n"));
}

TEST_F(MetricsEndpoint, GzipWhenTheClientAcceptsIt) {
  post("/update/gauge/g/1", "");
  const auto plain = scrape();
  const auto zipped = scrape("gzip");
  EXPECT_EQ(zipped[http::field::content_encoding], "gzip");
  EXPECT_EQ(zipped[http::field::content_type], "text/plain; version=0.0.4; charset=utf-8");
  const std::string inflated = core::gzip_decompress(zipped.body(), 64u << 20);
  EXPECT_THAT(inflated, HasSubstr("# TYPE g gauge\ng 1\n"));
  EXPECT_EQ(plain[http::field::content_encoding], "");
}

TEST_F(MetricsEndpoint, SeriesPastTheirTtlAreNotExposed) {
  post("/update/", R"({"id":"old","type":"gauge","value":1,"labels":{"job":"a"}})");
  clock_->advance(std::chrono::minutes{30});
  post("/update/", R"({"id":"new","type":"gauge","value":2,"labels":{"job":"a"}})");
  clock_->advance(std::chrono::minutes{31});
  const std::string b = scrape().body();
  EXPECT_THAT(b, HasSubstr("new{job=\"a\"} 2\n"));
  EXPECT_THAT(b, Not(HasSubstr("old{")));
}

TEST_F(MetricsEndpoint, ComponentsRegisterIntoTheServicesRegistry) {
  auto& sent = service_.telemetry().counter("metrics_server_remote_write_samples_sent_total",
                                            "Samples sent.", {"url"});
  sent.with({"http://127.0.0.1:1/api/v1/write"}).inc(42);
  double queued = 3;
  auto hook = service_.telemetry().add_collector([&queued](telemetry::Writer& w) {
    w.family("metrics_server_remote_write_queue_length", telemetry::Type::gauge, "Queued.");
    w.sample({}, queued);
  });
  const std::string b = scrape().body();
  EXPECT_THAT(b, HasSubstr("metrics_server_remote_write_samples_sent_total{url=\"http://"
                           "127.0.0.1:1/api/v1/write\"} 42\n"));
  EXPECT_THAT(b, HasSubstr("metrics_server_remote_write_queue_length 3\n"));
}

TEST_F(MetricsEndpoint, QueryDurationsByEndpointAndPhase) {
  ASSERT_EQ(post("/update/gauge/g/1", "").result_int(), 200);
  ASSERT_EQ(run(service_, make_request(http::verb::get, "/api/v1/query?query=g")).result_int(),
            200);
  ASSERT_EQ(run(service_, make_request(http::verb::get, "/api/v1/query?query=sum(g)")).result_int(),
            200);
  ASSERT_EQ(run(service_,
                make_request(http::verb::get, "/api/v1/query_range?query=g&start=0&end=60&step=15"))
                .result_int(),
            200);
  // A query that does not parse waits and is prepared, never evaluated.
  ASSERT_EQ(run(service_, make_request(http::verb::get, "/api/v1/query?query=sum(")).result_int(),
            400);
  const std::string b = scrape().body();
  EXPECT_THAT(b, HasSubstr("# TYPE metrics_server_query_duration_seconds histogram\n"));
  EXPECT_THAT(b, HasSubstr("metrics_server_query_duration_seconds_count{endpoint=\"/api/v1/"
                           "query\",slice=\"queue_time\"} 3\n"));
  EXPECT_THAT(b, HasSubstr("metrics_server_query_duration_seconds_count{endpoint=\"/api/v1/"
                           "query\",slice=\"inner_eval\"} 2\n"));
  EXPECT_THAT(b, HasSubstr("metrics_server_query_duration_seconds_count{endpoint=\"/api/v1/"
                           "query\",slice=\"result_encode\"} 2\n"));
  EXPECT_THAT(b, HasSubstr("metrics_server_query_duration_seconds_count{endpoint=\"/api/v1/"
                           "query_range\",slice=\"inner_eval\"} 1\n"));
  EXPECT_THAT(b, HasSubstr("metrics_server_query_duration_seconds_bucket{endpoint=\"/api/v1/"
                           "query_range\",slice=\"prepare_time\",le=\"+Inf\"} 1\n"));
}

core::Point labelled_gauge(std::string id, double v, core::Labels labels) {
  core::Point p = core::Point::gauge(std::move(id), v);
  p.labels = std::move(labels);
  return p;
}

TEST(RenderExposition, OwnMetricsAndLivenessWinOverStoredSeriesOfTheirName) {
  telemetry::Registry reg;
  reg.gauge("metrics_server_series", "Live.").with({}).set(3);
  const std::array<double, 1> bounds{1};
  reg.histogram("metrics_server_lat_seconds", "", {}, bounds).with({}).observe(0.5);
  const auto own = reg.render();
  const auto ij = core::Labels::make({{"instance", "h:1"}, {"job", "j"}});
  std::vector<core::Point> stored{
      labelled_gauge("metrics_server_series", 99, {}),
      labelled_gauge("metrics_server_lat_seconds_count", 99, {}),
      labelled_gauge("metrics.server.series", 98,
                     core::Labels::make({{"k", "v"}})),                            // maps onto it
      labelled_gauge("agent_up", 0, ij),                                           // liveness wins
      labelled_gauge("agent_up", 5, core::Labels::make({{"instance", "other"}})),  // kept
      labelled_gauge("kept", 1, {})};
  std::vector<core::Point> liveness{labelled_gauge("agent_up", 1, ij)};
  detail::ExpositionStats stats;
  const std::string b = detail::render_exposition(stored, liveness, own, &stats);
  EXPECT_EQ(stats.shadowed, 4u);
  EXPECT_EQ(stats.text.dropped, 0u);
  EXPECT_THAT(b, HasSubstr("agent_up{instance=\"h:1\",job=\"j\"} 1\n"));
  EXPECT_THAT(b, HasSubstr("agent_up{instance=\"other\"} 5\n"));
  EXPECT_THAT(b, HasSubstr("\nkept 1\n"));
  EXPECT_THAT(b, HasSubstr("\nmetrics_server_series 3\n"));
  EXPECT_THAT(b, Not(HasSubstr(" 99\n")));
  EXPECT_THAT(b, Not(HasSubstr(" 98\n")));
  // One TYPE line per name.
  std::size_t types = 0;
  for (std::size_t at = 0; (at = b.find("# TYPE agent_up ", at)) != std::string::npos; ++at)
    ++types;
  EXPECT_EQ(types, 1u);
}

TEST(EndpointLabel, DropsTheParametersDescriptions) {
  EXPECT_EQ(detail::endpoint_label("/update/{type}/{name:metric name}/{value:metric value}"),
            "/update/{type}/{name}/{value}");
  EXPECT_EQ(detail::endpoint_label("/api/v1/label/{name}/values"), "/api/v1/label/{name}/values");
  EXPECT_EQ(detail::endpoint_label("/"), "/");
}

}  // namespace
}  // namespace metrics::server
