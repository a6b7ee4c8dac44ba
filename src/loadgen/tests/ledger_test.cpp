#include "metrics/loadgen/ledger.hpp"

#include <gtest/gtest.h>

#include "metrics/core/value_format.hpp"

namespace metrics::loadgen {
namespace {

constexpr std::size_t kSlots = 4;  // counter, hot counter, two gauges
Workload unlabelled() {
  return Workload{"t_", kSlots, Mode::batch, false};
}
Workload labelled() {
  return Workload{"t_", kSlots, Mode::batch, true};
}

std::string first(const VerifyResult& r) {
  return r.messages.empty() ? std::string() : r.messages[0];
}
bool mentions(const VerifyResult& r, const std::string& text) {
  for (const auto& m : r.messages)
    if (m.find(text) != std::string::npos) return true;
  return false;
}

// What a correct server holds for one agent's own targets (both scopes,
// whichever are not shared): its counter total `c`, its hot total `hot` and
// the gauges of request `last_seq`.
void observe_agent(Ledger& l, const Workload& w, std::uint32_t agent, std::int64_t c,
                   std::int64_t hot, std::uint64_t last_seq) {
  for (Scope scope : {Scope::series, Scope::classic}) {
    for (std::size_t s = 0; s < kSlots; ++s) {
      const ReadTarget t{scope, s};
      if (shared_target(w, t)) continue;
      l.observe(agent, t,
                s == 0   ? Observation::counter(c)
                : s == 1 ? Observation::counter(hot)
                         : Observation::gauge(gauge_value(agent, s, last_seq)));
    }
  }
}

// The shared targets: counters summed over the agents, gauges as written last
// by `last_agent` with its request `last_seq`.
void observe_shared(Ledger& l, const Workload& w, std::int64_t c, std::int64_t hot,
                    std::uint32_t last_agent, std::uint64_t last_seq) {
  for (Scope scope : {Scope::series, Scope::classic}) {
    for (std::size_t s = 0; s < kSlots; ++s) {
      const ReadTarget t{scope, s};
      if (!shared_target(w, t)) continue;
      l.observe(0, t,
                s == 0   ? Observation::counter(c)
                : s == 1 ? Observation::counter(hot)
                         : Observation::gauge(gauge_value(last_agent, s, last_seq)));
    }
  }
}

TEST(CounterExpectation, ExactWithoutDoubt) {
  CounterExpectation e;
  e.add(3, Outcome::acknowledged);
  e.add(4, Outcome::rejected);
  EXPECT_TRUE(e.accepts(3));
  EXPECT_FALSE(e.accepts(7));
  EXPECT_FALSE(e.accepts(2));
  EXPECT_FALSE(e.accepts(std::nullopt));
}

TEST(CounterExpectation, DoubtWidensTheRange) {
  CounterExpectation e;
  e.add(3, Outcome::acknowledged);
  e.add(5, Outcome::in_doubt);
  EXPECT_TRUE(e.accepts(3));
  EXPECT_TRUE(e.accepts(8));
  EXPECT_FALSE(e.accepts(9));
  EXPECT_EQ(e.in_doubt_requests, 1u);
  CounterExpectation none;
  none.add(2, Outcome::in_doubt);
  EXPECT_TRUE(none.accepts(std::nullopt));  // the only request may never have landed
  EXPECT_TRUE(none.accepts(2));
}

// ---------------------------------------------------------------- unlabelled

TEST(Ledger, CorrectServerPasses) {
  const Workload w = unlabelled();
  Ledger l(w, 2);
  std::int64_t sum[2] = {0, 0};
  std::int64_t hot = 0;
  for (std::uint64_t seq = 1; seq <= 10; ++seq) {
    for (std::uint32_t a = 0; a < 2; ++a) {
      const bool ok = seq != 4;  // request 4 of each agent is rejected
      l.record(a, seq, ok ? Outcome::acknowledged : Outcome::rejected);
      if (ok) {
        sum[a] += agent_counter_delta(seq);
        hot += hot_counter_delta(seq);
      }
    }
  }
  observe_agent(l, w, 0, sum[0], 0, 10);
  observe_agent(l, w, 1, sum[1], 0, 10);
  observe_shared(l, w, 0, hot, 0, 0);
  const auto r = l.check();
  EXPECT_TRUE(r.ok()) << first(r);
  // Per agent: counter and two gauges, as series and as classic values;
  // then the hot counter's series and classic value.
  EXPECT_EQ(r.checked, 2u * 6 + 2);
  EXPECT_EQ(r.mismatches, 0u);
}

TEST(Ledger, LostAcknowledgedUpdateIsAMismatch) {
  const Workload w = unlabelled();
  Ledger l(w, 1);
  l.record(0, 1, Outcome::acknowledged);
  l.record(0, 2, Outcome::acknowledged);
  observe_agent(l, w, 0, agent_counter_delta(1), 0, 2);  // the server lost request 2's delta
  observe_shared(l, w, 0, hot_counter_delta(1) + hot_counter_delta(2), 0, 0);
  const auto r = l.check();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.mismatches, 2u);  // the series and the classic value
  EXPECT_TRUE(mentions(r, "counter t_a0_c{}: ")) << first(r);
  EXPECT_TRUE(mentions(r, "counter t_a0_c (classic): ")) << first(r);
}

TEST(Ledger, SeriesAndClassicValueAreCheckedApart) {
  const Workload w = unlabelled();
  Ledger l(w, 1);
  l.record(0, 1, Outcome::acknowledged);
  observe_agent(l, w, 0, agent_counter_delta(1), 0, 1);
  observe_shared(l, w, 0, hot_counter_delta(1), 0, 0);
  // The classic value is right, the series without labels lost the write.
  l.observe(0, {Scope::series, 0}, Observation::absent());
  const auto r = l.check();
  EXPECT_EQ(r.mismatches, 1u);
  EXPECT_TRUE(mentions(r, "counter t_a0_c{}: server has absent (404)")) << first(r);
}

TEST(Ledger, StaleGaugeIsAMismatch) {
  const Workload w = unlabelled();
  Ledger l(w, 1);
  l.record(0, 1, Outcome::acknowledged);
  l.record(0, 2, Outcome::acknowledged);
  observe_agent(l, w, 0, agent_counter_delta(1) + agent_counter_delta(2), 0, 1);  // gauges from 1
  observe_shared(l, w, 0, hot_counter_delta(1) + hot_counter_delta(2), 0, 0);
  const auto r = l.check();
  EXPECT_EQ(r.mismatches, 4u);  // both gauges, series and classic
  EXPECT_TRUE(mentions(r, "gauge t_a0_g1 (classic): ")) << first(r);
}

TEST(Ledger, HotCounterSumsOverAgents) {
  const Workload w = unlabelled();
  Ledger l(w, 2);
  l.record(0, 1, Outcome::acknowledged);
  l.record(1, 1, Outcome::acknowledged);
  observe_agent(l, w, 0, agent_counter_delta(1), 0, 1);
  observe_agent(l, w, 1, agent_counter_delta(1), 0, 1);
  observe_shared(l, w, 0, hot_counter_delta(1), 0, 0);  // one of the two hot deltas lost
  const auto r = l.check();
  EXPECT_EQ(r.mismatches, 2u);
  EXPECT_TRUE(mentions(r, "counter t_loadgen_hot{}: ")) << first(r);
  observe_shared(l, w, 0, 2 * hot_counter_delta(1), 0, 0);
  EXPECT_TRUE(l.check().ok());
  EXPECT_EQ(l.total_expectation(1).acknowledged, 2 * hot_counter_delta(1));
}

TEST(Ledger, InDoubtRequestsMayOrMayNotHaveLanded) {
  for (bool landed : {false, true}) {
    const Workload w = unlabelled();
    Ledger l(w, 1);
    l.record(0, 1, Outcome::acknowledged);
    l.record(0, 2, Outcome::in_doubt);
    const std::uint64_t last = landed ? 2 : 1;
    const std::int64_t c = agent_counter_delta(1) + (landed ? agent_counter_delta(2) : 0);
    const std::int64_t h = hot_counter_delta(1) + (landed ? hot_counter_delta(2) : 0);
    observe_agent(l, w, 0, c, 0, last);
    observe_shared(l, w, 0, h, 0, 0);
    const auto r = l.check();
    EXPECT_TRUE(r.ok()) << landed << first(r);
    EXPECT_EQ(r.in_doubt_requests, 1u);
  }
}

// The attempts of one request through next_step, as the runner drives
// them: the final step (resend only when the attempts ran out).
Step drive(std::initializer_list<unsigned> attempts, bool keys) {
  bool resending = false;
  Step step = Step::resend;
  for (unsigned status : attempts) {
    step = next_step(status, keys, resending);
    if (step != Step::resend) return step;
    resending = true;
  }
  return step;
}

TEST(NextStep, WithoutKeysAnUnknownOutcomeIsFinal) {
  EXPECT_EQ(next_step(200, false, false), Step::acknowledged);
  EXPECT_EQ(next_step(0, false, false), Step::in_doubt);  // timeout, reset, cut
  EXPECT_EQ(next_step(500, false, false), Step::in_doubt);
  EXPECT_EQ(next_step(504, false, false), Step::in_doubt);
  EXPECT_EQ(next_step(503, false, false), Step::rejected);
  EXPECT_EQ(next_step(400, false, false), Step::rejected);
  EXPECT_EQ(next_step(409, false, false), Step::rejected);
}

TEST(NextStep, WithKeysAnUnknownOutcomeIsResentUntilAnswered) {
  EXPECT_EQ(next_step(0, true, false), Step::resend);
  EXPECT_EQ(next_step(500, true, false), Step::resend);
  EXPECT_EQ(next_step(504, true, true), Step::resend);
  EXPECT_EQ(next_step(409, true, false), Step::resend);       // the first still in flight
  EXPECT_EQ(next_step(200, true, true), Step::acknowledged);  // a replay
  // A fresh request's 503 or 4xx stored nothing, as without keys ...
  EXPECT_EQ(next_step(503, true, false), Step::rejected);
  EXPECT_EQ(next_step(429, true, false), Step::rejected);
  EXPECT_EQ(next_step(400, true, false), Step::rejected);
  // ... but once an attempt is in doubt, a 503 says nothing of it: resend.
  EXPECT_EQ(next_step(503, true, true), Step::resend);
  EXPECT_EQ(next_step(429, true, true), Step::resend);
  // A resend refused for good cannot be resolved.
  EXPECT_EQ(next_step(400, true, true), Step::in_doubt);
  EXPECT_EQ(next_step(422, true, true), Step::in_doubt);
  EXPECT_EQ(drive({0, 500, 503, 409, 200}, true), Step::acknowledged);
  EXPECT_EQ(drive({0, 500, 200}, false), Step::in_doubt);
}

// With keys every request ends acknowledged or rejected, so the check is
// exact: the request whose answers were lost must have been applied exactly
// once. Without keys it is in doubt, and a server that lost it passes too.
TEST(Ledger, KeyedResendsLeaveNothingInDoubtAndTheCheckIsExact) {
  const Workload w = unlabelled();
  for (bool keys : {false, true}) {
    for (int times : {0, 1, 2}) {
      Ledger l(w, 1);
      // Request 1: the connection was cut, then a 500, then (keys) a 200 replay.
      const Step one = drive({0, 500, 200}, keys);
      l.record(0, 1, one == Step::acknowledged ? Outcome::acknowledged : Outcome::in_doubt);
      ASSERT_EQ(drive({200}, keys), Step::acknowledged);
      l.record(0, 2, Outcome::acknowledged);
      // The server applied request 1 `times` times.
      const std::int64_t c = times * agent_counter_delta(1) + agent_counter_delta(2);
      const std::int64_t h = times * hot_counter_delta(1) + hot_counter_delta(2);
      observe_agent(l, w, 0, c, 0, 2);
      observe_shared(l, w, 0, h, 0, 0);
      const auto r = l.check();
      EXPECT_EQ(r.in_doubt_requests, keys ? 0u : 1u);
      const bool expected_ok = keys ? times == 1 : times <= 1;
      EXPECT_EQ(r.ok(), expected_ok)
          << "keys " << keys << ", applied " << times << ": " << first(r);
    }
  }
}

TEST(Ledger, BaselineIsSubtracted) {
  const Workload w = unlabelled();
  Ledger l(w, 1);
  l.set_baseline(0, {Scope::series, 0}, Observation::counter(100));
  l.set_baseline(0, {Scope::classic, 0}, Observation::counter(200));
  l.set_baseline(0, {Scope::series, 1}, Observation::counter(1000));
  l.set_baseline(0, {Scope::classic, 1}, Observation::counter(1000));
  l.record(0, 1, Outcome::acknowledged);
  observe_agent(l, w, 0, 100 + agent_counter_delta(1), 0, 1);
  l.observe(0, {Scope::classic, 0}, Observation::counter(200 + agent_counter_delta(1)));
  observe_shared(l, w, 0, 1000 + hot_counter_delta(1), 0, 0);
  const auto r = l.check();
  EXPECT_TRUE(r.ok()) << first(r);
}

TEST(Ledger, UnreadBaselineIsUnverified) {
  const Workload w = unlabelled();
  Ledger l(w, 1);
  l.set_baseline(0, {Scope::series, 0}, Observation::failed());
  l.record(0, 1, Outcome::acknowledged);
  observe_agent(l, w, 0, agent_counter_delta(1), 0, 1);
  observe_shared(l, w, 0, hot_counter_delta(1), 0, 0);
  const auto r = l.check();
  EXPECT_EQ(r.unverified, 1u);
  EXPECT_EQ(r.mismatches, 0u);
}

TEST(Ledger, UnreadMetricsAreUnverifiedNotPassed) {
  const Workload w = unlabelled();
  Ledger l(w, 1);
  l.record(0, 1, Outcome::acknowledged);
  observe_shared(l, w, 0, hot_counter_delta(1), 0, 0);
  const auto r = l.check();  // the agent's counter and gauges were never read back
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.unverified, 6u);
}

TEST(Ledger, ExcludedAgentsAreSkipped) {
  const Workload w = unlabelled();
  Ledger l(w, 2);
  l.exclude(1);
  l.record(0, 1, Outcome::acknowledged);
  observe_agent(l, w, 0, agent_counter_delta(1), 0, 1);
  observe_shared(l, w, 0, hot_counter_delta(1), 0, 0);
  EXPECT_TRUE(l.check().ok());
}

TEST(Ledger, SingleMetricModeChecksOnlyWrittenGauges) {
  const Workload w{"t_", kSlots, Mode::json, false};
  Ledger l(w, 1);
  l.record(0, 1, Outcome::acknowledged);  // slot 0: the counter
  l.record(0, 3, Outcome::acknowledged);  // slot 2: the first gauge
  for (Scope scope : {Scope::series, Scope::classic}) {
    l.observe(0, {scope, 0}, Observation::counter(agent_counter_delta(1)));
    l.observe(0, {scope, 2}, Observation::gauge(gauge_value(0, 2, 3)));
    l.observe(0, {scope, 3}, Observation::absent());  // never written: absent
    l.observe(0, {scope, 1}, Observation::absent());  // request 2 was never sent
  }
  const auto r = l.check();
  EXPECT_TRUE(r.ok()) << first(r);
  EXPECT_EQ(r.checked, 6u);  // counter, gauge 0, hot; series and classic
}

TEST(Ledger, AnswerForAnotherSeriesIsAMismatch) {
  const Workload w = unlabelled();
  Ledger l(w, 1);
  l.record(0, 1, Outcome::acknowledged);
  observe_agent(l, w, 0, agent_counter_delta(1), 0, 1);
  observe_shared(l, w, 0, hot_counter_delta(1), 0, 0);
  Observation wrong = Observation::gauge(gauge_value(0, 2, 1));  // right value...
  wrong.foreign = true;                                          // ...of another series
  l.observe(0, {Scope::series, 2}, wrong);
  const auto r = l.check();
  EXPECT_EQ(r.mismatches, 1u);
  EXPECT_TRUE(mentions(r, "gauge t_a0_g0{}: server has another series")) << first(r);
}

// ---------------------------------------------------------------- labelled

// Three agents, requests 1..n each acknowledged; returns the per-agent sums.
struct LabelledRun {
  static constexpr std::uint32_t kAgents = 3;
  static constexpr std::uint64_t kRequests = 5;
  Workload w = labelled();
  Ledger l{w, kAgents};
  std::int64_t c = 0;    // one agent's slot-0 total
  std::int64_t hot = 0;  // one agent's slot-1 total

  LabelledRun() {
    for (std::uint64_t seq = 1; seq <= kRequests; ++seq) {
      for (std::uint32_t a = 0; a < kAgents; ++a)
        l.record(a, seq, Outcome::acknowledged);
      c += agent_counter_delta(seq);
      hot += hot_counter_delta(seq);
    }
    for (std::uint32_t a = 0; a < kAgents; ++a)
      observe_agent(l, w, a, c, hot, kRequests);
    // The classic values: every agent's deltas; the gauges as agent 2 wrote them last.
    observe_shared(l, w, kAgents * c, kAgents * hot, 2, kRequests);
  }
};

TEST(Ledger, LabelledCorrectServerPasses) {
  LabelledRun run;
  const auto r = run.l.check();
  EXPECT_TRUE(r.ok()) << first(r);
  // Every agent's 4 series, then the 4 classic values.
  EXPECT_EQ(r.checked, LabelledRun::kAgents * kSlots + kSlots);
}

TEST(Ledger, LabelledSeriesMismatchNamesTheInstance) {
  LabelledRun run;
  run.l.observe(1, {Scope::series, 0}, Observation::counter(run.c - 1));
  run.l.observe(1, {Scope::series, 3}, Observation::gauge(gauge_value(1, 3, 4)));
  const auto r = run.l.check();
  EXPECT_EQ(r.mismatches, 2u);
  EXPECT_TRUE(mentions(r, "counter t_c{instance=\"loadgen-1\",job=\"loadgen\"}: server has " +
                              std::to_string(run.c - 1)))
      << first(r);
  EXPECT_TRUE(mentions(r, "gauge t_g1{instance=\"loadgen-1\",job=\"loadgen\"}: ")) << first(r);
}

TEST(Ledger, LabelledClassicCounterIsTheExactSumOverInstances) {
  LabelledRun run;
  // One instance's share missing from the classic value (the series are right).
  run.l.observe(0, {Scope::classic, 0}, Observation::counter(2 * run.c));
  run.l.observe(0, {Scope::classic, 1}, Observation::counter(3 * run.hot + 1));
  const auto r = run.l.check();
  EXPECT_EQ(r.mismatches, 2u);
  EXPECT_TRUE(mentions(r, "counter t_c (classic): server has " + std::to_string(2 * run.c) +
                              ", expected " + std::to_string(3 * run.c)))
      << first(r);
  EXPECT_TRUE(mentions(r, "counter t_loadgen_hot (classic): ")) << first(r);
  EXPECT_EQ(run.l.total_expectation(0).acknowledged, 3 * run.c);
  EXPECT_EQ(run.l.counter_expectation(1, 0).acknowledged, run.c);
}

TEST(Ledger, LabelledClassicGaugeIsTheLastValueOfOneOfItsSeries) {
  for (std::uint32_t last : {0u, 1u, 2u}) {  // whichever agent the server applied last
    LabelledRun run;
    run.l.observe(0, {Scope::classic, 2}, Observation::gauge(gauge_value(last, 2, 5)));
    EXPECT_TRUE(run.l.check().ok()) << last;
  }
  LabelledRun run;
  // An older value of agent 0: no series ends with it.
  run.l.observe(0, {Scope::classic, 2}, Observation::gauge(gauge_value(0, 2, 4)));
  // The classic value lost every write.
  run.l.observe(0, {Scope::classic, 3}, Observation::absent());
  const auto r = run.l.check();
  EXPECT_EQ(r.mismatches, 2u);
  EXPECT_TRUE(mentions(r, "gauge t_g0 (classic): server has " +
                              core::format_gauge(gauge_value(0, 2, 4)) +
                              ", expected the last value written to one of its 3 series"))
      << first(r);
  EXPECT_TRUE(mentions(r, "gauge t_g1 (classic): server has absent (404)")) << first(r);
}

TEST(Ledger, LabelledClassicGaugeOfASingleWriterIsExact) {
  const Workload w = labelled();
  Ledger l(w, 2);
  l.exclude(1);  // never connected: only agent 0 wrote
  l.record(0, 1, Outcome::acknowledged);
  l.record(0, 2, Outcome::acknowledged);
  const std::int64_t c = agent_counter_delta(1) + agent_counter_delta(2);
  const std::int64_t hot = hot_counter_delta(1) + hot_counter_delta(2);
  observe_agent(l, w, 0, c, hot, 2);
  observe_shared(l, w, c, hot, 0, 2);
  EXPECT_TRUE(l.check().ok());
  l.observe(0, {Scope::classic, 2}, Observation::gauge(gauge_value(0, 2, 1)));
  EXPECT_EQ(l.check().mismatches, 1u);
}

TEST(Ledger, LabelledInDoubtWidensSeriesAndClassicValues) {
  const Workload w = labelled();
  Ledger l(w, 2);
  l.record(0, 1, Outcome::acknowledged);
  l.record(1, 1, Outcome::acknowledged);
  l.record(1, 2, Outcome::in_doubt);  // it landed
  observe_agent(l, w, 0, agent_counter_delta(1), hot_counter_delta(1), 1);
  observe_agent(l, w, 1, agent_counter_delta(1) + agent_counter_delta(2),
                hot_counter_delta(1) + hot_counter_delta(2), 2);
  observe_shared(l, w, 2 * agent_counter_delta(1) + agent_counter_delta(2),
                 2 * hot_counter_delta(1) + hot_counter_delta(2), 1, 2);
  const auto r = l.check();
  EXPECT_TRUE(r.ok()) << first(r);
  EXPECT_EQ(r.in_doubt_requests, 1u);
}

TEST(Ledger, LabelledUnreadClassicValuesAreUnverified) {
  const Workload w = labelled();
  Ledger l(w, 1);
  l.record(0, 1, Outcome::acknowledged);
  observe_agent(l, w, 0, agent_counter_delta(1), hot_counter_delta(1), 1);
  const auto r = l.check();  // nobody read the classic values
  EXPECT_EQ(r.unverified, kSlots);
  EXPECT_TRUE(mentions(r, "counter t_c (classic): could not be read back")) << first(r);
}

}  // namespace
}  // namespace metrics::loadgen
