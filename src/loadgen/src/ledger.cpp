#include "metrics/loadgen/ledger.hpp"

#include <algorithm>
#include <sstream>

#include "metrics/core/value_format.hpp"

namespace metrics::loadgen {
namespace {

std::string show_counter(const Observation& o) {
  return o.present ? std::to_string(o.total) : std::string("absent (404)");
}
std::string show_gauge(const Observation& o) {
  return o.present ? core::format_gauge(o.value) : std::string("absent (404)");
}

}  // namespace

Step next_step(unsigned status, bool keys, bool resending) noexcept {
  if (status == 200) return Step::acknowledged;
  const bool unknown = status == 0 || (status >= 500 && status != 503);
  if (!keys) {
    if (unknown) return Step::in_doubt;
    // API.md: a rejected request (4xx) and a 503 store nothing.
    return Step::rejected;
  }
  if (unknown || status == 409) return Step::resend;
  if (!resending) return Step::rejected;
  if (status == 503 || status == 429) return Step::resend;
  return Step::in_doubt;
}

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

Ledger::Ledger(Workload workload, std::uint32_t agents)
    : workload_(std::move(workload)), agents_(agents) {
  const std::size_t gauges = gauge_count(workload_.batch_size);
  auto init = [this](Targets& t) {
    for (auto& scope : t.baselines)
      scope.fill(Observation::absent());
    t.observed.assign(2 * workload_.batch_size, Observation::failed());
  };
  for (auto& a : agents_) {
    a.last_acked.assign(gauges, 0);
    init(a.targets);
  }
  init(shared_);
}

void Ledger::record(std::uint32_t agent, std::uint64_t seq, Outcome outcome) {
  AgentEntry& a = agents_[agent];
  const SlotRange slots = slots_of(workload_, seq);
  for (std::size_t s = slots.first; s < slots.first + slots.count; ++s) {
    switch (slot_kind(s)) {
      case SlotKind::agent_counter:
        a.counters[0].add(agent_counter_delta(seq), outcome);
        break;
      case SlotKind::hot_counter:
        a.counters[1].add(hot_counter_delta(seq), outcome);
        break;
      case SlotKind::gauge:
        if (outcome == Outcome::acknowledged)
          a.last_acked[s - 2] = std::max(a.last_acked[s - 2], seq);
        break;
    }
  }
  if (outcome == Outcome::in_doubt) a.doubtful.push_back(seq);
}

Ledger::Targets& Ledger::targets_of(std::uint32_t agent, ReadTarget target) {
  return shared_target(workload_, target) ? shared_ : agents_[agent].targets;
}

void Ledger::set_baseline(std::uint32_t agent, ReadTarget target, Observation baseline) {
  if (slot_kind(target.slot) == SlotKind::gauge) return;  // overwritten by the run
  targets_of(agent, target).baselines[static_cast<std::size_t>(target.scope)][target.slot] =
      baseline;
}
void Ledger::observe(std::uint32_t agent, ReadTarget target, Observation observed) {
  targets_of(agent, target).observed[index(target)] = observed;
}
void Ledger::exclude(std::uint32_t agent) {
  agents_[agent].excluded = true;
}

CounterExpectation Ledger::total_expectation(std::size_t slot) const {
  CounterExpectation total;
  for (const auto& a : agents_)
    total.merge(a.counters[slot]);
  return total;
}

bool Ledger::gauge_accepts(const AgentEntry& a, std::uint32_t agent, std::size_t slot, double value,
                           bool& written) const {
  const std::uint64_t acked = a.last_acked[slot - 2];
  written = acked != 0;
  bool ok = acked != 0 && value == gauge_value(agent, slot, acked);
  for (std::uint64_t seq : a.doubtful) {
    if (!slots_of(workload_, seq).contains(slot)) continue;
    written = true;
    ok = ok || value == gauge_value(agent, slot, seq);
  }
  return ok;
}

VerifyResult Ledger::check(std::size_t max_messages) const {
  VerifyResult r;
  auto note = [&](std::string message) {
    if (r.messages.size() < max_messages) r.messages.push_back(std::move(message));
  };
  // "counter r1_c{instance="loadgen-3",job="loadgen"}", "gauge r1_g0 (classic)".
  auto name_of = [&](std::uint32_t agent, ReadTarget t) {
    std::string name = slot_kind(t.slot) == SlotKind::gauge ? "gauge " : "counter ";
    append_metric_name(name, workload_, agent, t.slot);
    if (t.scope == Scope::classic)
      name += " (classic)";
    else
      name += shared_target(workload_, t) ? std::string("{}")
                                          : agent_labels(workload_, agent).to_string();
    return name;
  };
  auto check_counter = [&](const std::string& name, const Observation& base,
                           const Observation& seen, const CounterExpectation& e) {
    if (!base.read || !seen.read) {
      ++r.unverified;
      note(name + ": could not be read back");
      return;
    }
    ++r.checked;
    if (seen.foreign) {
      ++r.mismatches;
      note(name + ": the server answered with another series");
      return;
    }
    std::optional<std::int64_t> delta;
    if (seen.present) delta = seen.total - (base.present ? base.total : 0);
    const bool vanished = !seen.present && base.present;
    if (!vanished && e.accepts(delta)) return;
    ++r.mismatches;
    std::ostringstream m;
    m << name << ": server has " << show_counter(seen) << ", expected "
      << (base.present ? std::to_string(base.total) + " (before the run) + " : std::string())
      << e.acknowledged << " (acknowledged)";
    if (e.in_doubt_requests)
      m << " + up to " << e.in_doubt << " from " << e.in_doubt_requests << " requests in doubt";
    note(m.str());
  };
  auto baseline = [](const Targets& t, ReadTarget target) -> const Observation& {
    return t.baselines[static_cast<std::size_t>(target.scope)][target.slot];
  };
  auto unread = [&](const std::string& name) {
    ++r.unverified;
    note(name + ": could not be read back");
  };
  auto gauge_mismatch = [&](const std::string& name, const Observation& seen,
                            const std::string& expected) {
    ++r.mismatches;
    note(name + ": server has " +
         (seen.foreign ? std::string("another series") : show_gauge(seen)) + ", expected " +
         expected);
  };

  // Each agent's own series (and, unlabelled, its own classic values).
  for (std::uint32_t id = 0; id < agents_.size(); ++id) {
    const AgentEntry& a = agents_[id];
    r.in_doubt_requests += a.doubtful.size();
    if (a.excluded) continue;
    for (Scope scope : {Scope::series, Scope::classic}) {
      for (std::size_t slot = 0; slot < workload_.batch_size; ++slot) {
        const ReadTarget t{scope, slot};
        if (shared_target(workload_, t)) continue;
        const Observation& seen = a.targets.observed[index(t)];
        if (slot_kind(slot) != SlotKind::gauge) {
          check_counter(name_of(id, t), baseline(a.targets, t), seen, a.counters[slot]);
          continue;
        }
        bool written = false;
        const bool value_ok = gauge_accepts(a, id, slot, seen.value, written);
        if (!written) continue;  // this run never wrote it
        if (!seen.read) {
          unread(name_of(id, t));
          continue;
        }
        ++r.checked;
        const std::uint64_t acked = a.last_acked[slot - 2];
        const bool ok = !seen.foreign && (seen.present ? value_ok : acked == 0);
        if (ok) continue;
        std::string expected = acked ? core::format_gauge(gauge_value(id, slot, acked)) +
                                           " (request " + std::to_string(acked) +
                                           ", the last acknowledged)"
                                     : std::string("absent");
        if (std::any_of(a.doubtful.begin(), a.doubtful.end(),
                        [&](std::uint64_t seq) { return slots_of(workload_, seq).contains(slot); }))
          expected += " or the value of a request in doubt";
        gauge_mismatch(name_of(id, t), seen, expected);
      }
    }
  }

  // Values of all agents together: the hot counter; labelled, every classic value.
  for (Scope scope : {Scope::series, Scope::classic}) {
    for (std::size_t slot = 0; slot < workload_.batch_size; ++slot) {
      const ReadTarget t{scope, slot};
      if (!shared_target(workload_, t)) continue;
      const Observation& seen = shared_.observed[index(t)];
      if (slot_kind(slot) != SlotKind::gauge) {
        check_counter(name_of(0, t), baseline(shared_, t), seen, total_expectation(slot));
        continue;
      }
      // The last write the server applied, of whichever agent: the final
      // value of one of the series.
      bool written = false;
      bool any_acked = false;
      bool value_ok = false;
      std::uint32_t writers = 0;
      for (std::uint32_t id = 0; id < agents_.size(); ++id) {
        const AgentEntry& a = agents_[id];
        if (a.excluded) continue;
        bool w = false;
        value_ok = gauge_accepts(a, id, slot, seen.value, w) || value_ok;
        written = written || w;
        writers += w ? 1 : 0;
        any_acked = any_acked || a.last_acked[slot - 2] != 0;
      }
      if (!written) continue;
      if (!seen.read) {
        unread(name_of(0, t));
        continue;
      }
      ++r.checked;
      const bool ok = !seen.foreign && (seen.present ? value_ok : !any_acked);
      if (ok) continue;
      gauge_mismatch(name_of(0, t), seen,
                     "the last value written to one of its " + std::to_string(writers) +
                         " series (the last acknowledged or in doubt of one agent)");
    }
  }
  return r;
}

}  // namespace metrics::loadgen
