#include "metrics/telemetry/registry.hpp"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <array>
#include <stdexcept>
#include <thread>
#include <vector>

namespace metrics::telemetry {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST(Counter, SumsIncrementsOfManyThreads) {
  Counter c;
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&c] {
      for (int i = 0; i < 10'000; ++i)
        c.inc();
    });
  }
  for (auto& t : threads)
    t.join();
  c.inc(5);
  EXPECT_EQ(c.value(), 80'005u);
}

TEST(Histogram, FallsInTheFirstBucketWhoseBoundIsAtLeastTheValue) {
  const std::array<double, 3> bounds{0.1, 1, 10};
  Histogram h(bounds);
  for (double v : {0.05, 0.1, 0.5, 1.0, 7.0, 11.0, 1e9})
    h.observe(v);
  const auto s = h.snapshot();
  EXPECT_THAT(s.buckets, ElementsAre(2, 4, 5, 7));  // cumulative; the last is +Inf
  EXPECT_EQ(s.count, 7u);
  EXPECT_DOUBLE_EQ(s.sum, 0.05 + 0.1 + 0.5 + 1.0 + 7.0 + 11.0 + 1e9);
}

TEST(Histogram, ObservationsOfManyThreadsAllCount) {
  Histogram h(latency_buckets());
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&h] {
      for (int i = 0; i < 5'000; ++i)
        h.observe(0.001);
    });
  }
  for (auto& t : threads)
    t.join();
  const auto s = h.snapshot();
  EXPECT_EQ(s.count, 20'000u);
  EXPECT_NEAR(s.sum, 20.0, 1e-9);
}

TEST(Histogram, RefusesBoundsThatAreNotIncreasing) {
  const std::array<double, 2> bad{1, 1};
  EXPECT_THROW(Histogram{bad}, std::invalid_argument);
  Registry r;
  EXPECT_THROW((void)r.histogram("h", "", {}, bad), std::invalid_argument);
}

TEST(Registry, RendersFamiliesSortedWithHelpAndType) {
  Registry r;
  auto& req = r.counter("metrics_server_requests_total", "Requests served.", {"endpoint", "code"});
  req.with({"/ping", "200"}).inc(3);
  req.with({"/update/{type}/{name}/{value}", "400"}).inc();
  r.gauge("metrics_server_b", "A gauge.").with({}).set(2.5);
  const std::array<double, 2> bounds{0.5, 1};
  auto& lat = r.histogram("metrics_server_a_seconds", "Latency.", {"endpoint"}, bounds);
  lat.with({"/ping"}).observe(0.25);
  lat.with({"/ping"}).observe(3);
  const auto out = r.render();
  EXPECT_EQ(
      out.text,
      "# HELP metrics_server_a_seconds Latency.\n"
      "# TYPE metrics_server_a_seconds histogram\n"
      "metrics_server_a_seconds_bucket{endpoint=\"/ping\",le=\"0.5\"} 1\n"
      "metrics_server_a_seconds_bucket{endpoint=\"/ping\",le=\"1\"} 1\n"
      "metrics_server_a_seconds_bucket{endpoint=\"/ping\",le=\"+Inf\"} 2\n"
      "metrics_server_a_seconds_sum{endpoint=\"/ping\"} 3.25\n"
      "metrics_server_a_seconds_count{endpoint=\"/ping\"} 2\n"
      "# HELP metrics_server_b A gauge.\n"
      "# TYPE metrics_server_b gauge\n"
      "metrics_server_b 2.5\n"
      "# HELP metrics_server_requests_total Requests served.\n"
      "# TYPE metrics_server_requests_total counter\n"
      "metrics_server_requests_total{endpoint=\"/ping\",code=\"200\"} 3\n"
      "metrics_server_requests_total{endpoint=\"/update/{type}/{name}/{value}\",code=\"400\"} "
      "1\n");
  EXPECT_THAT(out.names,
              ElementsAre("metrics_server_a_seconds", "metrics_server_a_seconds_bucket",
                          "metrics_server_a_seconds_count", "metrics_server_a_seconds_sum",
                          "metrics_server_b", "metrics_server_requests_total"));
  EXPECT_EQ(out.duplicates, 0u);
}

TEST(Registry, SameNameGivesTheSameFamily) {
  Registry r;
  auto& a = r.counter("c_total", "x", {"k"});
  auto& b = r.counter("c_total", "other help", {});
  EXPECT_EQ(&a, &b);
  EXPECT_EQ(&a.with({"v"}), &b.with({"v"}));
}

TEST(Registry, EscapesLabelValuesAndHelp) {
  Registry r;
  r.counter("c_total", "back\\slash\nnewline", {"path"}).with({"a\"b\\c\nd"}).inc();
  const auto out = r.render();
  EXPECT_THAT(out.text, HasSubstr("# HELP c_total back\\\\slash\\nnewline\n"));
  EXPECT_THAT(out.text, HasSubstr("c_total{path=\"a\\\"b\\\\c\\nd\"} 1\n"));
}

TEST(Registry, EmptyLabelValuesAreLeftOut) {
  Registry r;
  r.gauge("g", "", {"a", "b"}).with({"", "x"}).set(1);
  r.gauge("h", "", {"a"}).with({""}).set(-0.0);
  const auto out = r.render();
  EXPECT_THAT(out.text, HasSubstr("\ng{b=\"x\"} 1\n"));
  EXPECT_THAT(out.text, HasSubstr("\nh 0\n"));
  EXPECT_EQ(out.text.find("# HELP"), std::string::npos);  // no help, no HELP line
}

TEST(Registry, CollectorsRenderWhileRegisteredAndSortWithTheRest) {
  Registry r;
  r.gauge("m_gauge", "").with({}).set(1);
  double value = 7;
  {
    auto hook = r.add_collector([&value](Writer& w) {
      w.family("a_collected_total", Type::counter, "Collected.");
      w.sample({{"sink", "history"}}, value);
      w.sample({{"sink", "remote"}}, 1.5);
      w.family("z_collected", Type::gauge, "");
      w.sample({}, std::numeric_limits<double>::infinity());
    });
    const auto out = r.render();
    EXPECT_EQ(out.text,
              "# HELP a_collected_total Collected.\n"
              "# TYPE a_collected_total counter\n"
              "a_collected_total{sink=\"history\"} 7\n"
              "a_collected_total{sink=\"remote\"} 1.5\n"
              "# TYPE m_gauge gauge\n"
              "m_gauge 1\n"
              "# TYPE z_collected gauge\n"
              "z_collected +Inf\n");
  }
  EXPECT_EQ(r.render().text, "# TYPE m_gauge gauge\nm_gauge 1\n");
}

TEST(Registry, AThrowingCollectorIsSkippedWhole) {
  Registry r;
  auto bad = r.add_collector([](Writer& w) {
    w.family("half_written", Type::gauge, "");
    w.sample({}, 1);
    throw std::runtime_error("gone");
  });
  auto good = r.add_collector([](Writer& w) {
    w.family("fine", Type::gauge, "");
    w.sample({}, 2);
  });
  EXPECT_EQ(r.render().text, "# TYPE fine gauge\nfine 2\n");
}

TEST(Registry, TheFirstOfTwoFamiliesWithOneNameWins) {
  Registry r;
  r.gauge("dup", "").with({}).set(1);
  auto hook = r.add_collector([](Writer& w) {
    w.family("dup", Type::counter, "");
    w.sample({}, 5);
  });
  const auto out = r.render();
  EXPECT_EQ(out.text, "# TYPE dup gauge\ndup 1\n");
  EXPECT_EQ(out.duplicates, 1u);
  EXPECT_THAT(out.names, ElementsAre("dup"));
}

TEST(Registry, FamiliesOfOneNameAndTypeFromSeveralCollectorsBecomeOne) {
  Registry r;
  auto a = r.add_collector([](Writer& w) {
    w.family("q_batches", Type::gauge, "Queued.");
    w.sample({{"sink", "history"}}, 1);
  });
  auto b = r.add_collector([](Writer& w) {
    w.family("q_batches", Type::gauge, "Other help.");
    w.sample({{"sink", "remote_write"}}, 2);
  });
  const auto out = r.render();
  EXPECT_EQ(out.text,
            "# HELP q_batches Queued.\n# TYPE q_batches gauge\nq_batches{sink=\"history\"} 1\n"
            "q_batches{sink=\"remote_write\"} 2\n");
  EXPECT_EQ(out.duplicates, 0u);
  EXPECT_THAT(out.names, ElementsAre("q_batches"));
}

TEST(Registry, ARegistrationMayOutliveItsRegistry) {
  Registration hook;
  {
    Registry r;
    hook = r.add_collector([](Writer&) {});
  }
  hook.reset();  // no crash, no leak (ASan)
}

TEST(Registry, CounterValuesPastTwoToTheFiftyThreeStayExact) {
  Registry r;
  r.counter("big_total", "").with({}).inc(9'007'199'254'740'993ULL);
  EXPECT_THAT(r.render().text, HasSubstr("big_total 9007199254740993\n"));
}

TEST(Registry, RenderRacesWithIncrementsAndNewChildren) {
  Registry r;
  auto& fam = r.counter("race_total", "", {"k"});
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    int i = 0;
    while (!stop.load()) {
      fam.with({std::to_string(i++ % 50)}).inc();
    }
  });
  for (int i = 0; i < 200; ++i)
    (void)r.render();
  stop = true;
  writer.join();
  SUCCEED();
}

}  // namespace
}  // namespace metrics::telemetry
