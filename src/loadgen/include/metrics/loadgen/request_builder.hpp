// What the simulated agents send, and the bytes of each request.
//
// Every agent owns `batch_size` metric slots: slot 0 a counter, slot 1 the
// counter every agent adds to (`<run>loadgen_hot`), slots 2.. gauges. The
// value of every slot at every request number is a pure function, so the
// integrity check can recompute what a request carried from its number
// alone, without keeping the requests.
//
// Labelled (the default, API.md Part 2): every agent is its own instance.
// It sends `instance=loadgen-<agent>` and `job=loadgen` (in the envelope
// `{"labels":{...},"metrics":[...]}` of POST /updates/, or as the metric's
// "labels" with POST /update/), and all agents share the metric names
// (`<run>c`, `<run>loadgen_hot`, `<run>g<i>`), as real agents do: one series
// per agent and name, one classic value per name. Unlabelled (--no-labels,
// and always in text mode, whose path has no room for labels): the arrays of
// Part 1 with per-agent names (`<run>a<agent>_c`, `<run>a<agent>_g<i>`).
//
//   RequestBuilder builder(workload, "127.0.0.1:8080", key, /*gzip=*/true);
//   RequestBytes bytes;
//   builder.build(/*agent=*/7, /*seq=*/1, bytes);   // reuses bytes' capacity
//   write(socket, {bytes.head, bytes.body});
//
// Thread-safety: the free functions are pure; a RequestBuilder keeps a
// scratch buffer and a zlib stream, so use one per thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/core/labels.hpp"

namespace metrics::loadgen {

enum class Mode : std::uint8_t {
  batch,  // POST /updates/ with a JSON array of every slot
  json,   // POST /update/ with one JSON metric, slots in turn
  text,   // POST /update/{type}/{name}/{value}, slots in turn
};

[[nodiscard]] std::string_view to_string(Mode mode) noexcept;
[[nodiscard]] std::optional<Mode> parse_mode(std::string_view text) noexcept;

struct Workload {
  // Prefix of every metric name, so repeated runs against one server do not
  // collide; only [A-Za-z0-9_.-] (names go into URL paths unescaped).
  std::string run_id;
  std::size_t batch_size = 29;
  Mode mode = Mode::batch;
  // Send instance and job labels, with names shared by all agents (see the
  // top of this file); false: unlabelled arrays with per-agent names.
  bool labels = true;
  // Every request carries `Idempotency-Key: <run_id>k<agent>-<seq>` (API.md,
  // "Exactly-once writes"), so a resend of request `seq` is recognised.
  bool idempotency_keys = false;

  // Whether requests actually carry labels: text mode cannot.
  [[nodiscard]] constexpr bool labelled() const noexcept { return labels && mode != Mode::text; }
};

// The job label every simulated agent sends.
inline constexpr std::string_view kJob = "loadgen";
// "loadgen-<agent>": the agent's instance label.
void append_instance(std::string& out, std::uint32_t agent);
// The labels of the agent's series: instance and job when labelled, none
// otherwise (allocates; not for the hot path).
[[nodiscard]] core::Labels agent_labels(const Workload& workload, std::uint32_t agent);

enum class SlotKind : std::uint8_t { agent_counter, hot_counter, gauge };

[[nodiscard]] constexpr SlotKind slot_kind(std::size_t slot) noexcept {
  return slot == 0 ? SlotKind::agent_counter
                   : (slot == 1 ? SlotKind::hot_counter : SlotKind::gauge);
}
[[nodiscard]] constexpr std::size_t gauge_count(std::size_t batch_size) noexcept {
  return batch_size > 2 ? batch_size - 2 : 0;
}

// True when `run_id` may prefix metric names.
[[nodiscard]] bool valid_run_id(std::string_view run_id) noexcept;

// The name of an agent's slot; labelled, it does not depend on the agent.
void append_metric_name(std::string& out, const Workload& workload, std::uint32_t agent,
                        std::size_t slot);
[[nodiscard]] std::string metric_name(const Workload& workload, std::uint32_t agent,
                                      std::size_t slot);

// What a read-back asks for (API.md Part 2): the series (POST /value/ with
// labels: the agent's, or {} when unlabelled) or the classic value (POST
// /value/ without labels), which every write of that name also applies to.
enum class Scope : std::uint8_t { series = 0, classic = 1 };
struct ReadTarget {
  Scope scope = Scope::series;
  std::size_t slot = 0;
  friend bool operator==(const ReadTarget&, const ReadTarget&) = default;
};

// True when a target is one value for the whole run rather than one per
// agent: labelled, every classic value (all agents write each name);
// unlabelled, the hot counter's series and classic value.
[[nodiscard]] inline bool shared_target(const Workload& workload, ReadTarget t) noexcept {
  return workload.labelled() ? t.scope == Scope::classic
                             : slot_kind(t.slot) == SlotKind::hot_counter;
}

// The reads of one agent: at the baseline, the counters (their totals before
// the run); at the end, every slot; both scopes. The shared targets only
// when `with_shared` (one agent reads them for everybody).
[[nodiscard]] std::vector<ReadTarget> read_plan(const Workload& workload, bool baseline,
                                                bool with_shared);

// Values carried by request `seq` (1-based, per agent). Deltas are positive
// and vary, so a lost or doubled request changes the sum; gauges change with
// every request, are exact in binary (multiples of 1/4), and differ between
// agents, so a value landing on another agent's gauge is caught too.
[[nodiscard]] constexpr std::int64_t agent_counter_delta(std::uint64_t seq) noexcept {
  return 1 + static_cast<std::int64_t>(seq % 7);
}
[[nodiscard]] constexpr std::int64_t hot_counter_delta(std::uint64_t seq) noexcept {
  return 1 + static_cast<std::int64_t>(seq % 3);
}
[[nodiscard]] constexpr double gauge_value(std::uint32_t agent, std::size_t slot,
                                           std::uint64_t seq) noexcept {
  return static_cast<double>(seq) * 0.25 + static_cast<double>(slot) +
         static_cast<double>(agent % 1000) * 1000.0;
}

// The slots request `seq` writes: all of them for a batch, one in turn for
// the single-metric modes.
struct SlotRange {
  std::size_t first = 0;
  std::size_t count = 0;
  [[nodiscard]] bool contains(std::size_t slot) const noexcept {
    return slot >= first && slot < first + count;
  }
};
[[nodiscard]] SlotRange slots_of(const Workload& workload, std::uint64_t seq) noexcept;

// The key of request `seq` of `agent`: "<run_id>k<agent>-<seq>" (at most
// 64 + 1 + 10 + 1 + 20 bytes, under the contract's 128).
void append_idempotency_key(std::string& out, const Workload& workload, std::uint32_t agent,
                            std::uint64_t seq);

// One request as written: head and body, kept apart so the body can be
// built (and compressed) before the head that states its length.
struct RequestBytes {
  std::string head;
  std::string body;
};

class Deflater;

class RequestBuilder {
 public:
  // host: the Host header value; key: signing key, empty for none.
  RequestBuilder(Workload workload, std::string host, std::string key, bool gzip);
  ~RequestBuilder();
  RequestBuilder(const RequestBuilder&) = delete;
  RequestBuilder& operator=(const RequestBuilder&) = delete;

  // Builds request number `seq` of `agent` into `out`, reusing its capacity.
  void build(std::uint32_t agent, std::uint64_t seq, RequestBytes& out);

  // The uncompressed body of a batch/json request (for the tests and for
  // pre-sizing buffers); empty in text mode.
  void build_plain_body(std::uint32_t agent, std::uint64_t seq, std::string& out) const;

  // Pipelined POST /value/ requests reading `targets` of `agent`, appended
  // to `out`.
  void build_reads(std::uint32_t agent, std::span<const ReadTarget> targets,
                   std::string& out) const;
  // POST /value/ of one target, appended to `out`.
  void build_read(std::uint32_t agent, ReadTarget target, std::string& out) const;

  [[nodiscard]] const Workload& workload() const noexcept { return workload_; }

  // An Authorization value ("Basic ...", "Bearer ...") sent on every
  // request, writes and reads (for a proxy in front of the server, or the
  // server's --web-config); empty: none.
  void set_authorization(std::string value) { authorization_ = std::move(value); }

 private:
  void append_head(std::string& head, std::string_view target, std::string_view body,
                   std::uint32_t agent, std::uint64_t seq) const;

  Workload workload_;
  std::string host_;
  std::string key_;
  std::string authorization_;
  bool gzip_;
  std::string scratch_;
  std::unique_ptr<Deflater> deflater_;
};

}  // namespace metrics::loadgen
