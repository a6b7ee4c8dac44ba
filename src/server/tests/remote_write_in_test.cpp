// POST /api/v1/write through Service::handle with the real memory storage,
// a history store and its sink: what is stored, where the samples go, and
// that every bad request is a 400 (or 415/413/429) that stores nothing.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <bit>
#include <cmath>
#include <memory>

#include "metrics/core/signature.hpp"
#include "metrics/exposition/remote_write.hpp"
#include "metrics/exposition/snappy_block.hpp"
#include "metrics/server/service.hpp"
#include "metrics/storage/memory_repository.hpp"
#include "test_repository.hpp"

namespace metrics::server {
namespace {
namespace http = boost::beast::http;
namespace ex = exposition;
using ::testing::HasSubstr;

core::Labels labels(std::vector<core::Label> l) {
  return core::Labels::make(std::move(l));
}

struct Entry {
  std::string name;
  core::Labels labels;
  std::vector<ex::Sample> samples;
};

std::string wire(const std::vector<Entry>& entries) {
  std::string body;
  for (const auto& e : entries)
    ex::append_series(body, e.name, e.labels, e.samples);
  return ex::snappy_compress(body);
}

class RemoteWriteIn : public ::testing::Test {
 protected:
  RemoteWriteIn() { make_service({}); }
  // The service, then the history sink's thread, before the store they write.
  ~RemoteWriteIn() override {
    service_.reset();
    if (sink_) sink_->stop();
  }

  void make_service(ServiceOptions o) {
    service_.reset();
    sink_.reset();
    fanout_ = std::make_shared<IngestFanout>();
    history_ = std::make_shared<history::HistoryStore>();
    sink_ = make_history_sink(*history_, {.name = "history", .linger = {}});
    fanout_->add(sink_);
    o.fanout = fanout_;
    o.history = history_;
    service_ = std::make_unique<Service>(repo_, std::move(o));
  }

  Response post(std::string body, std::string_view encoding = "snappy",
                std::string_view type = "application/x-protobuf", std::string_view sig = {}) {
    auto req = testing::make_request(http::verb::post, "/api/v1/write", std::move(body));
    if (!encoding.empty()) req.set(http::field::content_encoding, encoding);
    if (!type.empty()) req.set(http::field::content_type, type);
    req.set("X-Prometheus-Remote-Write-Version", "0.1.0");
    if (!sig.empty()) req.set(core::kSignatureHeader, sig);
    auto res = testing::run(*service_, std::move(req));
    sink_->wait_idle();
    return res;
  }

  std::vector<history::Sample> history_of(const std::string& name, const core::Labels& l) {
    const core::SeriesKey key{core::MetricType::gauge, name, l};
    auto got = service_->read_history(std::span(&key, 1), INT64_MIN, INT64_MAX);
    if (got.empty()) return {};
    return got[0].samples;
  }

  std::size_t stored() { return storage::list_series_sync(repo_).size(); }

  storage::MemoryRepository repo_;
  std::shared_ptr<IngestFanout> fanout_;
  std::shared_ptr<history::HistoryStore> history_;
  std::shared_ptr<QueuedSink> sink_;
  std::unique_ptr<Service> service_;
};

const core::Labels kUp = labels({{"instance", "h:9090"}, {"job", "prom"}});

TEST_F(RemoteWriteIn, SamplesBecomeSeriesWithTheirOwnTimestamps) {
  auto res = post(wire({{"up", kUp, {{1, 1000}, {0, 2000}}},
                        {"http_requests_total", kUp, {{12.5, 1500}}},
                        {"up", kUp, {{1, 3000}}}}));
  ASSERT_EQ(res.result_int(), 204) << res.body();
  EXPECT_TRUE(res.body().empty());
  // The newest sample is the current value; series only: no classic value.
  auto up = storage::get_sync(repo_, {core::MetricType::gauge, "up", kUp});
  ASSERT_TRUE(up);
  EXPECT_EQ(up->value, 1);
  auto total = storage::get_sync(repo_, {core::MetricType::gauge, "http_requests_total", kUp});
  ASSERT_TRUE(total);
  EXPECT_EQ(total->value, 12.5);
  EXPECT_FALSE(storage::get_classic_sync(repo_, {core::MetricType::gauge, "up"}));
  EXPECT_TRUE(storage::list_sync(repo_).empty());
  // Every sample reaches the history at its own time.
  auto h = history_of("up", kUp);
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].t_ms, 1000);
  EXPECT_EQ(h[1].t_ms, 2000);
  EXPECT_EQ(h[2].t_ms, 3000);
  EXPECT_EQ(h[1].gauge(), 0);
  // Not an agent push: no liveness for its instance and job.
  EXPECT_TRUE(service_->index().liveness(0, 60'000).empty());
  // Readable through POST /value/ with labels.
  auto value = testing::run(
      *service_, testing::make_request(http::verb::post, "/value/",
                                       R"({"id":"up","type":"gauge","labels":{"instance":)"
                                       R"("h:9090","job":"prom"}})"));
  EXPECT_EQ(value.result_int(), 200);
  EXPECT_THAT(value.body(), HasSubstr(R"("value":1)"));
}

// API.md: a remote-written name ending in _total, or one its metadata calls
// a counter, is typed counter for # TYPE (/metrics) and /api/v1/metadata;
// metadata of another type wins over the suffix; the values stay doubles;
// names only agents pushed keep their own type.
TEST_F(RemoteWriteIn, CounterNamesAreTypedCounterInMetricsAndMetadata) {
  std::string body;
  ex::append_series(body, "http_requests_total", kUp, std::vector<ex::Sample>{{12.5, 1500}});
  ex::append_series(body, "temp_total", kUp, std::vector<ex::Sample>{{3.25, 1500}});
  ex::append_series(body, "jobs_done", kUp, std::vector<ex::Sample>{{7, 1500}});
  ex::append_series(body, "up", kUp, std::vector<ex::Sample>{{1, 1500}});
  ex::append_metadata(body, {.type = static_cast<std::uint32_t>(ex::MetadataType::gauge),
                             .family_name = "temp_total",
                             .help = "",
                             .unit = ""});
  ex::append_metadata(body, {.type = static_cast<std::uint32_t>(ex::MetadataType::counter),
                             .family_name = "jobs_done",
                             .help = "",
                             .unit = ""});
  ASSERT_EQ(post(ex::snappy_compress(body)).result_int(), 204);
  ASSERT_EQ(testing::run(*service_, testing::make_request(http::verb::post,
                                                          "/update/gauge/pushed_total/2", ""))
                .result_int(),
            200);
  const auto page = testing::run(*service_, testing::make_request(http::verb::get, "/metrics", ""));
  ASSERT_EQ(page.result_int(), 200);
  const std::string& text = page.body();
  EXPECT_THAT(text, HasSubstr("# TYPE http_requests_total counter\n"));
  EXPECT_THAT(text, HasSubstr("http_requests_total{instance=\"h:9090\",job=\"prom\"} 12.5\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE jobs_done counter\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE temp_total gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE up gauge\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE pushed_total gauge\n"));
  const auto meta =
      testing::run(*service_, testing::make_request(http::verb::get, "/api/v1/metadata", ""));
  ASSERT_EQ(meta.result_int(), 200) << meta.body();
  EXPECT_THAT(meta.body(), HasSubstr(R"("http_requests_total":[{"type":"counter")"));
  EXPECT_THAT(meta.body(), HasSubstr(R"("jobs_done":[{"type":"counter")"));
  EXPECT_THAT(meta.body(), HasSubstr(R"("temp_total":[{"type":"gauge")"));
  EXPECT_THAT(meta.body(), HasSubstr(R"("up":[{"type":"gauge")"));
}

TEST_F(RemoteWriteIn, AnyDoubleIsKeptAndTheStaleMarkerEndsTheSeries) {
  const double stale = ex::stale_marker();
  auto res = post(wire({{"g", {}, {{1e300, 1}, {-INFINITY, 2}, {stale, 3}}}}));
  ASSERT_EQ(res.result_int(), 204) << res.body();
  auto h = history_of("g", {});
  ASSERT_EQ(h.size(), 3u);
  EXPECT_EQ(h[0].gauge(), 1e300);
  EXPECT_EQ(h[1].gauge(), -INFINITY);
  EXPECT_EQ(h[2].bits, ex::kStaleNaNBits);
}

TEST_F(RemoteWriteIn, SamplesNotNewerThanTheStoredOnesAreA400ThatStoresNothing) {
  ASSERT_EQ(post(wire({{"up", kUp, {{1, 2000}}}})).result_int(), 204);
  // One good series and one out of order: nothing of the request is stored.
  auto res = post(wire({{"other", kUp, {{5, 5000}}}, {"up", kUp, {{1, 1000}}}}));
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_THAT(res.body(), HasSubstr("out of order sample"));
  res = post(wire({{"other", kUp, {{5, 5000}}}, {"up", kUp, {{1, 2000}}}}));
  EXPECT_EQ(res.result_int(), 400);
  EXPECT_THAT(res.body(), HasSubstr("duplicate sample for timestamp 2000"));
  EXPECT_EQ(stored(), 1u);
  EXPECT_EQ(history_of("up", kUp).size(), 1u);
  EXPECT_TRUE(history_of("other", kUp).empty());
  // Newer ones are fine.
  EXPECT_EQ(post(wire({{"up", kUp, {{1, 2001}}}})).result_int(), 204);
}

TEST_F(RemoteWriteIn, BadRequestsAre4xxAndStoreNothing) {
  struct Case {
    std::string what;
    std::string body;
    int status;
    std::string message;
  };
  std::string junk_protobuf = ex::snappy_compress(std::string("\x0a\x05\x0a", 3));
  const std::vector<Case> cases{
      {"broken snappy", "not snappy at all", 400, "snappy"},
      {"wrong protobuf", junk_protobuf, 400, "remote write:"},
      {"no __name__",
       [] {
         std::string b;
         const std::array<core::LabelView, 1> l{core::LabelView{"job", "a"}};
         ex::append_series(b, l, std::array{ex::Sample{1, 1}});
         return ex::snappy_compress(b);
       }(),
       400, "no __name__"},
      {"reserved label",
       [] {
         std::string b;
         const std::array<core::LabelView, 2> l{core::LabelView{"__meta_x", "1"},
                                                core::LabelView{"__name__", "up"}};
         ex::append_series(b, l, std::array{ex::Sample{1, 1}});
         return ex::snappy_compress(b);
       }(),
       400, "reserved"},
      {"out of order in the request", wire({{"up", kUp, {{1, 20}, {1, 10}}}}), 400, "out of order"},
      {"duplicate timestamp in the request", wire({{"up", kUp, {{1, 20}, {2, 20}}}}), 400,
       "repeats"},
  };
  for (const auto& c : cases) {
    auto res = post(c.body);
    EXPECT_EQ(res.result_int(), c.status) << c.what << ": " << res.body();
    EXPECT_THAT(res.body(), HasSubstr(c.message)) << c.what;
  }
  EXPECT_EQ(post(wire({{"up", kUp, {{1, 1}}}}), "gzip").result_int(), 415);
  EXPECT_EQ(post(wire({{"up", kUp, {{1, 1}}}}), "snappy", "application/json").result_int(), 415);
  EXPECT_EQ(stored(), 0u);
  EXPECT_TRUE(history_->series().empty());
}

TEST_F(RemoteWriteIn, LimitsAndSigningApply) {
  make_service({.key = "k", .limits = {.max_series = 2, .max_series_per_instance = 0}});
  const std::string three =
      wire({{"a", kUp, {{1, 1}}}, {"b", kUp, {{1, 1}}}, {"c", kUp, {{1, 1}}}});
  EXPECT_EQ(post(three).result_int(), 401);  // unsigned
  EXPECT_EQ(post(three, "snappy", "application/x-protobuf", "00").result_int(), 401);
  auto res = post(three, "snappy", "application/x-protobuf", core::hmac_sha256_hex("k", three));
  EXPECT_EQ(res.result_int(), 429);
  EXPECT_THAT(res.body(), HasSubstr("max-series"));
  EXPECT_EQ(stored(), 0u);
  const std::string two = wire({{"a", kUp, {{1, 1}}}, {"b", kUp, {{1, 1}}}});
  EXPECT_EQ(
      post(two, "snappy", "application/x-protobuf", core::hmac_sha256_hex("k", two)).result_int(),
      204);
  EXPECT_EQ(stored(), 2u);
}

TEST_F(RemoteWriteIn, TooLargeAfterInflatingIsA413) {
  make_service({.max_body_bytes = 1000});
  std::vector<ex::Sample> many;
  for (int i = 0; i < 500; ++i)
    many.push_back({1, i + 1});
  auto res = post(wire({{"up", kUp, many}}));
  EXPECT_EQ(res.result_int(), 413) << res.body();
  EXPECT_EQ(stored(), 0u);
}

}  // namespace
}  // namespace metrics::server
