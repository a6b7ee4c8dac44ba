// What the simulated agents send, and the bytes of each request.
//
// Every agent owns `batch_size` metric slots: slot 0 is its own counter
// (`<run>a<agent>_c`), slot 1 the counter every agent adds to
// (`<run>loadgen_hot`), slots 2.. its gauges (`<run>a<agent>_g<i>`). The
// value of every slot at every request number is a pure function, so the
// integrity check can recompute what a request carried from its number
// alone, without keeping the requests.
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
#include <string>
#include <string_view>

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
};

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

void append_metric_name(std::string& out, std::string_view run_id, std::uint32_t agent,
                        std::size_t slot);
[[nodiscard]] std::string metric_name(std::string_view run_id, std::uint32_t agent,
                                      std::size_t slot);

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

  // Pipelined GET /value/... requests reading `slots` of `agent`, appended
  // to `out`. Slot 1 (the shared hot counter) is included only when
  // `with_hot` is set, so it is read once, not once per agent.
  void build_reads(std::uint32_t agent, bool with_hot, std::string& out) const;
  // GET of one slot's metric.
  void build_read(std::uint32_t agent, std::size_t slot, std::string& out) const;

  [[nodiscard]] const Workload& workload() const noexcept { return workload_; }

 private:
  void append_head(std::string& head, std::string_view target, std::string_view body) const;

  Workload workload_;
  std::string host_;
  std::string key_;
  bool gzip_;
  std::string scratch_;
  std::unique_ptr<Deflater> deflater_;
};

}  // namespace metrics::loadgen
