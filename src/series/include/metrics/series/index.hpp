// The live series index of the server (API.md Part 2, "Series: instances
// and labels"): which series exist, their interned ids, the receive time of
// their last write, how many each instance has (for --max-series and
// --max-series-per-instance), and the time of each (instance, job)'s last
// accepted write (liveness: agent_up, agent_last_push_timestamp_seconds).
//
// A write goes through it in two steps around the storage:
//
//   auto reservation = index.reserve(merged);  // throws core::LimitExceeded
//   co_await repo.apply(merged, now_ms);        // on failure the reservation's
//   reservation.commit(now_ms);                 // destructor gives the new ids back
//
// reserve() does one hash lookup per update under one of kShards mutexes
// (one lock for all the series of one label set, as an envelope sends) and
// reserves the new series of the request against the limits all at once, so
// concurrent requests never overshoot a limit and a refused or failed
// request leaves nothing behind. commit() touches only atomics.
//
// Ids are interned per live series: stable from the first write until the
// series expires (a series written again after expiry gets a new id), never
// reused. Liveness series are synthesized from the (instance, job) table and
// never count toward the limits.
//
// Thread-safe: every member may be called from any number of threads at once.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "metrics/core/flat_table.hpp"
#include "metrics/core/metric.hpp"

namespace metrics::series {

// The synthesized liveness series (their labels: instance and job).
inline constexpr std::string_view kAgentUp = "agent_up";
inline constexpr std::string_view kAgentLastPush = "agent_last_push_timestamp_seconds";

struct Limits {
  // Most live series in all (0: no limit).
  std::uint64_t max_series = 1'000'000;
  // Most live series with one value of the `instance` label (0: no limit).
  // Series without an `instance` label count only toward max_series.
  std::uint64_t max_series_per_instance = 10'000;
};

// One (instance, job) as liveness sees it.
struct Liveness {
  std::string instance;
  std::string job;  // "" when the writes carried no job
  std::int64_t last_push_ms = 0;
  // 1 while now - last_push_ms < stale_after, else 0.
  bool up = false;
  friend bool operator==(const Liveness&, const Liveness&) = default;
};

class SeriesIndex {
 public:
  static constexpr std::size_t kShards = 64;
  // How many updates ahead reserve() prefetches home slots.
  static constexpr std::size_t kPrefetchAhead = 16;

  explicit SeriesIndex(Limits limits = {});
  SeriesIndex(const SeriesIndex&) = delete;
  SeriesIndex& operator=(const SeriesIndex&) = delete;
  ~SeriesIndex();

 private:
  // One live series. Entries are allocated one by one and never move while
  // they live (a Reservation holds pointers to them across the storage's
  // write), so the table's slots point at them.
  struct Entry {
    Entry(std::size_t h, core::SeriesKey k, std::uint32_t s)
        : hash(h), series(std::move(k)), shard(s) {}
    const std::size_t hash;
    const core::SeriesKey series;
    const std::uint32_t shard;
    std::uint64_t id = 0;
    std::atomic<std::int64_t> last_write_ms{0};
    // Requests holding a pointer to this entry between reserve and
    // commit/release; an entry is erased only while this is 0.
    std::atomic<std::uint32_t> pending{0};
    // Some write of it reached the storage (or it came from the storage).
    std::atomic<bool> committed{false};
  };

 public:
  // The series of one request between reserve() and commit(). Movable;
  // destroying it uncommitted releases it (new series are forgotten and
  // stop counting toward the limits).
  class Reservation {
   public:
    Reservation() = default;
    Reservation(Reservation&& other) noexcept;
    Reservation& operator=(Reservation&& other) noexcept;
    Reservation(const Reservation&) = delete;
    Reservation& operator=(const Reservation&) = delete;
    ~Reservation();

    // The storage accepted the write at received_ms: the series' last write
    // and their (instance, job)s' last accepted write become received_ms.
    // Without liveness (remote write in: not an agent's push) the
    // (instance, job)s are left as they are.
    void commit(std::int64_t received_ms, bool liveness = true) noexcept;
    // The storage refused or failed: gives back what reserve() took.
    void release() noexcept;

    // The interned id of update i of the reserved batch.
    [[nodiscard]] std::uint64_t id(std::size_t i) const noexcept;
    // How many of the request's series were new.
    [[nodiscard]] std::size_t created() const noexcept { return created_; }

   private:
    friend class SeriesIndex;
    SeriesIndex* index_ = nullptr;
    std::vector<Entry*> entries_;
    std::vector<std::uint64_t> ids_;
    // Distinct "instance\xFFjob" of the request.
    std::vector<std::string> pairs_;
    std::size_t created_ = 0;
  };

  // Reserves the series of a merged batch (one entry per series). Throws
  // core::LimitExceeded naming the limit when the new ones do not fit;
  // nothing is reserved then. Without liveness (remote write in, rule
  // output: not an agent's push) the request's (instance, job)s are not
  // collected, and its commit() leaves liveness as it is.
  [[nodiscard]] Reservation reserve(std::span<const core::Update> merged, bool liveness = true);

  // Adds a series that the storage already holds (start-up, from
  // repo.list_series()); its last write and its (instance, job)'s liveness
  // become at least last_write_ms. Ignores the limits: what is stored counts.
  void load(const core::SeriesKey& key, std::int64_t last_write_ms);
  // Everything of list_series(), with timestamps of 0 (unknown) taken as
  // unknown_ms (so that old data does not expire at the first sweep).
  void load(std::span<const core::Point> stored, std::int64_t unknown_ms);

  // Forgets expired series (what repo.expire(cutoff_ms) removed): each key
  // whose entry was not written at or after cutoff_ms and that no request is
  // writing right now. Also forgets (instance, job)s silent since before
  // cutoff_ms. Returns how many series were forgotten.
  std::size_t remove(std::span<const core::SeriesKey> keys, std::int64_t cutoff_ms);

  // The id and last write of a live series; nullopt when it is not live.
  struct Found {
    std::uint64_t id = 0;
    std::int64_t last_write_ms = 0;
  };
  [[nodiscard]] std::optional<Found> find(core::SeriesView key) const;

  // Live series in all, and with one instance.
  [[nodiscard]] std::uint64_t size() const noexcept;
  [[nodiscard]] std::uint64_t instance_size(std::string_view instance) const;
  [[nodiscard]] const Limits& limits() const noexcept { return limits_; }

  // Liveness of every (instance, job), sorted by instance then job: what
  // /metrics and /api/v1/series will expose.
  [[nodiscard]] std::vector<Liveness> liveness(std::int64_t now_ms,
                                               std::int64_t stale_after_ms) const;
  // One (instance, job); nullopt when it never wrote (or was forgotten).
  [[nodiscard]] std::optional<Liveness> liveness(std::string_view instance, std::string_view job,
                                                 std::int64_t now_ms,
                                                 std::int64_t stale_after_ms) const;
  // The two synthesized series of every (instance, job), as points with
  // labels {instance, job} (job omitted when ""), sorted.
  [[nodiscard]] std::vector<core::Point> liveness_points(std::int64_t now_ms,
                                                         std::int64_t stale_after_ms) const;
  // The synthesized point `name` (kAgentUp or kAgentLastPush) of the
  // (instance, job) in `labels`; nullopt when name is neither, labels hold
  // anything but instance and job, or that pair never wrote.
  [[nodiscard]] std::optional<core::Point> liveness_point(std::string_view name,
                                                          const core::Labels& labels,
                                                          std::int64_t now_ms,
                                                          std::int64_t stale_after_ms) const;

 private:
  // A flat table of {hash, entry} per shard: a lookup is the home slot
  // (prefetched for a request's series before they are looked up) and the
  // entry, where a node-based map took the bucket, the node before and the
  // node.
  struct Slot {
    std::size_t hash = 0;
    std::unique_ptr<Entry> entry;
  };
  struct SlotTraits {
    static bool used(const Slot& s) noexcept { return s.entry != nullptr; }
    static std::size_t hash(const Slot& s) noexcept { return s.hash; }
  };
  using Table = core::FlatTable<Slot, SlotTraits>;
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  using StringMap = std::unordered_map<std::string, std::int64_t, StringHash, std::equal_to<>>;
  struct Shard {
    mutable std::mutex mu;
    Table table;
  };

  // The shard of a series with these labels whose SeriesHash is `hash`.
  [[nodiscard]] static std::size_t shard_index_of(const core::Labels& labels,
                                                  std::size_t hash) noexcept;
  // Counts one new series of `instance` (nullopt: no instance label)
  // against the limits; false when it would pass one (`which` says which).
  bool take(const std::optional<std::string_view>& instance, std::string& which);
  void give_back(const std::optional<std::string_view>& instance) noexcept;
  // Drops one request's hold on entry; erases it when nobody holds it and
  // no write of it reached the storage.
  void unhold(Entry* entry) noexcept;
  void touch(std::string_view pair, std::int64_t ms);

  Limits limits_;
  mutable std::array<Shard, kShards> shards_;
  std::atomic<std::uint64_t> next_id_{1};

  // Guarded by counts_mu_ (touched only when a series is created or
  // forgotten).
  mutable std::mutex counts_mu_;
  std::uint64_t total_ = 0;
  std::unordered_map<std::string, std::uint64_t, StringHash, std::equal_to<>> per_instance_;

  // "instance\xFFjob" -> last accepted write. Guarded by live_mu_.
  mutable std::mutex live_mu_;
  StringMap live_;
};

// "instance\xFFjob" of a label set with an instance; nullopt without one.
[[nodiscard]] std::optional<std::string> liveness_pair(const core::Labels& labels);

}  // namespace metrics::series
