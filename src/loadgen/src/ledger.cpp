#include "metrics/loadgen/ledger.hpp"

#include <algorithm>
#include <sstream>

#include "metrics/core/value_format.hpp"

namespace metrics::loadgen {
namespace {

std::string show(const Observation<std::int64_t>& o) {
  return o.value ? std::to_string(*o.value) : std::string("absent (404)");
}
std::string show(const Observation<double>& o) {
  return o.value ? core::format_gauge(*o.value) : std::string("absent (404)");
}

}  // namespace

void CounterExpectation::add(std::int64_t delta, Outcome outcome) noexcept {
  switch (outcome) {
    case Outcome::acknowledged:
      acknowledged += delta;
      break;
    case Outcome::in_doubt:
      in_doubt += delta;
      ++in_doubt_requests;
      break;
    case Outcome::rejected:
      break;
  }
}

void CounterExpectation::merge(const CounterExpectation& other) noexcept {
  acknowledged += other.acknowledged;
  in_doubt += other.in_doubt;
  in_doubt_requests += other.in_doubt_requests;
}

bool CounterExpectation::accepts(std::optional<std::int64_t> observed) const noexcept {
  // Deltas are positive, so "some of the in-doubt deltas" spans this range;
  // with nothing in doubt it is the single acknowledged sum.
  if (!observed) return acknowledged == 0;
  return *observed >= acknowledged && *observed - acknowledged <= in_doubt;
}

Ledger::Ledger(Workload workload, std::uint32_t agents, unsigned shards)
    : workload_(std::move(workload)), agents_(agents), shard_hot_(std::max(1u, shards)) {
  const std::size_t gauges = gauge_count(workload_.batch_size);
  for (auto& a : agents_) {
    a.last_acked.assign(gauges, 0);
    a.observed_gauges.assign(gauges, {});
  }
}

void Ledger::record(std::uint32_t agent, unsigned shard, std::uint64_t seq, Outcome outcome) {
  AgentEntry& a = agents_[agent];
  const SlotRange slots = slots_of(workload_, seq);
  for (std::size_t s = slots.first; s < slots.first + slots.count; ++s) {
    switch (slot_kind(s)) {
      case SlotKind::agent_counter:
        a.counter.add(agent_counter_delta(seq), outcome);
        break;
      case SlotKind::hot_counter:
        shard_hot_[shard].hot.add(hot_counter_delta(seq), outcome);
        break;
      case SlotKind::gauge:
        if (outcome == Outcome::acknowledged)
          a.last_acked[s - 2] = std::max(a.last_acked[s - 2], seq);
        break;
    }
  }
  if (outcome == Outcome::in_doubt) a.doubtful.push_back(seq);
}

void Ledger::set_baseline(std::uint32_t agent, Observation<std::int64_t> baseline) {
  agents_[agent].baseline = baseline;
}
void Ledger::set_hot_baseline(Observation<std::int64_t> baseline) {
  hot_baseline_ = baseline;
}
void Ledger::observe_counter(std::uint32_t agent, Observation<std::int64_t> observed) {
  agents_[agent].observed_counter = observed;
}
void Ledger::observe_gauge(std::uint32_t agent, std::size_t slot, Observation<double> observed) {
  agents_[agent].observed_gauges[slot - 2] = observed;
}
void Ledger::observe_hot(Observation<std::int64_t> observed) {
  observed_hot_ = observed;
}
void Ledger::exclude(std::uint32_t agent) {
  agents_[agent].excluded = true;
}

CounterExpectation Ledger::hot_expectation() const {
  CounterExpectation total;
  for (const auto& s : shard_hot_)
    total.merge(s.hot);
  return total;
}

VerifyResult Ledger::check(std::size_t max_messages) const {
  VerifyResult r;
  auto note = [&](std::string message) {
    if (r.messages.size() < max_messages) r.messages.push_back(std::move(message));
  };
  // Shared by the per-agent counters and the hot counter.
  auto check_counter = [&](const std::string& name, const Observation<std::int64_t>& base,
                           const Observation<std::int64_t>& seen, const CounterExpectation& e) {
    if (!base.read || !seen.read) {
      ++r.unverified;
      note("counter " + name + ": could not be read back");
      return;
    }
    ++r.checked;
    std::optional<std::int64_t> delta;
    if (seen.value) delta = *seen.value - base.value.value_or(0);
    const bool vanished = !seen.value && base.value;
    if (!vanished && e.accepts(delta)) return;
    ++r.mismatches;
    std::ostringstream m;
    m << "counter " << name << ": server has " << show(seen) << ", expected "
      << (base.value ? std::to_string(*base.value) + " (before the run) + " : std::string())
      << e.acknowledged << " (acknowledged)";
    if (e.in_doubt_requests)
      m << " + up to " << e.in_doubt << " from " << e.in_doubt_requests << " requests in doubt";
    note(m.str());
  };

  for (std::uint32_t id = 0; id < agents_.size(); ++id) {
    const AgentEntry& a = agents_[id];
    r.in_doubt_requests += a.doubtful.size();
    if (a.excluded) continue;
    if (workload_.batch_size >= 1)
      check_counter(metric_name(workload_.run_id, id, 0), a.baseline, a.observed_counter,
                    a.counter);
    for (std::size_t g = 0; g < a.last_acked.size(); ++g) {
      const std::size_t slot = g + 2;
      const std::uint64_t acked = a.last_acked[g];
      bool written_in_doubt = false;
      for (std::uint64_t seq : a.doubtful)
        written_in_doubt = written_in_doubt || slots_of(workload_, seq).contains(slot);
      if (acked == 0 && !written_in_doubt) continue;  // this run never wrote it
      const Observation<double>& seen = a.observed_gauges[g];
      const std::string name = metric_name(workload_.run_id, id, slot);
      if (!seen.read) {
        ++r.unverified;
        note("gauge " + name + ": could not be read back");
        continue;
      }
      ++r.checked;
      bool ok = false;
      if (!seen.value) {
        ok = acked == 0;
      } else {
        ok = acked != 0 && *seen.value == gauge_value(id, slot, acked);
        for (std::uint64_t seq : a.doubtful)
          ok = ok || (slots_of(workload_, seq).contains(slot) &&
                      *seen.value == gauge_value(id, slot, seq));
      }
      if (ok) continue;
      ++r.mismatches;
      std::ostringstream m;
      m << "gauge " << name << ": server has " << show(seen) << ", expected ";
      if (acked)
        m << core::format_gauge(gauge_value(id, slot, acked)) << " (request " << acked
          << ", the last acknowledged)";
      else
        m << "absent";
      if (written_in_doubt) m << " or the value of a request in doubt";
      note(m.str());
    }
  }
  if (workload_.batch_size >= 2)
    check_counter(metric_name(workload_.run_id, 0, 1), hot_baseline_, observed_hot_,
                  hot_expectation());
  return r;
}

}  // namespace metrics::loadgen
