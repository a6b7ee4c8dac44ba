// HistoryStore: the recent past of every series, in memory, compressed
// (chunk.hpp), for the query engine, alerting and the UI (API.md Part 2,
// "History"). The caller names each series by an opaque SeriesRef (the
// series index's id) and gives its identity when it first appends; the
// store keeps the identity for listing and persistence.
//
//   history::HistoryOptions options;
//   options.retention = std::chrono::hours{24};
//   options.max_bytes = 512 << 20;
//   history::HistoryStore store(options);
//   store.append(ref, identity, now_ms, 0.5);                 // a gauge
//   store.append(ref2, identity2, now_ms, std::int64_t{42});   // a counter total
//   for (const auto& s : store.read_range(std::vector{ref, ref2}, start_ms, end_ms)) ...
//   store.maintain();   // retention and the memory cap (or set maintenance_interval)
//
// Each series has one open chunk that appends go to and a list of closed,
// immutable chunks shared (reference-counted) with range reads in flight. Series
// are spread over shards by ref, each with its own mutex: appends to
// different shards never wait for each other, and a range read holds a
// shard's mutex only to copy chunk pointers and the open chunk's few bytes,
// decoding outside it. There is no global lock.
//
// Retention drops the chunks whose newest sample is older than
// now - retention (the store's clock); the memory cap evicts the oldest
// closed chunks first, then (when only open chunks are left) the oldest open
// ones. Both are done by maintain(), which counts what it dropped (stats())
// and reports each pass that dropped something through options.log, once.
// On disk: HistoryDir (disk.hpp), with options.track_closed.
//
// Thread-safety: every member may be called from any number of threads at
// once. The predicate of read_range is called with a shard's mutex
// held and must not call back into the store.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "metrics/core/clock.hpp"
#include "metrics/core/metric.hpp"
#include "metrics/history/chunk.hpp"

namespace metrics::history {

// The caller's id of a series (stable for the life of the series).
using SeriesRef = std::uint64_t;

// Who a series is: type, name and labels (core's identity of a series).
using SeriesIdentity = core::SeriesKey;

struct HistoryOptions {
  // Samples older than now - retention go; 0 keeps them (within max_bytes).
  std::chrono::milliseconds retention{std::chrono::hours{24}};
  // Accounted heap bytes the store may hold; 0: no cap.
  std::size_t max_bytes = std::size_t{512} << 20;
  // A chunk is closed after this many samples, or when a sample comes more
  // than chunk_span after the chunk's first one.
  std::uint32_t chunk_samples = 240;
  std::chrono::milliseconds chunk_span{std::chrono::hours{2}};
  // Power of two.
  std::size_t shards = 64;
  // Where the time comes from (retention); default core::real_clock().
  std::shared_ptr<core::Clock> clock;
  // When non-zero, a background thread calls maintain() this often.
  std::chrono::milliseconds maintenance_interval{0};
  // Gets one line for every maintain() pass that dropped something.
  std::function<void(std::string_view)> log;
  // Keep every chunk closed from now on for take_closed() (the history dir
  // turns this on).
  bool track_closed = false;
};

struct HistoryStats {
  std::size_t series = 0;
  std::size_t samples = 0;           // held now
  std::size_t closed_chunks = 0;     // held now
  std::size_t bytes = 0;             // accounted heap bytes held now
  std::size_t payload_bytes = 0;     // of which encoded chunk bytes
  std::uint64_t evicted_chunks = 0;  // by the memory cap, since start
  std::uint64_t evicted_samples = 0;
  std::uint64_t evicted_bytes = 0;
  std::uint64_t expired_chunks = 0;  // by retention, since start
  std::uint64_t expired_samples = 0;
  std::uint64_t eviction_passes = 0;  // maintain() passes that evicted
};

// The samples of one series, in the order they were appended (which is time
// order unless the server's clock went backwards).
struct SeriesSamples {
  SeriesRef ref = 0;
  std::shared_ptr<const SeriesIdentity> identity;
  std::vector<Sample> samples;
};

// A chunk as the history dir writes and reads it. `seq` numbers a series'
// chunks in the order they close (an open chunk has the number it will get).
struct ChunkExport {
  SeriesRef ref = 0;
  std::shared_ptr<const SeriesIdentity> identity;
  std::uint32_t seq = 0;
  std::uint32_t count = 0;
  std::int64_t max_t = 0;
  std::vector<std::uint8_t> bytes;
};

// One sample of a batched append: `bits` as counter_bits()/gauge_bits()
// make them for `kind`; `identity` is read only when `ref` is new.
struct AppendItem {
  SeriesRef ref = 0;
  std::int64_t t_ms = 0;
  std::uint64_t bits = 0;
  core::MetricType kind = core::MetricType::gauge;
  const SeriesIdentity* identity = nullptr;
};

struct SeriesEntry {
  SeriesRef ref = 0;
  std::shared_ptr<const SeriesIdentity> identity;
};

class HistoryStore {
 public:
  explicit HistoryStore(HistoryOptions options = {});
  ~HistoryStore();
  HistoryStore(const HistoryStore&) = delete;
  HistoryStore& operator=(const HistoryStore&) = delete;

  // Appends one sample. `identity` is used when `ref` is new (afterwards the
  // stored one stands). False, and nothing stored, when the value's kind is
  // not the series' type (a double for a counter, an int64 for a gauge).
  bool append(SeriesRef ref, const SeriesIdentity& identity, std::int64_t t_ms, double gauge);
  bool append(SeriesRef ref, const SeriesIdentity& identity, std::int64_t t_ms,
              std::int64_t counter_total);

  // Appends many samples at once, as append() each would (in order; an item
  // whose kind is not its series' type is skipped), holding each shard's
  // mutex once and overlapping the cache misses of cold series: the lookup
  // and the open chunk of every item are fetched before any is written.
  // Returns the samples stored.
  std::size_t append_batch(std::span<const AppendItem> items);
  // The same; `unknown` gets (ascending) the indexes of the items not
  // stored because their ref is new to the store and they came without an
  // identity (the caller may give them again with one).
  std::size_t append_batch(std::span<const AppendItem> items, std::vector<std::uint32_t>& unknown);

  // The samples with start_ms <= t <= end_ms of the given series (unknown
  // refs and series without such samples are left out), in `refs` order.
  [[nodiscard]] std::vector<SeriesSamples> read_range(std::span<const SeriesRef> refs,
                                                      std::int64_t start_ms,
                                                      std::int64_t end_ms) const;
  // The same for every series the predicate accepts.
  using Predicate = std::function<bool(SeriesRef, const SeriesIdentity&)>;
  [[nodiscard]] std::vector<SeriesSamples> read_range(const Predicate& match, std::int64_t start_ms,
                                                      std::int64_t end_ms) const;

  // The same for the series named `name` (identity.id, any type) that the
  // predicate (null: every one) accepts; reads only the series of that name
  // (a per-shard postings list), not every series.
  [[nodiscard]] std::vector<SeriesSamples> read_range_named(std::string_view name,
                                                            const Predicate& match,
                                                            std::int64_t start_ms,
                                                            std::int64_t end_ms) const;
  // read_range_named reduced to each series' newest sample in the range (by
  // time; of equal times the last appended), which is all an instant vector
  // selector needs. A series whose newest sample is the last one appended to
  // its open chunk is answered from the writer's state without decoding
  // anything: a rule or an instant query at "now" costs no decoding.
  [[nodiscard]] std::vector<SeriesSamples> read_last_named(std::string_view name,
                                                           const Predicate& match,
                                                           std::int64_t start_ms,
                                                           std::int64_t end_ms) const;
  // read_range_named (newest false) or read_last_named (newest true) handing
  // each series to `visit` instead of collecting them, in the order those
  // return them: the samples are in a buffer reused from one series to the
  // next (valid during the call only), so a caller that converts them
  // allocates nothing per series here. `visit` is called with no shard
  // mutex held.
  using SamplesVisitor = std::function<void(SeriesRef, const std::shared_ptr<const SeriesIdentity>&,
                                            std::span<const Sample>)>;
  void visit_named(std::string_view name, const Predicate& match, std::int64_t start_ms,
                   std::int64_t end_ms, bool newest, const SamplesVisitor& visit) const;
  // The series that read_range(match, ...) / read_range_named(name, ...)
  // would return (a sample with start_ms <= t <= end_ms), without their
  // samples: decided from each chunk's smallest and largest timestamp, and a
  // chunk is decoded only when the range falls strictly between the two.
  // An empty `name` reads every series (the predicate may be null).
  [[nodiscard]] std::vector<SeriesEntry> series_in_range(std::string_view name,
                                                         const Predicate& match,
                                                         std::int64_t start_ms,
                                                         std::int64_t end_ms) const;
  // Chunks decoded by series_in_range() since the store was made (tests).
  [[nodiscard]] std::uint64_t bounds_decodes() const noexcept {
    return bounds_decodes_.load(std::memory_order_relaxed);
  }

  // Every distinct name held, sorted.
  [[nodiscard]] std::vector<std::string> names() const;

  // Every series held (in no particular order).
  [[nodiscard]] std::vector<SeriesEntry> series() const;

  // The time of the series' newest sample held (the largest appended, once
  // the clock went backwards); nullopt when the store holds none of it.
  [[nodiscard]] std::optional<std::int64_t> last_timestamp(SeriesRef ref) const;

  // Retention, then the memory cap. Returns the stats after the pass.
  HistoryStats maintain();

  [[nodiscard]] HistoryStats stats() const;

  // For the history dir. take_closed: the chunks closed since the last call
  // (with track_closed). open_chunks: every non-empty open chunk, copied.
  // restore: puts a chunk read back (a closed one after the series' closed
  // chunks, an open one as its open chunk); false when the bytes do not
  // decode, the type is not the series', or an open chunk is older than a
  // closed one already restored (a checkpoint older than a segment).
  [[nodiscard]] std::vector<ChunkExport> take_closed();
  [[nodiscard]] std::vector<ChunkExport> open_chunks() const;
  bool restore(const ChunkExport& chunk, bool open);
  [[nodiscard]] bool tracks_closed() const noexcept { return options_.track_closed; }
  // now - retention in ms on the store's clock; nullopt without retention.
  [[nodiscard]] std::optional<std::int64_t> retention_cutoff_ms() const;

 private:
  struct Shard;
  struct Series;
  struct Deltas;
  bool append_bits(SeriesRef ref, const SeriesIdentity& identity, std::int64_t t_ms,
                   std::uint64_t bits, core::MetricType kind);
  // The body of an append under the shard's mutex; null `found`: the series
  // is new (made from `identity`).
  enum class Appended : std::uint8_t { stored, refused, unknown };
  Appended append_locked(Shard& shard, Series* found, const AppendItem& item, Deltas& deltas);
  std::size_t append_batch_into(std::span<const AppendItem> items,
                                std::vector<std::uint32_t>* unknown);
  void commit(const Deltas& deltas) noexcept;
  Shard& shard_of(SeriesRef ref) const;
  Series* add_series(Shard& shard, SeriesRef ref, std::shared_ptr<const SeriesIdentity> identity);
  // Takes an erased series out of its shard's by_name (shard mutex held).
  static void unlist_name(Shard& shard, const Series& s);
  void maintenance_loop();

  HistoryOptions options_;
  std::unique_ptr<Shard[]> shards_;
  std::size_t shard_mask_;

  std::atomic<std::size_t> bytes_{0};
  std::atomic<std::size_t> payload_bytes_{0};
  std::atomic<std::size_t> samples_{0};
  std::atomic<std::size_t> series_{0};
  std::atomic<std::size_t> closed_chunks_{0};
  std::atomic<std::uint64_t> evicted_chunks_{0};
  std::atomic<std::uint64_t> evicted_samples_{0};
  std::atomic<std::uint64_t> evicted_bytes_{0};
  std::atomic<std::uint64_t> expired_chunks_{0};
  std::atomic<std::uint64_t> expired_samples_{0};
  std::atomic<std::uint64_t> eviction_passes_{0};
  mutable std::atomic<std::uint64_t> bounds_decodes_{0};

  std::mutex maintain_mu_;  // one maintain() pass at a time

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread maintenance_;
};

}  // namespace metrics::history
