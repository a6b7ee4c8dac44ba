// The ingest fan-out (ingest.hpp): a QueuedSink is bounded and counts what
// it drops; the history sink appends series points (counter totals, gauge
// values) under the index's ids; Service publishes the series points of a
// successful write only (never the classic values, nothing on failure); the
// range-read seam finds them by series key.
#include "metrics/server/ingest.hpp"

#include <gtest/gtest.h>

#include <cmath>
#include <future>
#include <limits>

#include "metrics/core/errors.hpp"
#include "metrics/server/service.hpp"
#include "test_repository.hpp"

namespace metrics::server {
namespace {
namespace http = boost::beast::http;
using testing::FakeRepository;
using testing::make_request;
using testing::run;

core::Point gauge_point(std::string id, double v) {
  return core::Point::gauge(std::move(id), v);
}

history::HistoryOptions no_retention() {
  history::HistoryOptions o;
  o.retention = std::chrono::milliseconds{0};  // the tests' clocks are not today
  return o;
}

// A sink that records every batch it is given.
class RecordingSink : public IngestSink {
 public:
  void accept(const IngestBatch& b) noexcept override {
    OwnedBatch o{b.received_ms,
                 {b.points.begin(), b.points.end()},
                 {b.refs.begin(), b.refs.end()},
                 {b.times.begin(), b.times.end()},
                 {}};
    batches.push_back(std::move(o));
  }
  std::vector<OwnedBatch> batches;
};

TEST(QueuedSink, DrainsEveryBatchInOrder) {
  std::vector<std::int64_t> seen;
  QueuedSink sink({.name = "t", .max_batches = 16},
                  [&](OwnedBatch& b) { seen.push_back(b.received_ms); });
  const std::vector<core::Point> points{gauge_point("a", 1)};
  const std::vector<std::uint64_t> refs{7};
  for (std::int64_t t = 1; t <= 10; ++t)
    sink.accept({.received_ms = t, .points = points, .refs = refs});
  sink.wait_idle();
  EXPECT_EQ(seen, (std::vector<std::int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
  const auto s = sink.stats();
  EXPECT_EQ(s.accepted_batches, 10U);
  EXPECT_EQ(s.drained_batches, 10U);
  EXPECT_EQ(s.dropped_batches, 0U);
}

TEST(QueuedSink, AFullQueueDropsCountsAndLogsWithoutBlocking) {
  testing::LogCapture log;
  std::promise<void> entered;
  std::promise<void> release;
  auto gate = release.get_future().share();
  bool first = true;
  QueuedSink sink({.name = "history", .max_batches = 3}, [&](OwnedBatch&) {
    if (std::exchange(first, false)) {
      entered.set_value();
      gate.wait();
    }
  });
  const std::vector<core::Point> points{gauge_point("a", 1), gauge_point("b", 2)};
  const std::vector<std::uint64_t> refs{1, 2};
  sink.accept({.received_ms = 1, .points = points, .refs = refs});
  entered.get_future().wait();  // the drain thread holds batch 1
  for (int i = 0; i < 3; ++i)   // fill the queue
    sink.accept({.received_ms = 2, .points = points, .refs = refs});
  for (int i = 0; i < 5; ++i)  // these do not fit: dropped, and accept() returns
    sink.accept({.received_ms = 3, .points = points, .refs = refs});
  auto s = sink.stats();
  EXPECT_EQ(s.accepted_batches, 4U);
  EXPECT_EQ(s.queued, 3U);
  EXPECT_EQ(s.dropped_batches, 5U);
  EXPECT_EQ(s.dropped_points, 10U);
  // Logged once (rate-limited), naming the sink.
  const std::string text = log.text();
  const auto first_line = text.find("history: queue full");
  EXPECT_NE(first_line, std::string::npos) << text;
  EXPECT_EQ(text.find("history: queue full", first_line + 1), std::string::npos) << text;
  release.set_value();
  sink.wait_idle();
  s = sink.stats();
  EXPECT_EQ(s.drained_batches, 4U);
  EXPECT_EQ(s.queued, 0U);
  // After stop(): dropped and counted too.
  sink.stop();
  sink.accept({.received_ms = 4, .points = points, .refs = refs});
  EXPECT_EQ(sink.stats().dropped_batches, 6U);
}

TEST(HistorySink, AppendsCounterTotalsExactlyAndGaugeValues) {
  history::HistoryStore store(no_retention());
  auto sink = make_history_sink(store);
  const std::int64_t big = std::numeric_limits<std::int64_t>::max() - 1;
  std::vector<core::Point> points{
      core::Point::counter("c", big, core::Labels::make({{"job", "a"}})), gauge_point("g", -0.0)};
  const std::vector<std::uint64_t> refs{11, 12};
  sink->accept({.received_ms = 1000, .points = points, .refs = refs});
  points[1].value = 2.5;
  sink->accept({.received_ms = 2000, .points = points, .refs = refs});
  sink->wait_idle();
  const std::vector<history::SeriesRef> want{11, 12};
  const auto got = store.read_range(want, 0, 10'000);
  ASSERT_EQ(got.size(), 2U);
  EXPECT_EQ(got[0].identity->labels.to_string(), R"({job="a"})");
  ASSERT_EQ(got[0].samples.size(), 2U);
  EXPECT_EQ(got[0].samples[0].t_ms, 1000);
  EXPECT_EQ(got[0].samples[0].counter(), big);
  ASSERT_EQ(got[1].samples.size(), 2U);
  EXPECT_TRUE(std::signbit(got[1].samples[0].gauge()));
  EXPECT_EQ(got[1].samples[1].gauge(), 2.5);
}

TEST(QueuedSink, PointsOnceCopiesEachRefsPointOnceUntilForgotten) {
  std::vector<std::pair<std::size_t, std::size_t>> seen;  // points, samples per batch
  std::vector<QueuedSample> samples;
  QueuedSink sink({.name = "t", .linger = {}, .points_once = true}, [&](OwnedBatch& b) {
    seen.emplace_back(b.points.size(), b.samples.size());
    samples.insert(samples.end(), b.samples.begin(), b.samples.end());
  });
  const std::vector<core::Point> points{core::Point::counter("c", -7), gauge_point("g", 0.5)};
  const std::vector<std::uint64_t> refs{1, 2};
  sink.accept({.received_ms = 10, .points = points, .refs = refs});
  sink.accept({.received_ms = 20, .points = points, .refs = refs});
  sink.wait_idle();
  sink.forget(2);
  sink.accept({.received_ms = 30, .points = points, .refs = refs});
  sink.wait_idle();
  using Seen = std::vector<std::pair<std::size_t, std::size_t>>;
  EXPECT_EQ(seen, (Seen{{2, 2}, {0, 2}, {1, 2}}));
  ASSERT_EQ(samples.size(), 6U);
  EXPECT_EQ(samples[0].point, 0U);
  EXPECT_EQ(samples[1].point, 1U);
  EXPECT_EQ(samples[2].point, QueuedSample::kNoPoint);
  EXPECT_EQ(samples[5].point, 0U);  // ref 2's point again, the batch's first
  EXPECT_EQ(samples[2].t_ms, 20);
  EXPECT_EQ(history::counter_value(samples[2].bits), -7);
  EXPECT_EQ(history::gauge_value(samples[3].bits), 0.5);
  EXPECT_EQ(samples[3].type, core::MetricType::gauge);
}

TEST(HistorySink, ASeriesTheStoreDroppedIsStoredAgainWithoutLosingASample) {
  auto clock = std::make_shared<core::ManualClock>();
  const auto now =
      std::chrono::duration_cast<std::chrono::milliseconds>(clock->system_now().time_since_epoch())
          .count();
  history::HistoryOptions o;
  o.retention = std::chrono::hours{1};
  o.clock = clock;
  history::HistoryStore store(o);
  auto sink = make_history_sink(store, {.name = "history", .linger = {}});
  const std::vector<core::Point> points{
      core::Point::counter("c", 1, core::Labels::make({{"job", "a"}}))};
  const std::vector<std::uint64_t> refs{5};
  sink->accept({.received_ms = now - 2 * 3'600'000, .points = points, .refs = refs});
  sink->wait_idle();
  ASSERT_EQ(store.series().size(), 1U);
  (void)store.maintain();  // older than the retention: the series goes
  ASSERT_TRUE(store.series().empty());
  // The sink sent ref 5's identity already: this batch comes without it and
  // the store does not know the ref; the sample waits, nothing is dropped.
  auto later = points;
  later[0].total = 2;
  sink->accept({.received_ms = now, .points = later, .refs = refs});
  sink->wait_idle();
  EXPECT_TRUE(store.series().empty());
  later[0].total = 3;
  sink->accept({.received_ms = now + 10'000, .points = later, .refs = refs});
  sink->wait_idle();
  const std::vector<history::SeriesRef> want{5};
  const auto got = store.read_range(want, now - 3'600'000, now + 60'000);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].identity->labels.to_string(), R"({job="a"})");
  ASSERT_EQ(got[0].samples.size(), 2U);
  EXPECT_EQ(got[0].samples[0].t_ms, now);
  EXPECT_EQ(got[0].samples[0].counter(), 2);
  EXPECT_EQ(got[0].samples[1].t_ms, now + 10'000);
  EXPECT_EQ(got[0].samples[1].counter(), 3);
  EXPECT_EQ(sink->stats().dropped_points, 0U);
}

class FanoutService : public ::testing::Test {
 protected:
  std::shared_ptr<core::ManualClock> clock_ = std::make_shared<core::ManualClock>();
  std::shared_ptr<RecordingSink> sink_ = std::make_shared<RecordingSink>();
  std::shared_ptr<history::HistoryStore> store_ =
      std::make_shared<history::HistoryStore>(no_retention());
  FakeRepository repo_;
  std::unique_ptr<Service> service_;

  void SetUp() override {
    auto fanout = std::make_shared<IngestFanout>();
    fanout->add(sink_);
    service_ = std::make_unique<Service>(
        repo_, ServiceOptions{.clock = clock_, .fanout = fanout, .history = store_});
  }
  Response post(std::string target, std::string body) {
    return run(*service_, make_request(http::verb::post, std::move(target), std::move(body)));
  }
  [[nodiscard]] std::int64_t now_ms() const {
    return std::chrono::duration_cast<std::chrono::milliseconds>(
               clock_->system_now().time_since_epoch())
        .count();
  }
};

TEST_F(FanoutService, PublishesSeriesPointsWithIdsNeverClassicValues) {
  ASSERT_EQ(post("/updates/", R"({"labels":{"instance":"h:1"},"metrics":[
      {"id":"c","type":"counter","delta":3},{"id":"g","type":"gauge","value":1.5}]})")
                .result_int(),
            200);
  // A second instance's write of c: the classic total is 3 + 4, the series' 4.
  ASSERT_EQ(post("/update/", R"({"id":"c","type":"counter","delta":4,"labels":{"instance":"h:2"}})")
                .result_int(),
            200);
  ASSERT_EQ(sink_->batches.size(), 2U);
  const auto& b0 = sink_->batches[0];
  EXPECT_EQ(b0.received_ms, now_ms());
  ASSERT_EQ(b0.points.size(), 2U);
  ASSERT_EQ(b0.refs.size(), 2U);
  const auto c1 = service_->index().find(core::SeriesView(b0.points[0]));
  ASSERT_TRUE(c1.has_value());
  EXPECT_EQ(b0.refs[0], c1->id);
  const auto& p = sink_->batches[1].points;
  ASSERT_EQ(p.size(), 1U);
  EXPECT_EQ(p[0].total, 4);  // the series' total, not the classic 7
  EXPECT_EQ(p[0].labels.to_string(), R"({instance="h:2"})");
}

TEST_F(FanoutService, AFailedWriteIsNotPublished) {
  repo_.fail = [] { throw core::StorageUnavailable("down"); };
  EXPECT_EQ(post("/update/gauge/a/1", "").result_int(), 503);
  repo_.fail = [] { throw core::OutcomeUnknown("lost"); };
  EXPECT_EQ(post("/update/gauge/a/1", "").result_int(), 500);
  EXPECT_TRUE(sink_->batches.empty());
}

TEST_F(FanoutService, ReadHistoryFindsLiveSeriesByKey) {
  auto store_sink = make_history_sink(*store_);
  // Feed the store through the real history sink, as the server does.
  ASSERT_EQ(
      post("/update/", R"({"id":"g","type":"gauge","value":1,"labels":{"a":"1"}})").result_int(),
      200);
  const auto t1 = now_ms();
  clock_->advance(std::chrono::seconds{10});
  ASSERT_EQ(
      post("/update/", R"({"id":"g","type":"gauge","value":2,"labels":{"a":"1"}})").result_int(),
      200);
  for (auto& b : sink_->batches)
    store_sink->accept({.received_ms = b.received_ms, .points = b.points, .refs = b.refs});
  store_sink->wait_idle();
  ASSERT_EQ(service_->history(), store_.get());
  const std::vector<core::SeriesKey> keys{
      {core::MetricType::gauge, "g", core::Labels::make({{"a", "1"}})},
      {core::MetricType::gauge, "unknown", {}}};
  auto got = service_->read_history(keys, t1, t1 + 10'000);
  ASSERT_EQ(got.size(), 1U);
  ASSERT_EQ(got[0].samples.size(), 2U);
  EXPECT_EQ(got[0].samples[1].gauge(), 2.0);
  got = service_->read_history(keys, t1 + 1, t1 + 10'000);
  ASSERT_EQ(got.size(), 1U);
  EXPECT_EQ(got[0].samples.size(), 1U);
}

}  // namespace
}  // namespace metrics::server
