#include "metrics/loadgen/ledger.hpp"

#include <gtest/gtest.h>

namespace metrics::loadgen {
namespace {

constexpr std::size_t kSlots = 4;  // counter, hot counter, two gauges
Workload batch() {
  return Workload{"t_", kSlots, Mode::batch};
}

// Observes exactly what a correct server would hold after the recorded outcomes.
void observe_truth(Ledger& l, std::uint32_t agent, std::int64_t counter, std::uint64_t last_seq) {
  l.observe_counter(agent, {true, counter});
  for (std::size_t s = 2; s < kSlots; ++s)
    l.observe_gauge(agent, s, {true, gauge_value(agent, s, last_seq)});
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

TEST(Ledger, CorrectServerPasses) {
  Ledger l(batch(), 2, 2);
  std::int64_t sum[2] = {0, 0};
  std::int64_t hot = 0;
  for (std::uint64_t seq = 1; seq <= 10; ++seq) {
    for (std::uint32_t a = 0; a < 2; ++a) {
      const bool ok = seq != 4;  // request 4 of each agent is rejected
      l.record(a, a, seq, ok ? Outcome::acknowledged : Outcome::rejected);
      if (ok) {
        sum[a] += agent_counter_delta(seq);
        hot += hot_counter_delta(seq);
      }
    }
  }
  observe_truth(l, 0, sum[0], 10);
  observe_truth(l, 1, sum[1], 10);
  l.observe_hot({true, hot});
  const auto r = l.check();
  EXPECT_TRUE(r.ok()) << (r.messages.empty() ? "" : r.messages[0]);
  EXPECT_EQ(r.checked, 2u * 3 + 1);
  EXPECT_EQ(r.mismatches, 0u);
}

TEST(Ledger, LostAcknowledgedUpdateIsAMismatch) {
  Ledger l(batch(), 1, 1);
  l.record(0, 0, 1, Outcome::acknowledged);
  l.record(0, 0, 2, Outcome::acknowledged);
  observe_truth(l, 0, agent_counter_delta(1), 2);  // the server lost request 2's delta
  l.observe_hot({true, hot_counter_delta(1) + hot_counter_delta(2)});
  const auto r = l.check();
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.mismatches, 1u);
  ASSERT_FALSE(r.messages.empty());
  EXPECT_NE(r.messages[0].find("t_a0_c"), std::string::npos);
}

TEST(Ledger, StaleGaugeIsAMismatch) {
  Ledger l(batch(), 1, 1);
  l.record(0, 0, 1, Outcome::acknowledged);
  l.record(0, 0, 2, Outcome::acknowledged);
  observe_truth(l, 0, agent_counter_delta(1) + agent_counter_delta(2), 1);  // gauges from 1
  l.observe_hot({true, hot_counter_delta(1) + hot_counter_delta(2)});
  const auto r = l.check();
  EXPECT_EQ(r.mismatches, 2u);  // both gauges
}

TEST(Ledger, HotCounterSumsOverShards) {
  Ledger l(batch(), 2, 2);
  l.record(0, 0, 1, Outcome::acknowledged);
  l.record(1, 1, 1, Outcome::acknowledged);
  observe_truth(l, 0, agent_counter_delta(1), 1);
  observe_truth(l, 1, agent_counter_delta(1), 1);
  l.observe_hot({true, hot_counter_delta(1)});  // one of the two hot deltas lost
  EXPECT_EQ(l.check().mismatches, 1u);
  l.observe_hot({true, 2 * hot_counter_delta(1)});
  EXPECT_TRUE(l.check().ok());
}

TEST(Ledger, InDoubtRequestsMayOrMayNotHaveLanded) {
  for (bool landed : {false, true}) {
    Ledger l(batch(), 1, 1);
    l.record(0, 0, 1, Outcome::acknowledged);
    l.record(0, 0, 2, Outcome::in_doubt);
    const std::uint64_t last = landed ? 2 : 1;
    const std::int64_t c = agent_counter_delta(1) + (landed ? agent_counter_delta(2) : 0);
    const std::int64_t h = hot_counter_delta(1) + (landed ? hot_counter_delta(2) : 0);
    observe_truth(l, 0, c, last);
    l.observe_hot({true, h});
    const auto r = l.check();
    EXPECT_TRUE(r.ok()) << landed;
    EXPECT_EQ(r.in_doubt_requests, 1u);
  }
}

TEST(Ledger, BaselineIsSubtracted) {
  Ledger l(batch(), 1, 1);
  l.set_baseline(0, {true, 100});
  l.set_hot_baseline({true, 1000});
  l.record(0, 0, 1, Outcome::acknowledged);
  observe_truth(l, 0, 100 + agent_counter_delta(1), 1);
  l.observe_hot({true, 1000 + hot_counter_delta(1)});
  EXPECT_TRUE(l.check().ok());
}

TEST(Ledger, UnreadMetricsAreUnverifiedNotPassed) {
  Ledger l(batch(), 1, 1);
  l.record(0, 0, 1, Outcome::acknowledged);
  l.observe_hot({true, hot_counter_delta(1)});
  const auto r = l.check();  // the agent's counter and gauges were never read back
  EXPECT_FALSE(r.ok());
  EXPECT_EQ(r.unverified, 3u);
}

TEST(Ledger, ExcludedAgentsAreSkipped) {
  Ledger l(batch(), 2, 1);
  l.exclude(1);
  l.record(0, 0, 1, Outcome::acknowledged);
  observe_truth(l, 0, agent_counter_delta(1), 1);
  l.observe_hot({true, hot_counter_delta(1)});
  EXPECT_TRUE(l.check().ok());
}

TEST(Ledger, SingleMetricModeChecksOnlyWrittenGauges) {
  Ledger l(Workload{"t_", kSlots, Mode::json}, 1, 1);
  l.record(0, 0, 1, Outcome::acknowledged);  // slot 0: the counter
  l.record(0, 0, 3, Outcome::acknowledged);  // slot 2: the first gauge
  l.observe_counter(0, {true, agent_counter_delta(1)});
  l.observe_gauge(0, 2, {true, gauge_value(0, 2, 3)});
  l.observe_gauge(0, 3, {true, std::nullopt});  // never written: absent
  l.observe_hot({true, std::nullopt});          // request 2 was never sent
  const auto r = l.check();
  EXPECT_TRUE(r.ok()) << (r.messages.empty() ? "" : r.messages[0]);
  EXPECT_EQ(r.checked, 3u);  // counter, gauge 0, hot
}

}  // namespace
}  // namespace metrics::loadgen
