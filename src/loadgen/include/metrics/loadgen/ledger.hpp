// Integrity bookkeeping: what the server acknowledged, and whether what it
// finally holds agrees.
//
// Each request ends in one of three outcomes. Acknowledged (200): it must be
// in the final state. Rejected (4xx, 503): the contract says nothing of it
// was stored. In doubt (no answer: reset, timeout; or another 5xx): either
// outcome is accepted, and the count is reported. A counter must then equal
// its baseline plus the acknowledged deltas plus some of the in-doubt ones;
// with nothing in doubt, exactly the acknowledged sum. A gauge must hold the
// value of the last acknowledged request that wrote it, or of an in-doubt
// one (which may have been applied late, after a reconnect).
//
//   Ledger ledger(workload, agents, shards);
//   ledger.record(agent, shard, seq, Outcome::acknowledged);   // during the run
//   ledger.observe_counter(agent, 42);                          // verify phase
//   VerifyResult r = ledger.check();                            // at the end
//
// Thread-safety: record/observe calls for one agent must come from one thread,
// and `shard` must be that thread's own index; different agents and shards
// may be written concurrently. check() only after those threads are joined.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "metrics/loadgen/request_builder.hpp"

namespace metrics::loadgen {

enum class Outcome : std::uint8_t { acknowledged, rejected, in_doubt };

// The set of totals a counter may hold: acked + (part of the doubtful sum).
struct CounterExpectation {
  std::int64_t acknowledged = 0;
  std::int64_t in_doubt = 0;
  std::uint64_t in_doubt_requests = 0;

  void add(std::int64_t delta, Outcome outcome) noexcept;
  void merge(const CounterExpectation& other) noexcept;
  // `observed` is the server's total minus the baseline; nullopt when the
  // counter does not exist.
  [[nodiscard]] bool accepts(std::optional<std::int64_t> observed) const noexcept;
};

// What the verify phase read back for one metric.
template <typename T>
struct Observation {
  bool read = false;       // false: the read itself failed (unverified)
  std::optional<T> value;  // nullopt: 404
};

struct VerifyResult {
  std::uint64_t checked = 0;     // metrics compared
  std::uint64_t mismatches = 0;  // compared and wrong
  std::uint64_t unverified = 0;  // could not be read back
  std::uint64_t in_doubt_requests = 0;
  std::vector<std::string> messages;  // the first few problems, readable
  [[nodiscard]] bool ok() const noexcept { return mismatches == 0 && unverified == 0; }
};

class Ledger {
 public:
  Ledger(Workload workload, std::uint32_t agents, unsigned shards);

  void record(std::uint32_t agent, unsigned shard, std::uint64_t seq, Outcome outcome);

  // The counter totals before the run (nullopt: absent), so a server that
  // already holds these names still verifies exactly.
  void set_baseline(std::uint32_t agent, Observation<std::int64_t> baseline);
  void set_hot_baseline(Observation<std::int64_t> baseline);

  void observe_counter(std::uint32_t agent, Observation<std::int64_t> observed);
  void observe_gauge(std::uint32_t agent, std::size_t slot, Observation<double> observed);
  void observe_hot(Observation<std::int64_t> observed);

  // Agents that never reached the server are not checked (no request of
  // theirs was sent), so a run cannot pass by reading nothing: the runner
  // reports them separately.
  void exclude(std::uint32_t agent);

  [[nodiscard]] VerifyResult check(std::size_t max_messages = 20) const;

  [[nodiscard]] CounterExpectation hot_expectation() const;
  [[nodiscard]] const CounterExpectation& counter_expectation(std::uint32_t agent) const {
    return agents_[agent].counter;
  }

 private:
  struct AgentEntry {
    CounterExpectation counter;
    Observation<std::int64_t> baseline{true, std::nullopt};
    Observation<std::int64_t> observed_counter;
    // Per gauge: number of the last acknowledged request that wrote it (0: none).
    std::vector<std::uint64_t> last_acked;
    std::vector<Observation<double>> observed_gauges;
    // Requests in doubt; gauges may hold what any of them carried.
    std::vector<std::uint64_t> doubtful;
    bool excluded = false;
  };
  // Padded so that two threads' hot sums never share a cache line.
  struct alignas(64) ShardHot {
    CounterExpectation hot;
  };

  Workload workload_;
  std::vector<AgentEntry> agents_;
  std::vector<ShardHot> shard_hot_;
  Observation<std::int64_t> hot_baseline_{true, std::nullopt};
  Observation<std::int64_t> observed_hot_;
};

}  // namespace metrics::loadgen
