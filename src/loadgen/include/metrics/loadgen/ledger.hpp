// Integrity bookkeeping: what the server acknowledged, and whether what it
// finally holds agrees, for every series and every classic value.
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
// What is read back (see request_builder.hpp for the names):
// - every agent's series: its own deltas and its own last gauge values;
// - every classic value. Unlabelled, an agent's classic value has one writer
//   and must equal its series exactly. Labelled, every agent writes every
//   name: a classic counter must be the exact sum over all agents; a classic
//   gauge holds whichever agent's write the server applied last, an order
//   the generator cannot know, so it must equal the final value one of the
//   agents' series may hold (exact with a single agent). The hot counter is
//   one value of all agents in both modes.
//
//   Ledger ledger(workload, agents);
//   ledger.record(agent, seq, Outcome::acknowledged);              // during the run
//   ledger.observe(agent, {Scope::series, 0}, Observation::counter(42));   // verify
//   VerifyResult r = ledger.check();                               // at the end
//
// Thread-safety: record/observe/set_baseline calls for one agent must come
// from one thread, and shared targets (shared_target()) from one thread;
// different agents may be written concurrently. check() only after those
// threads are joined.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "metrics/loadgen/request_builder.hpp"

namespace metrics::loadgen {

enum class Outcome : std::uint8_t { acknowledged, rejected, in_doubt };

// What the generator does after one attempt of a request.
enum class Step : std::uint8_t {
  acknowledged,  // record it acknowledged
  rejected,      // record it rejected: nothing was stored
  in_doubt,      // record it in doubt: it may or may not have been stored
  resend,        // send the same bytes again, with the same Idempotency-Key
};

// The attempt's answer: an HTTP status, or none (0: timeout, reset, a cut
// connection, a malformed answer). `keys`: the requests carry idempotency
// keys; `resending`: an earlier attempt of this request is in doubt.
//
// Without keys an unknown outcome (no answer, 5xx but 503) is final: in
// doubt. With keys it is resent until it is answered for good: a 200 (the
// first application, or a replay of it) is acknowledged. A 409 (the first
// attempt still in flight), 503 and 429 are resent once a request is in
// doubt, since they say nothing of the earlier attempt; a fresh request's
// 503/429/4xx is rejected as without keys. A resend refused by another 4xx
// cannot be resolved: in doubt.
[[nodiscard]] Step next_step(unsigned status, bool keys, bool resending) noexcept;

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

// What a read gave back for one target.
struct Observation {
  bool read = false;     // false: the read itself failed (unverified)
  bool present = false;  // false: 404
  // The answer named another series than the one asked for (its id, type
  // or labels differ): a mismatch whatever its value.
  bool foreign = false;
  std::int64_t total = 0;  // counter
  double value = 0;        // gauge

  [[nodiscard]] static Observation failed() noexcept { return {}; }
  [[nodiscard]] static Observation absent() noexcept { return {true, false, false, 0, 0}; }
  [[nodiscard]] static Observation counter(std::int64_t total) noexcept {
    return {true, true, false, total, 0};
  }
  [[nodiscard]] static Observation gauge(double value) noexcept {
    return {true, true, false, 0, value};
  }
};

struct VerifyResult {
  std::uint64_t checked = 0;     // series and classic values compared
  std::uint64_t mismatches = 0;  // compared and wrong
  std::uint64_t unverified = 0;  // could not be read back
  std::uint64_t in_doubt_requests = 0;
  std::vector<std::string> messages;  // the first few problems, readable
  [[nodiscard]] bool ok() const noexcept { return mismatches == 0 && unverified == 0; }
};

class Ledger {
 public:
  Ledger(Workload workload, std::uint32_t agents);

  void record(std::uint32_t agent, std::uint64_t seq, Outcome outcome);

  // A counter's total before the run (absent by default), so a server that
  // already holds these series still verifies exactly. For a shared target
  // (shared_target()) `agent` is ignored.
  void set_baseline(std::uint32_t agent, ReadTarget target, Observation baseline);
  // What the verify phase read back; `agent` ignored for a shared target.
  void observe(std::uint32_t agent, ReadTarget target, Observation observed);

  // Agents that never reached the server are not checked (no request of
  // theirs was sent), so a run cannot pass by reading nothing: the runner
  // reports them separately.
  void exclude(std::uint32_t agent);

  [[nodiscard]] VerifyResult check(std::size_t max_messages = 20) const;

  // Slot 0 or 1 of one agent.
  [[nodiscard]] const CounterExpectation& counter_expectation(std::uint32_t agent,
                                                              std::size_t slot) const {
    return agents_[agent].counters[slot];
  }
  // Slot 0 or 1 summed over all agents.
  [[nodiscard]] CounterExpectation total_expectation(std::size_t slot) const;

 private:
  // Read-back values: baselines[scope][counter slot], observed[index()].
  struct Targets {
    std::array<std::array<Observation, 2>, 2> baselines;
    std::vector<Observation> observed;
  };
  // One per agent, on its own cache lines: agents of different generator
  // threads never share one.
  struct alignas(64) AgentEntry {
    std::array<CounterExpectation, 2> counters;  // slots 0 and 1, this agent's deltas
    // Per gauge: number of the last acknowledged request that wrote it (0: none).
    std::vector<std::uint64_t> last_acked;
    // Requests in doubt; gauges may hold what any of them carried.
    std::vector<std::uint64_t> doubtful;
    Targets targets;  // its per-agent targets (shared ones live in shared_)
    bool excluded = false;
  };

  Targets& targets_of(std::uint32_t agent, ReadTarget target);
  [[nodiscard]] std::size_t index(ReadTarget t) const noexcept {
    return static_cast<std::size_t>(t.scope) * workload_.batch_size + t.slot;
  }
  // Whether `value` is what gauge `slot` of `agent` may hold; `written`
  // tells whether this run wrote it at all.
  [[nodiscard]] bool gauge_accepts(const AgentEntry& a, std::uint32_t agent, std::size_t slot,
                                   double value, bool& written) const;

  Workload workload_;
  std::vector<AgentEntry> agents_;
  Targets shared_;
};

}  // namespace metrics::loadgen
