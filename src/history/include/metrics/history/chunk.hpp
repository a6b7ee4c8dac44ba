// The compressed chunk of one series' history: up to a few hundred samples
// (timestamp in milliseconds, value) packed in the Gorilla scheme
// (Pelkonen et al., VLDB 2015), with changes measured on our data
// (docs/HISTORY.md has the format and the figures):
//
// - timestamps: the error against the last interval rounded to 10 ms,
//   zigzag-coded in buckets sized for a few ms of jitter (receive times
//   always jitter; Gorilla's delta-of-delta triples the jitter's variance).
//   Arithmetic is modulo 2^64, so equal timestamps, time going backwards and
//   any int64 round-trip exactly.
// - gauges: the XOR of the double's bits with the previous one, bit-exact
//   (-0.0, subnormals, infinities and every NaN payload survive); or, when
//   both values are multiples of 1/4 and it is shorter, the delta-of-delta
//   of 4v as an integer (ramps and walks of bytes or counts).
// - counters: the int64 total, delta-of-delta coded as an integer, never
//   through a double, so totals near INT64_MAX stay exact.
//
//   history::ChunkWriter w(core::MetricType::counter);
//   w.append(1'000, history::counter_bits(5));
//   w.append(11'000, history::counter_bits(10));
//   history::ChunkReader r(w.type(), w.bytes(), w.count());
//   std::int64_t t; std::uint64_t v;
//   while (r.next(t, v)) use(t, history::counter_value(v));
//   if (r.failed()) ...;   // only for bytes that did not come from a writer
//
// The reader checks every bit it reads against the buffer's end and returns
// false (failed() true) on truncated or malformed input: it is safe on
// arbitrary bytes (fuzz/fuzz_history_chunk.cpp).
//
// Thread-safety: a ChunkWriter or ChunkReader is a plain value, used by one
// thread at a time; the bytes a reader reads must not change meanwhile.
#pragma once

#include <array>
#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "metrics/core/metric.hpp"

namespace metrics::history {

// A sample's value as the chunk stores it: a gauge's IEEE-754 bits or a
// counter's two's-complement total.
[[nodiscard]] constexpr std::uint64_t gauge_bits(double v) noexcept {
  return std::bit_cast<std::uint64_t>(v);
}
[[nodiscard]] constexpr std::uint64_t counter_bits(std::int64_t v) noexcept {
  return static_cast<std::uint64_t>(v);
}
[[nodiscard]] constexpr double gauge_value(std::uint64_t bits) noexcept {
  return std::bit_cast<double>(bits);
}
[[nodiscard]] constexpr std::int64_t counter_value(std::uint64_t bits) noexcept {
  return static_cast<std::int64_t>(bits);
}

// The state the encoder and decoder share: what the next sample is coded
// against.
// (64 bytes, one cache line: the small members first, no padding.)
struct CodecState {
  std::uint32_t count = 0;      // samples so far
  std::uint8_t leading = 0xff;  // gauges: the XOR window of the last '11' block
  std::uint8_t trailing = 0;    // (leading == 0xff: no window yet)
  std::uint64_t prev_t = 0;     // last timestamp (as uint64, arithmetic mod 2^64)
  std::uint64_t prev_dt = 0;    // last timestamp delta
  std::uint64_t prev_v = 0;     // last value bits
  std::uint64_t prev_dv = 0;    // counters: last value delta
  std::int64_t min_t = 0;       // smallest and largest timestamp so far
  std::int64_t max_t = 0;       // (time may go backwards)
  std::int64_t first_t = 0;
};

// A place in a chunk's bit stream that a reader can start from: the codec
// state after the chunk's first `count` samples and the bit where the next
// one begins. No sample before it is later than max_t, so a read of
// [start, end] with start > max_t may begin here and miss nothing.
struct ChunkCheckpoint {
  std::uint64_t prev_t = 0;
  std::uint64_t prev_dt = 0;
  std::uint64_t prev_v = 0;
  std::uint64_t prev_dv = 0;
  std::int64_t max_t = 0;
  std::uint32_t count = 0;  // 0: no checkpoint
  std::uint32_t bit = 0;
  std::uint8_t leading = 0xff;
  std::uint8_t trailing = 0;
};

// Appends samples to a growing bit stream. O(1) amortised per sample.
class ChunkWriter {
 public:
  explicit ChunkWriter(core::MetricType type) : type_(type) {}

  void append(std::int64_t t_ms, std::uint64_t value_bits);

  // A writer that continues a chunk read back from disk: decodes the
  // `count` samples of `bytes` to rebuild the state; nullopt when they do
  // not decode.
  [[nodiscard]] static std::optional<ChunkWriter> resume(core::MetricType type,
                                                         std::span<const std::uint8_t> bytes,
                                                         std::uint32_t count);

  [[nodiscard]] core::MetricType type() const noexcept { return type_; }
  [[nodiscard]] std::uint32_t count() const noexcept { return state_.count; }
  [[nodiscard]] bool empty() const noexcept { return state_.count == 0; }
  [[nodiscard]] const CodecState& state() const noexcept { return state_; }
  // The encoded bytes (the last one partly used) and the exact bit length.
  // bytes() writes the bits still held in a register into the buffer (the
  // writer touches its buffer once every 64 bits, which is what keeps an
  // append to a cold series at one cache miss fewer), so even this const
  // member must not run concurrently with another use of the writer.
  [[nodiscard]] std::span<const std::uint8_t> bytes() const;
  [[nodiscard]] std::size_t bit_size() const noexcept { return bits_; }
  [[nodiscard]] std::size_t byte_size() const noexcept { return (bits_ + 7) / 8; }
  // Heap bytes held (the buffer's capacity).
  [[nodiscard]] std::size_t capacity_bytes() const noexcept { return buf_.capacity(); }
  // Asks the CPU for the cache line the next flushed word goes to (a hint:
  // no effect on the contents). For batched appends over many series.
  void prefetch_tail() const noexcept {
    if (buf_.capacity() > buf_.size()) __builtin_prefetch(buf_.data() + buf_.size(), 1);
  }
  void reserve(std::size_t bytes) { buf_.reserve(bytes); }
  // Hands over the bytes (the writer is empty afterwards).
  [[nodiscard]] std::vector<std::uint8_t> release();

  // Every kCheckpointEvery samples the writer keeps a checkpoint, the last
  // two of them: a read of the newest samples (a rule's rate(x[5m]), the
  // right edge of a chart) decodes from there instead of from the chunk's
  // first sample. The newest checkpoint that a read of samples at or after
  // start_ms may begin at; nullptr when it must read from the start.
  static constexpr std::uint32_t kCheckpointEvery = 32;
  [[nodiscard]] const ChunkCheckpoint* checkpoint_before(std::int64_t start_ms) const noexcept {
    for (std::size_t i = checkpoints_.size(); i-- > 0;) {
      const ChunkCheckpoint& c = checkpoints_[i];
      if (c.count != 0 && c.max_t < start_ms) return &c;
    }
    return nullptr;
  }

 private:
  void put(std::uint64_t value, unsigned nbits);
  void put_dod(std::uint64_t dod, bool counter_value);

  // Ordered so that an append reads and writes 120 bytes in two cache lines
  // (the store keeps its own hot counter in the same two).
  CodecState state_;
  std::uint64_t acc_ = 0;
  std::size_t bits_ = 0;
  // buf_ holds whole bytes, then (after bytes()) `synced_` bytes that are a
  // copy of acc_'s acc_n_ bits; the next put() drops the copy first.
  mutable std::vector<std::uint8_t> buf_;
  mutable std::uint32_t synced_ = 0;
  std::uint32_t acc_n_ = 0;
  core::MetricType type_;
  // Past the members an append reads and writes (touched once every
  // kCheckpointEvery appends): the older checkpoint first.
  std::array<ChunkCheckpoint, 2> checkpoints_{};
};

// Decodes the samples of a chunk one at a time.
class ChunkReader {
 public:
  ChunkReader(core::MetricType type, std::span<const std::uint8_t> bytes,
              std::uint32_t count) noexcept
      : type_(type), bytes_(bytes), count_(count) {}
  // A reader that begins at a checkpoint of the chunk (its writer's
  // checkpoint_before()): `bytes` are the chunk's bytes from byte
  // from.bit / 8 on, and next() returns the samples after the checkpoint.
  ChunkReader(core::MetricType type, std::span<const std::uint8_t> bytes, std::uint32_t count,
              const ChunkCheckpoint& from) noexcept;

  // The next sample; false at the end or when the bytes are malformed
  // (then failed() is true and the reader stays at its end).
  [[nodiscard]] bool next(std::int64_t& t_ms, std::uint64_t& value_bits) noexcept;

  [[nodiscard]] bool failed() const noexcept { return failed_; }
  [[nodiscard]] const CodecState& state() const noexcept { return state_; }
  // Bits consumed so far.
  [[nodiscard]] std::size_t bit_position() const noexcept { return pos_; }

 private:
  bool get(unsigned nbits, std::uint64_t& out) noexcept;
  bool get_slow(unsigned nbits, std::uint64_t& out) noexcept;
  bool get_dod(std::uint64_t& out, bool counter_value) noexcept;

  core::MetricType type_;
  std::span<const std::uint8_t> bytes_;
  std::uint32_t count_;
  CodecState state_;
  std::size_t pos_ = 0;
  bool failed_ = false;
  // Gauges: whether the last value is in quarter units, and its k = 4v
  // (saves recomputing it for the next sample).
  bool prev_fixed_ = false;
  std::int64_t prev_k_ = 0;
};

// One decoded sample: its time and its value's bits (as above).
struct Sample {
  std::int64_t t_ms = 0;
  std::uint64_t bits = 0;
  [[nodiscard]] double gauge() const noexcept { return gauge_value(bits); }
  [[nodiscard]] std::int64_t counter() const noexcept { return counter_value(bits); }
  friend bool operator==(const Sample&, const Sample&) = default;
};

// Every sample of a chunk, or nullopt when the bytes are malformed.
[[nodiscard]] std::optional<std::vector<Sample>> decode_chunk(core::MetricType type,
                                                              std::span<const std::uint8_t> bytes,
                                                              std::uint32_t count);

// A self-describing chunk record, as written to disk:
//   u8 type (0 gauge, 1 counter) | varint count | varint byte length | bytes
// parse_chunk_record checks the lengths against `in` and that the bytes
// decode; it returns the record and how many bytes of `in` it used.
struct ChunkRecord {
  core::MetricType type = core::MetricType::gauge;
  std::uint32_t count = 0;
  std::span<const std::uint8_t> bytes;
};
void append_chunk_record(std::string& out, core::MetricType type, std::uint32_t count,
                         std::span<const std::uint8_t> bytes);
[[nodiscard]] std::optional<ChunkRecord> parse_chunk_record(std::span<const std::uint8_t> in,
                                                            std::size_t& used);

}  // namespace metrics::history
