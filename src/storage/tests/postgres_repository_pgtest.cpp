// PostgreSQL storage behaviour beyond the conformance suite. Needs
// METRICS_TEST_PG_DSN (skipped without it locally, failed without it in CI).
#include <arpa/inet.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <future>
#include <latch>
#include <limits>
#include <mutex>
#include <thread>

#include "cut_proxy.hpp"
#include "metrics/core/clock.hpp"
#include "metrics/core/errors.hpp"
#include "metrics/storage/postgres_repository.hpp"
#include "pg_test_util.hpp"

namespace metrics::storage::testing {
namespace {

using metrics::testing::CutProxy;

using core::Labels;
using core::MetricKey;
using core::MetricType;
using core::Point;
using core::SeriesKey;
using core::Update;

// Adds a connection parameter to a DSN of either form.
std::string with_param(const std::string& dsn, const std::string& key, const std::string& value) {
  if (dsn.find("://") != std::string::npos) {
    return dsn + (dsn.find('?') == std::string::npos ? "?" : "&") + key + "=" + value;
  }
  return dsn + " " + key + "=" + value;
}

class PostgresRepositoryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    METRICS_REQUIRE_PG_DSN(dsn);
    schema_ = std::make_unique<TestSchema>(dsn);
  }
  std::unique_ptr<TestSchema> schema_;
};

Labels labels(std::vector<core::Label> l) {
  return Labels::make(std::move(l));
}
MetricKey counter_key(std::string name) {
  return {MetricType::counter, std::move(name)};
}
MetricKey gauge_key(std::string name) {
  return {MetricType::gauge, std::move(name)};
}
SeriesKey series(MetricType type, std::string name, Labels l = {}) {
  return {type, std::move(name), std::move(l)};
}
Point at(Point p, std::int64_t ms) {
  p.timestamp_ms = ms;
  return p;
}
// The classic values' stored counter total, read straight from the table.
std::string classic_total(const TestSchema& schema, const std::string& name) {
  return schema.query("SELECT delta FROM metrics WHERE type = 1 AND name = '" + name + "'");
}

TEST_F(PostgresRepositoryTest, NewRepositoryOnTheSameDatabaseSeesEverything) {
  const auto job = labels({{"job", "api"}});
  {
    auto repo = schema_->open();
    apply_sync(*repo,
               {Update::gauge("Alloc", 0.1 + 0.2), Update::counter("PollCount", 5),
                Update::gauge("Neg", -0.0), Update::counter("PollCount", 2, job)},
               1000);
    repo->close();
  }
  auto repo = schema_->open();
  const auto all = list_sync(*repo);
  ASSERT_EQ(all.size(), 3U);
  EXPECT_EQ(all[0], Point::gauge("Alloc", 0.1 + 0.2));
  EXPECT_TRUE(std::signbit(all[1].value));
  EXPECT_EQ(all[2], Point::counter("PollCount", 7));
  EXPECT_EQ(list_series_sync(*repo).size(), 4U);
  EXPECT_EQ(get_sync(*repo, series(MetricType::counter, "PollCount", job)),
            at(Point::counter("PollCount", 2, job), 1000));
  const auto applied = apply_sync(*repo, {Update::counter("PollCount", 1)}, 2000);
  EXPECT_EQ(applied.series, std::vector{at(Point::counter("PollCount", 6), 2000)});
  EXPECT_EQ(applied.classic, std::vector{Point::counter("PollCount", 8)});
}

TEST_F(PostgresRepositoryTest, MigrationsAreRecordedAndRunOnce) {
  schema_->open()->close();
  schema_->open()->close();
  EXPECT_EQ(schema_->query("SELECT count(*) FROM schema_migrations"), "3");
  EXPECT_EQ(schema_->query("SELECT max(version) FROM schema_migrations"), "3");
}

// Today's schema (migrations 1 and 2 as released, before series existed)
// with rows of every kind, as a server of Part 1 left it.
void create_part1_database(const TestSchema& schema) {
  auto conn = detail::pg::connect(schema.dsn(), 5);
  detail::pg::exec(conn.get(), ("CREATE SCHEMA " + schema.name()).c_str());
  detail::pg::exec(conn.get(), ("SET search_path TO " + schema.name()).c_str());
  detail::pg::exec(conn.get(), R"(
    CREATE TABLE schema_migrations (version integer PRIMARY KEY, description text NOT NULL,
                                    applied_at timestamptz NOT NULL DEFAULT now());
    CREATE TABLE metrics (
      type  smallint NOT NULL CHECK (type IN (0, 1)),
      name  text NOT NULL CHECK (octet_length(name) BETWEEN 1 AND 255),
      delta bigint,
      value double precision,
      PRIMARY KEY (type, name),
      CHECK ((type = 1) = (delta IS NOT NULL) AND (type = 0) = (value IS NOT NULL)));
    CREATE TABLE applied_groups (id bigint PRIMARY KEY,
                                 applied_at timestamptz NOT NULL DEFAULT now());
    INSERT INTO schema_migrations (version, description) VALUES (1, 'metrics table'),
      (2, 'applied_groups: committed group commits, to tell after a lost connection');
    INSERT INTO metrics (type, name, delta, value) VALUES
      (1, 'PollCount', 9223372036854775800, NULL), (1, 'Neg', -42, NULL),
      (0, 'Alloc', NULL, 0.30000000000000004), (0, 'Tiny', NULL, 4.9e-324),
      (0, 'PollCount', NULL, -1.5), (1, 'quote"s é', 7, NULL);
    INSERT INTO applied_groups (id) VALUES (12345))");
}

// Every classic row in one text, to compare before and after.
std::string classic_rows(const TestSchema& schema) {
  return schema.query(
      "SELECT string_agg(type || '|' || name || '|' || coalesce(delta::text, '-') || '|' || "
      "coalesce(float8send(value)::text, '-'), ';' ORDER BY type, name) FROM metrics");
}

TEST_F(PostgresRepositoryTest, ADatabaseOfPart1MigratesAndKeepsEveryClassicValue) {
  create_part1_database(*schema_);
  const auto before = classic_rows(*schema_);
  ASSERT_FALSE(before.empty());
  const auto started_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                              std::chrono::system_clock::now().time_since_epoch())
                              .count();
  auto repo = schema_->open();
  EXPECT_EQ(classic_rows(*schema_), before);
  EXPECT_EQ(schema_->query("SELECT string_agg(version::text, ',' ORDER BY version) "
                           "FROM schema_migrations"),
            "1,2,3");
  EXPECT_EQ(schema_->query("SELECT count(*) FROM applied_groups"), "1");
  const auto classic = list_sync(*repo);
  ASSERT_EQ(classic.size(), 6U);
  EXPECT_EQ(classic[0], Point::gauge("Alloc", 0.1 + 0.2));
  EXPECT_EQ(classic[1], Point::counter("Neg", -42));
  EXPECT_EQ(classic[2], Point::gauge("PollCount", -1.5));
  EXPECT_EQ(classic[3], Point::counter("PollCount", 9223372036854775800));
  EXPECT_EQ(classic[4], Point::gauge("Tiny", 4.9e-324));
  EXPECT_EQ(classic[5], Point::counter("quote\"s \xc3\xa9", 7));
  // Written without labels, they are also the series with no labels.
  const auto all = list_series_sync(*repo);
  ASSERT_EQ(all.size(), classic.size());
  for (std::size_t i = 0; i < all.size(); ++i) {
    EXPECT_EQ(all[i].labels, Labels{});
    EXPECT_GE(all[i].timestamp_ms, started_ms - 60'000) << i;
    auto without_time = all[i];
    without_time.timestamp_ms = 0;
    EXPECT_EQ(without_time, classic[i]) << i;
  }
  // Both go on from there.
  const auto job = labels({{"job", "a"}});
  const auto applied =
      apply_sync(*repo, {Update::counter("Neg", 2), Update::counter("Neg", 40, job)}, 5);
  EXPECT_EQ(applied.series, (std::vector{at(Point::counter("Neg", -40), 5),
                                         at(Point::counter("Neg", 40, job), 5)}));
  EXPECT_EQ(applied.classic, (std::vector{Point::counter("Neg", 0), Point::counter("Neg", 0)}));
  EXPECT_THROW(apply_sync(*repo, {Update::counter("PollCount", 8, job)}), core::InvalidInput);
  EXPECT_EQ(get_classic_sync(*repo, counter_key("PollCount")),
            Point::counter("PollCount", 9223372036854775800));
  EXPECT_EQ(get_sync(*repo, series(MetricType::counter, "PollCount", job)), std::nullopt);
  // A second start migrates nothing more and copies nothing twice.
  repo->close();
  schema_->open()->close();
  EXPECT_EQ(schema_->query("SELECT count(*) FROM schema_migrations"), "3");
  EXPECT_EQ(schema_->query("SELECT count(*) FROM series"), "7");
}

TEST_F(PostgresRepositoryTest, AFailingMigrationStopsTheStartAndChangesNothing) {
  create_part1_database(*schema_);
  // Something else already has the name of migration 3's table.
  (void)schema_->query("CREATE TABLE series (x integer); INSERT INTO series VALUES (1)");
  const auto before = classic_rows(*schema_);
  EXPECT_THROW(schema_->open(), core::Error);
  EXPECT_EQ(schema_->query("SELECT max(version) FROM schema_migrations"), "2");
  EXPECT_EQ(classic_rows(*schema_), before);
  EXPECT_EQ(schema_->query("SELECT x FROM series"), "1");
  // Once the name is free, the start migrates.
  (void)schema_->query("DROP TABLE series");
  auto repo = schema_->open();
  EXPECT_EQ(schema_->query("SELECT max(version) FROM schema_migrations"), "3");
  EXPECT_EQ(list_series_sync(*repo).size(), 6U);
}

TEST_F(PostgresRepositoryTest, TwoServersStartingAtOnceMigrateOnce) {
  create_part1_database(*schema_);
  const auto before = classic_rows(*schema_);
  constexpr int kServers = 4;
  std::vector<std::unique_ptr<PostgresRepository>> repos(kServers);
  std::latch go(kServers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kServers; ++i) {
    threads.emplace_back([&, i] {
      go.arrive_and_wait();
      repos[static_cast<std::size_t>(i)] = schema_->open();
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(schema_->query("SELECT count(*) FROM schema_migrations"), "3");
  EXPECT_EQ(classic_rows(*schema_), before);
  EXPECT_EQ(schema_->query("SELECT count(*) FROM series"), "6");
  for (auto& r : repos)
    EXPECT_TRUE(ping_sync(*r));
}

TEST_F(PostgresRepositoryTest, TwoServersStartingAtOnceOnAFreshSchemaCreateItOnce) {
  constexpr int kServers = 4;
  std::vector<std::unique_ptr<PostgresRepository>> repos(kServers);
  std::latch go(kServers);
  std::vector<std::thread> threads;
  for (int i = 0; i < kServers; ++i) {
    threads.emplace_back([&, i] {
      go.arrive_and_wait();
      repos[static_cast<std::size_t>(i)] = schema_->open();
    });
  }
  for (auto& t : threads)
    t.join();
  EXPECT_EQ(schema_->query("SELECT count(*) FROM schema_migrations"), "3");
  for (auto& r : repos)
    apply_sync(*r, {Update::counter("c", 1, labels({{"job", "x"}}))});
  EXPECT_EQ(get_classic_sync(*repos[0], counter_key("c")), Point::counter("c", kServers));
}

TEST_F(PostgresRepositoryTest, SeveralSeriesOfOneNameInOneBatchAllApplyToItsClassicValue) {
  auto repo = schema_->open();
  const auto a = labels({{"instance", "a"}});
  const auto b = labels({{"instance", "b"}});
  const auto applied =
      apply_sync(*repo,
                 {Update::counter("c", 2, a), Update::gauge("g", 1, a), Update::counter("c", 3, b),
                  Update::counter("c", 4), Update::gauge("g", 2, b)},
                 77);
  EXPECT_EQ(applied.series,
            (std::vector{at(Point::counter("c", 2, a), 77), at(Point::gauge("g", 1, a), 77),
                         at(Point::counter("c", 3, b), 77), at(Point::counter("c", 4), 77),
                         at(Point::gauge("g", 2, b), 77)}));
  EXPECT_EQ(applied.classic,
            (std::vector{Point::counter("c", 9), Point::gauge("g", 2), Point::counter("c", 9),
                         Point::counter("c", 9), Point::gauge("g", 2)}));
  EXPECT_EQ(get_classic_sync(*repo, counter_key("c")), Point::counter("c", 9));
  EXPECT_EQ(get_classic_sync(*repo, gauge_key("g")), Point::gauge("g", 2));
  EXPECT_EQ(get_sync(*repo, series(MetricType::counter, "c")), at(Point::counter("c", 4), 77));
  EXPECT_EQ(classic_total(*schema_, "c"), "9");
}

TEST_F(PostgresRepositoryTest, LabelsAreStoredExactlyAndReadablyForOperators) {
  auto repo = schema_->open();
  const auto odd = labels({{"job", "api"},
                           {"quote", "a\"b\\c\n"},
                           {"nul", std::string("x\0y", 3)},
                           {"utf8", "\xc3\xa9t\xc3\xa9"}});
  apply_sync(*repo, {Update::gauge("g", 1, odd)}, 9);
  EXPECT_EQ(get_sync(*repo, series(MetricType::gauge, "g", odd)), at(Point::gauge("g", 1, odd), 9));
  const auto all = list_series_sync(*repo);
  ASSERT_EQ(all.size(), 1U);
  EXPECT_EQ(all[0].labels, odd);
  // The exact bytes are the identity; the jsonb copy is for queries by hand.
  EXPECT_EQ(schema_->query("SELECT labels_json->>'job' FROM series"), "api");
  EXPECT_EQ(schema_->query("SELECT labels_json->>'quote' FROM series"), "a\"b\\c\n");
  EXPECT_EQ(schema_->query("SELECT labels_json->>'nul' FROM series"), "x\xEF\xBF\xBDy");
  EXPECT_EQ(schema_->query("SELECT labels_json->>'utf8' FROM series"), "\xc3\xa9t\xc3\xa9");
  EXPECT_EQ(schema_->query("SELECT updated_at FROM series"), "9");
}

TEST_F(PostgresRepositoryTest, ListSeriesIsSortedByNameTypeThenLabelsPairByPair) {
  auto repo = schema_->open();
  // Byte order of the encodings would put {a="1"} after {ab="1"} (0xFF ends
  // a name); pair by pair "a" comes first.
  const auto a = labels({{"a", "1"}});
  const auto ab = labels({{"ab", "1"}});
  const auto a2 = labels({{"a", "1"}, {"b", "2"}});
  apply_sync(*repo,
             {Update::counter("m", 1, ab), Update::gauge("m", 1), Update::counter("m", 1, a2),
              Update::counter("m", 1, a), Update::counter("B", 1), Update::counter("m", 1)});
  const auto all = list_series_sync(*repo);
  std::vector<SeriesKey> keys;
  for (const auto& p : all)
    keys.push_back(SeriesKey::of(p));
  EXPECT_EQ(keys, (std::vector{
                      series(MetricType::counter, "B"), series(MetricType::gauge, "m"),
                      series(MetricType::counter, "m"), series(MetricType::counter, "m", a),
                      series(MetricType::counter, "m", a2), series(MetricType::counter, "m", ab)}));
}

TEST_F(PostgresRepositoryTest, ExpireDeletesOnlyOldSeriesAndReturnsTheirKeys) {
  auto repo = schema_->open();
  const auto a = labels({{"instance", "a"}});
  const auto b = labels({{"instance", "b"}});
  apply_sync(*repo, {Update::counter("c", 1, a), Update::gauge("g", 1, a)}, 1000);
  apply_sync(*repo, {Update::counter("c", 2, b), Update::counter("c", 4)}, 2000);
  // A write carrying an older receive time (another server's clock) does not
  // move the last write back.
  apply_sync(*repo, {Update::counter("c", 8, b)}, 500);
  EXPECT_TRUE(expire_sync(*repo, 1000).empty());
  EXPECT_EQ(expire_sync(*repo, 1500),
            (std::vector{series(MetricType::counter, "c", a), series(MetricType::gauge, "g", a)}));
  EXPECT_EQ(get_sync(*repo, series(MetricType::counter, "c", a)), std::nullopt);
  EXPECT_EQ(get_sync(*repo, series(MetricType::counter, "c", b)),
            at(Point::counter("c", 10, b), 2000));
  EXPECT_EQ(list_series_sync(*repo).size(), 2U);
  // Classic values stay.
  EXPECT_EQ(get_classic_sync(*repo, counter_key("c")), Point::counter("c", 15));
  EXPECT_EQ(get_classic_sync(*repo, gauge_key("g")), Point::gauge("g", 1));
  // An expired series written again starts from its delta.
  const auto again = apply_sync(*repo, {Update::counter("c", 3, a)}, 3000);
  EXPECT_EQ(again.series, std::vector{at(Point::counter("c", 3, a), 3000)});
  EXPECT_EQ(again.classic, std::vector{Point::counter("c", 18)});
}

TEST_F(PostgresRepositoryTest, ExpireFromOneServerKeepsWhatAnotherStillWrites) {
  auto a = schema_->open();
  auto b = schema_->open();
  const auto l = labels({{"job", "x"}});
  apply_sync(*a, {Update::counter("c", 1, l), Update::counter("old", 1, l)}, 1000);
  apply_sync(*b, {Update::counter("c", 1, l)}, 5000);
  EXPECT_EQ(expire_sync(*a, 2000), std::vector{series(MetricType::counter, "old", l)});
  EXPECT_EQ(get_sync(*a, series(MetricType::counter, "c", l)), at(Point::counter("c", 2, l), 5000));
}

// Fires many batches at once so that they share group commits.
struct Outcome {
  std::exception_ptr err;
  Applied stored;
};
std::vector<Outcome> apply_all(Repository& repo, const std::vector<std::vector<Update>>& batches,
                               std::int64_t received_ms = 0) {
  std::vector<Outcome> out(batches.size());
  std::latch done(static_cast<std::ptrdiff_t>(batches.size()));
  for (std::size_t i = 0; i < batches.size(); ++i) {
    repo.apply(batches[i], received_ms + static_cast<std::int64_t>(i),
               [&out, &done, i](std::exception_ptr err, Applied stored) {
                 out[i] = Outcome{std::move(err), std::move(stored)};
                 done.count_down();
               });
  }
  done.wait();
  return out;
}

TEST_F(PostgresRepositoryTest, AnOverflowingBatchFailsAloneInsideAGroupCommit) {
  auto repo = schema_->open();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  const auto a = labels({{"instance", "a"}});
  const auto b = labels({{"instance", "b"}});
  apply_sync(*repo, {Update::counter("big", kMax - 10, a)});
  std::vector<std::vector<Update>> batches;
  for (int i = 0; i < 200; ++i) {
    if (i == 77) {
      // Its series would fit; the classic value would not.
      batches.push_back({Update::gauge("g", -1), Update::counter("big", 100, b)});
    } else {
      batches.push_back({Update::counter("n", 1, i % 2 == 0 ? a : b), Update::gauge("g", i),
                         Update::counter("big", 0, b)});
    }
  }
  const auto out = apply_all(*repo, batches);
  for (int i = 0; i < 200; ++i) {
    if (i == 77) {
      ASSERT_TRUE(out[77].err);
      EXPECT_THROW(std::rethrow_exception(out[77].err), core::InvalidInput);
    } else {
      EXPECT_FALSE(out[static_cast<std::size_t>(i)].err) << i;
    }
  }
  EXPECT_EQ(get_classic_sync(*repo, counter_key("big")), Point::counter("big", kMax - 10));
  EXPECT_EQ(get_sync(*repo, series(MetricType::counter, "big", b)).value().total, 0);
  EXPECT_EQ(get_classic_sync(*repo, counter_key("n")), Point::counter("n", 199));
  EXPECT_EQ(get_sync(*repo, series(MetricType::counter, "n", a)).value().total, 100);
  EXPECT_EQ(get_sync(*repo, series(MetricType::counter, "n", b)).value().total, 99);
  EXPECT_NE(get_classic_sync(*repo, gauge_key("g")), Point::gauge("g", -1));
}

TEST_F(PostgresRepositoryTest, ASeriesOverflowFailsTheBatchEvenWhenItsClassicValueFits) {
  auto repo = schema_->open();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  const auto a = labels({{"instance", "a"}});
  const auto b = labels({{"instance", "b"}});
  apply_sync(*repo, {Update::counter("c", -10, b)});
  apply_sync(*repo, {Update::counter("c", kMax - 1, a)});
  EXPECT_THROW(apply_sync(*repo, {Update::gauge("g", 1), Update::counter("c", 5, a)}),
               core::InvalidInput);
  EXPECT_EQ(get_classic_sync(*repo, counter_key("c")), Point::counter("c", kMax - 11));
  EXPECT_EQ(get_sync(*repo, series(MetricType::counter, "c", a)).value().total, kMax - 1);
  EXPECT_EQ(get_classic_sync(*repo, gauge_key("g")), std::nullopt);
  EXPECT_EQ(get_sync(*repo, series(MetricType::gauge, "g")), std::nullopt);
}

TEST_F(PostgresRepositoryTest, MixedSignsInOneGroupKeepEveryAnswerExact) {
  auto repo = schema_->open();
  const auto l = labels({{"job", "j"}});
  std::vector<std::vector<Update>> batches;
  for (int i = 0; i < 300; ++i)
    batches.push_back({Update::counter("c", i % 2 == 0 ? 5 : -3, l)});
  const auto out = apply_all(*repo, batches);
  constexpr std::int64_t kFinal = 150 * 5 - 150 * 3;
  bool someone_saw_the_final_total = false;
  for (const auto& o : out) {
    ASSERT_FALSE(o.err);
    const auto total = o.stored.series.at(0).total;
    // Some serial order of the batches produced every answer.
    EXPECT_GE(total, -150 * 3);
    EXPECT_LE(total, 150 * 5);
    EXPECT_EQ(o.stored.classic.at(0).total, total);
    someone_saw_the_final_total |= total == kFinal;
  }
  EXPECT_TRUE(someone_saw_the_final_total);
  EXPECT_EQ(get_classic_sync(*repo, counter_key("c")), Point::counter("c", kFinal));
  EXPECT_EQ(get_sync(*repo, series(MetricType::counter, "c", l)).value().total, kFinal);
}

TEST_F(PostgresRepositoryTest, MixedSignsOnlyInAClassicValueKeepEveryAnswerExact) {
  auto repo = schema_->open();
  const auto up = labels({{"instance", "up"}});
  const auto down = labels({{"instance", "down"}});
  // Each series has one sign; their classic value gets both.
  std::vector<std::vector<Update>> batches;
  for (int i = 0; i < 300; ++i)
    batches.push_back({i % 2 == 0 ? Update::counter("c", 5, up) : Update::counter("c", -3, down)});
  const auto out = apply_all(*repo, batches);
  std::vector<std::int64_t> ups;
  std::vector<std::int64_t> downs;
  for (std::size_t i = 0; i < out.size(); ++i) {
    ASSERT_FALSE(out[i].err);
    const auto total = out[i].stored.series.at(0).total;
    (i % 2 == 0 ? ups : downs).push_back(total);
    const auto classic = out[i].stored.classic.at(0).total;
    EXPECT_GE(classic, -150 * 3);
    EXPECT_LE(classic, 150 * 5);
  }
  // Every batch saw its own series after it: 5, 10, ... and -3, -6, ...
  std::sort(ups.begin(), ups.end());
  std::sort(downs.begin(), downs.end(), std::greater<>());
  for (std::size_t k = 0; k < 150; ++k) {
    EXPECT_EQ(ups[k], 5 * static_cast<std::int64_t>(k + 1));
    EXPECT_EQ(downs[k], -3 * static_cast<std::int64_t>(k + 1));
  }
  EXPECT_EQ(get_classic_sync(*repo, counter_key("c")), Point::counter("c", 150 * 5 - 150 * 3));
}

TEST_F(PostgresRepositoryTest, AClassicValueThatWouldOverflowBeforeALaterBatchTakesItBackFails) {
  auto repo = schema_->open();
  constexpr auto kMax = std::numeric_limits<std::int64_t>::max();
  apply_sync(*repo, {Update::counter("c", kMax - 5, labels({{"instance", "z"}}))});
  // Queued in this order: the first overflows the classic value when it is
  // applied, although the group as a whole (+10 -10) would not.
  const auto out = apply_all(*repo, {{Update::counter("c", 10, labels({{"instance", "up"}}))},
                                     {Update::counter("c", -10, labels({{"instance", "down"}}))}});
  ASSERT_TRUE(out[0].err);
  EXPECT_THROW(std::rethrow_exception(out[0].err), core::InvalidInput);
  ASSERT_FALSE(out[1].err);
  EXPECT_EQ(out[1].stored.classic, std::vector{Point::counter("c", kMax - 15)});
  EXPECT_EQ(get_classic_sync(*repo, counter_key("c")), Point::counter("c", kMax - 15));
  EXPECT_EQ(get_sync(*repo, series(MetricType::counter, "c", labels({{"instance", "up"}}))),
            std::nullopt);
}

TEST_F(PostgresRepositoryTest, AnswersInsideAGroupCommitAreTheTotalsAfterEachBatch) {
  auto repo = schema_->open();
  const auto a = labels({{"instance", "a"}});
  std::vector<std::vector<Update>> batches;
  for (int i = 0; i < 200; ++i)
    batches.push_back({Update::counter("c", 1, a), Update::counter("c", 2)});
  const auto out = apply_all(*repo, batches, 1000);
  std::vector<std::int64_t> series_totals;
  for (std::size_t i = 0; i < out.size(); ++i) {
    ASSERT_FALSE(out[i].err);
    const auto& s = out[i].stored;
    ASSERT_EQ(s.series.size(), 2U);
    ASSERT_EQ(s.classic.size(), 2U);
    EXPECT_EQ(s.series[0].timestamp_ms, 1000 + static_cast<std::int64_t>(i));
    EXPECT_EQ(s.classic[0].timestamp_ms, 0);
    // One serial order: the unlabelled series has twice the labelled
    // total, and the classic value their sum after the whole batch.
    EXPECT_EQ(s.series[1].total, 2 * s.series[0].total);
    EXPECT_EQ(s.classic[0].total, 3 * s.series[0].total);
    EXPECT_EQ(s.classic[1], s.classic[0]);
    series_totals.push_back(s.series[0].total);
  }
  std::sort(series_totals.begin(), series_totals.end());
  for (std::size_t i = 0; i < series_totals.size(); ++i)
    EXPECT_EQ(series_totals[i], static_cast<std::int64_t>(i) + 1);
  EXPECT_EQ(get_sync(*repo, series(MetricType::counter, "c", a)).value().timestamp_ms, 1199);
}

TEST_F(PostgresRepositoryTest, TwoServersOnOneDatabaseSumLabelledAndUnlabelledCountersExactly) {
  auto a = schema_->open();
  auto b = schema_->open();
  const auto ja = labels({{"instance", "a"}, {"job", "agent"}});
  const auto jb = labels({{"instance", "b"}, {"job", "agent"}});
  constexpr int kThreads = 4;
  constexpr int kBatches = 300;
  std::vector<std::thread> threads;
  for (int t = 0; t < 2 * kThreads; ++t) {
    Repository& repo = t % 2 == 0 ? *a : *b;
    // Each server writes both instances' series, and the unlabelled one.
    const auto& mine = t % 4 < 2 ? ja : jb;
    threads.emplace_back([&repo, &mine, t] {
      for (int i = 0; i < kBatches; ++i) {
        apply_sync(repo,
                   {Update::counter("shared", 1), Update::counter("shared", 1, mine),
                    Update::counter("other", 2, mine), Update::gauge("g", t, mine)},
                   i);
      }
    });
  }
  for (auto& th : threads)
    th.join();
  constexpr std::int64_t kWrites = 2 * kThreads * kBatches;
  EXPECT_EQ(get_classic_sync(*a, counter_key("shared")), Point::counter("shared", 2 * kWrites));
  EXPECT_EQ(get_sync(*b, series(MetricType::counter, "shared")).value().total, kWrites);
  EXPECT_EQ(get_sync(*a, series(MetricType::counter, "shared", ja)).value().total, kWrites / 2);
  EXPECT_EQ(get_sync(*b, series(MetricType::counter, "shared", jb)).value().total, kWrites / 2);
  EXPECT_EQ(get_classic_sync(*b, counter_key("other")), Point::counter("other", 2 * kWrites));
  EXPECT_EQ(get_sync(*a, series(MetricType::counter, "other", ja)).value().total, kWrites);
  EXPECT_EQ(get_sync(*a, series(MetricType::counter, "other", jb)).value().total, kWrites);
  EXPECT_EQ(classic_total(*schema_, "shared"), std::to_string(2 * kWrites));
}

TEST_F(PostgresRepositoryTest, WrongPasswordStartsButPingFails) {
  std::string dsn = schema_->dsn();
  auto options = schema_->options();
  options.dsn = with_param(dsn, "password", "certainly-wrong");
  PostgresRepository repo(options);
  EXPECT_THROW(ping_sync(repo), core::StorageUnavailable);
}

// Captures what the storage logs while it lives.
class LogCapture {
 public:
  LogCapture()
      : sink_(std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(1000)),
        previous_(spdlog::default_logger()) {
    spdlog::set_default_logger(std::make_shared<spdlog::logger>("capture", sink_));
  }
  ~LogCapture() { spdlog::set_default_logger(previous_); }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  [[nodiscard]] std::size_t count(const std::string& text) const {
    std::size_t n = 0;
    for (const auto& line : sink_->last_formatted()) {
      if (line.find(text) != std::string::npos) ++n;
    }
    return n;
  }

 private:
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
  std::shared_ptr<spdlog::logger> previous_;
};

// The user a DSN logs in as.
std::string user_of(const std::string& dsn) {
  auto conn = detail::pg::connect(dsn, 5);
  return PQuser(conn.get());
}

TEST_F(PostgresRepositoryTest, AWrongPasswordIsReportedAsSuchAndLoggedOnceAMinute) {
  const auto user = user_of(schema_->dsn());
  LogCapture log;
  auto clock = std::make_shared<core::ManualClock>();
  auto options = schema_->options();
  options.dsn = with_param(schema_->dsn(), "password", "certainly-wrong");
  options.connections = 1;
  options.clock = clock;
  PostgresRepository repo(options);  // starts anyway
  const std::string reason = "PostgreSQL authentication failed for user \"" + user + "\"";
  EXPECT_EQ(health_sync(repo), (Health{.ok = false, .reason = reason}));
  try {
    ping_sync(repo);
    ADD_FAILURE() << "ping succeeded with a wrong password";
  } catch (const core::StorageUnavailable& e) {
    EXPECT_EQ(std::string(e.what()), reason);
  }
  try {
    apply_sync(repo, {Update::counter("c", 1)});
    ADD_FAILURE() << "a write succeeded with a wrong password";
  } catch (const core::StorageUnavailable& e) {
    EXPECT_THAT(e.what(), ::testing::HasSubstr(reason));
  }
  const std::string logged = "authentication failed for user \"" + user + "\"";
  EXPECT_EQ(log.count(logged), 1u);
  EXPECT_EQ(log.count("certainly-wrong"), 0u);  // never the password
  // The worker keeps trying every reconnect_interval; within the minute
  // nothing more is logged, after it one more line.
  auto probe = clock->await_waiter();
  ASSERT_TRUE(probe);
  for (int i = 0; i < 10; ++i) {
    clock->advance(options.reconnect_interval);
    probe = clock->await_waiter(*probe);  // probed, waits for the next
    ASSERT_TRUE(probe);
  }
  EXPECT_EQ(log.count(logged), 1u);
  clock->advance(std::chrono::minutes{1});
  ASSERT_TRUE(clock->await_waiter(*probe));
  EXPECT_EQ(log.count(logged), 2u);
  EXPECT_EQ(log.count("unreachable"), 0u);  // not an outage
}

TEST_F(PostgresRepositoryTest, TransientFailuresAreRetriedAfter1And3And5SecondsOfTheClock) {
  auto clock = std::make_shared<core::ManualClock>();
  auto options = schema_->options();
  options.connections = 1;
  options.clock = clock;
  options.retry_delays = {std::chrono::seconds{1}, std::chrono::seconds{3},
                          std::chrono::seconds{5}};  // the production schedule
  PostgresRepository repo(options);
  const auto linger = [&] {
    // The group commit's short wait of one quiet step, then the attempt.
    const auto step = clock->await_waiter();
    ASSERT_TRUE(step);
    clock->advance(*step - clock->steady_now());
  };
  // Warm up (the schema exists), then make every write a serialization failure.
  auto first =
      std::async(std::launch::async, [&] { return apply_sync(repo, {Update::counter("c", 1)}); });
  linger();
  EXPECT_EQ(first.get().classic, std::vector{Point::counter("c", 1)});
  (void)schema_->query(
      "CREATE FUNCTION fail_write() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
      "RAISE EXCEPTION 'test: serialization failure' USING ERRCODE = '40001'; END $$; "
      "CREATE TRIGGER fail_write BEFORE INSERT ON metrics FOR EACH ROW "
      "EXECUTE FUNCTION fail_write()");
  auto failing =
      std::async(std::launch::async, [&] { return apply_sync(repo, {Update::counter("c", 5)}); });
  linger();
  auto after = clock->steady_now();
  for (const auto delay : options.retry_delays) {
    const auto retry = clock->await_waiter(after);
    ASSERT_TRUE(retry);
    EXPECT_EQ(*retry - clock->steady_now(), delay);
    clock->advance(delay - std::chrono::milliseconds{1});
    EXPECT_EQ(failing.wait_for(std::chrono::milliseconds{5}), std::future_status::timeout);
    clock->advance(std::chrono::milliseconds{1});
    after = *retry;
  }
  ASSERT_EQ(failing.wait_for(std::chrono::seconds{10}), std::future_status::ready);
  EXPECT_THROW(failing.get(), core::StorageUnavailable);
  EXPECT_EQ(schema_->query("SELECT delta FROM metrics WHERE name = 'c'"), "1");
  // Once the failure goes away, a retry succeeds.
  auto healed =
      std::async(std::launch::async, [&] { return apply_sync(repo, {Update::counter("c", 2)}); });
  linger();
  const auto retry = clock->await_waiter(clock->steady_now());
  ASSERT_TRUE(retry);
  (void)schema_->query("DROP TRIGGER fail_write ON metrics");
  clock->advance(std::chrono::seconds{1});
  EXPECT_EQ(healed.get().classic, std::vector{Point::counter("c", 3)});
}

TEST_F(PostgresRepositoryTest, UnreachableServerStartsButPingFailsAndWritesFail) {
  auto options = schema_->options();
  options.dsn = "postgres://metrics:metrics@127.0.0.1:1/metrics_test";
  options.retry_delays = {std::chrono::milliseconds{10}};
  PostgresRepository repo(options);
  EXPECT_THROW(ping_sync(repo), core::StorageUnavailable);
  EXPECT_THROW(apply_sync(repo, {Update::counter("c", 1)}), core::StorageUnavailable);
  EXPECT_THROW(list_sync(repo), core::StorageUnavailable);
}

TEST_F(PostgresRepositoryTest, MalformedDsnThrowsAtStart) {
  auto options = schema_->options();
  options.dsn = "host=127.0.0.1 this is not a dsn";
  EXPECT_THROW(PostgresRepository{options}, core::Error);
}

TEST_F(PostgresRepositoryTest, ReconnectsAfterItsConnectionsAreKilledAndCountsOnce) {
  const auto app = schema_->name();
  auto options = schema_->options();
  options.dsn = with_param(schema_->dsn(), "application_name", app);
  options.connections = 2;
  PostgresRepository repo(options);
  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> acked{0};
  std::atomic<std::int64_t> failed{0};
  std::vector<std::thread> writers;
  for (int t = 0; t < 4; ++t) {
    writers.emplace_back([&, t] {
      const auto mine = labels({{"instance", std::to_string(t)}});
      while (!stop) {
        try {
          apply_sync(repo, {Update::counter("c", 1), Update::counter("c", 1, mine)});
          ++acked;
        } catch (const core::StorageUnavailable&) {
          // Possible when every retry fell into the kill; not acknowledged.
          ++failed;
        } catch (const core::OutcomeUnknown&) {
          // A kill during the commit that no retry could resolve.
          ++failed;
        }
      }
    });
  }
  for (int kill = 0; kill < 5; ++kill) {
    std::this_thread::sleep_for(std::chrono::milliseconds{100});
    (void)schema_->query(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
        "WHERE application_name = '" +
        app + "'");
  }
  std::this_thread::sleep_for(std::chrono::milliseconds{100});
  stop = true;
  for (auto& th : writers)
    th.join();
  EXPECT_TRUE(ping_sync(repo));
  const auto total = get_sync(repo, series(MetricType::counter, "c"));
  ASSERT_TRUE(total);
  // Every ack is stored; a batch whose commit outcome was lost is counted
  // once (group ids), never twice. Unacknowledged failures may have landed.
  EXPECT_GE(total->total, acked.load());
  EXPECT_LE(total->total, acked.load() + failed.load());
  EXPECT_GT(acked.load(), 0);
  // Both tables, and the labelled series, in the same transactions.
  EXPECT_EQ(get_classic_sync(repo, counter_key("c")), Point::counter("c", 2 * total->total));
  std::int64_t labelled = 0;
  for (const auto& p : list_series_sync(repo)) {
    if (!p.labels.empty()) labelled += p.total;
  }
  EXPECT_EQ(labelled, total->total);
}

TEST_F(PostgresRepositoryTest, FullQueueIsOverloaded) {
  auto options = schema_->options();
  options.max_queue = 1;
  options.connections = 1;
  PostgresRepository repo(options);
  std::vector<std::vector<Update>> batches(100, std::vector<Update>{Update::counter("c", 1)});
  const auto out = apply_all(repo, batches);
  int ok = 0;
  int overloaded = 0;
  for (const auto& o : out) {
    if (!o.err) {
      ++ok;
      continue;
    }
    try {
      std::rethrow_exception(o.err);
    } catch (const core::Overloaded&) {
      ++overloaded;
    } catch (...) {
    }
  }
  EXPECT_GT(overloaded, 0);
  EXPECT_EQ(ok + overloaded, 100);
  EXPECT_EQ(get_classic_sync(repo, counter_key("c")), Point::counter("c", ok));
}

// The TCP port of the test database when it is reached over the loopback
// (the proxy forwards there), or nothing.
std::optional<int> loopback_port(const std::string& dsn) {
  auto conn = detail::pg::connect(dsn, 5);
  const std::string host = PQhost(conn.get()) ? PQhost(conn.get()) : "";
  if (host != "127.0.0.1" && host != "localhost") return std::nullopt;
  return std::atoi(PQport(conn.get()));
}

// Polls (for up to 10 s) until sql answers want on a direct connection.
bool eventually(const TestSchema& schema, const std::string& sql, const std::string& want) {
  for (int i = 0; i < 400; ++i) {
    if (schema.query(sql) == want) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds{25});
  }
  return false;
}

struct Answer {
  std::exception_ptr err;
  Applied stored;
};

// The labels of the fault tests' load.
Labels fault_labels() {
  return labels({{"instance", "host:1"}, {"job", "agent"}});
}

// The repository reaches the database through a CutProxy, so a test can
// lose a commit's answer and make the database unreachable, without touching
// the shared server.
class PostgresFaultTest : public PostgresRepositoryTest {
 protected:
  void SetUp() override {
    PostgresRepositoryTest::SetUp();
    if (IsSkipped() || HasFailure()) return;
    const auto port = loopback_port(schema_->dsn());
    if (!port) {
      if (running_in_ci()) GTEST_FAIL() << "METRICS_TEST_PG_DSN must use 127.0.0.1 in CI";
      GTEST_SKIP() << "needs METRICS_TEST_PG_DSN over TCP to 127.0.0.1";
    }
    proxy_ = std::make_unique<CutProxy>(*port);
  }
  [[nodiscard]] PostgresOptions options() const {
    auto o = schema_->options();
    o.dsn = with_param(with_param(schema_->dsn(), "host", "127.0.0.1"), "port",
                       std::to_string(proxy_->port()));
    o.connections = 1;
    return o;
  }
  // Applies +5 to the labelled counter c (1 before) while the proxy swallows
  // the answer, waits until PostgreSQL has committed it, then cuts the
  // connection.
  std::future<Answer> lose_a_commit_answer(PostgresRepository& repo) {
    const auto l = fault_labels();
    EXPECT_EQ(apply_sync(repo, {Update::counter("c", 1, l)}, 10).series,
              std::vector{at(Point::counter("c", 1, l), 10)});
    // One connection: the ping is served after the worker's housekeeping
    // (pruning applied_groups) that follows the first group.
    EXPECT_TRUE(ping_sync(repo));
    proxy_->swallow_replies();
    auto answered = std::make_shared<std::promise<Answer>>();
    auto future = answered->get_future();
    repo.apply({Update::counter("c", 5, l)}, 20, [answered](std::exception_ptr err, Applied a) {
      answered->set_value({std::move(err), std::move(a)});
    });
    EXPECT_TRUE(eventually(*schema_, "SELECT delta FROM metrics WHERE name = 'c'", "6"));
    proxy_->cut();
    return future;
  }
  std::unique_ptr<CutProxy> proxy_;
};

TEST_F(PostgresFaultTest, ALostCommitAnswerThatCannotBeCheckedIsOutcomeUnknownNot503) {
  auto o = options();
  o.retry_delays = {std::chrono::milliseconds{50}, std::chrono::milliseconds{50}};
  PostgresRepository repo(o);
  auto future = lose_a_commit_answer(repo);
  ASSERT_EQ(future.wait_for(std::chrono::seconds{20}), std::future_status::ready);
  const auto answer = future.get();
  ASSERT_TRUE(answer.err);
  // StorageUnavailable (503) would promise that nothing was stored.
  EXPECT_THROW(std::rethrow_exception(answer.err), core::OutcomeUnknown);
  EXPECT_EQ(schema_->query("SELECT delta FROM metrics WHERE name = 'c'"), "6");
  EXPECT_EQ(schema_->query("SELECT total FROM series WHERE name = 'c'"), "6");
}

TEST_F(PostgresFaultTest, ALostCommitAnswerIsFoundOnceTheDatabaseIsBackAndCountedOnce) {
  auto o = options();
  o.retry_delays = {std::chrono::milliseconds{300}, std::chrono::milliseconds{300},
                    std::chrono::milliseconds{300}};
  PostgresRepository repo(o);
  auto future = lose_a_commit_answer(repo);
  proxy_->reopen();
  ASSERT_EQ(future.wait_for(std::chrono::seconds{20}), std::future_status::ready);
  const auto answer = future.get();
  ASSERT_FALSE(answer.err);
  EXPECT_EQ(answer.stored.series, std::vector{at(Point::counter("c", 6, fault_labels()), 20)});
  EXPECT_EQ(answer.stored.classic, std::vector{Point::counter("c", 6)});
  EXPECT_EQ(schema_->query("SELECT delta FROM metrics WHERE name = 'c'"), "6");
  EXPECT_EQ(schema_->query("SELECT total FROM series WHERE name = 'c'"), "6");
  EXPECT_EQ(schema_->query("SELECT updated_at FROM series WHERE name = 'c'"), "20");
}

TEST_F(PostgresFaultTest, WhileTheDatabaseIsDownRequestsFailAtOnceAndItReconnectsByItself) {
  auto clock = std::make_shared<core::ManualClock>();
  auto o = options();
  o.connections = 2;
  // The production delays and probe interval, on a clock that moves only
  // when told: a request that cannot have been stored must not wait through
  // the delays while the database is down.
  o.retry_delays = {std::chrono::seconds{1}, std::chrono::seconds{3}, std::chrono::seconds{5}};
  o.reconnect_interval = std::chrono::milliseconds{500};
  o.clock = clock;
  LogCapture log;
  PostgresRepository repo(o);
  const auto l = fault_labels();
  // Labelled load: each write adds to the labelled series, the unlabelled
  // one and (twice) the classic value. A write waits one quiet step of the
  // group commit's linger on the clock.
  const auto write = [&](std::int64_t delta) {
    auto result = std::async(std::launch::async, [&repo, &l, delta] {
      return apply_sync(repo, {Update::counter("c", delta, l), Update::counter("c", delta)});
    });
    const auto step = clock->await_waiter();
    EXPECT_TRUE(step);
    if (step) clock->advance(*step - clock->steady_now());
    return result;
  };
  ASSERT_EQ(write(1).get().classic, (std::vector{Point::counter("c", 2), Point::counter("c", 2)}));
  proxy_->cut();
  const auto start = clock->steady_now();
  auto lost = write(1);
  ASSERT_EQ(lost.wait_for(std::chrono::seconds{10}), std::future_status::ready);
  EXPECT_THROW(lost.get(), core::StorageUnavailable);
  EXPECT_THROW(apply_sync(repo, {Update::counter("c", 1, l)}), core::StorageUnavailable);
  EXPECT_THROW(get_sync(repo, series(MetricType::counter, "c", l)), core::StorageUnavailable);
  EXPECT_THROW(get_classic_sync(repo, counter_key("c")), core::StorageUnavailable);
  EXPECT_THROW(list_series_sync(repo), core::StorageUnavailable);
  EXPECT_THROW(expire_sync(repo, 1), core::StorageUnavailable);
  EXPECT_THROW(ping_sync(repo), core::StorageUnavailable);
  // Not one retry delay was waited: only the linger step passed.
  EXPECT_LT(clock->steady_now() - start, std::chrono::milliseconds{1});
  proxy_->reopen();
  // No ping needed: an idle worker reconnects after reconnect_interval.
  const auto probe = clock->await_waiter();
  ASSERT_TRUE(probe);
  EXPECT_EQ(*probe - clock->steady_now(), std::chrono::milliseconds{500});
  EXPECT_THROW(apply_sync(repo, {Update::counter("c", 1, l)}), core::StorageUnavailable);
  clock->advance(*probe - clock->steady_now());
  for (int i = 0; i < 2000 && log.count("database reachable again") == 0; ++i)
    std::this_thread::sleep_for(std::chrono::milliseconds{5});
  ASSERT_EQ(log.count("database reachable again"), 1u);
  const auto applied = write(1).get();
  EXPECT_EQ(applied.series, (std::vector{Point::counter("c", 2, l), Point::counter("c", 2)}));
  EXPECT_EQ(applied.classic, (std::vector{Point::counter("c", 4), Point::counter("c", 4)}));
  // Nothing of the failed writes was stored, in either table.
  EXPECT_EQ(get_sync(repo, series(MetricType::counter, "c", l)), Point::counter("c", 2, l));
  EXPECT_EQ(get_classic_sync(repo, counter_key("c")), Point::counter("c", 4));
  EXPECT_TRUE(ping_sync(repo));
}

TEST(PostgresRedact, HidesPasswords) {
  EXPECT_EQ(PostgresRepository::redact_dsn("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db");
  EXPECT_EQ(PostgresRepository::redact_dsn("host=h user=u password=secret dbname=d"),
            "host=h user=u password=*** dbname=d");
  EXPECT_EQ(PostgresRepository::redact_dsn("postgres://u@h/db?password=secret&sslmode=disable"),
            "postgres://u@h/db?password=***&sslmode=disable");
}

}  // namespace
}  // namespace metrics::storage::testing
