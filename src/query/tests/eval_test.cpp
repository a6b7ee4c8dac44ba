// Evaluator tests over the MemoryQueryable: lookback and staleness, rate
// extrapolation, counter resets, matching errors, limits, timeouts, range
// query steps and the label functions.
#include <gtest/gtest.h>

#include <bit>
#include <cmath>

#include "metrics/query/engine.hpp"

namespace metrics::query {
namespace {

constexpr std::int64_t kMin = 60'000;
const double kStale = std::bit_cast<double>(0x7ff0000000000002ULL);

LabelSet series(std::string name, std::vector<core::Label> labels = {}) {
  labels.push_back({"__name__", std::move(name)});
  return make_labels(std::move(labels));
}

Vector vec(Result r) {
  return std::get<Vector>(std::move(r));
}
Matrix mat(Result r) {
  return std::get<Matrix>(std::move(r));
}

QueryError query_error(const Engine& engine, const Queryable& q, std::string_view query,
                       std::int64_t t, const QueryControl& control = {}) {
  try {
    (void)engine.instant(q, query, t, control);
  } catch (const QueryError& e) {
    return e;
  }
  ADD_FAILURE() << query << " did not fail";
  return QueryError(ErrorType::bad_data, "");
}

TEST(Eval, LookbackIncludesItsStartAndStaleMarkerEndsTheSeries) {
  MemoryQueryable store;
  store.add(series("g"), 1000, 5);
  store.add(series("h"), 1000, 7);
  store.add(series("h"), 2000, kStale);
  Engine engine;
  EXPECT_EQ(vec(engine.instant(store, "g", 1000 + 5 * kMin)).size(), 1u);
  EXPECT_TRUE(vec(engine.instant(store, "g", 1000 + 5 * kMin + 1)).empty());
  EXPECT_EQ(vec(engine.instant(store, "h", 1500)).size(), 1u);
  EXPECT_TRUE(vec(engine.instant(store, "h", 2000)).empty());
  // The stale marker is also left out of a range.
  const auto& m = mat(engine.instant(store, "h[1m]", 3000));
  ASSERT_EQ(m.size(), 1u);
  EXPECT_EQ(m[0].points.size(), 1u);
}

// A function that drops the name may make two elements one label set:
// found among many elements wherever they sit, and only when they are equal.
TEST(Eval, RepeatedLabelSetAfterDroppingTheNameIsAnError) {
  MemoryQueryable store;
  for (int i = 0; i < 50; ++i) {
    store.add(series("a", {{"i", std::to_string(i)}}), 0, 1);
    store.add(series("b", {{"i", std::to_string(i + 50)}}), 0, 1);
  }
  Engine engine;
  EXPECT_EQ(vec(engine.instant(store, "abs({__name__=~\"a|b\"})", 1000)).size(), 100u);
  store.add(series("b", {{"i", "17"}}), 0, 1);
  const auto e = query_error(engine, store, "abs({__name__=~\"a|b\"})", 1000);
  EXPECT_STREQ(e.what(), "vector cannot contain metrics with the same labelset");
}

TEST(Eval, LookbackDeltaIsConfigurable) {
  MemoryQueryable store;
  store.add(series("g"), 0, 5);
  Engine engine({.lookback_delta_ms = kMin});
  EXPECT_EQ(vec(engine.instant(store, "g", kMin)).size(), 1u);
  EXPECT_TRUE(vec(engine.instant(store, "g", 2 * kMin)).empty());
}

TEST(Eval, InstantVectorTakesTheEvaluationTimeAndKeepsTheName) {
  MemoryQueryable store;
  store.add(series("g", {{"job", "a"}}), 1000, 5);
  const auto& v = vec(Engine().instant(store, "g", 4000));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].t, 4000);
  EXPECT_EQ(get(v[0].metric, "__name__"), "g");
  EXPECT_EQ(vec(Engine().instant(store, "timestamp(g)", 4000))[0].v, 1.0);
}

TEST(Eval, RateOfASteadyCounterIsExact) {
  MemoryQueryable store;
  for (int i = 0; i <= 8; ++i)
    store.add(series("c"), i * 15'000, i * 15.0);  // 1 per second
  Engine engine;
  const auto& v = vec(engine.instant(store, "rate(c[1m])", 120'000));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].v, 1.0);
  EXPECT_TRUE(v[0].metric.empty());  // rate drops the name
  EXPECT_EQ(vec(engine.instant(store, "increase(c[1m])", 120'000))[0].v, 60.0);
}

TEST(Eval, CounterResetIsAddedBack) {
  MemoryQueryable store;
  store.add(series("c"), 0, 10);
  store.add(series("c"), 15'000, 20);
  store.add(series("c"), 30'000, 5);   // reset: +5 after it
  store.add(series("c"), 45'000, 15);  // +10
  store.add(series("c"), 60'000, 25);  // +10
  Engine engine;
  EXPECT_EQ(vec(engine.instant(store, "resets(c[5m])", 60'000))[0].v, 1.0);
  // 10 + 5 + 10 + 10 = 35 over 60 s sampled, range starts at the first sample (zero-point
  // extrapolation would reach back 60*(10/35) s, more than the 0 s to the start).
  EXPECT_EQ(vec(engine.instant(store, "increase(c[1m])", 60'000))[0].v, 35.0);
  EXPECT_EQ(vec(engine.instant(store, "irate(c[1m])", 60'000))[0].v, 10.0 / 15.0);
  EXPECT_EQ(vec(engine.instant(store, "delta(c[1m])", 60'000))[0].v, 15.0);
}

TEST(Eval, RangeQueryStepsFromStartWithoutAlignment) {
  MemoryQueryable store;
  for (int i = 0; i < 20; ++i)
    store.add(series("g"), i * 10'000, i);
  const auto& m = mat(Engine().range(store, "g", 7'000, 70'000, 30'000));
  ASSERT_EQ(m.size(), 1u);
  ASSERT_EQ(m[0].points.size(), 3u);
  EXPECT_EQ(m[0].points[0].t, 7'000);
  EXPECT_EQ(m[0].points[0].v, 0);
  EXPECT_EQ(m[0].points[2].t, 67'000);
  EXPECT_EQ(m[0].points[2].v, 6);
}

TEST(Eval, RangeQueryRejectsRangeVectors) {
  MemoryQueryable store;
  try {
    (void)Engine().range(store, "g[5m]", 0, 1000, 100);
    FAIL();
  } catch (const QueryError& e) {
    EXPECT_EQ(e.type(), ErrorType::bad_data);
  }
}

TEST(Eval, ManyToManyMatchingIsAnExecutionError) {
  MemoryQueryable store;
  store.add(series("a", {{"job", "x"}, {"i", "1"}}), 0, 1);
  store.add(series("a", {{"job", "x"}, {"i", "2"}}), 0, 1);
  store.add(series("b", {{"job", "x"}}), 0, 1);
  Engine engine;
  QueryError e = query_error(engine, store, "b * on(job) a", 0);
  EXPECT_EQ(e.type(), ErrorType::execution);
  EXPECT_NE(std::string(e.what()).find("many-to-many matching not allowed"), std::string::npos);
  e = query_error(engine, store, "a * on(job) b", 0);
  EXPECT_NE(std::string(e.what()).find("many-to-one matching must be explicit"), std::string::npos);
  EXPECT_EQ(vec(engine.instant(store, "a * on(job) group_left b", 0)).size(), 2u);
}

TEST(Eval, TooManySamplesIsAnExecutionError) {
  MemoryQueryable store;
  for (int i = 0; i < 100; ++i)
    store.add(series("g"), i * 1000, i);
  Engine engine({.max_samples = 50});
  QueryError e = query_error(engine, store, "sum_over_time(g[100s])", 100'000);
  EXPECT_EQ(e.type(), ErrorType::execution);
  EXPECT_STREQ(e.what(),
               "query processing would load too many samples into memory in query execution");
  EXPECT_EQ(vec(engine.instant(store, "sum_over_time(g[10s])", 100'000)).size(), 1u);
  // A range query is limited per step plus the points of its result, not
  // by the total read: 30 steps reading 11 samples each (330 in all) pass;
  // 41-sample windows with the result points gathered do not.
  EXPECT_EQ(
      mat(engine.range(store, "sum_over_time(g[10s])", 11'000, 40'000, 1000))[0].points.size(),
      30u);
  EXPECT_THROW((void)engine.range(store, "sum_over_time(g[40s])", 40'000, 99'000, 1000),
               QueryError);
}

TEST(Eval, DeadlineAndCancellation) {
  MemoryQueryable store;
  store.add(series("g"), 0, 1);
  Engine engine;
  QueryControl late{.deadline = std::chrono::steady_clock::now() - std::chrono::seconds(1)};
  EXPECT_EQ(query_error(engine, store, "g", 0, late).type(), ErrorType::timeout);
  std::atomic<bool> cancel{true};
  QueryControl cancelled{.deadline = std::nullopt, .cancel = &cancel};
  EXPECT_EQ(query_error(engine, store, "g", 0, cancelled).type(), ErrorType::canceled);
  // A subquery over an expression without a selector checks at every step:
  // 86,400,000 steps of vector(1) end at the deadline, not after them all.
  const auto start = std::chrono::steady_clock::now();
  QueryControl soon{.deadline = start + std::chrono::milliseconds(50)};
  EXPECT_EQ(query_error(engine, store, "count_over_time(vector(1)[1d:1ms])", 0, soon).type(),
            ErrorType::timeout);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

TEST(Eval, AbsentDerivesLabelsFromEqualityMatchers) {
  MemoryQueryable store;
  Engine engine;
  const auto& v = vec(engine.instant(store, R"(absent(x{job="a", env=~"p.*", i="1", i="2"}))", 0));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(v[0].metric, make_labels({{"job", "a"}}));
  EXPECT_EQ(v[0].v, 1.0);
}

TEST(Eval, LabelReplaceExpandsGoTemplates) {
  MemoryQueryable store;
  store.add(series("g", {{"instance", "host:9100"}}), 0, 1);
  Engine engine;
  const auto& v = vec(engine.instant(
      store, R"q(label_replace(g, "host", "${1}-$2$$", "instance", "(?P<h>[^:]+):(.*)"))q", 0));
  ASSERT_EQ(v.size(), 1u);
  EXPECT_EQ(get(v[0].metric, "host"), "host-9100$");
  EXPECT_EQ(get(v[0].metric, "__name__"), "g");  // label_replace keeps the name
  QueryError e = query_error(engine, store, R"(label_replace(g, "a", "b", "c", "("))", 0);
  EXPECT_EQ(e.type(), ErrorType::execution);
}

TEST(Eval, SubqueryStepsAreAlignedToMultiplesOfTheStep) {
  MemoryQueryable store;
  for (int i = 0; i < 30; ++i)
    store.add(series("g"), i * 10'000, i);
  const auto& m = mat(Engine().instant(store, "g[1m:20s]", 125'000));
  ASSERT_EQ(m.size(), 1u);
  ASSERT_EQ(m[0].points.size(), 3u);  // 80 s, 100 s, 120 s
  EXPECT_EQ(m[0].points[0].t, 80'000);
  EXPECT_EQ(m[0].points[2].v, 12);
}

TEST(Eval, AtModifierPinsTheTime) {
  MemoryQueryable store;
  for (int i = 0; i < 10; ++i)
    store.add(series("g"), i * 60'000, i);
  const auto& m = mat(Engine().range(store, "g @ 180", 0, 540'000, 60'000));
  ASSERT_EQ(m.size(), 1u);
  for (const auto& p : m[0].points)
    EXPECT_EQ(p.v, 3);
  const auto& e = mat(Engine().range(store, "g @ end()", 0, 300'000, 60'000));
  EXPECT_EQ(e[0].points.front().v, 5);
}

TEST(Eval, TopkKeepsGoHeapOrderForTies) {
  MemoryQueryable store;
  for (int i = 1; i <= 5; ++i)
    store.add(series("t", {{"id", std::to_string(i)}}), 0, i == 3 ? 7 : 5);
  const auto& v = vec(Engine().instant(store, "topk(3, t == 5)", 0));
  ASSERT_EQ(v.size(), 3u);
  // What Prometheus 2.42 answers for five equal values (checked in the
  // Prometheus comparison test as well).
  std::string ids;
  for (const auto& s : v)
    ids += get(s.metric, "id");
  EXPECT_EQ(ids, "124");
}

TEST(Eval, ScalarFunctionsAndArithmetic) {
  MemoryQueryable store;
  Engine engine;
  EXPECT_EQ(std::get<Scalar>(engine.instant(store, "2 ^ 3 ^ 2", 0)).v, 512);
  EXPECT_EQ(std::get<Scalar>(engine.instant(store, "-2 ^ 2", 0)).v, -4);
  EXPECT_EQ(std::get<Scalar>(engine.instant(store, "time()", 1500)).v, 1.5);
  EXPECT_TRUE(std::isnan(std::get<Scalar>(engine.instant(store, "scalar(nothing)", 0)).v));
  EXPECT_EQ(std::get<String>(engine.instant(store, "\"s\"", 0)).v, "s");
}

}  // namespace
}  // namespace metrics::query

namespace metrics::query {
namespace {

TEST(MemoryQueryable, SelectsByMatchersAndTimeInLabelOrder) {
  MemoryQueryable store;
  store.add(make_labels({{"__name__", "x"}, {"job", "b"}}), 1000, 1);
  store.add(make_labels({{"__name__", "x"}, {"job", "a"}}), 2000, 2);
  store.add(make_labels({{"__name__", "x"}, {"job", "a"}}), 3000, 3);
  EXPECT_THROW(store.add(make_labels({{"__name__", "x"}, {"job", "a"}}), 3000, 4),
               std::invalid_argument);
  std::vector<Matcher> m{Matcher::make(MatchType::equal, "__name__", "x")};
  auto all = store.select(m, 0, 5000);
  ASSERT_EQ(all.size(), 2u);
  EXPECT_EQ(get(all[0].labels, "job"), "a");
  EXPECT_EQ(all[0].samples.size(), 2u);
  auto late = store.select(m, 2500, 5000);
  ASSERT_EQ(late.size(), 1u);  // job=b has no sample in the range
  EXPECT_EQ(late[0].samples[0].v, 3);
  m.push_back(Matcher::make(MatchType::not_regex, "job", "a|c"));
  EXPECT_EQ(store.select(m, 0, 5000).size(), 1u);
}

}  // namespace
}  // namespace metrics::query

namespace metrics::query {
namespace {

// A store whose select_newest answers only each series' newest sample in
// the range (as the history does), counting which of the two the engine
// asks for.
class NewestOnly final : public Queryable {
 public:
  explicit NewestOnly(const MemoryQueryable& all) : all_(all) {}
  std::vector<SeriesData> select(std::span<const Matcher> m, std::int64_t mint,
                                 std::int64_t maxt) const override {
    ++whole;
    return all_.select(m, mint, maxt);
  }
  std::vector<SeriesData> select_newest(std::span<const Matcher> m, std::int64_t mint,
                                        std::int64_t maxt) const override {
    ++newest;
    auto out = all_.select(m, mint, maxt);
    for (auto& s : out)
      s.samples.erase(s.samples.begin(), s.samples.end() - 1);
    return out;
  }
  mutable int whole = 0;
  mutable int newest = 0;

 private:
  const MemoryQueryable& all_;
};

std::string text(const Result& r) {
  std::string out;
  if (const auto* v = std::get_if<Vector>(&r)) {
    for (const auto& s : *v)
      out += key_of(s.metric) + "=" + std::to_string(s.v) + "@" + std::to_string(s.t) + ";";
  } else if (const auto* m = std::get_if<Matrix>(&r)) {
    for (const auto& s : *m) {
      out += key_of(s.metric) + ":";
      for (const auto& p : s.points)
        out += std::to_string(p.v) + "@" + std::to_string(p.t) + ",";
      out += ";";
    }
  } else if (const auto* s = std::get_if<Scalar>(&r)) {
    out = std::to_string(s->v);
  }
  return out;
}

// An instant vector selector read at one time asks for the newest samples
// only; a range, a subquery, a range query and a selector read at several
// times ask for everything; the answers are those of the whole store.
TEST(Eval, OnlyAnInstantSelectorAtOneTimeAsksForTheNewestSamples) {
  MemoryQueryable store;
  for (std::int64_t t = 0; t <= 20 * kMin; t += 15'000) {
    store.add(series("g", {{"i", "a"}}), t, static_cast<double>(t % 7));
    store.add(series("g", {{"i", "b"}}), t + 5'000, static_cast<double>(t % 11));
    store.add(series("c", {{"i", "a"}}), t, static_cast<double>(t / 1000));
  }
  store.add(series("g", {{"i", "stale"}}), 0, 1);
  store.add(series("g", {{"i", "stale"}}), 19 * kMin, kStale);
  Engine engine;
  const std::int64_t t = 20 * kMin + 1'000;
  struct Case {
    std::string query;
    bool newest;
  };
  const std::vector<Case> cases{
      {"g", true},
      {"sum by (i) (g) > 2", true},
      {"g offset 3m", true},
      {"g @ 600", true},
      {"timestamp(g)", true},
      {"g / on(i) c", true},
      {"rate(c[5m])", false},
      {"max_over_time(g[5m:1m])", false},
      {"g[2m]", false},
  };
  for (const auto& c : cases) {
    NewestOnly q(store);
    EXPECT_EQ(text(engine.instant(q, c.query, t)), text(engine.instant(store, c.query, t)))
        << c.query;
    EXPECT_EQ(q.newest > 0, c.newest) << c.query;
    EXPECT_EQ(q.whole > 0, !c.newest) << c.query;
  }
  NewestOnly q(store);
  EXPECT_EQ(text(engine.range(q, "g", t - 5 * kMin, t, 15'000)),
            text(engine.range(store, "g", t - 5 * kMin, t, 15'000)));
  EXPECT_EQ(q.newest, 0);
  EXPECT_GT(q.whole, 0);
}

}  // namespace
}  // namespace metrics::query
